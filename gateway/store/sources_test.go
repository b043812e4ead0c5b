package store

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func allowEntry(name string) Entry {
	return Entry{ServerName: name, Endpoints: []string{"*"}}
}

func denyEntry(name, note string) Entry {
	return Entry{ServerName: name, Deny: true, Note: note}
}

func TestDenyBeatsAllow(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s, err := New(Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceAllowlist([]Entry{
		allowEntry("hs1.example.org"),
		allowEntry("hs1.example.org:8448"),
		allowEntry("*.example.org"),
		allowEntry("x.bad.example.org"),
		allowEntry("late.example.org"),
	}); err != nil {
		t.Fatal(err)
	}
	past := now.Add(-time.Minute)
	future := now.Add(time.Hour)
	expiredDeny := denyEntry("late.example.org", "ban ended")
	expiredDeny.Expires = &past
	timedDeny := denyEntry("hs9.example.org", "ban in force")
	timedDeny.Expires = &future
	if err := s.ImportSource("import:bans", []Entry{
		denyEntry("hs1.example.org", "exact ban"),
		denyEntry("*.bad.example.org", "glob ban"),
		expiredDeny,
		timedDeny,
	}, "alice"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		lookup    string
		wantAllow string // server_name of the allow entry, "" for none
		wantDeny  string // server_name of the deny entry, "" for none
	}{
		{"exact deny beats exact allow", "hs1.example.org", "", "hs1.example.org"},
		{"portless deny beats ported allow", "hs1.example.org:8448", "", "hs1.example.org"},
		{"glob deny beats exact allow", "x.bad.example.org", "", "*.bad.example.org"},
		{"glob deny beats glob allow", "a.b.bad.example.org", "", "*.bad.example.org"},
		{"expired deny is ignored", "late.example.org", "late.example.org", ""},
		{"unexpired deny applies", "hs9.example.org", "", "hs9.example.org"},
		{"no deny keeps allow", "hs2.example.org", "*.example.org", ""},
		{"neither", "other.org", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := s.Match(tt.lookup)
			gotAllow, gotDeny := "", ""
			if m.Allow != nil {
				gotAllow = m.Allow.ServerName
			}
			if m.Deny != nil {
				gotDeny = m.Deny.ServerName
				if !m.Deny.Deny || m.Deny.Source != "import:bans" {
					t.Errorf("Deny entry = %+v, want a deny entry of source import:bans", *m.Deny)
				}
			}
			if gotAllow != tt.wantAllow {
				t.Errorf("Match(%q).Allow = %q, want %q", tt.lookup, gotAllow, tt.wantAllow)
			}
			if gotDeny != tt.wantDeny {
				t.Errorf("Match(%q).Deny = %q, want %q", tt.lookup, gotDeny, tt.wantDeny)
			}
			if _, ok := s.Lookup(tt.lookup); ok != (tt.wantAllow != "") {
				t.Errorf("Lookup(%q) ok = %t, want %t", tt.lookup, ok, tt.wantAllow != "")
			}
		})
	}
}

func TestSourcePrecedence(t *testing.T) {
	s := newTestStore(t)
	fileEntry := allowEntry("hs1.example.org")
	fileEntry.Administration = "from file"
	if err := s.ReplaceAllowlist([]Entry{fileEntry, allowEntry("hs2.example.org")}); err != nil {
		t.Fatal(err)
	}
	apiEntry := allowEntry("HS1.example.org")
	apiEntry.Administration = "from api"
	if _, err := s.AddEntry(apiEntry, "alice"); err != nil {
		t.Fatal(err)
	}
	signed := allowEntry("hs2.example.org")
	signed.Administration = "from signed list"
	if err := s.ReplaceSource("signed:federation", []Entry{signed, allowEntry("hs3.example.org")}); err != nil {
		t.Fatal(err)
	}

	want := map[string]string{
		"hs1.example.org": "from api",
		"hs2.example.org": "",
		"hs3.example.org": "",
	}
	for name, administration := range want {
		e, ok := s.Lookup(name)
		if !ok || e.Administration != administration {
			t.Errorf("Lookup(%q) = %q, %t, want administration %q", name, e.Administration, ok, administration)
		}
	}

	// Reloading the file keeps the API's entry in force.
	if err := s.ReplaceAllowlist([]Entry{fileEntry}); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Lookup("hs1.example.org"); e.Administration != "from api" || e.Source != SourceNameAPI {
		t.Errorf("after reload, Lookup(hs1) = %+v, want the API entry", e)
	}
	if e, _ := s.Lookup("hs2.example.org"); e.Source != "signed:federation" {
		t.Errorf("after reload, Lookup(hs2) source = %q, want signed:federation", e.Source)
	}

	listing := s.List()
	shadowed := map[string]string{}
	for _, listed := range listing.Entries {
		shadowed[listed.Source+" "+strings.ToLower(listed.ServerName)] = listed.ShadowedBy
	}
	wantShadowed := map[string]string{
		"api hs1.example.org":               "",
		"file hs1.example.org":              "api",
		"signed:federation hs2.example.org": "",
		"signed:federation hs3.example.org": "",
	}
	if fmt.Sprint(shadowed) != fmt.Sprint(wantShadowed) {
		t.Errorf("shadowed = %v, want %v", shadowed, wantShadowed)
	}
	var names []string
	for _, info := range listing.Sources {
		names = append(names, info.Name)
	}
	if got := strings.Join(names, ","); got != "api,file,signed:federation" {
		t.Errorf("sources = %s, want api,file,signed:federation", got)
	}
}

func TestRevision(t *testing.T) {
	s := newTestStore(t, "hs1.example.org")
	first := s.Revision()
	if len(first) != 64 || strings.Trim(first, "0123456789abcdef") != "" {
		t.Fatalf("Revision() = %q, want 64 hex digits", first)
	}
	if _, err := s.AddEntry(allowEntry("hs2.example.org"), "alice"); err != nil {
		t.Fatal(err)
	}
	added := s.Revision()
	if added == first {
		t.Errorf("revision did not change when an entry was added")
	}
	if _, err := s.AddEntry(allowEntry("hs2.example.org"), "bob"); err != nil {
		t.Fatalf("AddEntry of the same entry: %v", err)
	}
	if s.Revision() != added {
		t.Errorf("revision changed on a no-op add")
	}
	if _, err := s.RemoveEntry("hs2.example.org", "alice"); err != nil {
		t.Fatal(err)
	}
	if got := s.Revision(); got != first {
		t.Errorf("revision after removing the added entry = %s, want the first one %s", got, first)
	}

	other := newTestStore(t, "hs1.example.org")
	if other.Revision() != first {
		t.Errorf("another store with the same entries has revision %s, want %s", other.Revision(), first)
	}
	if err := other.ReplaceSource("signed:a", []Entry{denyEntry("evil.org", "")}); err != nil {
		t.Fatal(err)
	}
	if other.Revision() == first {
		t.Errorf("revision did not change when a deny entry was added")
	}
	if listing := other.List(); listing.Revision != other.Revision() {
		t.Errorf("List().Revision = %s, want %s", listing.Revision, other.Revision())
	}
}

func TestChangeErrors(t *testing.T) {
	s := newTestStore(t, "hs1.example.org")
	if _, err := s.AddEntry(allowEntry("hs2.example.org"), "alice"); err != nil {
		t.Fatal(err)
	}
	changed := allowEntry("hs2.example.org")
	changed.Note = "other"

	tests := []struct {
		name    string
		change  func() error
		wantIs  error
		wantMsg string
	}{
		{
			"add existing with other fields",
			func() error { _, err := s.AddEntry(changed, "bob"); return err },
			ErrEntryExists,
			"hs2.example.org: entry exists in source api with other fields (replace it, or remove it first)",
		},
		{
			"remove missing",
			func() error { _, err := s.RemoveEntry("hs9.example.org", "bob"); return err },
			ErrEntryNotFound,
			"hs9.example.org: entry not found in the allow-list",
		},
		{
			"remove file entry",
			func() error { _, err := s.RemoveEntry("HS1.example.org", "bob"); return err },
			ErrEntryNotFound,
			"HS1.example.org: entry not found in source api; the entries for it come from file, which the admin API does not change (edit that source, or add a deny entry)",
		},
		{
			"delete missing source",
			func() error { return s.DeleteSource("import:none", "bob") },
			ErrSourceNotFound,
			"import:none: source not found",
		},
		{
			"import into the api source",
			func() error { return s.ImportSource("api", nil, "bob") },
			nil,
			`source "api" is not an imported list (expected import:NAME)`,
		},
		{
			"import under an invalid name",
			func() error { return s.ImportSource("import:Bad Name", nil, "bob") },
			nil,
			`invalid source name "import:Bad Name" (expected a kind such as import, a colon and a name of 1 to 64 characters of a-z, 0-9, '.', '_' and '-', such as "import:bans")`,
		},
		{
			"replace a persisted source",
			func() error { return s.ReplaceSource("import:bans", nil) },
			nil,
			"source import:bans: source import:bans persists in the state directory, so it changes only through the admin API",
		},
		{
			"import invalid entries",
			func() error {
				return s.ImportSource("import:bans", []Entry{{ServerName: "a.org", Deny: true, Endpoints: []string{"*"}}}, "bob")
			},
			nil,
			`source import:bans: servers[0] (server_name "a.org"): endpoints: not allowed on a deny entry (expected a deny entry with only server_name, deny, administration, note, expires and labels)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := s.Revision()
			err := tt.change()
			if err == nil {
				t.Fatalf("error = nil, want %q", tt.wantMsg)
			}
			if err.Error() != tt.wantMsg {
				t.Errorf("error:\n got %s\nwant %s", err, tt.wantMsg)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(err, %v) = false", tt.wantIs)
			}
			if s.Revision() != before {
				t.Errorf("revision changed by a failed change")
			}
		})
	}
}

func TestValidateEntryDenyAndNote(t *testing.T) {
	tests := []struct {
		name  string
		entry Entry
		want  string
	}{
		{
			"deny with pinned key and address",
			Entry{ServerName: "a.org", Deny: true, PinnedKeys: map[string]string{}, Address: "a.org:8448"},
			"entry (server_name \"a.org\"): pinned_keys: not allowed on a deny entry (expected " + expectDenyOnly + ")\n" +
				"entry (server_name \"a.org\"): address: not allowed on a deny entry (expected " + expectDenyOnly + ")",
		},
		{
			"deny with require_mtls and event types",
			Entry{ServerName: "a.org", Deny: true, RequireMTLS: true, EventTypes: []string{}},
			"entry (server_name \"a.org\"): require_mtls: not allowed on a deny entry (expected " + expectDenyOnly + ")\n" +
				"entry (server_name \"a.org\"): event_types: not allowed on a deny entry (expected " + expectDenyOnly + ")",
		},
		{
			"note too long",
			Entry{ServerName: "a.org", Deny: true, Note: strings.Repeat("x", 1025)},
			"entry (server_name \"a.org\"): note: 1025 bytes, more than 1024 (expected " + expectNote + ")",
		},
		{
			"note with newline",
			Entry{ServerName: "a.org", Endpoints: []string{"*"}, Note: "a\nb"},
			"entry (server_name \"a.org\"): note: control character U+000A (expected " + expectNote + ")",
		},
		{
			"note not UTF-8",
			Entry{ServerName: "a.org", Endpoints: []string{"*"}, Note: "\xff"},
			"entry (server_name \"a.org\"): note: invalid UTF-8 (expected " + expectNote + ")",
		},
		{
			"allow without endpoints",
			Entry{ServerName: "a.org"},
			"entry (server_name \"a.org\"): endpoints: missing (expected " + expectEndpoints + ")",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateEntry(tt.entry)
			if err == nil || err.Error() != tt.want {
				t.Errorf("ValidateEntry() error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
	if err := ValidateEntry(Entry{ServerName: "*.evil.org", Deny: true, Note: "spam", Labels: map[string]string{"list": "x"}}); err != nil {
		t.Errorf("ValidateEntry(valid deny entry) = %v", err)
	}
}

// TestChangesConcurrentReaders checks, under the race detector, that
// readers never see half a change: every change imports a whole
// generation of entries labelled with its number, and each snapshot must
// hold one generation only, with the revision of its own entries.
func TestChangesConcurrentReaders(t *testing.T) {
	s, err := New(Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	const entriesPerGeneration = 20
	generation := func(n int) []Entry {
		entries := make([]Entry, entriesPerGeneration)
		for i := range entries {
			entries[i] = Entry{ServerName: fmt.Sprintf("hs%d.example.org", i), Deny: i%2 == 0,
				Labels: map[string]string{"generation": fmt.Sprint(n)}}
			if !entries[i].Deny {
				entries[i].Endpoints = []string{"*"}
			}
		}
		return entries
	}
	if err := s.ImportSource("import:gen", generation(0), "writer"); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	errs := make(chan error, 8)
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				listing := s.List()
				if len(listing.Entries) != entriesPerGeneration {
					errs <- fmt.Errorf("snapshot has %d entries, want %d", len(listing.Entries), entriesPerGeneration)
					return
				}
				gen := listing.Entries[0].Labels["generation"]
				effective := make([]Entry, 0, len(listing.Entries))
				for _, listed := range listing.Entries {
					if listed.Labels["generation"] != gen {
						errs <- fmt.Errorf("snapshot mixes generations %s and %s", gen, listed.Labels["generation"])
						return
					}
					effective = append(effective, listed.Entry)
				}
				if want := revision(effective); listing.Revision != want {
					errs <- fmt.Errorf("snapshot revision %s, want %s for its entries", listing.Revision, want)
					return
				}
				m := s.Match("hs0.example.org")
				if m.Deny == nil || m.Allow != nil {
					errs <- fmt.Errorf("Match(hs0) = %+v, want only a deny entry", m)
					return
				}
			}
		}()
	}
	for n := 1; n <= 50; n++ {
		if err := s.ImportSource("import:gen", generation(n), "writer"); err != nil {
			t.Fatalf("ImportSource generation %d: %v", n, err)
		}
	}
	close(stop)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A deny entry for an IP address applies to every spelling of that
// address: the server behind [2001:db8:0::bad] is the one behind
// [2001:db8::bad], and [::ffff:192.0.2.7] reaches 192.0.2.7. Under an allow
// glob that covers them all, another spelling must not get around the ban.
func TestDenyMatchesEveryIPSpelling(t *testing.T) {
	s := newTestStore(t)
	if err := s.ReplaceAllowlist([]Entry{allowEntry("*"), allowEntry("[2001:db8::1]")}); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSource("import:bans", []Entry{
		denyEntry("[2001:db8::bad]", "v6 ban"),
		denyEntry("[2001:db8:0:0:0:0:0:dead]:8448", "written long"),
		denyEntry("192.0.2.7", "v4 ban"),
		denyEntry("198.51.100.*", "v4 glob ban"),
		denyEntry("[2001:db8:1::*]", "v6 glob ban"),
	}, "alice"); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		lookup   string
		wantDeny string
	}{
		{"[2001:db8::bad]", "[2001:db8::bad]"},
		{"[2001:db8:0::bad]", "[2001:db8::bad]"},
		{"[2001:0db8:0000:0000:0000:0000:0000:0bad]:8448", "[2001:db8::bad]"},
		{"[2001:DB8::BAD]", "[2001:db8::bad]"},
		{"[2001:db8::dead]:8448", "[2001:db8:0:0:0:0:0:dead]:8448"},
		{"[2001:db8::dead]:8449", ""},
		{"[::ffff:192.0.2.7]", "192.0.2.7"},
		{"[::ffff:c000:207]:8448", "192.0.2.7"},
		{"[::ffff:198.51.100.20]", "198.51.100.*"},
		{"[2001:db8:1:0::5]", "[2001:db8:1::*]"},
		{"[2001:db8::1]", ""},
		{"[2001:db8::2]", ""},
	}
	for _, tt := range tests {
		m := s.Match(tt.lookup)
		got := ""
		if m.Deny != nil {
			got = m.Deny.ServerName
		}
		if got != tt.wantDeny {
			t.Errorf("Match(%q).Deny = %q, want %q", tt.lookup, got, tt.wantDeny)
		}
		if (m.Allow == nil) == (tt.wantDeny == "") {
			t.Errorf("Match(%q).Allow = %v, want an allow entry only without a deny entry", tt.lookup, m.Allow)
		}
	}
}

// Two deny entries for one name: an API ban until a date must not hide,
// once it has expired, an imported ban without an end. The ban that lasts
// longer is the one in force, whatever the sources' precedence.
func TestDenyExpiredDoesNotHideLongerDeny(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	clock := now
	s, err := New(Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceAllowlist([]Entry{allowEntry("*.example.org")}); err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Hour)
	temporary := denyEntry("bad.example.org", "until the incident is closed")
	temporary.Expires = &until
	if _, err := s.AddEntry(temporary, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSource("import:bans", []Entry{denyEntry("bad.example.org", "community ban")}, "bob"); err != nil {
		t.Fatal(err)
	}

	for _, at := range []time.Time{now, now.Add(2 * time.Hour)} {
		clock = at
		m := s.Match("bad.example.org")
		if m.Deny == nil || m.Allow != nil {
			t.Errorf("at %s: Match(bad.example.org) = deny %v, allow %v, want a deny entry in force", at, m.Deny, m.Allow)
		}
	}

	// Of two bans with an end, the later end wins.
	later := now.Add(3 * time.Hour)
	longer := denyEntry("worse.example.org", "longer")
	longer.Expires = &later
	shorter := denyEntry("worse.example.org", "shorter")
	shorter.Expires = &until
	if _, err := s.AddEntry(shorter, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSource("import:bans", []Entry{denyEntry("bad.example.org", "community ban"), longer}, "bob"); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Hour)
	if m := s.Match("worse.example.org"); m.Deny == nil || m.Deny.Note != "longer" {
		t.Errorf("Match(worse.example.org) = deny %v, want the ban that ends later", m.Deny)
	}
}
