package routes

import (
	"slices"
	"testing"
)

// endpointIDs are the endpoint IDs that policy input and allow-list entries
// use.
var endpointIDs = []string{
	"version", "key_server", "key_query", "key_query_batch", "send", "event_auth", "backfill",
	"get_missing_events", "state", "state_ids", "event", "timestamp_to_event", "make_join",
	"send_join_v1", "send_join_v2", "make_leave", "send_leave_v1", "send_leave_v2", "make_knock",
	"send_knock", "invite_v1", "invite_v2", "exchange_third_party_invite", "3pid_onbind",
	"query", "query_directory", "query_profile", "user_devices", "user_keys_query",
	"user_keys_claim", "public_rooms", "public_rooms_search", "hierarchy", "openid_userinfo",
	"media_download", "media_thumbnail", "policy_sign", "well_known", "legacy_media_download",
	"legacy_media_thumbnail",
}

func TestTableHasEveryEndpointID(t *testing.T) {
	var tableIDs []string
	for _, r := range Routes() {
		if !slices.Contains(tableIDs, r.ID) {
			tableIDs = append(tableIDs, r.ID)
		}
	}
	for _, id := range endpointIDs {
		if !slices.Contains(tableIDs, id) {
			t.Errorf("endpoint ID %q has no route", id)
		}
		if !KnownID(id) {
			t.Errorf("KnownID(%q) = false", id)
		}
	}
	for _, id := range tableIDs {
		if !slices.Contains(endpointIDs, id) {
			t.Errorf("route ID %q is not a known endpoint ID", id)
		}
	}
	for _, id := range []string{"", "*", "Send", "send_join", "query_auth"} {
		if KnownID(id) {
			t.Errorf("KnownID(%q) = true", id)
		}
	}
}

// routeByID returns the first route with id.
func routeByID(t *testing.T, id string) *Route {
	t.Helper()
	for _, r := range Routes() {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no route %q", id)
	return nil
}

func TestRouteAuth(t *testing.T) {
	unauthenticated := []string{
		"well_known", "version", "key_server", "key_query", "key_query_batch", "openid_userinfo",
		"3pid_onbind", "legacy_media_download", "legacy_media_thumbnail",
	}
	for _, r := range Routes() {
		want := AuthXMatrix
		if slices.Contains(unauthenticated, r.ID) {
			want = AuthNone
		}
		if r.Auth != want {
			t.Errorf("%s %s: Auth = %v, want %v", r.Method, r.Path, r.Auth, want)
		}
	}
}

func TestRouteJSONBody(t *testing.T) {
	for _, r := range Routes() {
		want := r.Method == "PUT" || r.Method == "POST"
		if r.JSONBody != want {
			t.Errorf("%s %s: JSONBody = %v, want %v", r.Method, r.Path, r.JSONBody, want)
		}
	}
}

func TestRouteBodyPDUs(t *testing.T) {
	want := map[string]PDULocation{
		"send":          PDUsTransaction,
		"send_join_v1":  PDUsBody,
		"send_join_v2":  PDUsBody,
		"send_leave_v1": PDUsBody,
		"send_leave_v2": PDUsBody,
		"send_knock":    PDUsBody,
		"policy_sign":   PDUsBody,
		"invite_v1":     PDUsInviteV1,
		"invite_v2":     PDUsInviteV2,
	}
	for _, r := range Routes() {
		if r.BodyPDUs != want[r.ID] {
			t.Errorf("%s: BodyPDUs = %v, want %v", r.ID, r.BodyPDUs, want[r.ID])
		}
		if r.BodyPDUs != PDUsNone && !r.JSONBody {
			t.Errorf("%s: PDUs in a request without a JSON body", r.ID)
		}
	}
}

func TestRouteResponsePDUs(t *testing.T) {
	tests := []struct {
		id        string
		want      []PDUField
		wantArray bool
	}{
		{"event_auth", []PDUField{{Name: "auth_chain", Array: true}}, false},
		{"backfill", []PDUField{{Name: "pdus", Array: true}}, false},
		{"get_missing_events", []PDUField{{Name: "events", Array: true}}, false},
		{"state", []PDUField{{Name: "auth_chain", Array: true}, {Name: "pdus", Array: true}}, false},
		{"event", []PDUField{{Name: "pdus", Array: true}}, false},
		{"send_join_v1", []PDUField{{Name: "auth_chain", Array: true}, {Name: "state", Array: true}, {Name: "event", Array: false}}, true},
		{"send_join_v2", []PDUField{{Name: "auth_chain", Array: true}, {Name: "state", Array: true}, {Name: "event", Array: false}}, false},
		{"send_leave_v1", nil, true},
		{"invite_v1", []PDUField{{Name: "event", Array: false}}, true},
		{"invite_v2", []PDUField{{Name: "event", Array: false}}, false},
		{"send_knock", []PDUField{{Name: "knock_room_state", Array: true, Stripped: true}}, false},
		{"state_ids", nil, false},
		{"make_join", nil, false},
		{"send", nil, false},
	}
	for _, tt := range tests {
		r := routeByID(t, tt.id)
		if !slices.Equal(r.ResponsePDUs, tt.want) {
			t.Errorf("%s: ResponsePDUs = %v, want %v", tt.id, r.ResponsePDUs, tt.want)
		}
		if r.ArrayResponse != tt.wantArray {
			t.Errorf("%s: ArrayResponse = %v, want %v", tt.id, r.ArrayResponse, tt.wantArray)
		}
	}
}

func TestRouteACL(t *testing.T) {
	required := []string{
		"make_join", "make_leave", "send_join_v1", "send_join_v2", "send_leave_v1", "send_leave_v2",
		"invite_v1", "invite_v2", "make_knock", "send_knock", "state", "state_ids", "backfill",
		"event_auth", "get_missing_events",
	}
	for _, r := range Routes() {
		want := ACLNotListed
		switch {
		case slices.Contains(required, r.ID):
			want = ACLRequired
		case r.ID == "send":
			want = ACLPerPDU
		case r.ID == "policy_sign":
			want = ACLOptional
		}
		if r.ACL != want {
			t.Errorf("%s: ACL = %v, want %v", r.ID, r.ACL, want)
		}
		if r.ACL == ACLRequired && !r.RoomParam {
			t.Errorf("%s: ACL required but no room_id in the path", r.ID)
		}
	}
}

func TestRouteUserCheck(t *testing.T) {
	want := map[string]UserCheck{
		"make_join":    UserOnOrigin,
		"make_leave":   UserOnOrigin,
		"make_knock":   UserOnOrigin,
		"user_devices": UserLocal,
	}
	for _, r := range Routes() {
		if r.UserCheck != want[r.ID] {
			t.Errorf("%s: UserCheck = %v, want %v", r.ID, r.UserCheck, want[r.ID])
		}
		if r.UserCheck != UserAny && !r.UserParam {
			t.Errorf("%s: UserCheck set but no user_id in the path", r.ID)
		}
	}
}

func TestRouteDerivedParams(t *testing.T) {
	tests := []struct {
		method, path string
		want         []string
		room, event  bool
		user         bool
	}{
		{"PUT", "/_matrix/federation/v1/send/{txn_id}", []string{"txn_id"}, false, false, false},
		{"GET", "/_matrix/federation/v1/event_auth/{room_id}/{event_id}", []string{"room_id", "event_id"}, true, true, false},
		{"GET", "/_matrix/federation/v1/make_join/{room_id}/{user_id}", []string{"room_id", "user_id"}, true, false, true},
		{"GET", "/_matrix/federation/v1/user/devices/{user_id}", []string{"user_id"}, false, false, true},
		{"GET", "/_matrix/federation/v1/version", nil, false, false, false},
		{"GET", "/_matrix/media/v3/download/{server_name}/{media_id}/{file_name}",
			[]string{"server_name", "media_id", "file_name"}, false, false, false},
	}
	for _, tt := range tests {
		var r *Route
		for _, candidate := range Routes() {
			if candidate.Method == tt.method && candidate.Path == tt.path {
				r = candidate
			}
		}
		if r == nil {
			t.Fatalf("no route %s %s", tt.method, tt.path)
		}
		if !slices.Equal(r.Params, tt.want) {
			t.Errorf("%s: Params = %q, want %q", tt.path, r.Params, tt.want)
		}
		if r.RoomParam != tt.room || r.EventParam != tt.event || r.UserParam != tt.user {
			t.Errorf("%s: RoomParam, EventParam, UserParam = %v, %v, %v, want %v, %v, %v",
				tt.path, r.RoomParam, r.EventParam, r.UserParam, tt.room, tt.event, tt.user)
		}
	}
}

func TestRouteDeprecated(t *testing.T) {
	deprecated := map[string]bool{
		"/_matrix/key/v2/server/{key_id}":                                 true,
		"/_matrix/key/v2/query/{server_name}/{key_id}":                    true,
		"/_matrix/federation/v1/send_join/{room_id}/{event_id}":           true,
		"/_matrix/federation/v1/send_leave/{room_id}/{event_id}":          true,
		"/_matrix/media/v3/download/{server_name}/{media_id}":             true,
		"/_matrix/media/v3/download/{server_name}/{media_id}/{file_name}": true,
		"/_matrix/media/v3/thumbnail/{server_name}/{media_id}":            true,
	}
	for _, r := range Routes() {
		if r.Deprecated != deprecated[r.Path] {
			t.Errorf("%s: Deprecated = %v, want %v", r.Path, r.Deprecated, deprecated[r.Path])
		}
	}
}

func TestBuildTablePanicsOnDuplicate(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("buildTable with a duplicate route did not panic")
		}
	}()
	buildTable([]*Route{
		{ID: "a", Method: "GET", Path: "/x/{room_id}"},
		{ID: "b", Method: "GET", Path: "/x/{room_id}"},
	})
}

func TestBuildTablePanicsOnParamNameClash(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("buildTable with two parameter names in one position did not panic")
		}
	}()
	buildTable([]*Route{
		{ID: "a", Method: "GET", Path: "/x/{room_id}"},
		{ID: "b", Method: "PUT", Path: "/x/{event_id}"},
	})
}
