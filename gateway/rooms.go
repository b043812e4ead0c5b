package gateway

import (
	"context"
	"errors"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

const eventTypeCreate = "m.room.create"

// resolveRoomVersion finds the version that a PDU must be checked
// against: the create event states its own, a request may state it (an
// invite does), and otherwise the rooms table must know the room. A room
// the gateway knows nothing about yields nil: its events cannot be checked
// and are refused.
func (g *Gateway) resolveRoomVersion(raw canonicaljson.Value, roomID string, pc pduContext) (*events.RoomVersion, policy.Room) {
	room := policy.Room{RoomID: roomID, VersionSource: policy.VersionSourceUnknown}
	version, source := "", policy.VersionSourceUnknown
	if t, _ := raw.GetString("type"); t == eventTypeCreate {
		version, source = createEventVersion(raw), policy.VersionSourceCreateEvent
	}
	if version == "" && pc.version != "" {
		version, source = pc.version, pc.source
	}
	if version == "" && roomID != "" {
		if known, ok := g.store.RoomVersion(roomID); ok {
			version, source = known.Version, policy.VersionSource(known.Source)
		}
	}
	if version == "" {
		return nil, room
	}
	room.Version, room.VersionSource = version, source
	rv, ok := events.LookupRoomVersion(version)
	if !ok {
		return nil, room
	}
	return rv, room
}

// createEventVersion returns the room version an m.room.create event
// states; a create event without one makes a version 1 room.
func createEventVersion(raw canonicaljson.Value) string {
	content, _ := raw.Get("content")
	if v, ok := content.GetString("room_version"); ok {
		return v
	}
	return "1"
}

// learnFromPDU stores the version of a room whose verified create event
// passes through the gateway.
func (g *Gateway) learnFromPDU(ctx context.Context, pdu *events.PDU, rv *events.RoomVersion) {
	if pdu.Type != eventTypeCreate || pdu.StateKey == nil || *pdu.StateKey != "" {
		return
	}
	g.learnRoom(ctx, pdu.RoomID, rv.ID, policy.VersionSourceCreateEvent)
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

// learnFromTemplate learns the room version stated in the local
// homeserver's make_join, make_knock or make_leave answer.
func (g *Gateway) learnFromTemplate(ctx context.Context, ex *exchange, body []byte) {
	v, err := canonicaljson.Parse(body)
	if err != nil {
		return
	}
	version, ok := v.GetString("room_version")
	if !ok {
		return
	}
	g.learnRoom(ctx, ex.match.Params["room_id"], version, policy.VersionSourceMakeJoin)
}

var errUnknownRoomVersion = errors.New("unknown room version")

// roomVersionFor returns the version of a room the request names, for
// membership endpoints.
func (g *Gateway) roomVersionFor(roomID string) (string, policy.VersionSource, error) {
	known, ok := g.store.RoomVersion(roomID)
	if !ok {
		return "", policy.VersionSourceUnknown, errUnknownRoomVersion
	}
	return known.Version, policy.VersionSource(known.Source), nil
}
