package routes

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Path prefixes of the endpoint families.
const (
	fedV1  = "/_matrix/federation/v1"
	fedV2  = "/_matrix/federation/v2"
	keyV2  = "/_matrix/key/v2"
	media3 = "/_matrix/media/v3"
)

// Response members holding PDUs, shared by several routes.
var (
	authChain = PDUField{Name: "auth_chain", Array: true}
	pdus      = PDUField{Name: "pdus", Array: true}
	state     = PDUField{Name: "state", Array: true}
	event     = PDUField{Name: "event"}
)

// federationRoutes returns the routing table. Routes sharing a path are
// listed together; the table order is what [Routes] returns.
func federationRoutes() []*Route {
	get, put, post := http.MethodGet, http.MethodPut, http.MethodPost
	return []*Route{
		// Discovery and keys, all without X-Matrix.
		{ID: "well_known", Method: get, Path: "/.well-known/matrix/server", Auth: AuthNone},
		{ID: "version", Method: get, Path: fedV1 + "/version", Auth: AuthNone},
		{ID: "key_server", Method: get, Path: keyV2 + "/server", Auth: AuthNone},
		{ID: "key_server", Method: get, Path: keyV2 + "/server/{key_id}", Auth: AuthNone, Deprecated: true},
		{ID: "key_query", Method: get, Path: keyV2 + "/query/{server_name}", Auth: AuthNone},
		{ID: "key_query", Method: get, Path: keyV2 + "/query/{server_name}/{key_id}", Auth: AuthNone, Deprecated: true},
		{ID: "key_query_batch", Method: post, Path: keyV2 + "/query", Auth: AuthNone},
		{ID: "openid_userinfo", Method: get, Path: fedV1 + "/openid/userinfo", Auth: AuthNone},
		{ID: "3pid_onbind", Method: put, Path: fedV1 + "/3pid/onbind", Auth: AuthNone},

		// Transactions, events, state and history.
		{ID: "send", Method: put, Path: fedV1 + "/send/{txn_id}", BodyPDUs: PDUsTransaction, ACL: ACLPerPDU},
		{ID: "event_auth", Method: get, Path: fedV1 + "/event_auth/{room_id}/{event_id}",
			ResponsePDUs: []PDUField{authChain}, ACL: ACLRequired},
		{ID: "backfill", Method: get, Path: fedV1 + "/backfill/{room_id}",
			ResponsePDUs: []PDUField{pdus}, ACL: ACLRequired},
		{ID: "get_missing_events", Method: post, Path: fedV1 + "/get_missing_events/{room_id}",
			ResponsePDUs: []PDUField{{Name: "events", Array: true}}, ACL: ACLRequired},
		{ID: "state", Method: get, Path: fedV1 + "/state/{room_id}",
			ResponsePDUs: []PDUField{authChain, pdus}, ACL: ACLRequired},
		{ID: "state_ids", Method: get, Path: fedV1 + "/state_ids/{room_id}", ACL: ACLRequired},
		{ID: "event", Method: get, Path: fedV1 + "/event/{event_id}", ResponsePDUs: []PDUField{pdus}},
		{ID: "timestamp_to_event", Method: get, Path: fedV1 + "/timestamp_to_event/{room_id}"},

		// Membership handshakes.
		{ID: "make_join", Method: get, Path: fedV1 + "/make_join/{room_id}/{user_id}",
			ACL: ACLRequired, UserCheck: UserOnOrigin},
		{ID: "send_join_v1", Method: put, Path: fedV1 + "/send_join/{room_id}/{event_id}", BodyPDUs: PDUsBody,
			ResponsePDUs: []PDUField{authChain, state, event}, ArrayResponse: true, ACL: ACLRequired, Deprecated: true},
		{ID: "send_join_v2", Method: put, Path: fedV2 + "/send_join/{room_id}/{event_id}", BodyPDUs: PDUsBody,
			ResponsePDUs: []PDUField{authChain, state, event}, ACL: ACLRequired},
		{ID: "make_leave", Method: get, Path: fedV1 + "/make_leave/{room_id}/{user_id}",
			ACL: ACLRequired, UserCheck: UserOnOrigin},
		{ID: "send_leave_v1", Method: put, Path: fedV1 + "/send_leave/{room_id}/{event_id}", BodyPDUs: PDUsBody,
			ArrayResponse: true, ACL: ACLRequired, Deprecated: true},
		{ID: "send_leave_v2", Method: put, Path: fedV2 + "/send_leave/{room_id}/{event_id}", BodyPDUs: PDUsBody,
			ACL: ACLRequired},
		{ID: "make_knock", Method: get, Path: fedV1 + "/make_knock/{room_id}/{user_id}",
			ACL: ACLRequired, UserCheck: UserOnOrigin},
		{ID: "send_knock", Method: put, Path: fedV1 + "/send_knock/{room_id}/{event_id}", BodyPDUs: PDUsBody,
			ResponsePDUs: []PDUField{{Name: "knock_room_state", Array: true, Stripped: true}},
			ACL:          ACLRequired},
		{ID: "invite_v1", Method: put, Path: fedV1 + "/invite/{room_id}/{event_id}", BodyPDUs: PDUsInviteV1,
			ResponsePDUs: []PDUField{event}, ArrayResponse: true, ACL: ACLRequired},
		{ID: "invite_v2", Method: put, Path: fedV2 + "/invite/{room_id}/{event_id}", BodyPDUs: PDUsInviteV2,
			ResponsePDUs: []PDUField{event}, ACL: ACLRequired},
		{ID: "exchange_third_party_invite", Method: put, Path: fedV1 + "/exchange_third_party_invite/{room_id}"},

		// Queries, users, directory and spaces. The two named query types
		// take precedence over the generic {query_type} route.
		{ID: "query_directory", Method: get, Path: fedV1 + "/query/directory"},
		{ID: "query_profile", Method: get, Path: fedV1 + "/query/profile"},
		{ID: "query", Method: get, Path: fedV1 + "/query/{query_type}"},
		{ID: "user_devices", Method: get, Path: fedV1 + "/user/devices/{user_id}", UserCheck: UserLocal},
		{ID: "user_keys_query", Method: post, Path: fedV1 + "/user/keys/query"},
		{ID: "user_keys_claim", Method: post, Path: fedV1 + "/user/keys/claim"},
		{ID: "public_rooms", Method: get, Path: fedV1 + "/publicRooms"},
		{ID: "public_rooms_search", Method: post, Path: fedV1 + "/publicRooms"},
		{ID: "hierarchy", Method: get, Path: fedV1 + "/hierarchy/{room_id}"},

		// Media. The media/v3 routes are the deprecated, unauthenticated
		// client API, which servers fall back to when a peer responds to the
		// federation media endpoints with 404 M_UNRECOGNIZED.
		{ID: "media_download", Method: get, Path: fedV1 + "/media/download/{media_id}"},
		{ID: "media_thumbnail", Method: get, Path: fedV1 + "/media/thumbnail/{media_id}"},
		{ID: "legacy_media_download", Method: get, Path: media3 + "/download/{server_name}/{media_id}",
			Auth: AuthNone, Deprecated: true},
		{ID: "legacy_media_download", Method: get, Path: media3 + "/download/{server_name}/{media_id}/{file_name}",
			Auth: AuthNone, Deprecated: true},
		{ID: "legacy_media_thumbnail", Method: get, Path: media3 + "/thumbnail/{server_name}/{media_id}",
			Auth: AuthNone, Deprecated: true},

		// Policy servers (Matrix 1.18).
		{ID: "policy_sign", Method: post, Path: "/_matrix/policy/v1/sign", BodyPDUs: PDUsBody, ACL: ACLOptional},
	}
}

// node is one path segment of the routing tree.
type node struct {
	literals  map[string]*node // children by exact raw segment
	param     *node            // child for a {name} segment, or nil
	paramName string           // name of the param child
	routes    []*Route         // routes whose path ends here
	allowed   []string         // methods of routes, sorted
}

// routeTable is the built routing table.
type routeTable struct {
	routes      []*Route
	ids         map[string]struct{}
	root        *node
	maxSegments int // segments of the longest path
}

var table = buildTable(federationRoutes())

// buildTable derives the computed fields of each route and builds the tree.
// It panics on a malformed pattern or a duplicate route, which are mistakes
// in federationRoutes.
func buildTable(routes []*Route) *routeTable {
	t := &routeTable{routes: routes, ids: make(map[string]struct{}), root: &node{}}
	for _, r := range routes {
		r.JSONBody = r.Method == http.MethodPut || r.Method == http.MethodPost
		segments := patternSegments(r.Path)
		t.maxSegments = max(t.maxSegments, len(segments))

		n := t.root
		for _, seg := range segments {
			n = n.child(r.Path, seg)
			if name, isParam := paramName(seg); isParam {
				r.Params = append(r.Params, name)
			}
		}
		if slices.Contains(n.allowed, r.Method) {
			panic(fmt.Sprintf("routes: duplicate route %s %s", r.Method, r.Path))
		}
		n.routes = append(n.routes, r)
		n.allowed = append(n.allowed, r.Method)
		slices.Sort(n.allowed)

		r.RoomParam = slices.Contains(r.Params, ParamRoomID)
		r.EventParam = slices.Contains(r.Params, ParamEventID)
		r.UserParam = slices.Contains(r.Params, ParamUserID)
		t.ids[r.ID] = struct{}{}
	}
	if t.maxSegments > maxPathSegments {
		panic(fmt.Sprintf("routes: a pattern has %d segments, more than maxPathSegments", t.maxSegments))
	}
	return t
}

func patternSegments(path string) []string {
	if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") {
		panic(fmt.Sprintf("routes: pattern %q must start and not end with '/'", path))
	}
	return strings.Split(path[1:], "/")
}

func paramName(seg string) (string, bool) {
	if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
		return seg[1 : len(seg)-1], true
	}
	return "", false
}

// child returns the child of n for one pattern segment, creating it.
func (n *node) child(path, seg string) *node {
	if seg == "" {
		panic(fmt.Sprintf("routes: pattern %q has an empty segment", path))
	}
	name, isParam := paramName(seg)
	if !isParam {
		if n.literals == nil {
			n.literals = make(map[string]*node)
		}
		c, ok := n.literals[seg]
		if !ok {
			c = &node{}
			n.literals[seg] = c
		}
		return c
	}

	if n.param == nil {
		n.param = &node{}
		n.paramName = name
	}
	if n.paramName != name {
		panic(fmt.Sprintf("routes: pattern %q names parameter %q where another route has %q", path, name, n.paramName))
	}
	return n.param
}
