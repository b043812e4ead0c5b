package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// Actions recorded in decision records; see the decisionlog constants.
const (
	actionForward  = decisionlog.ActionForward
	actionWithheld = decisionlog.ActionWithheld
	actionDenied   = decisionlog.ActionDenied
	actionRejected = decisionlog.ActionRejected
	actionAnswered = decisionlog.ActionAnswered
)

// requestRecord returns the record of the exchange's request decision,
// creating it on first use.
func (g *Gateway) requestRecord(ex *exchange) *decisionlog.Record {
	if ex.request == nil {
		ex.request = g.newRecord(policy.KindRequest, ex)
	}
	return ex.request
}

func (g *Gateway) newRecord(kind policy.Kind, ex *exchange) *decisionlog.Record {
	rec := decisionlog.NewRecord(ex.policies.enforced.Path(kind))
	rec.Timestamp = g.now().UTC()
	rec.Bundles = ex.policies.bundles()
	rec.Matrix = &decisionlog.Matrix{
		Direction:   string(ex.flow()),
		Origin:      ex.origin,
		Destination: ex.destinationName(g),
		Endpoint:    ex.endpointID(),
		Method:      ex.r.Method,
		TxnID:       ex.match.Params["txn_id"],
		RoomID:      ex.match.Params["room_id"],
		EventID:     ex.match.Params["event_id"],
	}
	return rec
}

func (ex *exchange) destinationName(g *Gateway) string {
	if ex.destination != "" {
		return ex.destination
	}
	return g.cfg.ServerNames[0]
}

// flow returns the direction of the exchange's request.
func (ex *exchange) flow() policy.Direction {
	if ex.direction == "" {
		return policy.DirectionInbound
	}
	return ex.direction
}

// parties returns the origin and destination of an item that travels in
// direction flow within the exchange. The remote peer, with its allow-list
// entry, is the origin of what comes in and the destination of what goes
// out, which is how the default policy finds the peer.
func (g *Gateway) parties(ex *exchange, flow policy.Direction, now time.Time) (policy.Origin, policy.Destination) {
	local, remote := ex.destinationName(g), ex.origin
	if ex.flow() == policy.DirectionOutbound {
		local, remote = ex.origin, ex.destination
	}
	var entry, denyEntry *policy.AllowlistEntry
	if ex.listed {
		entry = policyEntry(ex.entry, now)
	}
	if ex.denied != nil {
		denyEntry = policyEntry(*ex.denied, now)
	}
	if flow == policy.DirectionInbound {
		origin := policy.Origin{ServerName: remote, Allowlisted: ex.listed, Entry: entry, DenyEntry: denyEntry}
		if ex.flow() == policy.DirectionInbound {
			origin.KeyID, origin.KeySource = ex.keyID, policy.KeySource(ex.keySource)
		}
		return origin, policy.Destination{ServerName: local}
	}
	origin := policy.Origin{ServerName: local}
	if ex.flow() == policy.DirectionOutbound {
		origin.KeyID, origin.KeySource = ex.keyID, policy.KeySource(ex.keySource)
	}
	return origin, policy.Destination{ServerName: remote, Allowlisted: ex.listed, Entry: entry, DenyEntry: denyEntry}
}

// finish writes every record of the exchange, the items first, and waits
// until they are durable as the decision log's sync mode promises. It runs
// once per exchange, before the response that depends on the records. An
// error means some record is not durable; the caller must then not forward
// anything.
func (g *Gateway) finish(ctx context.Context, ex *exchange) error {
	if ex.request == nil && len(ex.items) == 0 {
		return nil
	}
	records := ex.items
	if ex.request != nil {
		records = append(records, ex.request)
	}
	ex.items, ex.request = nil, nil
	ex.shadows.attach(records)
	return g.writeRecords(ctx, records)
}

// requestInput builds the request policy input from what the pipeline
// verified so far.
func (g *Gateway) requestInput(ex *exchange) *policy.RequestInput {
	now := g.now()
	in := policy.NewRequestInput(ex.flow(), now)
	in.Request, in.Origin, in.Destination, in.TLS = g.commonInput(ex, ex.flow(), now)
	return in
}

// commonInput returns the parts of every policy input that describe the
// request and the parties of an item travelling in direction flow, with
// allow-list entries judged at now.
func (g *Gateway) commonInput(ex *exchange, flow policy.Direction, now time.Time) (policy.Request, policy.Origin, policy.Destination, policy.TLS) {
	origin, dest := g.parties(ex, flow, now)
	return ex.policyRequest(), origin, dest, ex.tls
}

func (ex *exchange) policyRequest() policy.Request {
	size := int64(len(ex.body))
	if ex.body == nil && ex.r.ContentLength > 0 {
		// The body was not read, so its declared size is used.
		size = ex.r.ContentLength
	}
	return policy.Request{
		Method:        ex.r.Method,
		Path:          ex.match.RawPath,
		Query:         ex.match.RawQuery,
		Endpoint:      ex.endpointID(),
		PathParams:    ex.match.Params,
		Authenticated: ex.authenticated,
		BodySize:      size,
	}
}

// policyEntry converts an allow-list entry to its policy input form, with
// its expiry judged at now.
func policyEntry(e store.Entry, now time.Time) *policy.AllowlistEntry {
	out := &policy.AllowlistEntry{
		ServerName:     e.ServerName,
		Administration: e.Administration,
		PinnedKeys:     e.PinnedKeys,
		RevokedKeys:    e.RevokedKeys,
		Address:        e.Address,
		RequireMTLS:    e.RequireMTLS,
		Endpoints:      e.Endpoints,
		EventTypes:     e.EventTypes,
		Labels:         e.Labels,
		Deny:           e.Deny,
		Note:           e.Note,
		Source:         e.Source,
		ChangedBy:      e.ChangedBy,
	}
	if e.Expires != nil {
		out.Expires = e.Expires.UTC().Format(time.RFC3339)
		out.Expired = e.Expired(now)
	}
	if e.ChangedAt != nil {
		out.ChangedAt = e.ChangedAt.UTC().Format(time.RFC3339)
	}
	return out
}

// lookupEntries returns the policy form of a server's allow entry and of
// its deny entry, with expiry judged at now, each nil when the server has
// none. A server with a deny entry has no allow entry. The exchange's peer,
// the sender of most events in a transaction, reuses the match made when
// the exchange was authenticated, so that all its items see one allow-list.
func (g *Gateway) lookupEntries(ex *exchange, serverName string, now time.Time) (allow, deny *policy.AllowlistEntry) {
	if serverName == "" {
		return nil, nil
	}
	m := store.Match{}
	if ex.peerMatched && serverName == ex.peer() {
		if ex.listed {
			m.Allow = &ex.entry
		}
		m.Deny = ex.denied
	} else {
		m = g.store.Match(serverName)
	}
	if m.Allow != nil {
		allow = policyEntry(*m.Allow, now)
	}
	if m.Deny != nil {
		deny = policyEntry(*m.Deny, now)
	}
	return allow, deny
}

// matchPeer looks up the allow-list entries of the exchange's peer.
func (ex *exchange) matchPeer(g *Gateway, serverName string) {
	m := g.store.Match(serverName)
	ex.peerMatched = true
	ex.entry, ex.listed, ex.denied = store.Entry{}, m.Allow != nil, m.Deny
	if m.Allow != nil {
		ex.entry = *m.Allow
	}
}

// peer returns the remote server of the exchange: the origin of an
// inbound request, the destination of an outbound one.
func (ex *exchange) peer() string {
	if ex.flow() == policy.DirectionOutbound {
		return ex.destination
	}
	return ex.origin
}

// denyMessage is the error message for a server that a deny entry refuses.
func denyMessage(serverName string, deny store.Entry) string {
	msg := fmt.Sprintf("%s is denied by allow-list entry %s", serverName, deny.ServerName)
	if deny.Note != "" {
		msg += " (" + deny.Note + ")"
	}
	return msg
}

// decideItem evaluates the policy of kind for one PDU or EDU and records
// the input and decision in rec. A denied item gets action "denied" and a
// reason for the response.
func (g *Gateway) decideItem(ctx context.Context, ex *exchange, kind policy.Kind, input any, rec *decisionlog.Record) (bool, string, error) {
	rec.Input = input
	decision, err := g.decide(ctx, ex, kind, input, rec)
	if err != nil {
		return false, "", err
	}
	rec.Result, rec.Allow = decisionResult(decision), decision.Allow
	if !decision.Allow {
		rec.Action = actionDenied
		return false, "denied by policy: " + joinReasons(decision.Reasons), nil
	}
	return true, "", nil
}
