package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/routes"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// membershipOf is the membership that the PDU of each membership endpoint
// must carry.
var membershipOf = map[string]string{
	"invite_v1":     "invite",
	"invite_v2":     "invite",
	"send_join_v1":  "join",
	"send_join_v2":  "join",
	"send_leave_v1": "leave",
	"send_leave_v2": "leave",
	"send_knock":    "knock",
}

// checkRequestIdentity ties the users and aliases a request names to the
// authenticated origin or to the receiving server, before anything is
// forwarded. A server may only act for its own users, and only request
// entities of the server it sends to.
func (g *Gateway) checkRequestIdentity(ex *exchange) error {
	user := ex.match.Params["user_id"]
	switch ex.match.Route.UserCheck {
	case routes.UserOnOrigin:
		if serverOf(user) != ex.origin {
			return newError(http.StatusForbidden, codeForbidden,
				fmt.Sprintf("user %q is not on the requesting server %s", user, ex.origin))
		}
	case routes.UserLocal:
		if !g.isReceiver(ex, serverOf(user)) {
			return newError(http.StatusForbidden, codeForbidden, fmt.Sprintf("user %q is not on the receiving server", user))
		}
	}
	return g.checkQueriedEntities(ex)
}

// checkQueriedEntities requires the users and aliases named in query
// parameters and key query bodies to be local.
func (g *Gateway) checkQueriedEntities(ex *exchange) error {
	var names []string
	switch ex.endpointID() {
	case "query_profile":
		names = queryValues(ex, "user_id")
	case "query_directory":
		names = queryValues(ex, "room_alias")
	case "user_keys_query":
		names = memberKeys(ex.content, "device_keys")
	case "user_keys_claim":
		names = memberKeys(ex.content, "one_time_keys")
	}
	for _, name := range names {
		if !g.isReceiver(ex, serverOf(name)) {
			return newError(http.StatusForbidden, codeForbidden, fmt.Sprintf("%q is not on the receiving server", name))
		}
	}
	return nil
}

func queryValues(ex *exchange, key string) []string {
	values, err := ex.match.Query()
	if err != nil {
		return []string{""}
	}
	return values[key]
}

// memberKeys returns the keys of the object under field, such as the user
// IDs of a key query.
func memberKeys(body canonicaljson.Value, field string) []string {
	obj, _ := body.Get(field)
	keys := make([]string, 0, obj.Len())
	for _, m := range obj.Members() {
		keys = append(keys, m.Key)
	}
	return keys
}

// handleMembership verifies and decides the PDU of an invite, send_join,
// send_leave or send_knock before forwarding the request. The PDU is the
// whole request: a refused PDU refuses the request.
func (g *Gateway) handleMembership(ctx context.Context, ex *exchange, w http.ResponseWriter) error {
	route := ex.endpointID()
	raw, pc, err := g.membershipPDU(ex)
	if err != nil {
		return err
	}
	checked := g.checkPDU(ctx, ex, raw, pc)
	ex.items = append(ex.items, checked.record)
	if checked.verifyFailed {
		return newError(http.StatusBadRequest, codeInvalidParam, checked.reason)
	}
	// policy_sign carries a PDU to sign, not a membership change, so only
	// the membership endpoints get the membership rules.
	if _, membership := membershipOf[route]; membership {
		if err := g.checkMembershipPDU(ex, route, checked); err != nil {
			checked.record.Allow, checked.record.Action = false, actionRejected
			checked.record.Error = err.Error()
			return err
		}
	}
	if !checked.allowed {
		return newError(http.StatusForbidden, codeForbidden, checked.reason)
	}
	if route == "invite_v2" {
		if err := g.checkInviteState(ctx, ex, pc); err != nil {
			checked.record.Allow, checked.record.Action = false, actionRejected
			checked.record.Error = err.Error()
			return err
		}
	}
	checked.record.Action = actionForward
	if pc.source == policy.VersionSourceInvite {
		ex.pending = append(ex.pending, store.Room{RoomID: checked.pdu.RoomID, Version: pc.version, Source: string(policy.VersionSourceInvite)})
	}
	return g.forwardRequest(ctx, ex, w)
}

// membershipPDU extracts the PDU of a membership request and the room
// version the request states or the gateway has stored.
func (g *Gateway) membershipPDU(ex *exchange) (canonicaljson.Value, pduContext, error) {
	roomID := ex.match.Params["room_id"]
	if ex.endpointID() == "invite_v1" {
		return g.inviteV1PDU(ex, roomID)
	}
	if ex.endpointID() != "invite_v2" {
		return ex.content, pduContext{}, nil
	}
	stated, ok := ex.content.Get("room_version")
	if !ok {
		return canonicaljson.Value{}, pduContext{}, newError(http.StatusBadRequest, codeMissingParam, "invite has no room_version")
	}
	version, ok := stated.Str()
	if !ok {
		return canonicaljson.Value{}, pduContext{}, newError(http.StatusBadRequest, codeInvalidParam,
			fmt.Sprintf("invite room_version is a JSON %s, not a string", stated.Kind()))
	}
	if _, ok := events.LookupRoomVersion(version); !ok {
		e := newError(http.StatusBadRequest, codeIncompatibleRoom, fmt.Sprintf("room version %q is not supported by the gateway", version))
		e.extra = map[string]string{"room_version": version}
		return canonicaljson.Value{}, pduContext{}, e
	}
	event, ok := ex.content.Get("event")
	if !ok || event.Kind() != canonicaljson.Object {
		return canonicaljson.Value{}, pduContext{}, newError(http.StatusBadRequest, codeMissingParam, "invite has no event object")
	}
	return event, pduContext{version: version, source: policy.VersionSourceInvite}, nil
}

// inviteV1PDU returns the PDU of a v1 invite. That endpoint serves only
// room versions 1 and 2, whose event formats, redaction and signing rules
// are the same. A room missing from the rooms table is therefore checked as
// version 1, and one stored as any other version is rejected.
func (g *Gateway) inviteV1PDU(ex *exchange, roomID string) (canonicaljson.Value, pduContext, error) {
	known, ok := g.store.RoomVersion(roomID)
	version := known.Version
	switch {
	case !ok:
		return ex.content, pduContext{version: "1", source: policy.VersionSourceInvite}, nil
	case version != "1" && version != "2":
		e := newError(http.StatusBadRequest, codeIncompatibleRoom,
			fmt.Sprintf("room %s is version %s; the v1 invite endpoint serves only versions 1 and 2", roomID, version))
		e.extra = map[string]string{"room_version": version}
		return canonicaljson.Value{}, pduContext{}, e
	}
	return ex.content, pduContext{}, nil
}

// checkMembershipPDU applies the membership endpoint rules: the PDU
// belongs to the room and event in the path, is an m.room.member event
// with the endpoint's membership, and is sent by a user of the origin.
func (g *Gateway) checkMembershipPDU(ex *exchange, route string, c *checkedPDU) error {
	pdu := c.pdu
	invalid := func(format string, args ...any) error {
		return newError(http.StatusBadRequest, codeInvalidParam, fmt.Sprintf(format, args...))
	}
	if want := ex.match.Params["room_id"]; pdu.RoomID != want {
		return invalid("event room_id %q does not match the path room %q", pdu.RoomID, want)
	}
	if want := ex.match.Params["event_id"]; c.eventID != want {
		return invalid("event ID %q does not match the path event %q", c.eventID, want)
	}
	if pdu.Type != "m.room.member" {
		return invalid("event type %q is not m.room.member", pdu.Type)
	}
	content := pdu.Content
	membership, _ := content.GetString("membership")
	if want := membershipOf[route]; membership != want {
		return invalid("membership %q is not %q", membership, want)
	}
	if ex.flow() == policy.DirectionInbound && g.isLocal(pdu.SenderServer) {
		return invalid("sender %q is a user of this server, which a peer cannot speak for", pdu.Sender)
	}
	if pdu.SenderServer != ex.origin && !thirdPartyInvite(route, content) {
		return invalid("sender %q is not on the requesting server %s", pdu.Sender, ex.origin)
	}
	if pdu.StateKey == nil {
		return invalid("membership event has no state_key")
	}
	if membership == "invite" {
		if !g.isReceiver(ex, serverOf(*pdu.StateKey)) {
			return invalid("invited user %q is not on the receiving server", *pdu.StateKey)
		}
		return nil
	}
	if *pdu.StateKey != pdu.Sender {
		return invalid("state_key %q is not the sender %q", *pdu.StateKey, pdu.Sender)
	}
	return nil
}

// thirdPartyInvite reports whether an invite was made through a
// third-party invite, whose sender may be on another server.
func thirdPartyInvite(route string, content canonicaljson.Value) bool {
	if membershipOf[route] != "invite" {
		return false
	}
	return content.Has("third_party_invite")
}

// checkInviteState verifies and decides the full events of a v2 invite's
// invite_room_state like any other PDU: an event that fails verification
// refuses the invite with 400, one that policy denies with 403. Entries in
// the stripped form (type, state_key, sender and content only, as older
// homeservers send) carry no signature and are passed as they are.
func (g *Gateway) checkInviteState(ctx context.Context, ex *exchange, pc pduContext) error {
	state, ok := ex.content.Get("invite_room_state")
	if !ok {
		return nil
	}
	if state.Kind() != canonicaljson.Array {
		return newError(http.StatusBadRequest, codeInvalidParam, "invite_room_state is not an array")
	}
	for i, entry := range state.Items() {
		if isStrippedState(entry) {
			continue
		}
		checked := g.checkPDU(ctx, ex, entry, pc)
		ex.items = append(ex.items, checked.record)
		switch {
		case checked.verifyFailed:
			return newError(http.StatusBadRequest, codeInvalidParam, fmt.Sprintf("invite_room_state[%d]: %s", i, checked.reason))
		case !checked.allowed:
			return newError(http.StatusForbidden, codeForbidden, fmt.Sprintf("invite_room_state[%d]: %s", i, checked.reason))
		}
		checked.record.Action = actionForward
	}
	return nil
}

// isStrippedState reports whether an invite_room_state entry is in the
// stripped form, which has only type, state_key, sender and content. Any
// other member makes the entry a full event, which must verify.
func isStrippedState(entry canonicaljson.Value) bool {
	if entry.Kind() != canonicaljson.Object {
		return false
	}
	for _, m := range entry.Members() {
		switch m.Key {
		case "type", "state_key", "sender", "content":
		default:
			return false
		}
	}
	return true
}

// isReceiver reports whether serverName is the server that receives the
// exchange's request: this server for inbound requests, the peer for
// outbound ones.
func (g *Gateway) isReceiver(ex *exchange, serverName string) bool {
	if ex.flow() == policy.DirectionOutbound {
		return serverName == ex.destination
	}
	return g.isLocal(serverName)
}
