package modlist

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/store"
)

const roomState = `[
  {"type": "m.room.create", "state_key": "", "event_id": "$create", "room_id": "!bans:example.org", "content": {"room_version": "10"}},
  {"type": "m.policy.rule.server", "state_key": "rule1", "event_id": "$r1", "room_id": "!bans:example.org",
   "content": {"entity": "*.evil.example", "recommendation": "m.ban", "reason": "spam"}},
  {"type": "m.policy.rule.server", "state_key": "rule2", "event_id": "$r2", "room_id": "!bans:example.org",
   "content": {"entity": "bad.example:8448", "recommendation": "m.ban", "reason": "abuse\nreports"}},
  {"type": "m.policy.rule.server", "state_key": "rule3", "event_id": "$r3", "room_id": "!bans:example.org",
   "content": {"entity": "watch.example", "recommendation": "org.example.watch", "reason": "watch"}},
  {"type": "m.policy.rule.server", "state_key": "rule4", "event_id": "$r4", "room_id": "!bans:example.org", "content": {}},
  {"type": "m.policy.rule.server", "state_key": "rule5", "event_id": "$r5", "room_id": "!bans:example.org",
   "content": {"entity": "bad_name.example", "recommendation": "m.ban", "reason": "x"}},
  {"type": "m.policy.rule.user", "state_key": "u1", "event_id": "$u1", "room_id": "!bans:example.org",
   "content": {"entity": "@spammer:example.org", "recommendation": "m.ban", "reason": "spam"}},
  {"type": "m.policy.rule.server", "state_key": "rule6", "event_id": "$r6", "room_id": "!bans:example.org",
   "content": {"recommendation": "m.ban", "reason": "no entity"}},
  {"type": "org.matrix.mjolnir.rule.server", "state_key": "old", "event_id": "$old", "room_id": "!bans:example.org",
   "content": {"entity": "old.example", "recommendation": "m.ban"}},
  {"type": "m.policy.rule.server", "state_key": "rule7", "event_id": "$r7", "room_id": "!bans:example.org",
   "content": {"entity": "*.EVIL.example", "recommendation": "m.ban", "reason": "again"}},
  {"type": "m.policy.rule.server", "state_key": "rule8", "event_id": "$r8", "room_id": "!bans:example.org",
   "content": {"entity": "nobody.example", "recommendation": "m.ban"}},
  {"type": "m.policy.rule.server", "event_id": "$r9", "content": {"entity": "x.example", "recommendation": "m.ban"}},
  {"type": "m.policy.rule.server", "state_key": "rule10", "event_id": "$r10", "content": {"entity": 5, "recommendation": "m.ban"}}
]`

func TestParse(t *testing.T) {
	result, err := Parse([]byte(roomState), Options{})
	if err != nil {
		t.Fatal(err)
	}
	labels := func(id string) map[string]string {
		return map[string]string{LabelPolicyRoom: "!bans:example.org", LabelPolicyEventID: id}
	}
	wantEntries := []store.Entry{
		{ServerName: "*.evil.example", Deny: true, Note: "spam", Labels: labels("$r1")},
		{ServerName: "bad.example:8448", Deny: true, Note: "abuse reports", Labels: labels("$r2")},
		{ServerName: "nobody.example", Deny: true, Labels: labels("$r8")},
	}
	if !reflect.DeepEqual(result.Entries, wantEntries) {
		t.Errorf("Entries:\n got %+v\nwant %+v", result.Entries, wantEntries)
	}

	var skipped []string
	for _, r := range result.Skipped {
		skipped = append(skipped, r.String())
	}
	wantSkipped := []string{
		`events[3] ($r3): recommendation "org.example.watch" is not supported (expected m.ban, the only one the Matrix specification defines)`,
		`events[5] ($r5): entity "bad_name.example": server_name: invalid server name "bad_name.example": character '_' not allowed (expected ` + expectedServerName + `)`,
		`events[7] ($r6): rule without an entity (expected a server name or glob)`,
		`events[8] ($old): event type org.matrix.mjolnir.rule.server is not imported (expected m.policy.rule.server; re-issue the rule with that type)`,
		`events[11] ($r9): server rule without a state_key (expected a state event)`,
		`events[12] ($r10): invalid rule content: json: cannot unmarshal number into Go struct field rule.entity of type string`,
	}
	if strings.Join(skipped, "\n") != strings.Join(wantSkipped, "\n") {
		t.Errorf("Skipped:\n got %s\nwant %s", strings.Join(skipped, "\n"), strings.Join(wantSkipped, "\n"))
	}

	var notices []string
	for _, r := range result.Notices {
		notices = append(notices, r.String())
	}
	wantNotices := []string{
		"events[2] ($r2): reason shortened to 13 bytes of text without control characters",
		`events[9] ($r7): entity "*.EVIL.example" is also banned by an earlier rule, whose entry is kept (entries[0])`,
	}
	if strings.Join(notices, "\n") != strings.Join(wantNotices, "\n") {
		t.Errorf("Notices:\n got %s\nwant %s", strings.Join(notices, "\n"), strings.Join(wantNotices, "\n"))
	}
	if result.RemovedRules != 1 || result.OtherEvents != 2 {
		t.Errorf("RemovedRules, OtherEvents = %d, %d, want 1, 2", result.RemovedRules, result.OtherEvents)
	}
	if err := store.ValidateEntries(result.Entries); err != nil {
		t.Errorf("entries do not validate: %v", err)
	}
}

// expectedServerName is the store's description of a valid server_name.
var expectedServerName = func() string {
	err := store.ValidateEntry(store.Entry{ServerName: "a_b", Deny: true})
	msg := err.Error()
	return msg[strings.Index(msg, "(expected ")+len("(expected ") : len(msg)-1]
}()

func TestParseFederationStateShape(t *testing.T) {
	var events []json.RawMessage
	if err := json.Unmarshal([]byte(roomState), &events); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"pdus": events, "auth_chain": []any{}})
	if err != nil {
		t.Fatal(err)
	}
	fromArray, _ := Parse([]byte(roomState), Options{})
	fromObject, err := Parse(body, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromArray, fromObject) {
		t.Errorf("the /state shape gives %+v, want %+v", fromObject, fromArray)
	}
}

func TestParseLongReason(t *testing.T) {
	reason := strings.Repeat("é", 600) // 1200 bytes
	body := `[{"type": "m.policy.rule.server", "state_key": "r", "content": {"entity": "a.example", "recommendation": "m.ban", "reason": "` + reason + `"}}]`
	result, err := Parse([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Entries) != 1 || result.Entries[0].Note != strings.Repeat("é", 512) {
		t.Fatalf("note = %q, want 512 é (1024 bytes)", result.Entries[0].Note)
	}
	if len(result.Notices) != 1 {
		t.Errorf("Notices = %v, want one about the shortened reason", result.Notices)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"empty", "", "policy list is empty (expected a JSON array of state events, or an object with a pdus array)"},
		{"scalar", `"x"`, "invalid policy list (expected a JSON array of state events, or an object with a pdus array)"},
		{"object without pdus", `{"state": []}`, "policy list object has no pdus array (expected the response of GET /_matrix/federation/v1/state/{roomId}, or an array of state events)"},
		{"truncated array", `[{"type": "m.policy.rule.server"`, "invalid policy list (expected a JSON array of state events): unexpected end of JSON input"},
		{"pdus not an array", `{"pdus": 5}`, "invalid policy list (expected an object with a pdus array): json: cannot unmarshal number into Go struct field .pdus of type []json.RawMessage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.data), Options{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("Parse() error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(roomState))
	f.Add([]byte(`{"pdus": [{"type": "m.policy.rule.server", "state_key": "", "content": {"entity": "?", "recommendation": "m.ban", "reason": "\u0000"}}]}`))
	f.Add([]byte(`[{"type": "m.policy.rule.server", "state_key": "x", "content": {"entity": "[::1]:8448", "recommendation": "m.ban"}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		result, err := Parse(data, Options{LocalServerNames: []string{"local.example"}})
		if err != nil {
			return
		}
		if err := store.ValidateEntries(result.Entries); err != nil {
			t.Fatalf("Parse returned entries that do not validate: %v", err)
		}
		for _, entry := range result.Entries {
			if !entry.Deny {
				t.Fatalf("Parse returned an allow entry: %+v", entry)
			}
			if store.PatternMatches(entry.ServerName, "local.example") {
				t.Fatalf("Parse returned a ban of the local server name: %+v", entry)
			}
			if host, _, _ := strings.Cut(entry.ServerName, ":"); strings.Trim(host, "*?.") == "" {
				t.Fatalf("Parse returned a ban without a domain: %+v", entry)
			}
		}
	})
}

// A ban whose entity names no domain would end all federation, and one
// that covers the gateway's own server names would deny its own users.
// The authors of a policy list are outside the administration, so such
// rules are skipped and reported instead of imported.
func TestParseSkipsBansOfEveryoneAndOwnServer(t *testing.T) {
	var events []string
	entities := []string{"*", "?*", "*.*", "**:8448", "*.org", "*.local.example", "alt.local.example", "hs.local.example:8449", "ok.example"}
	for i, entity := range entities {
		events = append(events, fmt.Sprintf(`{"type": "m.policy.rule.server", "state_key": "r%d", "event_id": "$r%d", "content": {"entity": %q, "recommendation": "m.ban"}}`, i, i, entity))
	}
	result, err := Parse([]byte("["+strings.Join(events, ",")+"]"), Options{LocalServerNames: []string{"hs.local.example", "alt.local.example:8448"}})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, entry := range result.Entries {
		kept = append(kept, entry.ServerName)
	}
	if want := []string{"*.org", "hs.local.example:8449", "ok.example"}; !reflect.DeepEqual(kept, want) {
		t.Errorf("entries = %v, want %v", kept, want)
	}
	var skipped []string
	for _, r := range result.Skipped {
		skipped = append(skipped, r.String())
	}
	every := " matches every server name and would end all federation (expected a server name, or a glob with a domain such as *.example.org)"
	wantSkipped := []string{
		`events[0] ($r0): entity "*"` + every,
		`events[1] ($r1): entity "?*"` + every,
		`events[2] ($r2): entity "*.*"` + every,
		`events[3] ($r3): entity "**:8448"` + every,
		`events[5] ($r5): entity "*.local.example" matches the gateway's own server name hs.local.example (expected a rule for other servers)`,
		`events[6] ($r6): entity "alt.local.example" matches the gateway's own server name alt.local.example:8448 (expected a rule for other servers)`,
	}
	if strings.Join(skipped, "\n") != strings.Join(wantSkipped, "\n") {
		t.Errorf("Skipped:\n got %s\nwant %s", strings.Join(skipped, "\n"), strings.Join(wantSkipped, "\n"))
	}
}

// A room's state contains one event per type and state key. An export
// with two is not a room's state, so the second is reported. The bans of
// both stay, because dropping one would let a banned server in.
func TestParseRepeatedStateKey(t *testing.T) {
	body := `[
	  {"type": "m.policy.rule.server", "state_key": "r", "event_id": "$1", "content": {"entity": "a.example", "recommendation": "m.ban"}},
	  {"type": "m.policy.rule.server", "state_key": "r", "event_id": "$2", "content": {}},
	  {"type": "m.policy.rule.server", "state_key": "r", "event_id": "$3", "content": {"entity": "b.example", "recommendation": "m.ban"}}
	]`
	result, err := Parse([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Entries) != 2 || result.Entries[0].ServerName != "a.example" || result.Entries[1].ServerName != "b.example" {
		t.Errorf("entries = %+v, want the bans of a.example and b.example", result.Entries)
	}
	var notices []string
	for _, r := range result.Notices {
		notices = append(notices, r.String())
	}
	want := []string{
		`events[1] ($2): state_key "r" of m.policy.rule.server repeats events[0]; a room's state holds one event per type and state key, so the export may not be the room's current state`,
		`events[2] ($3): state_key "r" of m.policy.rule.server repeats events[0]; a room's state holds one event per type and state key, so the export may not be the room's current state`,
	}
	if strings.Join(notices, "\n") != strings.Join(want, "\n") {
		t.Errorf("Notices:\n got %s\nwant %s", strings.Join(notices, "\n"), strings.Join(want, "\n"))
	}
}

// The event IDs of a policy list come from its authors, and the import
// report prints them on the operator's terminal: control characters, such
// as an escape sequence that rewrites the screen, are printed quoted.
func TestReportStringQuotesControlCharacters(t *testing.T) {
	body := `[{"type": "m.policy.rule.server", "state_key": "r", "event_id": "$x\u001b]0;owned\u0007", "content": {"entity": "a.example", "recommendation": "org.example.watch"}}]`
	result, err := Parse([]byte(body), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(result.Skipped) != 1 {
		t.Fatalf("Skipped = %v, want one report", result.Skipped)
	}
	want := `events[0] ("$x\x1b]0;owned\a"): recommendation "org.example.watch" is not supported (expected m.ban, the only one the Matrix specification defines)`
	if got := result.Skipped[0].String(); got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	plain := Report{Index: 1, EventID: "$abc:example.org", Problem: "p"}
	if got := plain.String(); got != "events[1] ($abc:example.org): p" {
		t.Errorf("String() = %s, want the event ID unquoted", got)
	}
}
