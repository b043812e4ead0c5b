package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/policy"
)

// inspectTemplate checks and decides the membership template of a
// make_join, make_knock or make_leave response, then learns the room
// version it states. Only the local homeserver's own templates skip the
// checks of their shape, because the gateway trusts that homeserver.
func (g *Gateway) inspectTemplate(ctx context.Context, ex *exchange, body []byte) error {
	v, err := canonicaljson.Parse(body)
	if err != nil {
		return wrapError(http.StatusBadGateway, codeUnknown, "membership template is not acceptable JSON", err)
	}
	if ex.flow() == policy.DirectionOutbound {
		if err := checkTemplate(ex, v); err != nil {
			return err
		}
	}
	if err := g.decideTemplate(ctx, ex, v); err != nil {
		return err
	}
	if version, ok := v.GetString("room_version"); ok {
		g.learnRoom(ctx, ex.match.Params["room_id"], version, policy.VersionSourceMakeJoin)
	}
	return nil
}

// checkTemplate applies the checks the Matrix specification requires of a
// server that receives a make_join, make_knock or make_leave template
// from a peer: the event must be the membership event of the user and
// room of the request, with the endpoint's membership. A template that is
// not is refused with 502, so the homeserver never signs it.
func checkTemplate(ex *exchange, v canonicaljson.Value) error {
	event, _ := v.Get("event")
	want := map[string]string{
		"room_id":   ex.match.Params["room_id"],
		"type":      "m.room.member",
		"sender":    ex.match.Params["user_id"],
		"state_key": ex.match.Params["user_id"],
	}
	for field, value := range want {
		if got, _ := event.GetString(field); got != value {
			return newError(http.StatusBadGateway, codeUnknown,
				fmt.Sprintf("membership template %s is %q, not %q", field, got, value))
		}
	}
	membership := strings.TrimPrefix(ex.endpointID(), "make_")
	content, _ := event.Get("content")
	if got, _ := content.GetString("membership"); got != membership {
		return newError(http.StatusBadGateway, codeUnknown,
			fmt.Sprintf("membership template membership is %q, not %q", got, membership))
	}
	return nil
}

// decideTemplate evaluates the PDU policy on the membership template of a
// make_join, make_knock or make_leave response, which travels against its
// request. The template is not yet hashed or signed, so the policy sees
// it marked as a template whose format matched the request; a denied
// template refuses the answer with 403.
func (g *Gateway) decideTemplate(ctx context.Context, ex *exchange, v canonicaljson.Value) error {
	event, _ := v.Get("event")
	version, _ := v.GetString("room_version")
	flow := opposite(ex.flow())

	rec := g.newRecord(policy.KindPDU, ex)
	rec.Matrix.Direction = string(flow)
	rec.Matrix.Origin, rec.Matrix.Destination = rec.Matrix.Destination, rec.Matrix.Origin
	rec.Matrix.EventType, _ = event.GetString("type")
	rec.Matrix.Sender, _ = event.GetString("sender")
	rec.Matrix.RoomVersion, rec.Matrix.RoomVersionSource = version, string(policy.VersionSourceMakeJoin)
	ex.items = append(ex.items, rec)

	now := g.now()
	in := policy.NewPDUInput(flow, now)
	in.Request, in.Origin, in.Destination, in.TLS = g.commonInput(ex, flow, now)
	in.Room = policy.Room{RoomID: ex.match.Params["room_id"], Version: version, VersionSource: policy.VersionSourceMakeJoin}
	in.PDU = templatePDU(event)
	in.Verified = policy.Verified{Format: true, Template: true}
	in.SenderEntry, in.SenderDenyEntry = g.lookupEntries(ex, in.PDU.SenderServer, now)
	in.SenderLocal = g.isLocal(in.PDU.SenderServer)

	allowed, reason, err := g.decideItem(ctx, ex, policy.KindPDU, in, rec)
	if err != nil {
		rec.Action, rec.Error = actionRejected, err.Error()
		return wrapError(http.StatusInternalServerError, codeUnknown, "policy evaluation failed", err)
	}
	if !allowed {
		return newError(http.StatusForbidden, codeForbidden, "membership template "+reason)
	}
	rec.Action = actionForward
	return nil
}

// templatePDU returns the policy view of a membership template.
func templatePDU(event canonicaljson.Value) policy.PDU {
	pdu := policy.PDU{}
	pdu.Type, _ = event.GetString("type")
	pdu.Sender, _ = event.GetString("sender")
	pdu.SenderServer = serverOf(pdu.Sender)
	if key, ok := event.GetString("state_key"); ok {
		pdu.StateKey = &key
	}
	if ts, ok := event.Get("origin_server_ts"); ok {
		pdu.OriginServerTS, _ = ts.Int()
	}
	if depth, ok := event.Get("depth"); ok {
		pdu.Depth, _ = depth.Int()
	}
	content, _ := event.Get("content")
	pdu.Content, _ = content.Interface().(map[string]any)
	if pdu.Content == nil {
		pdu.Content = map[string]any{}
	}
	return pdu
}
