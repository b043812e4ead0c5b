package events

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

func TestParsePDUFormat(t *testing.T) {
	std := stdAlphabetID()
	cases := []struct {
		name    string
		version string
		base    string // event JSON, or "" for messageJSON of the version
		edits   []edit
		opts    ParseOptions
		want    string // "" when the event must be accepted
	}{
		{name: "valid message v1", version: "1"},
		{name: "valid message v3", version: "3"},
		{name: "valid message v12", version: "12"},
		{
			name: "v3 with event_id", version: "3", edits: []edit{set("event_id", `"$x:hs1"`)},
			want: "invalid event format: event_id: must be absent in room version 3, where the event ID is derived from the event",
		},
		{
			name: "v12 with event_id", version: "12", edits: []edit{set("event_id", `"$x:hs1"`)},
			want: "invalid event format: event_id: must be absent in room version 12, where the event ID is derived from the event",
		},
		{
			name: "v1 without event_id", version: "1", edits: []edit{del("event_id")},
			want: "invalid event format: event_id: missing",
		},
		{
			name: "v2 event_id without server", version: "2", edits: []edit{set("event_id", `"$abc"`)},
			want: `invalid event format: event_id: "$abc" is not an event ID of the form $opaque:server_name`,
		},
		{
			name: "not an object", version: "10", base: `["event"]`,
			want: "invalid event format: event is a JSON array, not an object",
		},
		{
			name: "type missing", version: "10", edits: []edit{del("type")},
			want: "invalid event format: type: missing",
		},
		{
			name: "type number", version: "10", edits: []edit{set("type", "7")},
			want: "invalid event format: type: must be a string, got a JSON number",
		},
		{
			name: "type too long", version: "10", edits: []edit{set("type", repeatJSON("t", 256))},
			want: "invalid event format: type: is 256 bytes, more than the limit of 255",
		},
		{
			name: "type at limit", version: "10", edits: []edit{set("type", repeatJSON("t", 255))},
		},
		{
			name: "room_id missing", version: "11", edits: []edit{del("room_id")},
			want: "invalid event format: room_id: missing",
		},
		{
			name: "room_id without server", version: "11", edits: []edit{set("room_id", `"!abc"`)},
			want: `invalid event format: room_id: "!abc" is not a room ID of the form !opaque:server_name`,
		},
		{
			name: "v12 room_id of old form", version: "12", edits: []edit{set("room_id", `"!r:hs1"`)},
			want: `invalid event format: room_id: "!r:hs1" is not a room ID of room version 12: '!' and 43 characters of URL-safe base64`,
		},
		{
			name: "v12 create with room_id", version: "12",
			base: eventJSON(mustVersion(t, "12"), "m.room.create", `{"room_version":"12"}`, ""),
			want: "invalid event format: room_id: must be absent from m.room.create in room version 12, where the room ID is derived from the create event",
		},
		{
			name: "v12 create without room_id", version: "12",
			base:  eventJSON(mustVersion(t, "12"), "m.room.create", `{"room_version":"12"}`, ""),
			edits: []edit{del("room_id")},
		},
		{
			name: "v11 create without room_id", version: "11",
			base:  eventJSON(mustVersion(t, "11"), "m.room.create", `{"room_version":"11"}`, ""),
			edits: []edit{del("room_id")},
			want:  "invalid event format: room_id: missing",
		},
		{
			name: "sender number", version: "10", edits: []edit{set("sender", "1")},
			want: "invalid event format: sender: must be a string, got a JSON number",
		},
		{
			name: "sender without sigil", version: "10", edits: []edit{set("sender", `"alice:hs1"`)},
			want: `invalid event format: sender: "alice:hs1" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender without server", version: "10", edits: []edit{set("sender", `"@alice"`)},
			want: `invalid event format: sender: "@alice" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender with empty localpart", version: "10", edits: []edit{set("sender", `"@:hs1"`)},
			want: `invalid event format: sender: "@:hs1" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender with space", version: "10", edits: []edit{set("sender", `"@al ice:hs1"`)},
			want: `invalid event format: sender: "@al ice:hs1" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender with underscore in server", version: "10", edits: []edit{set("sender", `"@alice:hs_1"`)},
			want: `invalid event format: sender: "@alice:hs_1" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender server port 0", version: "10", edits: []edit{set("sender", `"@alice:hs1:0"`)},
			want: `invalid event format: sender: "@alice:hs1:0" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender server port too large", version: "10", edits: []edit{set("sender", `"@alice:hs1:99999"`)},
			want: `invalid event format: sender: "@alice:hs1:99999" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender server port leading zero", version: "10", edits: []edit{set("sender", `"@alice:hs1:08448"`)},
			want: `invalid event format: sender: "@alice:hs1:08448" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender server trailing dot", version: "10", edits: []edit{set("sender", `"@alice:hs1."`)},
			want: `invalid event format: sender: "@alice:hs1." is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender server empty label", version: "10", edits: []edit{set("sender", `"@alice:hs..1"`)},
			want: `invalid event format: sender: "@alice:hs..1" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender server numeric last label", version: "10", edits: []edit{set("sender", `"@alice:1.2.3"`)},
			want: `invalid event format: sender: "@alice:1.2.3" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "sender IPv6 server empty port", version: "10", edits: []edit{set("sender", `"@alice:[::1]:"`)},
			want: `invalid event format: sender: "@alice:[::1]:" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "v1 event_id server port 0", version: "1", edits: []edit{set("event_id", `"$abc:hs1:0"`)},
			want: `invalid event format: event_id: "$abc:hs1:0" is not an event ID of the form $opaque:server_name`,
		},
		{
			name: "room_id server trailing dot", version: "11", edits: []edit{set("room_id", `"!r:hs1."`)},
			want: `invalid event format: room_id: "!r:hs1." is not a room ID of the form !opaque:server_name`,
		},
		{
			name: "sender with historical localpart and IPv6 server", version: "10",
			edits: []edit{set("sender", `"@Alice=[x]:[::1]:8448"`)},
		},
		{
			name: "state_key number", version: "10", edits: []edit{set("state_key", "0")},
			want: "invalid event format: state_key: must be a string, got a JSON number",
		},
		{
			name: "state_key too long", version: "10", edits: []edit{set("state_key", repeatJSON("k", 256))},
			want: "invalid event format: state_key: is 256 bytes, more than the limit of 255",
		},
		{
			name: "origin_server_ts string", version: "10", edits: []edit{set("origin_server_ts", `"1700000000000"`)},
			want: "invalid event format: origin_server_ts: must be an integer, got a JSON string",
		},
		{
			name: "depth missing", version: "10", edits: []edit{del("depth")},
			want: "invalid event format: depth: missing",
		},
		{
			name: "depth fraction v5", version: "5", edits: []edit{set("depth", "1.5")},
			want: "invalid event format: depth: 1.5 is not an integer",
		},
		{
			name: "depth negative", version: "5", edits: []edit{set("depth", "-1")},
			want: "invalid event format: depth: -1 is out of range 0 to 9223372036854775807 of room version 5",
		},
		{
			name: "depth 2^53 v5", version: "5", edits: []edit{set("depth", "9007199254740992")},
		},
		{
			name: "depth 2^53 v6", version: "6", edits: []edit{set("depth", "9007199254740992")},
			want: "invalid event format: depth: 9007199254740992 is out of range 0 to 9007199254740991 of room version 6",
		},
		{
			name: "depth 2^53-1 v6", version: "6", edits: []edit{set("depth", "9007199254740991")},
		},
		{
			name: "depth 2^63-1 v5", version: "5", edits: []edit{set("depth", "9223372036854775807")},
		},
		{
			name: "depth 2^63 v5", version: "5", edits: []edit{set("depth", "9223372036854775808")},
			want: "invalid event format: depth: 9223372036854775808 is out of the range of a 64-bit integer",
		},
		{
			name: "content string", version: "10", edits: []edit{set("content", `"hello"`)},
			want: "invalid event format: content: must be an object, got a JSON string",
		},
		{
			name: "hashes missing", version: "10", edits: []edit{del("hashes")},
			want: "invalid event format: hashes: missing",
		},
		{
			name: "hashes without sha256", version: "10", edits: []edit{set("hashes", `{"sha512":"x"}`)},
			want: "invalid event format: hashes.sha256: missing",
		},
		{
			name: "hashes sha256 number", version: "10", edits: []edit{set("hashes", `{"sha256":5}`)},
			want: "invalid event format: hashes.sha256: must be a string, got a JSON number",
		},
		{
			name: "signatures missing", version: "10", edits: []edit{del("signatures")},
			want: "invalid event format: signatures: missing",
		},
		{
			name: "signatures of server not an object", version: "10", edits: []edit{set("signatures", `{"hs1":"sig"}`)},
			want: "invalid event format: signatures.hs1: must be an object, got a JSON string",
		},
		{
			name: "signature not a string", version: "10", edits: []edit{set("signatures", `{"hs1":{"ed25519:a":5}}`)},
			want: "invalid event format: signatures.hs1.ed25519:a: must be a string, got a JSON number",
		},
		{
			name: "prev_events missing", version: "10", edits: []edit{del("prev_events")},
			want: "invalid event format: prev_events: missing",
		},
		{
			name: "prev_events object", version: "10", edits: []edit{set("prev_events", `{}`)},
			want: "invalid event format: prev_events: must be an array, got a JSON object",
		},
		{
			name: "prev_events entry number", version: "10", edits: []edit{set("prev_events", `[1]`)},
			want: "invalid event format: prev_events[0]: must be an event ID string, got a JSON number",
		},
		{
			name: "21 prev_events", version: "10", edits: []edit{set("prev_events", refsJSON(mustVersion(t, "10"), "p", 21))},
			want: "invalid event format: prev_events: has 21 entries, more than the limit of 20",
		},
		{
			name: "20 prev_events", version: "10", edits: []edit{set("prev_events", refsJSON(mustVersion(t, "10"), "p", 20))},
		},
		{
			name: "21 prev_events relaxed", version: "10", opts: ParseOptions{RelaxEdgeLimits: true},
			edits: []edit{set("prev_events", refsJSON(mustVersion(t, "10"), "p", 21))},
		},
		{
			name: "11 auth_events", version: "2", edits: []edit{set("auth_events", refsJSON(mustVersion(t, "2"), "a", 11))},
			want: "invalid event format: auth_events: has 11 entries, more than the limit of 10",
		},
		{
			name: "v1 prev_events strings", version: "1", edits: []edit{set("prev_events", `["$p:hs1"]`)},
			want: "invalid event format: prev_events[0]: must be an [event_id, hashes] pair in room version 1",
		},
		{
			name: "v1 prev_events hash not object", version: "1", edits: []edit{set("prev_events", `[["$p:hs1","x"]]`)},
			want: "invalid event format: prev_events[0][1]: must be an object, got a JSON string",
		},
		{
			name: "v3 prev_events pairs", version: "3", edits: []edit{set("prev_events", `[["$p:hs1",{}]]`)},
			want: "invalid event format: prev_events[0]: must be an event ID string, got a JSON array",
		},
		{
			name: "v4 prev_events standard alphabet", version: "4", edits: []edit{set("prev_events", `["`+std+`"]`)},
			want: `invalid event format: prev_events[0]: "` + std + `" is not an event ID of room version 4`,
		},
		{
			name: "v3 prev_events standard alphabet", version: "3", edits: []edit{set("prev_events", `["`+std+`"]`)},
		},
		{
			name: "unsigned string", version: "10", edits: []edit{set("unsigned", `"x"`)},
			want: "invalid event format: unsigned: must be an object, got a JSON string",
		},
		{
			name: "non-canonical fraction v6", version: "6", edits: []edit{setContent("n", "1.5")},
			want: "invalid event format: content.n: number 1.5 is not a canonical JSON integer (no fraction, exponent or -0, at most 2^53-1 in magnitude), which room version 6 requires",
		},
		{
			name: "non-canonical exponent v6", version: "6", edits: []edit{setContent("n", "[1,1e3]")},
			want: "invalid event format: content.n[1]: number 1e3 is not a canonical JSON integer (no fraction, exponent or -0, at most 2^53-1 in magnitude), which room version 6 requires",
		},
		{
			name: "non-canonical number in unsigned v12", version: "12", edits: []edit{set("unsigned", `{"age":-0}`)},
			want: "invalid event format: unsigned.age: number -0 is not a canonical JSON integer (no fraction, exponent or -0, at most 2^53-1 in magnitude), which room version 12 requires",
		},
		{
			name: "origin_server_ts beyond 2^53 v6", version: "6", edits: []edit{set("origin_server_ts", "9007199254740993")},
			want: "invalid event format: origin_server_ts: number 9007199254740993 is not a canonical JSON integer (no fraction, exponent or -0, at most 2^53-1 in magnitude), which room version 6 requires",
		},
		{name: "fraction accepted v5", version: "5", edits: []edit{setContent("n", "1.5")}},
		{name: "exponent accepted v5", version: "5", edits: []edit{setContent("n", "1e3")}},
		{
			name: "member without membership", version: "10",
			base: eventJSON(mustVersion(t, "10"), "m.room.member", `{"displayname":"A"}`, "@alice:hs1"),
			want: "invalid event format: content.membership: missing",
		},
		{
			name: "v8 join with invalid authoriser", version: "8",
			base: eventJSON(mustVersion(t, "8"), "m.room.member", `{"membership":"join","join_authorised_via_users_server":"nope"}`, "@alice:hs1"),
			want: `invalid event format: content.join_authorised_via_users_server: "nope" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "v8 join with authoriser server trailing dot", version: "8",
			base: eventJSON(mustVersion(t, "8"), "m.room.member", `{"membership":"join","join_authorised_via_users_server":"@bob:hs2."}`, "@alice:hs1"),
			want: `invalid event format: content.join_authorised_via_users_server: "@bob:hs2." is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "v8 join with authoriser over 255 bytes", version: "8",
			base: eventJSON(mustVersion(t, "8"), "m.room.member",
				`{"membership":"join","join_authorised_via_users_server":"@`+strings.Repeat("b", 251)+`:hs2"}`, "@alice:hs1"),
			want: `invalid event format: content.join_authorised_via_users_server: "@` + strings.Repeat("b", 251) +
				`:hs2" is not a user ID of the form @localpart:server_name`,
		},
		{
			name: "v7 join with invalid authoriser", version: "7",
			base: eventJSON(mustVersion(t, "7"), "m.room.member", `{"membership":"join","join_authorised_via_users_server":"nope"}`, "@alice:hs1"),
		},
		{
			name: "v11 redaction with content.redacts number", version: "11",
			base: eventJSON(mustVersion(t, "11"), "m.room.redaction", `{"redacts":5}`),
			want: "invalid event format: content.redacts: must be an event ID string, got a JSON number",
		},
		{
			name: "v10 redaction with redacts number", version: "10",
			base:  eventJSON(mustVersion(t, "10"), "m.room.redaction", `{}`),
			edits: []edit{set("redacts", "5")},
			want:  "invalid event format: redacts: must be an event ID string, got a JSON number",
		},
	}
	signer := newSigner("hs1", "ed25519:a", "hs1")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rv := mustVersion(t, tc.version)
			base := tc.base
			if base == "" {
				base = messageJSON(rv)
			}
			v := mustParse(t, base)
			if v.Kind() == canonicaljson.Object {
				v = mustSign(t, v, rv, signer)
			}
			for _, e := range tc.edits {
				v = e(t, v)
			}
			_, err := ParsePDUWith(v, rv, tc.opts)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ParsePDU: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePDU accepted the event, want error %q", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error:\n got  %s\n want %s", got, tc.want)
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error %v does not wrap ErrFormat", err)
			}
		})
	}
}

func TestParsePDUSizeLimit(t *testing.T) {
	cases := []struct {
		name  string
		size  int
		extra int
		want  string
	}{
		{name: "at limit", size: MaxEventSize},
		{name: "at limit with large unsigned", size: MaxEventSize, extra: 10000},
		{
			name: "one byte over", size: MaxEventSize + 1,
			want: "invalid event format: event is 65537 bytes as canonical JSON (without unsigned), more than the limit of 65536",
		},
	}
	for _, version := range []string{"1", "5", "10", "12"} {
		for _, tc := range cases {
			t.Run("v"+version+"/"+tc.name, func(t *testing.T) {
				rv := mustVersion(t, version)
				_, err := ParsePDU(eventOfSize(t, rv, tc.size, tc.extra), rv)
				if tc.want == "" {
					if err != nil {
						t.Fatalf("ParsePDU: %v", err)
					}
					return
				}
				if err == nil || err.Error() != tc.want {
					t.Fatalf("error = %v, want %s", err, tc.want)
				}
			})
		}
	}
}

func TestParsePDUFields(t *testing.T) {
	rv := mustVersion(t, "1")
	signer := newSigner("hs1", "ed25519:a", "hs1")
	v := mustSign(t, mustParse(t, eventJSON(rv, "m.room.topic", `{"topic":"t"}`, "")), rv, signer)
	pdu := mustParsePDU(t, v, rv)
	checks := []struct {
		field     string
		got, want any
	}{
		{"EventID", pdu.EventID, "$e1:hs1"},
		{"RoomID", pdu.RoomID, "!r:hs1"},
		{"Type", pdu.Type, "m.room.topic"},
		{"IsState", pdu.IsState(), true},
		{"StateKey", *pdu.StateKey, ""},
		{"Sender", pdu.Sender, "@alice:hs1"},
		{"SenderServer", pdu.SenderServer, "hs1"},
		{"OriginServerTS", pdu.OriginServerTS, int64(testTS)},
		{"Depth", pdu.Depth, int64(5)},
		{"PrevEvents", strings.Join(pdu.PrevEvents, ","), "$prev0:hs1"},
		{"AuthEvents", strings.Join(pdu.AuthEvents, ","), "$auth0:hs1,$auth1:hs1,$auth2:hs1"},
		{"Content", string(canonicaljson.Encode(pdu.Content)), `{"topic":"t"}`},
		{"Redacts", pdu.Redacts, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}
}

func TestParsePDURedacts(t *testing.T) {
	cases := []struct {
		version string
		edits   []edit
		want    string
	}{
		{"10", []edit{set("redacts", `"$top"`), setContent("redacts", `"$content"`)}, "$top"},
		{"11", []edit{set("redacts", `"$top"`), setContent("redacts", `"$content"`)}, "$content"},
		{"11", []edit{set("redacts", `"$top"`)}, ""},
	}
	signer := newSigner("hs1", "ed25519:a", "hs1")
	for _, tc := range cases {
		rv := mustVersion(t, tc.version)
		v := mustSign(t, mustParse(t, eventJSON(rv, "m.room.redaction", `{"reason":"spam"}`)), rv, signer)
		for _, e := range tc.edits {
			v = e(t, v)
		}
		pdu := mustParsePDU(t, v, rv)
		if pdu.Redacts != tc.want {
			t.Errorf("v%s: Redacts = %q, want %q", tc.version, pdu.Redacts, tc.want)
		}
	}
}

func TestLookupRoomVersion(t *testing.T) {
	for n := 1; n <= 12; n++ {
		id := strconv.Itoa(n)
		rv, ok := LookupRoomVersion(id)
		if !ok || rv.ID != id {
			t.Errorf("LookupRoomVersion(%q) = %v, %v", id, rv, ok)
		}
	}
	for _, id := range []string{"", "0", "13", "org.matrix.msc4014", "v1", "1 "} {
		if _, ok := LookupRoomVersion(id); ok {
			t.Errorf("LookupRoomVersion(%q) reported a known version", id)
		}
		_, err := RoomVersionByID(id)
		if !errors.Is(err, ErrUnknownRoomVersion) {
			t.Errorf("RoomVersionByID(%q) error = %v, want ErrUnknownRoomVersion", id, err)
		}
	}
	_, err := RoomVersionByID("13")
	if want := `unknown room version "13": supported versions are 1 to 12`; err == nil || err.Error() != want {
		t.Errorf("RoomVersionByID(13) error = %v, want %s", err, want)
	}
}

func TestRoomVersionTable(t *testing.T) {
	type row struct {
		idFormat        EventIDFormat
		pairs           bool
		redaction       RedactionRules
		strict, keyVal  bool
		redactsContent  bool
		restricted      bool
		roomIDFromEvent bool
	}
	want := map[string]row{
		"1":  {EventIDServerChosen, true, RedactionV1, false, false, false, false, false},
		"2":  {EventIDServerChosen, true, RedactionV1, false, false, false, false, false},
		"3":  {EventIDStdBase64, false, RedactionV1, false, false, false, false, false},
		"4":  {EventIDURLSafeBase64, false, RedactionV1, false, false, false, false, false},
		"5":  {EventIDURLSafeBase64, false, RedactionV1, false, true, false, false, false},
		"6":  {EventIDURLSafeBase64, false, RedactionV6, true, true, false, false, false},
		"7":  {EventIDURLSafeBase64, false, RedactionV6, true, true, false, false, false},
		"8":  {EventIDURLSafeBase64, false, RedactionV8, true, true, false, true, false},
		"9":  {EventIDURLSafeBase64, false, RedactionV9, true, true, false, true, false},
		"10": {EventIDURLSafeBase64, false, RedactionV9, true, true, false, true, false},
		"11": {EventIDURLSafeBase64, false, RedactionV11, true, true, true, true, false},
		"12": {EventIDURLSafeBase64, false, RedactionV11, true, true, true, true, true},
	}
	for id, w := range want {
		rv := mustVersion(t, id)
		got := row{rv.EventIDFormat, rv.EventRefPairs, rv.Redaction, rv.StrictCanonicalJSON,
			rv.EnforceKeyValidity, rv.RedactsInContent, rv.RestrictedJoins, rv.RoomIDFromCreate}
		if got != w {
			t.Errorf("room version %s = %+v, want %+v", id, got, w)
		}
	}
}
