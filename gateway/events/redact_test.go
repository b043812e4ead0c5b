package events

import (
	"fmt"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// generationOf maps each room version to the representative version of its
// redaction algorithm generation.
var generationOf = map[string]string{
	"1": "1", "2": "1", "3": "1", "4": "1", "5": "1",
	"6": "6", "7": "6",
	"8": "8",
	"9": "9", "10": "9",
	"11": "11", "12": "11",
}

// Redaction test events share these top-level members around their type and
// content. redactedV1 and redactedV11 are their redacted forms.
const (
	redactionInput = `{"type":%q,"sender":"@a:hs","origin":"hs","origin_server_ts":5,` +
		`"unsigned":{"age":1},"hashes":{"sha256":"h"},"signatures":{"hs":{"ed25519:1":"s"}},"content":%s}`
	redactedV1 = `{"content":%s,"hashes":{"sha256":"h"},"origin":"hs","origin_server_ts":5,` +
		`"sender":"@a:hs","signatures":{"hs":{"ed25519:1":"s"}},"type":%q}`
	redactedV11 = `{"content":%s,"hashes":{"sha256":"h"},"origin_server_ts":5,` +
		`"sender":"@a:hs","signatures":{"hs":{"ed25519:1":"s"}},"type":%q}`
)

func TestRedactContentKeepLists(t *testing.T) {
	const (
		member = `{"membership":"join","displayname":"A","avatar_url":"mxc://x/y",` +
			`"join_authorised_via_users_server":"@r:res",` +
			`"third_party_invite":{"display_name":"bob","signed":{"mxid":"@a:hs","token":"t","signatures":{"id":{"ed25519:0":"x"}}}}}`
		powerLevels = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,` +
			`"notifications":{"room":50},"redact":50,"state_default":50,"users":{"@a:hs":100},"users_default":0}`
		powerLevelsV1 = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"kick":50,` +
			`"redact":50,"state_default":50,"users":{"@a:hs":100},"users_default":0}`
		powerLevelsV11 = `{"ban":50,"events":{"m.room.name":50},"events_default":0,"invite":0,"kick":50,` +
			`"redact":50,"state_default":50,"users":{"@a:hs":100},"users_default":0}`
		joinRulesAllow = `{"allow":[{"room_id":"!s:hs","type":"m.room_membership"}],"join_rule":"restricted"}`
	)
	cases := []struct {
		name    string
		typ     string
		content string
		want    map[string]string // generation -> redacted content
	}{
		{
			name: "member", typ: "m.room.member", content: member,
			want: map[string]string{
				"1": `{"membership":"join"}`,
				"6": `{"membership":"join"}`,
				"8": `{"membership":"join"}`,
				"9": `{"join_authorised_via_users_server":"@r:res","membership":"join"}`,
				"11": `{"join_authorised_via_users_server":"@r:res","membership":"join",` +
					`"third_party_invite":{"signed":{"mxid":"@a:hs","signatures":{"id":{"ed25519:0":"x"}},"token":"t"}}}`,
			},
		},
		{
			name: "member third_party_invite without signed", typ: "m.room.member",
			content: `{"membership":"invite","third_party_invite":{"display_name":"bob"}}`,
			want: map[string]string{
				"1": `{"membership":"invite"}`, "6": `{"membership":"invite"}`, "8": `{"membership":"invite"}`,
				"9": `{"membership":"invite"}`, "11": `{"membership":"invite","third_party_invite":{}}`,
			},
		},
		{
			name: "member third_party_invite not an object", typ: "m.room.member",
			content: `{"membership":"invite","third_party_invite":"x"}`,
			want: map[string]string{
				"1": `{"membership":"invite"}`, "6": `{"membership":"invite"}`, "8": `{"membership":"invite"}`,
				"9": `{"membership":"invite"}`, "11": `{"membership":"invite"}`,
			},
		},
		{
			name: "create", typ: "m.room.create",
			content: `{"creator":"@a:hs","room_version":"1","m.federate":false,"predecessor":{"room_id":"!o:hs"}}`,
			want: map[string]string{
				"1": `{"creator":"@a:hs"}`, "6": `{"creator":"@a:hs"}`, "8": `{"creator":"@a:hs"}`,
				"9":  `{"creator":"@a:hs"}`,
				"11": `{"creator":"@a:hs","m.federate":false,"predecessor":{"room_id":"!o:hs"},"room_version":"1"}`,
			},
		},
		{
			name: "join_rules", typ: "m.room.join_rules",
			content: `{"join_rule":"restricted","allow":[{"type":"m.room_membership","room_id":"!s:hs"}],"extra":1}`,
			want: map[string]string{
				"1": `{"join_rule":"restricted"}`, "6": `{"join_rule":"restricted"}`,
				"8": joinRulesAllow, "9": joinRulesAllow, "11": joinRulesAllow,
			},
		},
		{
			name: "power_levels", typ: "m.room.power_levels", content: powerLevels,
			want: map[string]string{
				"1": powerLevelsV1, "6": powerLevelsV1, "8": powerLevelsV1, "9": powerLevelsV1,
				"11": powerLevelsV11,
			},
		},
		{
			name: "aliases", typ: "m.room.aliases", content: `{"aliases":["#a:hs"],"extra":1}`,
			want: map[string]string{"1": `{"aliases":["#a:hs"]}`, "6": `{}`, "8": `{}`, "9": `{}`, "11": `{}`},
		},
		{
			name: "history_visibility", typ: "m.room.history_visibility",
			content: `{"history_visibility":"shared","extra":1}`,
			want: map[string]string{
				"1": `{"history_visibility":"shared"}`, "6": `{"history_visibility":"shared"}`,
				"8": `{"history_visibility":"shared"}`, "9": `{"history_visibility":"shared"}`,
				"11": `{"history_visibility":"shared"}`,
			},
		},
		{
			name: "redaction", typ: "m.room.redaction", content: `{"redacts":"$t","reason":"spam"}`,
			want: map[string]string{"1": `{}`, "6": `{}`, "8": `{}`, "9": `{}`, "11": `{"redacts":"$t"}`},
		},
		{
			name: "message", typ: "m.room.message", content: `{"body":"hi","msgtype":"m.text"}`,
			want: map[string]string{"1": `{}`, "6": `{}`, "8": `{}`, "9": `{}`, "11": `{}`},
		},
		{
			name: "content not an object", typ: "m.room.message", content: `"text"`,
			want: map[string]string{"1": `{}`, "6": `{}`, "8": `{}`, "9": `{}`, "11": `{}`},
		},
	}
	for _, tc := range cases {
		for version := 1; version <= 12; version++ {
			id := fmt.Sprint(version)
			t.Run(fmt.Sprintf("%s/v%s", tc.name, id), func(t *testing.T) {
				rv := mustVersion(t, id)
				in := mustParse(t, fmt.Sprintf(redactionInput, tc.typ, tc.content))
				template := redactedV1
				if rv.Redaction >= RedactionV11 {
					template = redactedV11
				}
				want := fmt.Sprintf(template, tc.want[generationOf[id]], tc.typ)
				checkRedaction(t, in, rv, want)
			})
		}
	}
}

func TestRedactTopLevelKeepList(t *testing.T) {
	const input = `{"auth_events":["$a"],"content":{"redacts":"$t","reason":"r"},"depth":4,"event_id":"$e:hs",` +
		`"hashes":{"sha256":"h"},"membership":"join","origin":"hs","origin_server_ts":5,"prev_events":["$p"],` +
		`"prev_state":[],"redacts":"$t","room_id":"!r:hs","sender":"@a:hs","signatures":{"hs":{"ed25519:1":"s"}},` +
		`"state_key":"","type":"m.room.redaction","unsigned":{"age":1},"custom":{"x":1},"age_ts":3,"outlier":true}`
	const (
		wantV1 = `{"auth_events":["$a"],"content":{},"depth":4,"event_id":"$e:hs","hashes":{"sha256":"h"},` +
			`"membership":"join","origin":"hs","origin_server_ts":5,"prev_events":["$p"],"prev_state":[],` +
			`"room_id":"!r:hs","sender":"@a:hs","signatures":{"hs":{"ed25519:1":"s"}},"state_key":"","type":"m.room.redaction"}`
		wantV11 = `{"auth_events":["$a"],"content":{"redacts":"$t"},"depth":4,"event_id":"$e:hs","hashes":{"sha256":"h"},` +
			`"origin_server_ts":5,"prev_events":["$p"],"room_id":"!r:hs","sender":"@a:hs",` +
			`"signatures":{"hs":{"ed25519:1":"s"}},"state_key":"","type":"m.room.redaction"}`
	)
	for version := 1; version <= 12; version++ {
		id := fmt.Sprint(version)
		t.Run("v"+id, func(t *testing.T) {
			rv := mustVersion(t, id)
			want := wantV1
			if version >= 11 {
				want = wantV11
			}
			checkRedaction(t, mustParse(t, input), rv, want)
		})
	}
}

// checkRedaction compares Redact with want, and checks that the direct
// encoder used for signatures writes the same bytes.
func checkRedaction(t *testing.T, in canonicaljson.Value, rv *RoomVersion, want string) {
	t.Helper()
	redacted := Redact(in, rv)
	if got := string(canonicaljson.Encode(redacted)); got != want {
		t.Errorf("Redact:\n got  %s\n want %s", got, want)
	}
	if got := string(appendRedacted(nil, in, rv, true)); got != want {
		t.Errorf("appendRedacted with signatures:\n got  %s\n want %s", got, want)
	}
	wantUnsigned := string(canonicaljson.Encode(redacted.Without("signatures")))
	if got := string(appendRedacted(nil, in, rv, false)); got != wantUnsigned {
		t.Errorf("appendRedacted without signatures:\n got  %s\n want %s", got, wantUnsigned)
	}
}
