package gateway

import (
	"context"
	"fmt"
	"net/http"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/routes"
	"github.com/bordergate/bordergate/policy"
)

// Actions of PDUs in responses. A response is not signed as a whole, so
// the gateway acts on each of its events.
const (
	// actionRedacted: policy denied the event's content; the event was
	// passed on in its room version's redacted form, which keeps its event
	// ID and signatures valid.
	actionRedacted = decisionlog.ActionRedacted
	// actionRemoved: the event failed verification, or policy denied it
	// outright (its decision has "remove": true), so it was left out.
	actionRemoved = decisionlog.ActionRemoved
)

// responseFilter verifies and decides the PDUs of one response body.
type responseFilter struct {
	g  *Gateway
	ex *exchange
	// direction is the way the response's events travel: outbound for the
	// local homeserver's answers to peers, inbound for peers' answers.
	direction policy.Direction
	// responder is the server that sent the response.
	responder string
	// changed is set when an event was redacted or removed.
	changed bool
}

// filterResponse returns the body to pass on in place of a successful
// response that carries PDUs: every PDU verified and decided, denied
// content redacted, events denied outright or failing verification
// removed. A body that is not JSON of the expected shape is refused, so
// that nothing unchecked passes.
func (g *Gateway) filterResponse(ctx context.Context, ex *exchange, direction policy.Direction, responder string, body []byte) ([]byte, error) {
	route := ex.match.Route
	if len(route.ResponsePDUs) == 0 {
		return body, nil
	}
	v, err := canonicaljson.ParseWith(body, canonicaljson.Options{MaxValues: maxResponseValues})
	if err != nil {
		return nil, wrapError(http.StatusBadGateway, codeUnknown, "response is not acceptable JSON", err)
	}
	f := &responseFilter{g: g, ex: ex, direction: direction, responder: responder}
	object := v
	if route.ArrayResponse {
		// The version 1 membership endpoints answer [200, {...}].
		if v.Kind() != canonicaljson.Array || v.Len() != 2 {
			return nil, newError(http.StatusBadGateway, codeUnknown, "response is not a [status, object] array")
		}
		object = v.Items()[1]
	}
	if object.Kind() != canonicaljson.Object {
		return nil, newError(http.StatusBadGateway, codeUnknown, "response is not a JSON object")
	}
	for _, field := range route.ResponsePDUs {
		if object, err = f.filterField(ctx, object, field); err != nil {
			return nil, err
		}
	}
	if !f.changed {
		return body, nil
	}
	if route.ArrayResponse {
		object = canonicaljson.ArrayValue(v.Items()[0], object)
	}
	return canonicaljson.Encode(object), nil
}

// maxResponseValues caps the JSON values of a response the gateway reads:
// state and backfill answers of large rooms hold many events.
const maxResponseValues = 1 << 22

// filterField filters the PDUs under one member of the response.
func (f *responseFilter) filterField(ctx context.Context, object canonicaljson.Value, field routes.PDUField) (canonicaljson.Value, error) {
	member, ok := object.Get(field.Name)
	if !ok {
		return object, nil
	}
	if !field.Array {
		kept, keep := f.filterPDU(ctx, member, field)
		if !keep {
			f.changed = true
			return object.Without(field.Name), nil
		}
		return object.With(field.Name, kept), nil
	}
	if member.Kind() != canonicaljson.Array {
		return object, newError(http.StatusBadGateway, codeUnknown, fmt.Sprintf("response member %s is not an array", field.Name))
	}
	items := make([]canonicaljson.Value, 0, member.Len())
	for _, raw := range member.Items() {
		if kept, keep := f.filterPDU(ctx, raw, field); keep {
			items = append(items, kept)
		} else {
			f.changed = true
		}
	}
	return object.With(field.Name, canonicaljson.ArrayValue(items...)), nil
}

// filterPDU returns the form of one PDU to pass on, and false when it must
// be left out.
func (f *responseFilter) filterPDU(ctx context.Context, raw canonicaljson.Value, field routes.PDUField) (canonicaljson.Value, bool) {
	if field.Stripped && isStrippedState(raw) {
		// A stripped state event carries no signature to check; it is
		// passed on as the homeserver would receive it anyway.
		return raw, true
	}
	pc := pduContext{direction: f.direction, origin: f.responder, relaxEdges: true}
	checked := f.g.checkPDU(ctx, f.ex, raw, pc)
	f.ex.items = append(f.ex.items, checked.record)
	rec := checked.record
	switch {
	case checked.verifyFailed:
		rec.Action = actionRemoved
		return canonicaljson.Value{}, false
	case checked.allowed && checked.hashValid:
		rec.Action = actionForward
		kept, stripped := withoutUnsigned(raw)
		f.changed = f.changed || stripped
		return kept, true
	case checked.allowed:
		// Policy judged the redacted form, so that is what passes.
		rec.Action = actionRedacted
		f.changed = true
		return redactedForm(checked), true
	case removeDecision(rec.Result):
		rec.Action = actionRemoved
		return canonicaljson.Value{}, false
	}
	rec.Action = actionRedacted
	f.changed = true
	return redactedForm(checked), true
}

// removeDecision reports whether a denying decision says to leave the event
// out rather than pass it on redacted.
func removeDecision(result any) bool {
	m, ok := result.(map[string]any)
	if !ok {
		return false
	}
	remove, _ := m["remove"].(bool)
	return remove
}

// withoutUnsigned returns an event of a response without the members of
// `unsigned` that can carry other events (invite_room_state and the like),
// which no signature covers and no decision has seen; only `age` is kept.
// It reports whether anything was removed.
func withoutUnsigned(raw canonicaljson.Value) (canonicaljson.Value, bool) {
	unsigned, ok := raw.Get("unsigned")
	if !ok {
		return raw, false
	}
	age, hasAge := unsigned.Get("age")
	if hasAge && age.Kind() == canonicaljson.Number {
		if unsigned.Len() == 1 {
			return raw, false
		}
		return raw.With("unsigned", canonicaljson.ObjectValue(canonicaljson.Member{Key: "age", Value: age})), true
	}
	return raw.Without("unsigned"), true
}
