package gateway

import (
	"context"
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

const directionInbound = "inbound"

// requestRecord returns the record of the exchange's request decision,
// creating it on first use.
func (g *Gateway) requestRecord(ex *exchange) *decisionlog.Record {
	if ex.request == nil {
		ex.request = g.newRecord(policy.KindRequest, ex)
	}
	return ex.request
}

func (g *Gateway) newRecord(kind policy.Kind, ex *exchange) *decisionlog.Record {
	rec := decisionlog.NewRecord(g.policy.Path(kind))
	rec.Timestamp = g.now().UTC()
	rec.Bundles = decisionlog.PolicyBundles(g.policy.Revision())
	rec.Matrix = &decisionlog.Matrix{
		Direction:   directionInbound,
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

// finish writes every record of the exchange, the items first, and waits
// until they are durable as the decision log's sync mode promises. It runs
// once per exchange, before the answer that depends on the records. An
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
	return g.writeRecords(ctx, records)
}

// requestInput builds the request policy input from what the pipeline
// verified so far.
func (g *Gateway) requestInput(ex *exchange) *policy.RequestInput {
	in := policy.NewRequestInput(policy.DirectionInbound, g.now())
	in.Request, in.Origin, in.Destination, in.TLS = g.commonInput(ex)
	return in
}

// commonInput returns the parts of every policy input that describe the
// request itself.
func (g *Gateway) commonInput(ex *exchange) (policy.Request, policy.Origin, policy.Destination, policy.TLS) {
	dest := policy.Destination{ServerName: ex.destinationName(g)}
	return ex.policyRequest(), ex.policyOrigin(), dest, ex.tls
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

func (ex *exchange) policyOrigin() policy.Origin {
	o := policy.Origin{
		ServerName:  ex.origin,
		KeyID:       ex.keyID,
		KeySource:   policy.KeySource(ex.keySource),
		Allowlisted: ex.listed,
	}
	if ex.listed {
		o.Entry = policyEntry(ex.entry)
	}
	return o
}

// policyEntry converts an allow-list entry to its policy input form.
func policyEntry(e store.Entry) *policy.AllowlistEntry {
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
	}
	if e.Expires != nil {
		out.Expires = e.Expires.UTC().Format(time.RFC3339)
	}
	return out
}

// lookupEntry returns the policy form of a server's allow-list entry, nil
// when it has none.
func (g *Gateway) lookupEntry(serverName string) *policy.AllowlistEntry {
	if serverName == "" {
		return nil
	}
	e, ok := g.store.Lookup(serverName)
	if !ok {
		return nil
	}
	return policyEntry(e)
}
