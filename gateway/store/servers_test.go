package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// newTestStore returns a store without a state directory holding an entry
// for each server name, permitting every endpoint.
func newTestStore(t testing.TB, serverNames ...string) *Store {
	t.Helper()
	s, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	entries := make([]Entry, len(serverNames))
	for i, name := range serverNames {
		entries[i] = Entry{ServerName: name, Endpoints: []string{"*"}}
	}
	if err := s.ReplaceAllowlist(entries); err != nil {
		t.Fatalf("ReplaceAllowlist: %v", err)
	}
	return s
}

func TestLookup(t *testing.T) {
	s := newTestStore(t,
		"hs1.example.org:8448",
		"hs1.example.org",
		"portless.example.org",
		"ported.example.org:8448",
		"*.example.org",
		"*.sub.example.org",
		"hs?.sub.example.org",
		"*.glob.example:8448",
		"*.glob.example",
		"a*.tie.example",
		"*a.tie.example",
		"??.stars.example",
		"*.stars.example",
		"[::1]:8448",
		"[2001:db8::*]",
		"10.0.0.*",
	)
	tests := []struct {
		name       string
		serverName string
		want       string // server_name of the expected entry, empty for none
	}{
		{"exact with port", "hs1.example.org:8448", "hs1.example.org:8448"},
		{"exact without port", "hs1.example.org", "hs1.example.org"},
		{"exact host for other port", "hs1.example.org:9000", "hs1.example.org"},
		{"exact ignores case", "HS1.Example.ORG:8448", "hs1.example.org:8448"},
		{"portless entry any port", "portless.example.org:1", "portless.example.org"},
		{"portless entry no port", "portless.example.org", "portless.example.org"},
		{"ported entry other port falls to glob", "ported.example.org:8449", "*.example.org"},
		{"ported entry no port falls to glob", "ported.example.org", "*.example.org"},
		{"glob", "other.example.org", "*.example.org"},
		{"glob with any port", "other.example.org:443", "*.example.org"},
		{"glob spans labels", "a.b.example.org", "*.example.org"},
		{"glob excludes bare domain", "example.org", ""},
		{"longer glob wins", "x.sub.example.org", "*.sub.example.org"},
		{"more literals beat fewer stars", "hs1.sub.example.org", "hs?.sub.example.org"},
		{"glob with port beats portless glob", "a.glob.example:8448", "*.glob.example:8448"},
		{"portless glob for other port", "a.glob.example:8449", "*.glob.example"},
		{"tie broken by key", "aa.tie.example", "*a.tie.example"},
		{"question beats star at equal literals", "ab.stars.example", "??.stars.example"},
		{"star when question does not fit", "abc.stars.example", "*.stars.example"},
		{"ipv6 exact", "[::1]:8448", "[::1]:8448"},
		{"ipv6 other port", "[::1]:8449", ""},
		{"ipv6 no port", "[::1]", ""},
		{"ipv6 glob", "[2001:db8::1]", "[2001:db8::*]"},
		{"ipv6 glob with port", "[2001:db8::1]:8448", "[2001:db8::*]"},
		{"ipv4 glob", "10.0.0.7:8448", "10.0.0.*"},
		{"ipv4 glob other network", "10.0.1.7", ""},
		{"unknown", "evil.example.com", ""},
		{"lookalike suffix", "evilexample.org", ""},
		{"suffix after allowed name", "hs1.example.org.evil", ""},
		{"empty", "", ""},
		{"invalid name", "hs1.example.org:", ""},
		{"leading zero port", "hs1.example.org:08448", ""},
		{"glob characters in name", "*.example.org", ""},
		{"non-ascii name", "bücher.example.org", ""},
		{"kelvin sign is not k", "\u212a.example.org", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Lookup(tt.serverName)
			if tt.want == "" {
				if ok {
					t.Errorf("Lookup(%q) = %q, want no entry", tt.serverName, got.ServerName)
				}
				return
			}
			if !ok {
				t.Fatalf("Lookup(%q) found no entry, want %q", tt.serverName, tt.want)
			}
			if got.ServerName != tt.want {
				t.Errorf("Lookup(%q) = %q, want %q", tt.serverName, got.ServerName, tt.want)
			}
		})
	}
}

func TestLookupCatchAll(t *testing.T) {
	s := newTestStore(t, "*", "*.example.org")
	tests := []struct {
		serverName string
		want       string
	}{
		{"anything.example.com:1", "*"},
		{"[::1]", "*"},
		{"hs1.example.org", "*.example.org"},
	}
	for _, tt := range tests {
		got, ok := s.Lookup(tt.serverName)
		if !ok || got.ServerName != tt.want {
			t.Errorf("Lookup(%q) = %q, %v, want %q", tt.serverName, got.ServerName, ok, tt.want)
		}
	}
}

func TestLookupCatchAllSkipsNumericNames(t *testing.T) {
	s := newTestStore(t, "*")
	for _, serverName := range []string{"example.123", "a.0x7f", "0x7f.0.0.1", "1.2.3"} {
		if got, ok := s.Lookup(serverName); ok {
			t.Errorf("Lookup(%q) = %q, want no entry for an invalid server name", serverName, got.ServerName)
		}
	}
}

func TestLookupReturnsCopy(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	entry := Entry{ServerName: "a.org", Endpoints: []string{"send"}, Labels: map[string]string{"k": "v"}}
	if err := s.ReplaceAllowlist([]Entry{entry}); err != nil {
		t.Fatalf("ReplaceAllowlist: %v", err)
	}
	entry.Endpoints[0] = "changed by caller"
	entry.Labels["k"] = "changed by caller"

	got, _ := s.Lookup("a.org")
	got.Endpoints[0] = "changed by reader"
	got.Labels["k"] = "changed by reader"

	again, _ := s.Lookup("a.org")
	if again.Endpoints[0] != "send" {
		t.Errorf("stored endpoints = %q, want [send]", again.Endpoints)
	}
	if again.Labels["k"] != "v" {
		t.Errorf("stored labels = %v, want k=v", again.Labels)
	}
}

func TestReplaceAllowlistInvalidKeepsOld(t *testing.T) {
	s := newTestStore(t, "a.org")
	err := s.ReplaceAllowlist([]Entry{
		{ServerName: "b.org", Endpoints: []string{"*"}},
		{ServerName: "B.org", Endpoints: []string{"*"}},
	})
	want := `replace allowlist: servers[1] (server_name "B.org"): server_name: duplicate of servers[0] (expected ` +
		expectUniqueName + `)`
	if err == nil || err.Error() != want {
		t.Fatalf("ReplaceAllowlist error:\n got %v\nwant %s", err, want)
	}
	if _, ok := s.Lookup("a.org"); !ok {
		t.Error("old entry a.org is gone after a failed replace")
	}
	if _, ok := s.Lookup("b.org"); ok {
		t.Error("entry b.org of the failed replace is present")
	}
}

func TestReplaceAllowlistRemovesOld(t *testing.T) {
	s := newTestStore(t, "a.org", "*.old.example")
	if err := s.ReplaceAllowlist([]Entry{{ServerName: "b.org", Endpoints: []string{"*"}}}); err != nil {
		t.Fatalf("ReplaceAllowlist: %v", err)
	}
	for _, name := range []string{"a.org", "x.old.example"} {
		if got, ok := s.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %q after replace, want no entry", name, got.ServerName)
		}
	}
	if _, ok := s.Lookup("b.org"); !ok {
		t.Error("Lookup(b.org) found no entry after replace")
	}
}

func TestEntries(t *testing.T) {
	s := newTestStore(t, "c.org", "*.b.org", "A.org")
	var got []string
	for _, entry := range s.Entries() {
		got = append(got, entry.ServerName)
	}
	want := "*.b.org A.org c.org"
	if strings.Join(got, " ") != want {
		t.Errorf("Entries = %q, want %q", got, want)
	}

	empty, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if entries := empty.Entries(); len(entries) != 0 {
		t.Errorf("Entries of an empty store = %+v, want none", entries)
	}
}

// TestReplaceAllowlistConcurrentReaders checks, under the race detector,
// that readers always see one whole allow-list: generation n has the exact
// entry gen-n.example and the glob *.gen-n.example, and no other.
func TestReplaceAllowlistConcurrentReaders(t *testing.T) {
	const generations = 200
	generation := func(n int) []Entry {
		return []Entry{
			{ServerName: fmt.Sprintf("gen-%d.example", n), Endpoints: []string{"*"}, Labels: map[string]string{"n": fmt.Sprint(n)}},
			{ServerName: fmt.Sprintf("*.gen-%d.example", n), Endpoints: []string{"*"}, Labels: map[string]string{"n": fmt.Sprint(n)}},
		}
	}
	s, err := New(Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := s.ReplaceAllowlist(generation(0)); err != nil {
		t.Fatalf("ReplaceAllowlist: %v", err)
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	errs := make(chan error, 8)
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if err := checkOneGeneration(s); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for n := 1; n <= generations; n++ {
		if err := s.ReplaceAllowlist(generation(n)); err != nil {
			t.Fatalf("ReplaceAllowlist generation %d: %v", n, err)
		}
	}
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := checkOneGeneration(s); err != nil {
		t.Error(err)
	}
}

// checkOneGeneration reads the entries and checks that they form one
// generation, whose names then resolve through Lookup.
func checkOneGeneration(s *Store) error {
	entries := s.Entries()
	if len(entries) != 2 {
		return fmt.Errorf("Entries returned %d entries, want 2", len(entries))
	}
	n := entries[0].Labels["n"]
	if entries[1].Labels["n"] != n {
		return fmt.Errorf("Entries mixes generations %s and %s", n, entries[1].Labels["n"])
	}
	for _, name := range []string{"gen-" + n + ".example", "host.gen-" + n + ".example"} {
		entry, ok := s.Lookup(name)
		if !ok {
			// A later generation may have replaced this one already.
			continue
		}
		if !strings.HasSuffix(entry.ServerName, "gen-"+entry.Labels["n"]+".example") {
			return fmt.Errorf("Lookup(%q) returned entry %q with label n=%q of another generation",
				name, entry.ServerName, entry.Labels["n"])
		}
	}
	return nil
}

// BenchmarkLookup100k measures Lookup on an allow-list of 100,000 entries,
// 1,000 of them globs.
func BenchmarkLookup100k(b *testing.B) {
	const total, globs = 100_000, 1_000
	entries := make([]Entry, 0, total)
	for i := range total - globs {
		entries = append(entries, Entry{
			ServerName: fmt.Sprintf("hs%d.org%d.example:%d", i, i%977, 8000+i%1000),
			Endpoints:  []string{"*"},
			PinnedKeys: map[string]string{"ed25519:a": unpadded(testKey(byte(i)))},
		})
	}
	for i := range globs {
		pattern := fmt.Sprintf("*.glob%d.example", i)
		if i%4 == 0 {
			pattern = fmt.Sprintf("hs??.glob%d.example", i)
		}
		entries = append(entries, Entry{ServerName: pattern, Endpoints: []string{"*"}})
	}
	s, err := New(Options{})
	if err != nil {
		b.Fatalf("New: %v", err)
	}
	if err := s.ReplaceAllowlist(entries); err != nil {
		b.Fatalf("ReplaceAllowlist: %v", err)
	}

	cases := []struct {
		name       string
		serverName string
		found      bool
	}{
		{"exact", "hs4242.org334.example:8242", true},
		{"exact_host_other_port", "hs4242.org334.example:1", false},
		{"glob", "host.sub.glob517.example:8448", true},
		{"glob_question", "hs12.glob400.example", true},
		{"miss", "unknown.server.example.com:8448", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, ok := s.Lookup(c.serverName); ok != c.found {
					b.Fatalf("Lookup(%q) found = %v, want %v", c.serverName, ok, c.found)
				}
			}
		})
	}
}
