package gateway

import (
	"context"
	"errors"
	"fmt"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

const eventTypeCreate = "m.room.create"

// resolveRoomVersion finds the version that a PDU must be checked
// against: a create event states its own, a request may state it (an
// invite does), and otherwise the rooms table must know the room. A
// stated version that contradicts the one the gateway knows, or a room it
// knows nothing about, gives an error: such events cannot be checked and
// are refused.
func (g *Gateway) resolveRoomVersion(ex *exchange, raw canonicaljson.Value, roomID string, pc pduContext) (*events.RoomVersion, policy.Room, error) {
	room := policy.Room{RoomID: roomID, VersionSource: policy.VersionSourceUnknown}
	stated, source := pc.version, pc.source
	if t, _ := raw.GetString("type"); t == eventTypeCreate {
		v, err := createEventVersion(raw)
		if err != nil {
			return nil, room, err
		}
		stated, source = v, policy.VersionSourceCreateEvent
	}
	known, isKnown := ex.pendingRoom(roomID)
	if !isKnown && roomID != "" {
		known, isKnown = g.store.RoomVersion(roomID)
	}
	switch {
	case stated != "" && isKnown && stated != known.Version:
		room.Version, room.VersionSource = stated, source
		return nil, room, fmt.Errorf("the %s states room version %q, but the gateway knows %s as version %q (from %s)",
			source, stated, roomID, known.Version, known.Source)
	case stated != "":
		room.Version, room.VersionSource = stated, source
	case isKnown:
		room.Version, room.VersionSource = known.Version, policy.VersionSource(known.Source)
	default:
		return nil, room, fmt.Errorf("room version of %s is not known to the gateway", describeRoom(roomID))
	}
	rv, ok := events.LookupRoomVersion(room.Version)
	if !ok {
		return nil, room, fmt.Errorf("room version %q is not supported", room.Version)
	}
	return rv, room, nil
}

// createEventVersion returns the room version an m.room.create event
// states; a create event without one makes a version 1 room.
func createEventVersion(raw canonicaljson.Value) (string, error) {
	content, _ := raw.Get("content")
	v, ok := content.Get("room_version")
	if !ok {
		return "1", nil
	}
	version, ok := v.Str()
	if !ok {
		return "", fmt.Errorf("create event room_version is a JSON %s, not a string", v.Kind())
	}
	return version, nil
}

// checkCreateEvent applies the rule that lets the gateway trust the version
// a create event states: in room versions 1 to 11 the room ID names the
// server that created the room, and only a user of that server may send
// its create event. From version 12 the room ID is derived from the create
// event itself.
func checkCreateEvent(pdu *events.PDU, rv *events.RoomVersion) error {
	if pdu.Type != eventTypeCreate || rv.RoomIDFromCreate {
		return nil
	}
	if server := serverOf(pdu.RoomID); server != pdu.SenderServer {
		return fmt.Errorf("create event of room %s is sent by %s, not by a user of %s", pdu.RoomID, pdu.Sender, server)
	}
	return nil
}

// roomToLearn returns the room version that a verified, allowed create
// event teaches, to be stored once the homeserver has accepted the event.
func roomToLearn(pdu *events.PDU, rv *events.RoomVersion) *store.Room {
	if pdu.Type != eventTypeCreate || pdu.StateKey == nil || *pdu.StateKey != "" {
		return nil
	}
	return &store.Room{RoomID: pdu.RoomID, Version: rv.ID, Source: string(policy.VersionSourceCreateEvent)}
}

// pendingRoom returns a room version that an earlier PDU of the same
// request teaches, such as the create event before the room's first events
// in one transaction.
func (ex *exchange) pendingRoom(roomID string) (store.Room, bool) {
	for _, r := range ex.pending {
		if r.RoomID == roomID && roomID != "" {
			return r, true
		}
	}
	return store.Room{}, false
}

// learnPending stores the room versions of an exchange whose forwarded
// request the homeserver accepted.
func (g *Gateway) learnPending(ctx context.Context, ex *exchange, status int) {
	if status < 200 || status > 299 {
		return
	}
	for _, r := range ex.pending {
		g.learnRoom(ctx, r.RoomID, r.Version, policy.VersionSource(r.Source))
	}
	ex.pending = nil
}

// learnRoom records a room version. A claim that contradicts what the
// gateway already knows is logged and ignored: the first version learned
// stays in force.
func (g *Gateway) learnRoom(ctx context.Context, roomID, version string, source policy.VersionSource) {
	if roomID == "" || version == "" {
		return
	}
	_, err := g.store.LearnRoom(store.Room{RoomID: roomID, Version: version, Source: string(source), LearnedAt: g.now()})
	switch {
	case errors.Is(err, store.ErrRoomVersionConflict):
		g.log.WarnContext(ctx, "conflicting room version ignored", keyRoomID, roomID, keyRoomVersion, version, keyErr, err)
	case err != nil:
		g.log.ErrorContext(ctx, "room version not stored", keyRoomID, roomID, keyRoomVersion, version, keyErr, err)
	}
}

// learnsFromResponse reports whether the homeserver's answer to an
// endpoint states a room version that the gateway should learn.
func learnsFromResponse(endpoint string) bool {
	switch endpoint {
	case "make_join", "make_knock", "make_leave":
		return true
	}
	return false
}
