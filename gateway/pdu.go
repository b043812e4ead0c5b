package gateway

import (
	"context"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/servername"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// pduContext is what the caller knows about a PDU beyond its JSON.
type pduContext struct {
	// direction is the way the PDU travels; empty means the way of its
	// request.
	direction policy.Direction
	// origin is the server that delivered the PDU; empty means the
	// request's origin.
	origin string
	// relaxEdges lifts the prev_events and auth_events count limits, which
	// do not apply to events in responses such as backfill.
	relaxEdges  bool
	transaction policy.Transaction
	// version and source name the room version when the request states it,
	// as an invite does.
	version string
	source  policy.VersionSource
}

// flow returns the direction the PDU travels: its request's, unless the
// caller says otherwise (as for the events of a response).
func (pc pduContext) flow(ex *exchange) policy.Direction {
	if pc.direction == "" {
		return ex.flow()
	}
	return pc.direction
}

func (pc pduContext) deliveredBy(ex *exchange) string {
	if pc.origin == "" {
		return ex.origin
	}
	return pc.origin
}

// redactedForm returns a checked PDU redacted by its room version's rules.
// Its event ID and signatures stay valid, so a homeserver stores it as a
// redacted event and accepts the events built on it.
func redactedForm(c *checkedPDU) canonicaljson.Value {
	return events.Redact(c.pdu.Event, c.rv)
}

// checkedPDU is the outcome of verifying and deciding one PDU.
type checkedPDU struct {
	record  *decisionlog.Record
	eventID string
	pdu     *events.PDU
	rv      *events.RoomVersion
	allowed bool
	// verifyFailed is set when the PDU failed format or signature checks,
	// as opposed to being denied by policy.
	verifyFailed bool
	reason       string
	// learn is the room version the PDU teaches once it is delivered.
	learn *store.Room
	// hashValid reports whether the content hash verified; when it did
	// not, policy saw only the redacted form.
	hashValid bool
}

// checkPDU resolves the room version of one PDU, verifies its format,
// content hash, signatures and event ID, and asks the PDU policy. The
// record says which of these failed.
func (g *Gateway) checkPDU(ctx context.Context, ex *exchange, raw canonicaljson.Value, pc pduContext) *checkedPDU {
	rec := g.newRecord(policy.KindPDU, ex)
	if pc.flow(ex) != ex.flow() {
		// An event of a response travels against its request.
		rec.Matrix.Direction = string(pc.flow(ex))
		rec.Matrix.Origin, rec.Matrix.Destination = rec.Matrix.Destination, rec.Matrix.Origin
	}
	c := &checkedPDU{record: rec}
	fail := func(reason string) *checkedPDU {
		c.verifyFailed, c.reason = true, reason
		rec.Action, rec.Allow = actionRejected, false
		rec.Error = reason
		rec.Result = map[string]any{"allow": false, "reasons": []string{reason}}
		return c
	}
	if raw.Kind() != canonicaljson.Object {
		return fail("PDU is not a JSON object")
	}
	roomID, _ := raw.GetString("room_id")
	eventType, _ := raw.GetString("type")
	rec.Matrix.RoomID, rec.Matrix.EventType = roomID, eventType
	rec.Matrix.Sender, _ = raw.GetString("sender")
	if id, ok := raw.GetString("event_id"); ok {
		rec.Matrix.EventID = id
	}

	rv, room, err := g.resolveRoomVersion(ex, raw, roomID, pc)
	rec.Matrix.RoomVersion, rec.Matrix.RoomVersionSource = room.Version, string(room.VersionSource)
	if err != nil {
		// The event ID the origin computed, under the version it states,
		// names the event in the answer.
		c.eventID = rec.Matrix.EventID
		if stated, ok := events.LookupRoomVersion(room.Version); ok {
			if id, idErr := events.EventID(raw, stated); idErr == nil {
				c.eventID, rec.Matrix.EventID = id, id
			}
		}
		return fail(err.Error())
	}
	c.rv = rv
	pdu, err := events.ParsePDUWith(raw, rv, events.ParseOptions{RelaxEdgeLimits: pc.relaxEdges})
	if err != nil {
		// The event ID still names the event in the origin's answer when
		// the format is wrong but the ID can be computed.
		if id, idErr := events.EventID(raw, rv); idErr == nil {
			c.eventID, rec.Matrix.EventID = id, id
		}
		return fail(err.Error())
	}
	c.pdu = pdu
	c.eventID, rec.Matrix.EventID = pdu.EventID, pdu.EventID
	res := events.VerifyWith(ctx, pdu, listedKeys{g}, events.VerifyOptions{Origin: pc.deliveredBy(ex)})
	c.eventID, rec.Matrix.EventID = res.EventID, res.EventID
	if res.Err != nil {
		return fail("event verification failed: " + res.Err.Error())
	}
	c.hashValid = res.ContentHashValid
	if err := checkCreateEvent(pdu, rv); err != nil {
		return fail(err.Error())
	}

	allowed, reason, err := g.decideItem(ctx, ex, policy.KindPDU, g.pduInput(ex, pc, room, pdu, res), rec)
	if err != nil {
		return fail("policy evaluation failed: " + err.Error())
	}
	c.allowed, c.reason = allowed, reason
	if !allowed {
		return c
	}
	c.learn = roomToLearn(pdu, rv)
	return c
}

func describeRoom(roomID string) string {
	if roomID == "" {
		return "the event's room"
	}
	return "room " + roomID
}

// pduInput builds the PDU policy input. The content is the redacted one
// when the content hash failed, so that policy never reads unverified
// content.
func (g *Gateway) pduInput(ex *exchange, pc pduContext, room policy.Room, pdu *events.PDU, res events.Result) *policy.PDUInput {
	now := g.now()
	in := policy.NewPDUInput(pc.flow(ex), now)
	in.Request, in.Origin, in.Destination, in.TLS = g.commonInput(ex, pc.flow(ex), now)
	in.Transaction = pc.transaction
	room.RoomID = pdu.RoomID
	in.Room = room

	content := pdu.Content
	if !res.ContentHashValid {
		content, _ = res.Redacted.Get("content")
	}
	contentMap, _ := content.Interface().(map[string]any)
	if contentMap == nil {
		contentMap = map[string]any{}
	}
	in.PDU = policy.PDU{
		EventID:        res.EventID,
		Type:           pdu.Type,
		StateKey:       pdu.StateKey,
		Sender:         pdu.Sender,
		SenderServer:   pdu.SenderServer,
		OriginServerTS: pdu.OriginServerTS,
		Content:        contentMap,
		Redacts:        pdu.Redacts,
		Depth:          pdu.Depth,
		PrevEvents:     pdu.PrevEvents,
		AuthEvents:     pdu.AuthEvents,
	}
	in.Verified = policy.Verified{
		Format:          true,
		Signatures:      true,
		ContentHash:     res.ContentHashValid,
		EventID:         true,
		SignedBy:        res.SignedBy,
		RedactedForHash: !res.ContentHashValid,
	}
	in.SenderEntry, in.SenderDenyEntry = g.lookupEntries(ex, pdu.SenderServer, now)
	in.SenderLocal = g.isLocal(pdu.SenderServer)
	return in
}

// isLocal reports whether serverName is one of the local server names.
func (g *Gateway) isLocal(serverName string) bool {
	for _, n := range g.cfg.ServerNames {
		if n == serverName {
			return true
		}
	}
	return false
}

// serverOf returns the server part of a user, room or alias ID, or "".
func serverOf(id string) string {
	s, err := servername.FromID(id)
	if err != nil {
		return ""
	}
	return s
}
