// Package routes is the routing table of the Matrix federation, key and
// media endpoints that the gateway lets through. Each route records what the
// gateway checks: the authentication, whether there is a JSON body, where
// PDUs sit in the request and the response, and the path parameters.
//
// The table covers Matrix 1.19. It also routes deprecated and removed
// endpoints that older servers still call, so that policy can decide on
// them. These are version 1 send_join and send_leave, the unauthenticated
// media download of the client API, and the key ID forms of the key
// endpoints.
//
// [Match] matches the raw request target, as received, against the table.
package routes

import (
	"errors"
	"fmt"
	"strings"
)

// AuthKind is the authentication an endpoint requires.
type AuthKind uint8

const (
	// AuthXMatrix endpoints need an X-Matrix signed request. It is the zero
	// value, so a route that does not say otherwise requires a signature.
	AuthXMatrix AuthKind = iota
	// AuthNone endpoints take no federation authentication: discovery, key
	// publication, OpenID token checks with an access token in the query,
	// calls from identity servers, and the old unauthenticated media API.
	AuthNone
)

// String returns the name of the authentication kind.
func (a AuthKind) String() string {
	if a == AuthNone {
		return "none"
	}
	return "x-matrix"
}

// PDULocation is the place of the PDUs in a request body.
type PDULocation uint8

const (
	// PDUsNone means the request body, if any, holds no PDUs.
	PDUsNone PDULocation = iota
	// PDUsTransaction means the body is a transaction whose "pdus" member is
	// an array of PDUs (PUT /send).
	PDUsTransaction
	// PDUsBody means the whole body is one PDU (send_join, send_leave,
	// send_knock, policy sign).
	PDUsBody
	// PDUsInviteV2 means the body's "event" member is the invite PDU, next
	// to "room_version" and "invite_room_state".
	PDUsInviteV2
	// PDUsInviteV1 means the whole body is the invite PDU, whose
	// unsigned.invite_room_state holds the stripped room state.
	PDUsInviteV1
)

// String returns the name of the PDU location.
func (l PDULocation) String() string {
	switch l {
	case PDUsTransaction:
		return "transaction"
	case PDUsBody:
		return "body"
	case PDUsInviteV2:
		return "invite_v2"
	case PDUsInviteV1:
		return "invite_v1"
	}
	return "none"
}

// ACLKind is the Matrix specification's requirement for enforcing a room's
// m.room.server_acl on an endpoint.
type ACLKind uint8

const (
	// ACLNotListed endpoints are not in the specification's list; the
	// gateway may still enforce room ACLs on them.
	ACLNotListed ACLKind = iota
	// ACLRequired endpoints must reject a request with 403 M_FORBIDDEN when
	// the ACL of the room in the path denies the origin.
	ACLRequired
	// ACLPerPDU applies to PUT /send: each PDU is checked against the ACL of
	// its own room, and m.typing and m.receipt EDUs against theirs.
	ACLPerPDU
	// ACLOptional endpoints may enforce room ACLs.
	ACLOptional
)

// String returns the name of the ACL kind.
func (a ACLKind) String() string {
	switch a {
	case ACLRequired:
		return "required"
	case ACLPerPDU:
		return "per_pdu"
	case ACLOptional:
		return "optional"
	}
	return "not_listed"
}

// UserCheck is the rule a user ID in the path must meet.
type UserCheck uint8

const (
	// UserAny puts no rule on the user ID, or the route has none.
	UserAny UserCheck = iota
	// UserOnOrigin requires the user to belong to the requesting server,
	// the X-Matrix origin (make_join, make_leave, make_knock).
	UserOnOrigin
	// UserLocal requires the user to belong to the receiving server.
	UserLocal
)

// String returns the name of the rule.
func (u UserCheck) String() string {
	switch u {
	case UserOnOrigin:
		return "on_origin"
	case UserLocal:
		return "local"
	}
	return "any"
}

// PDUField is a member of a JSON response object that holds PDUs.
type PDUField struct {
	// Name is the member name, such as "auth_chain".
	Name string
	// Array is true when the member is an array of PDUs and false when it is
	// a single PDU.
	Array bool
	// Stripped is true when entries may also be stripped state events
	// (type, state_key, sender and content only), which carry no
	// signature, as in knock_room_state.
	Stripped bool
}

// Path parameter names, the keys of [Result.Params].
const (
	ParamRoomID     = "room_id"
	ParamEventID    = "event_id"
	ParamUserID     = "user_id"
	ParamTxnID      = "txn_id"
	ParamQueryType  = "query_type"
	ParamServerName = "server_name"
	ParamMediaID    = "media_id"
	ParamKeyID      = "key_id"
	ParamFileName   = "file_name"
)

// Route is one endpoint: a method and a path pattern. Routes are shared and
// must not be modified.
type Route struct {
	// ID names the endpoint in policy input and in allow-list entries, such
	// as "send". A few endpoints have several routes with one ID, such as
	// the key ID form of key_server.
	ID string
	// Method is the HTTP method, upper case.
	Method string
	// Path is the path pattern. A segment "{name}" is a parameter whose
	// decoded value is stored in Result.Params under name.
	Path string
	// Auth is the authentication the endpoint requires.
	Auth AuthKind
	// JSONBody is true when the request carries a JSON object body,
	// possibly {}, which the X-Matrix signature covers as "content". It is
	// derived from Method: true for PUT and POST.
	JSONBody bool
	// BodyPDUs is the place of the PDUs in the request body.
	BodyPDUs PDULocation
	// ResponsePDUs lists the members of the response object that hold PDUs
	// the receiver must verify. It leaves out make_join, make_leave and
	// make_knock templates, which are unsigned, and stripped-state lists
	// such as knock_room_state.
	ResponsePDUs []PDUField
	// ArrayResponse is true for the version 1 endpoints that respond with a
	// two-element array [200, {...}], whose second element is the object
	// that ResponsePDUs describes.
	ArrayResponse bool
	// ACL is the specification's requirement for room ACLs here.
	ACL ACLKind
	// UserCheck is the rule for the user_id path parameter.
	UserCheck UserCheck
	// Deprecated is true for endpoints that the specification deprecated or
	// removed but that older servers still call.
	Deprecated bool

	// Params lists the path parameter names in path order. It and the three
	// flags below are derived from Path when the table is built.
	Params []string
	// RoomParam is true when the path has a room_id parameter.
	RoomParam bool
	// EventParam is true when the path has an event_id parameter.
	EventParam bool
	// UserParam is true when the path has a user_id parameter.
	UserParam bool
}

// ErrNotFound marks a request target that matches no route. Matrix servers
// respond to it with 404 M_UNRECOGNIZED.
var ErrNotFound = errors.New("no such federation endpoint")

// ErrMethodNotAllowed marks a request whose path matches a route but not its
// method. Matrix servers respond to it with 405 M_UNRECOGNIZED. The error is a
// [*MethodNotAllowedError], which lists the allowed methods.
var ErrMethodNotAllowed = errors.New("method not allowed")

// MethodNotAllowedError is the error [Match] returns when the path is known
// but the method is not.
type MethodNotAllowedError struct {
	// Method is the method of the request.
	Method string
	// Path is the raw path of the request.
	Path string
	// Allowed lists the methods the path accepts, sorted.
	Allowed []string
}

// Error returns the method, the path and the allowed methods.
func (e *MethodNotAllowedError) Error() string {
	return fmt.Sprintf("%s: %s %s, allowed: %s", ErrMethodNotAllowed, e.Method, e.Path, e.AllowHeader())
}

// Unwrap returns [ErrMethodNotAllowed].
func (e *MethodNotAllowedError) Unwrap() error {
	return ErrMethodNotAllowed
}

// AllowHeader returns the value of the Allow header for a 405 response.
func (e *MethodNotAllowedError) AllowHeader() string {
	return strings.Join(e.Allowed, ", ")
}

// Routes returns every route of the table in table order. The routes are
// shared and must not be modified.
func Routes() []*Route {
	return append([]*Route(nil), table.routes...)
}

// KnownID reports whether id is the ID of an endpoint in the table, for
// checking the endpoint lists of allow-list entries.
func KnownID(id string) bool {
	_, ok := table.ids[id]
	return ok
}
