package routes

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

func TestMatchEveryEndpoint(t *testing.T) {
	tests := []struct {
		method    string
		target    string
		wantID    string
		wantPath  string // Route.Path, which distinguishes routes with one ID
		wantParam map[string]string
		wantQuery string
	}{
		{"GET", "/.well-known/matrix/server", "well_known", "/.well-known/matrix/server", nil, ""},
		{"GET", "/_matrix/federation/v1/version", "version", "/_matrix/federation/v1/version", nil, ""},
		{"GET", "/_matrix/key/v2/server", "key_server", "/_matrix/key/v2/server", nil, ""},
		{"GET", "/_matrix/key/v2/server/ed25519%3Aabc", "key_server", "/_matrix/key/v2/server/{key_id}",
			map[string]string{"key_id": "ed25519:abc"}, ""},
		{"GET", "/_matrix/key/v2/query/example.org:8448?minimum_valid_until_ts=1234", "key_query",
			"/_matrix/key/v2/query/{server_name}", map[string]string{"server_name": "example.org:8448"},
			"minimum_valid_until_ts=1234"},
		{"GET", "/_matrix/key/v2/query/%5B%3A%3A1%5D/ed25519:a", "key_query", "/_matrix/key/v2/query/{server_name}/{key_id}",
			map[string]string{"server_name": "[::1]", "key_id": "ed25519:a"}, ""},
		{"POST", "/_matrix/key/v2/query", "key_query_batch", "/_matrix/key/v2/query", nil, ""},
		{"GET", "/_matrix/federation/v1/openid/userinfo?access_token=abc+def", "openid_userinfo",
			"/_matrix/federation/v1/openid/userinfo", nil, "access_token=abc+def"},
		{"PUT", "/_matrix/federation/v1/3pid/onbind", "3pid_onbind", "/_matrix/federation/v1/3pid/onbind", nil, ""},

		{"PUT", "/_matrix/federation/v1/send/1700000000000", "send", "/_matrix/federation/v1/send/{txn_id}",
			map[string]string{"txn_id": "1700000000000"}, ""},
		{"GET", "/_matrix/federation/v1/event_auth/!room:example.org/$ev+ent%2Fid", "event_auth",
			"/_matrix/federation/v1/event_auth/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev+ent/id"}, ""},
		{"GET", "/_matrix/federation/v1/backfill/%21room%3Aexample.org?v=%24a&v=%24b&limit=10", "backfill",
			"/_matrix/federation/v1/backfill/{room_id}", map[string]string{"room_id": "!room:example.org"},
			"v=%24a&v=%24b&limit=10"},
		{"POST", "/_matrix/federation/v1/get_missing_events/!room:example.org", "get_missing_events",
			"/_matrix/federation/v1/get_missing_events/{room_id}", map[string]string{"room_id": "!room:example.org"}, ""},
		{"GET", "/_matrix/federation/v1/state/!room:example.org?event_id=%24abc", "state",
			"/_matrix/federation/v1/state/{room_id}", map[string]string{"room_id": "!room:example.org"}, "event_id=%24abc"},
		{"GET", "/_matrix/federation/v1/state_ids/!room:example.org?event_id=$abc", "state_ids",
			"/_matrix/federation/v1/state_ids/{room_id}", map[string]string{"room_id": "!room:example.org"}, "event_id=$abc"},
		{"GET", "/_matrix/federation/v1/event/%2470O%2FoKlXzFbkfu0KE88USi98DjSWrOELrPj+8tisl8I", "event",
			"/_matrix/federation/v1/event/{event_id}",
			map[string]string{"event_id": "$70O/oKlXzFbkfu0KE88USi98DjSWrOELrPj+8tisl8I"}, ""},
		{"GET", "/_matrix/federation/v1/event/$ä", "event", "/_matrix/federation/v1/event/{event_id}",
			map[string]string{"event_id": "$ä"}, ""},
		{"GET", "/_matrix/federation/v1/timestamp_to_event/!room:example.org?ts=1&dir=b", "timestamp_to_event",
			"/_matrix/federation/v1/timestamp_to_event/{room_id}", map[string]string{"room_id": "!room:example.org"}, "ts=1&dir=b"},

		{"GET", "/_matrix/federation/v1/make_join/!room:example.org/@alice:origin.example?ver=10&ver=11", "make_join",
			"/_matrix/federation/v1/make_join/{room_id}/{user_id}",
			map[string]string{"room_id": "!room:example.org", "user_id": "@alice:origin.example"}, "ver=10&ver=11"},
		{"PUT", "/_matrix/federation/v1/send_join/!room:example.org/$ev", "send_join_v1",
			"/_matrix/federation/v1/send_join/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev"}, ""},
		{"PUT", "/_matrix/federation/v2/send_join/!room:example.org/$ev?omit_members=true", "send_join_v2",
			"/_matrix/federation/v2/send_join/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev"}, "omit_members=true"},
		{"GET", "/_matrix/federation/v1/make_leave/!room:example.org/%40alice%3Aorigin.example", "make_leave",
			"/_matrix/federation/v1/make_leave/{room_id}/{user_id}",
			map[string]string{"room_id": "!room:example.org", "user_id": "@alice:origin.example"}, ""},
		{"PUT", "/_matrix/federation/v1/send_leave/!room:example.org/$ev", "send_leave_v1",
			"/_matrix/federation/v1/send_leave/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev"}, ""},
		{"PUT", "/_matrix/federation/v2/send_leave/!room:example.org/$ev", "send_leave_v2",
			"/_matrix/federation/v2/send_leave/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev"}, ""},
		{"GET", "/_matrix/federation/v1/make_knock/!room:example.org/@alice:origin.example?ver=12", "make_knock",
			"/_matrix/federation/v1/make_knock/{room_id}/{user_id}",
			map[string]string{"room_id": "!room:example.org", "user_id": "@alice:origin.example"}, "ver=12"},
		{"PUT", "/_matrix/federation/v1/send_knock/!room:example.org/$ev", "send_knock",
			"/_matrix/federation/v1/send_knock/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev"}, ""},
		{"PUT", "/_matrix/federation/v1/invite/!room:example.org/$ev:example.org", "invite_v1",
			"/_matrix/federation/v1/invite/{room_id}/{event_id}",
			map[string]string{"room_id": "!room:example.org", "event_id": "$ev:example.org"}, ""},
		{"PUT", "/_matrix/federation/v2/invite/!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM/$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM",
			"invite_v2", "/_matrix/federation/v2/invite/{room_id}/{event_id}",
			map[string]string{
				"room_id":  "!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM",
				"event_id": "$P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM",
			}, ""},
		{"PUT", "/_matrix/federation/v1/exchange_third_party_invite/!room:example.org", "exchange_third_party_invite",
			"/_matrix/federation/v1/exchange_third_party_invite/{room_id}", map[string]string{"room_id": "!room:example.org"}, ""},

		{"GET", "/_matrix/federation/v1/query/directory?room_alias=%23room%3Aexample.org", "query_directory",
			"/_matrix/federation/v1/query/directory", nil, "room_alias=%23room%3Aexample.org"},
		{"GET", "/_matrix/federation/v1/query/profile?user_id=@alice:example.org&field=displayname", "query_profile",
			"/_matrix/federation/v1/query/profile", nil, "user_id=@alice:example.org&field=displayname"},
		{"GET", "/_matrix/federation/v1/query/com.example.custom?x=1", "query", "/_matrix/federation/v1/query/{query_type}",
			map[string]string{"query_type": "com.example.custom"}, "x=1"},
		{"GET", "/_matrix/federation/v1/query/m%2Eprofile%2Fx", "query", "/_matrix/federation/v1/query/{query_type}",
			map[string]string{"query_type": "m.profile/x"}, ""},
		{"GET", "/_matrix/federation/v1/user/devices/@alice:example.org", "user_devices",
			"/_matrix/federation/v1/user/devices/{user_id}", map[string]string{"user_id": "@alice:example.org"}, ""},
		{"POST", "/_matrix/federation/v1/user/keys/query", "user_keys_query", "/_matrix/federation/v1/user/keys/query", nil, ""},
		{"POST", "/_matrix/federation/v1/user/keys/claim", "user_keys_claim", "/_matrix/federation/v1/user/keys/claim", nil, ""},
		{"GET", "/_matrix/federation/v1/publicRooms?limit=10&since=abc", "public_rooms", "/_matrix/federation/v1/publicRooms",
			nil, "limit=10&since=abc"},
		{"POST", "/_matrix/federation/v1/publicRooms", "public_rooms_search", "/_matrix/federation/v1/publicRooms", nil, ""},
		{"GET", "/_matrix/federation/v1/hierarchy/!room:example.org?suggested_only=true", "hierarchy",
			"/_matrix/federation/v1/hierarchy/{room_id}", map[string]string{"room_id": "!room:example.org"}, "suggested_only=true"},

		{"GET", "/_matrix/federation/v1/media/download/AbCdEf123?timeout_ms=20000", "media_download",
			"/_matrix/federation/v1/media/download/{media_id}", map[string]string{"media_id": "AbCdEf123"}, "timeout_ms=20000"},
		{"GET", "/_matrix/federation/v1/media/thumbnail/AbCdEf123?width=32&height=32&method=crop", "media_thumbnail",
			"/_matrix/federation/v1/media/thumbnail/{media_id}", map[string]string{"media_id": "AbCdEf123"},
			"width=32&height=32&method=crop"},
		{"GET", "/_matrix/media/v3/download/example.org/AbCdEf123?allow_remote=false", "legacy_media_download",
			"/_matrix/media/v3/download/{server_name}/{media_id}",
			map[string]string{"server_name": "example.org", "media_id": "AbCdEf123"}, "allow_remote=false"},
		{"GET", "/_matrix/media/v3/download/example.org/AbCdEf123/cat%20picture+1.png", "legacy_media_download",
			"/_matrix/media/v3/download/{server_name}/{media_id}/{file_name}",
			map[string]string{"server_name": "example.org", "media_id": "AbCdEf123", "file_name": "cat picture+1.png"}, ""},
		{"GET", "/_matrix/media/v3/thumbnail/example.org/AbCdEf123?width=32&height=32", "legacy_media_thumbnail",
			"/_matrix/media/v3/thumbnail/{server_name}/{media_id}",
			map[string]string{"server_name": "example.org", "media_id": "AbCdEf123"}, "width=32&height=32"},

		{"POST", "/_matrix/policy/v1/sign", "policy_sign", "/_matrix/policy/v1/sign", nil, ""},
	}

	seen := make(map[*Route]bool)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			res, err := Match(tt.method, tt.target)
			if err != nil {
				t.Fatalf("Match error = %v", err)
			}
			seen[res.Route] = true
			if res.Route.ID != tt.wantID {
				t.Errorf("ID = %q, want %q", res.Route.ID, tt.wantID)
			}
			if res.Route.Path != tt.wantPath {
				t.Errorf("Path = %q, want %q", res.Route.Path, tt.wantPath)
			}
			if res.Route.Method != tt.method {
				t.Errorf("Method = %q, want %q", res.Route.Method, tt.method)
			}
			if !maps.Equal(res.Params, tt.wantParam) {
				t.Errorf("Params = %q, want %q", res.Params, tt.wantParam)
			}
			if res.RawQuery != tt.wantQuery {
				t.Errorf("RawQuery = %q, want %q", res.RawQuery, tt.wantQuery)
			}
			wantRawPath, _, _ := strings.Cut(tt.target, "?")
			if res.RawPath != wantRawPath {
				t.Errorf("RawPath = %q, want %q", res.RawPath, wantRawPath)
			}
		})
	}

	for _, r := range Routes() {
		if !seen[r] {
			t.Errorf("no test case for route %s %s (%s)", r.Method, r.Path, r.ID)
		}
	}
}

func TestMatchMethodNotAllowed(t *testing.T) {
	tests := []struct {
		method      string
		target      string
		wantAllowed []string
	}{
		{"POST", "/_matrix/federation/v1/version", []string{"GET"}},
		{"HEAD", "/_matrix/federation/v1/version", []string{"GET"}},
		{"get", "/_matrix/federation/v1/version", []string{"GET"}},
		{"GET", "/_matrix/federation/v1/send/123", []string{"PUT"}},
		{"POST", "/_matrix/federation/v1/send/123", []string{"PUT"}},
		{"PUT", "/_matrix/federation/v1/publicRooms", []string{"GET", "POST"}},
		{"DELETE", "/_matrix/federation/v1/publicRooms?x=1", []string{"GET", "POST"}},
		{"GET", "/_matrix/key/v2/query", []string{"POST"}},
		{"POST", "/_matrix/key/v2/query/example.org", []string{"GET"}},
		{"PUT", "/_matrix/federation/v1/query/directory", []string{"GET"}},
		{"OPTIONS", "/.well-known/matrix/server", []string{"GET"}},
		{"GET", "/_matrix/federation/v2/invite/!r:a/$e", []string{"PUT"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			res, err := Match(tt.method, tt.target)
			if !errors.Is(err, ErrMethodNotAllowed) {
				t.Fatalf("Match error = %v, want ErrMethodNotAllowed", err)
			}
			if errors.Is(err, ErrNotFound) {
				t.Errorf("Match error = %v also wraps ErrNotFound", err)
			}
			var mna *MethodNotAllowedError
			if !errors.As(err, &mna) {
				t.Fatalf("Match error = %T, want *MethodNotAllowedError", err)
			}
			if !slices.Equal(mna.Allowed, tt.wantAllowed) {
				t.Errorf("Allowed = %q, want %q", mna.Allowed, tt.wantAllowed)
			}
			if got, want := mna.AllowHeader(), strings.Join(tt.wantAllowed, ", "); got != want {
				t.Errorf("AllowHeader = %q, want %q", got, want)
			}
			if res.Route != nil {
				t.Errorf("Route = %v with an error, want nil", res.Route)
			}
		})
	}
}

func TestMethodNotAllowedErrorText(t *testing.T) {
	_, err := Match("PUT", "/_matrix/federation/v1/publicRooms")
	want := "method not allowed: PUT /_matrix/federation/v1/publicRooms, allowed: GET, POST"
	if err == nil || err.Error() != want {
		t.Errorf("Match error = %v, want %q", err, want)
	}
}

func TestMatchAllowedIsACopy(t *testing.T) {
	_, err := Match("PUT", "/_matrix/federation/v1/publicRooms")
	var mna *MethodNotAllowedError
	if !errors.As(err, &mna) {
		t.Fatalf("Match error = %v, want *MethodNotAllowedError", err)
	}
	mna.Allowed[0] = "CHANGED"
	_, err = Match("PUT", "/_matrix/federation/v1/publicRooms")
	if !errors.As(err, &mna) || mna.Allowed[0] != "GET" {
		t.Errorf("Allowed after changing an earlier error's copy = %q, want GET first", mna.Allowed)
	}
}

func TestMatchNotFound(t *testing.T) {
	tests := []struct {
		name     string
		target   string
		wantText string
	}{
		{"unknown path", "/_matrix/federation/v1/unknown", "no such federation endpoint: GET /_matrix/federation/v1/unknown"},
		{"root", "/", `no such federation endpoint: path "/": empty segment`},
		{"client API", "/_matrix/client/v3/sync", "no such federation endpoint: GET /_matrix/client/v3/sync"},
		{"prefix only", "/_matrix/federation/v1", "no such federation endpoint: GET /_matrix/federation/v1"},
		{"trailing slash", "/_matrix/federation/v1/version/", `no such federation endpoint: path "/_matrix/federation/v1/version/": empty segment`},
		{"trailing slash before query", "/_matrix/key/v2/server/?x=1", `no such federation endpoint: path "/_matrix/key/v2/server/": empty segment`},
		{"doubled slash", "/_matrix//federation/v1/version", `no such federation endpoint: path "/_matrix//federation/v1/version": empty segment`},
		{"leading doubled slash", "//_matrix/federation/v1/version", `no such federation endpoint: path "//_matrix/federation/v1/version": empty segment`},
		{"empty param", "/_matrix/federation/v1/event/", `no such federation endpoint: path "/_matrix/federation/v1/event/": empty segment`},
		{"empty room param", "/_matrix/federation/v1/event_auth//$e", `no such federation endpoint: path "/_matrix/federation/v1/event_auth//$e": empty segment`},
		{"missing param", "/_matrix/federation/v1/event_auth/!room:a", "no such federation endpoint: GET /_matrix/federation/v1/event_auth/!room:a"},
		{"extra segment", "/_matrix/federation/v1/event/$e/extra", "no such federation endpoint: GET /_matrix/federation/v1/event/$e/extra"},
		{"raw slash in event ID", "/_matrix/federation/v1/event/$70O/oKlXzFbk", "no such federation endpoint: GET /_matrix/federation/v1/event/$70O/oKlXzFbk"},
		{"dot dot", "/_matrix/federation/v1/../v1/version", `no such federation endpoint: path "/_matrix/federation/v1/../v1/version": dot segment ".."`},
		{"dot dot as param", "/_matrix/federation/v1/event/..", `no such federation endpoint: path "/_matrix/federation/v1/event/..": dot segment ".."`},
		{"encoded dot dot as param", "/_matrix/federation/v1/event/%2e%2E", `no such federation endpoint: path "/_matrix/federation/v1/event/%2e%2E": dot segment "%2e%2E"`},
		{"single dot", "/_matrix/federation/v1/./version", `no such federation endpoint: path "/_matrix/federation/v1/./version": dot segment "."`},
		{"encoded literal", "/_matrix/federation/v1/%76ersion", "no such federation endpoint: GET /_matrix/federation/v1/%76ersion"},
		{"encoded literal in param position", "/_matrix/federation/v1/query/%64irectory", "no such federation endpoint: GET /_matrix/federation/v1/query/%64irectory"},
		{"encoded slash joins literals", "/_matrix/federation/v1/user%2Fkeys/query", "no such federation endpoint: GET /_matrix/federation/v1/user%2Fkeys/query"},
		{"wrong case", "/_matrix/federation/v1/Version", "no such federation endpoint: GET /_matrix/federation/v1/Version"},
		{"wrong version prefix", "/_matrix/federation/v3/send/1", "no such federation endpoint: GET /_matrix/federation/v3/send/1"},
		{"v2 send", "/_matrix/federation/v2/send/1", "no such federation endpoint: GET /_matrix/federation/v2/send/1"},
		{"removed query_auth", "/_matrix/federation/v1/query_auth/!r:a/$e", "no such federation endpoint: GET /_matrix/federation/v1/query_auth/!r:a/$e"},
		{"legacy media r0", "/_matrix/media/r0/download/example.org/abc", "no such federation endpoint: GET /_matrix/media/r0/download/example.org/abc"},
		{"legacy thumbnail with file name", "/_matrix/media/v3/thumbnail/example.org/abc/x.png", "no such federation endpoint: GET /_matrix/media/v3/thumbnail/example.org/abc/x.png"},
		{"invalid percent-encoding", "/_matrix/federation/v1/event/$a%2", `no such federation endpoint: path "/_matrix/federation/v1/event/$a%2": segment "$a%2": invalid percent-encoding`},
		{"non-hex percent-encoding", "/_matrix/federation/v1/event/$a%zz", `no such federation endpoint: path "/_matrix/federation/v1/event/$a%zz": segment "$a%zz": invalid percent-encoding`},
		{"encoded invalid UTF-8", "/_matrix/federation/v1/event/$a%ff", `no such federation endpoint: path "/_matrix/federation/v1/event/$a%ff": segment "$a%ff" is not valid UTF-8`},
		{"raw invalid UTF-8", "/_matrix/federation/v1/event/$a\xff", `no such federation endpoint: path "/_matrix/federation/v1/event/$a\xff": segment "$a\xff" is not valid UTF-8`},
		{"encoded NUL", "/_matrix/federation/v1/event/$a%00", `no such federation endpoint: path "/_matrix/federation/v1/event/$a%00": segment "$a%00" decodes to control character 0x00`},
		{"encoded newline", "/_matrix/federation/v1/send/1%0a", `no such federation endpoint: path "/_matrix/federation/v1/send/1%0a": segment "1%0a" decodes to control character 0x0a`},
		{"raw space", "/_matrix/federation/v1/event/$a b", `no such federation endpoint: request target "/_matrix/federation/v1/event/$a b" contains byte 0x20`},
		{"raw tab in query", "/_matrix/federation/v1/version?a=\tb", `no such federation endpoint: request target "/_matrix/federation/v1/version?a=\tb" contains byte 0x09`},
		{"fragment", "/_matrix/federation/v1/version#x", `no such federation endpoint: request target "/_matrix/federation/v1/version#x" contains a fragment`},
		{"asterisk form", "*", `no such federation endpoint: request target "*" is not in origin form`},
		{"absolute form", "https://example.org/_matrix/federation/v1/version", `no such federation endpoint: request target "https://example.org/_matrix/federation/v1/version" is not in origin form`},
		{"authority form", "example.org:8448", `no such federation endpoint: request target "example.org:8448" is not in origin form`},
		{"empty target", "", `no such federation endpoint: request target "" is not in origin form`},
		{"too many segments", "/a/b/c/d/e/f/g/h/i", `no such federation endpoint: path "/a/b/c/d/e/f/g/h/i" has too many segments`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Match("GET", tt.target)
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("Match(GET, %q) error = %v, want ErrNotFound", tt.target, err)
			}
			if err.Error() != tt.wantText {
				t.Errorf("Match(GET, %q) error text = %q, want %q", tt.target, err.Error(), tt.wantText)
			}
			if res.Route != nil {
				t.Errorf("Match(GET, %q) Route = %v with an error, want nil", tt.target, res.Route)
			}
		})
	}
}

func TestResultQuery(t *testing.T) {
	res, err := Match("GET", "/_matrix/federation/v1/backfill/!r:a?v=%24a&v=$b+c&limit=10")
	if err != nil {
		t.Fatal(err)
	}
	q, err := res.Query()
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if got, want := q["v"], []string{"$a", "$b c"}; !slices.Equal(got, want) {
		t.Errorf("v = %q, want %q", got, want)
	}
	if got := q.Get("limit"); got != "10" {
		t.Errorf("limit = %q, want 10", got)
	}
}

func FuzzMatch(f *testing.F) {
	for _, seed := range []struct{ method, target string }{
		{"PUT", "/_matrix/federation/v1/send/123"},
		{"GET", "/_matrix/federation/v1/event/%24a%2Fb"},
		{"GET", "/_matrix/federation/v1/event/$ä"},
		{"GET", "/_matrix/federation/v1/query/directory?room_alias=%23a%3Ab"},
		{"PUT", "/_matrix/federation/v1/publicRooms"},
		{"GET", "/_matrix/media/v3/download/a/b/c"},
		{"GET", "/_matrix/federation/v1/../v1/version"},
		{"GET", "*"},
		{"GET", "/_matrix/federation/v1/event/%2"},
	} {
		f.Add(seed.method, seed.target)
	}
	f.Fuzz(func(t *testing.T, method, target string) {
		res, err := Match(method, target)
		if err != nil {
			notFound, notAllowed := errors.Is(err, ErrNotFound), errors.Is(err, ErrMethodNotAllowed)
			if notFound == notAllowed {
				t.Fatalf("Match(%q, %q) error %v wraps neither or both sentinels", method, target, err)
			}
			return
		}
		if res.Route == nil {
			t.Fatalf("Match(%q, %q) returned no route and no error", method, target)
		}
		if res.Route.Method != method {
			t.Fatalf("Match(%q, %q) returned a %s route", method, target, res.Route.Method)
		}
		if len(res.Params) != len(res.Route.Params) {
			t.Fatalf("Match(%q, %q) params %q, route has %q", method, target, res.Params, res.Route.Params)
		}
		for _, name := range res.Route.Params {
			if res.Params[name] == "" {
				t.Fatalf("Match(%q, %q) param %s is empty", method, target, name)
			}
		}
		rebuilt := res.RawPath
		if strings.Contains(target, "?") {
			rebuilt += "?" + res.RawQuery
		}
		if rebuilt != target {
			t.Fatalf("Match(%q, %q) RawPath %q and RawQuery %q do not rebuild the target", method, target, res.RawPath, res.RawQuery)
		}
	})
}

func BenchmarkMatchSend(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Match("PUT", "/_matrix/federation/v1/send/1700000000000"); err != nil {
			b.Fatal(err)
		}
	}
}
