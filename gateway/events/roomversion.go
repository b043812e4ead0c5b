package events

import (
	"fmt"
	"math"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// EventIDFormat is the form of the event IDs of a room version.
type EventIDFormat uint8

// Event ID formats.
const (
	// EventIDServerChosen is `$opaque:domain`, chosen by the server that
	// created the event and sent in its `event_id` (room versions 1 and 2).
	EventIDServerChosen EventIDFormat = iota + 1
	// EventIDStdBase64 is `$` and the reference hash in unpadded standard
	// base64 (room version 3).
	EventIDStdBase64
	// EventIDURLSafeBase64 is `$` and the reference hash in unpadded
	// URL-safe base64 (room versions 4 to 12).
	EventIDURLSafeBase64
)

// RedactionRules identifies a generation of the redaction algorithm by the
// first room version that uses it.
type RedactionRules uint8

// Redaction algorithm generations.
const (
	// RedactionV1 is used by room versions 1 to 5. It keeps
	// `content.aliases` of m.room.aliases.
	RedactionV1 RedactionRules = iota + 1
	// RedactionV6 is used by room versions 6 and 7. It no longer keeps
	// m.room.aliases content.
	RedactionV6
	// RedactionV8 is used by room version 8. It keeps `allow` of
	// m.room.join_rules.
	RedactionV8
	// RedactionV9 is used by room versions 9 and 10. It keeps
	// `join_authorised_via_users_server` of m.room.member.
	RedactionV9
	// RedactionV11 is used by room versions 11 and 12. It drops the
	// top-level `origin`, `membership` and `prev_state`, keeps all of
	// m.room.create content, `invite` of m.room.power_levels, `redacts` of
	// m.room.redaction and `third_party_invite.signed` of m.room.member.
	RedactionV11
)

// RoomVersion describes the rules of one room version that concern event
// format and verification. The values returned by [LookupRoomVersion] are
// shared and must not be modified.
type RoomVersion struct {
	// ID is the room version identifier, "1" to "12".
	ID string
	// EventIDFormat is the form of event IDs.
	EventIDFormat EventIDFormat
	// EventRefPairs is set when `prev_events` and `auth_events` hold
	// `[event_id, {"sha256": hash}]` pairs (room versions 1 and 2). Otherwise
	// they hold event ID strings.
	EventRefPairs bool
	// Redaction is the redaction algorithm.
	Redaction RedactionRules
	// StrictCanonicalJSON is set when every number in an event must be a
	// canonical JSON integer (room versions 6 and later).
	StrictCanonicalJSON bool
	// EnforceKeyValidity is set when a signing key must still be valid at
	// the event's `origin_server_ts` (room versions 5 and later).
	EnforceKeyValidity bool
	// RedactsInContent is set when m.room.redaction names its target in
	// `content.redacts` instead of the top-level `redacts` (room versions 11
	// and later).
	RedactsInContent bool
	// RestrictedJoins is set when a join carrying
	// `content.join_authorised_via_users_server` must be signed by that
	// user's server (room versions 8 and later).
	RestrictedJoins bool
	// RoomIDFromCreate is set when the room ID is `!` and the reference hash
	// of the m.room.create event, which itself has no `room_id` (room
	// version 12).
	RoomIDFromCreate bool
	// MaxDepth is the largest permitted `depth`: 2^63-1 in room versions 1
	// to 5, 2^53-1 (the largest canonical JSON integer) from version 6.
	MaxDepth int64
}

var roomVersions = func() map[string]*RoomVersion {
	table := make(map[string]*RoomVersion, 12)
	for n := 1; n <= 12; n++ {
		rv := &RoomVersion{
			ID:                  fmt.Sprint(n),
			EventIDFormat:       EventIDURLSafeBase64,
			EventRefPairs:       n <= 2,
			StrictCanonicalJSON: n >= 6,
			EnforceKeyValidity:  n >= 5,
			RedactsInContent:    n >= 11,
			RestrictedJoins:     n >= 8,
			RoomIDFromCreate:    n >= 12,
			MaxDepth:            math.MaxInt64,
		}
		switch {
		case n <= 2:
			rv.EventIDFormat = EventIDServerChosen
		case n == 3:
			rv.EventIDFormat = EventIDStdBase64
		}
		switch {
		case n <= 5:
			rv.Redaction = RedactionV1
		case n <= 7:
			rv.Redaction = RedactionV6
		case n == 8:
			rv.Redaction = RedactionV8
		case n <= 10:
			rv.Redaction = RedactionV9
		default:
			rv.Redaction = RedactionV11
		}
		if rv.StrictCanonicalJSON {
			rv.MaxDepth = canonicaljson.MaxSafeInteger
		}
		table[rv.ID] = rv
	}
	return table
}()

// LookupRoomVersion returns the rules of room version id and reports
// whether this package implements that version.
func LookupRoomVersion(id string) (*RoomVersion, bool) {
	rv, ok := roomVersions[id]
	return rv, ok
}

// RoomVersionByID returns the rules of room version id, or an error wrapping
// [ErrUnknownRoomVersion] that names it.
func RoomVersionByID(id string) (*RoomVersion, error) {
	rv, ok := roomVersions[id]
	if !ok {
		return nil, fmt.Errorf("%w %q: supported versions are 1 to 12", ErrUnknownRoomVersion, id)
	}
	return rv, nil
}
