package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// Transaction limits of PUT /_matrix/federation/v1/send.
const (
	maxTransactionPDUs = 50
	maxTransactionEDUs = 100
)

// transaction is the envelope of a /send body.
type transaction struct {
	txnID string
	pdus  []canonicaljson.Value
	edus  []canonicaljson.Value
}

// itemOutcome is the decision on one PDU or EDU of a transaction, kept
// apart from what is sent onward.
type itemOutcome struct {
	record *decisionlog.Record
	// eventID is empty for EDUs and for PDUs whose ID cannot be computed.
	eventID string
	allowed bool
	// reason explains a refusal in the per-PDU answer.
	reason string
	// raw is the item as the transaction carried it, and edu tells an EDU
	// from a PDU, for re-signed transactions.
	raw canonicaljson.Value
	edu bool
}

// handleTransaction decides every PDU and EDU of a /send. When all are
// allowed, the body is forwarded unchanged. Otherwise nothing is forwarded,
// because the origin's signature covers the whole body, and the origin
// gets 200 with an error for each PDU.
func (g *Gateway) handleTransaction(ctx context.Context, ex *exchange, w http.ResponseWriter) error {
	txn, err := parseTransaction(ex)
	if err != nil {
		return err
	}
	outcomes := g.checkTransactionPDUs(ctx, ex, txn)
	for i, raw := range txn.edus {
		o := g.checkEDU(ctx, ex, txn, i, raw)
		o.raw, o.edu = raw, true
		outcomes = append(outcomes, o)
	}
	var refusals []string
	for _, o := range outcomes {
		ex.items = append(ex.items, o.record)
		if !o.allowed {
			refusals = append(refusals, o.record.DecisionID)
		}
	}
	if len(refusals) == 0 {
		return g.forwardTransaction(ctx, ex, w, outcomes)
	}
	if g.canResign(ctx, ex, outcomes) {
		return g.resignTransaction(ctx, ex, w, txn, outcomes)
	}
	return g.withholdTransaction(ctx, ex, w, outcomes, refusals)
}

// parseTransaction checks the envelope. Problems with single PDUs or EDUs
// never fail the envelope; they are decided item by item.
func parseTransaction(ex *exchange) (*transaction, error) {
	body := ex.content
	origin, ok := body.GetString("origin")
	if !ok {
		return nil, newError(http.StatusBadRequest, codeBadJSON, "transaction has no string origin")
	}
	if origin != ex.origin {
		return nil, newError(http.StatusForbidden, codeForbidden,
			fmt.Sprintf("transaction origin %q does not match the authenticated origin %q", origin, ex.origin))
	}
	if ts, ok := body.Get("origin_server_ts"); !ok || ts.Kind() != canonicaljson.Number {
		return nil, newError(http.StatusBadRequest, codeBadJSON, "transaction has no numeric origin_server_ts")
	}
	pdus, ok := body.Get("pdus")
	if !ok || pdus.Kind() != canonicaljson.Array {
		return nil, newError(http.StatusBadRequest, codeBadJSON, "transaction has no pdus array")
	}
	if pdus.Len() > maxTransactionPDUs {
		return nil, newError(http.StatusBadRequest, codeBadJSON,
			fmt.Sprintf("transaction has %d PDUs; at most %d are allowed", pdus.Len(), maxTransactionPDUs))
	}
	txn := &transaction{txnID: ex.match.Params["txn_id"], pdus: pdus.Items()}
	if edus, ok := body.Get("edus"); ok {
		if edus.Kind() != canonicaljson.Array {
			return nil, newError(http.StatusBadRequest, codeBadJSON, "transaction edus is not an array")
		}
		if edus.Len() > maxTransactionEDUs {
			return nil, newError(http.StatusBadRequest, codeBadJSON,
				fmt.Sprintf("transaction has %d EDUs; at most %d are allowed", edus.Len(), maxTransactionEDUs))
		}
		txn.edus = edus.Items()
	}
	return txn, nil
}

func (txn *transaction) policyInfo() policy.Transaction {
	return policy.Transaction{TxnID: txn.txnID, PDUCount: len(txn.pdus), EDUCount: len(txn.edus)}
}

// checkTransactionPDUs verifies and decides the PDUs of a transaction, in
// their order. The checks run on all cores at once unless the transaction
// holds a create event, whose room version later PDUs of the same
// transaction may need: such transactions are checked one PDU after the
// other.
func (g *Gateway) checkTransactionPDUs(ctx context.Context, ex *exchange, txn *transaction) []*itemOutcome {
	outcomes := make([]*itemOutcome, len(txn.pdus), len(txn.pdus)+len(txn.edus))
	if len(txn.pdus) < 2 || holdsCreateEvent(txn.pdus) {
		for i, raw := range txn.pdus {
			outcomes[i] = g.checkTransactionPDU(ctx, ex, txn, i, raw)
		}
		return outcomes
	}
	workers := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, raw := range txn.pdus {
		wg.Add(1)
		workers <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-workers }()
			defer g.recoverPDU(ex, i, &outcomes[i])
			outcomes[i] = g.checkTransactionPDU(ctx, ex, txn, i, raw)
		}()
	}
	wg.Wait()
	return outcomes
}

// recoverPDU turns a panic while checking PDU index of a transaction into
// a refusal of that PDU, so that a fault in one check withholds the
// transaction instead of crashing the gateway. net/http recovers panics in
// handlers, but not in the goroutines a handler starts.
func (g *Gateway) recoverPDU(ex *exchange, index int, outcome **itemOutcome) {
	r := recover()
	if r == nil {
		return
	}
	reason := fmt.Sprintf("internal error while checking PDU %d of the transaction", index)
	g.log.Error("PDU check panicked", keyOrigin, ex.origin, keyReason, reason, keyErr, fmt.Sprint(r), keyStack, string(debug.Stack()))
	rec := g.newRecord(policy.KindPDU, ex)
	rec.Action, rec.Allow, rec.Error = actionRejected, false, reason
	rec.Result = map[string]any{"allow": false, "reasons": []string{reason}}
	*outcome = &itemOutcome{record: rec, reason: reason}
}

func holdsCreateEvent(pdus []canonicaljson.Value) bool {
	for _, raw := range pdus {
		if t, _ := raw.GetString("type"); t == eventTypeCreate {
			return true
		}
	}
	return false
}

// checkTransactionPDU verifies and decides one PDU of a transaction. It
// only changes the exchange when the PDU teaches a room version, which
// happens only in the sequential path.
func (g *Gateway) checkTransactionPDU(ctx context.Context, ex *exchange, txn *transaction, index int, raw canonicaljson.Value) *itemOutcome {
	checked := g.checkPDU(ctx, ex, raw, pduContext{transaction: txn.policyInfo()})
	if checked.learn != nil {
		ex.pending = append(ex.pending, *checked.learn)
	}
	o := &itemOutcome{record: checked.record, eventID: checked.eventID, allowed: checked.allowed, reason: checked.reason, raw: raw}
	if o.eventID == "" {
		o.record.Error = appendNote(o.record.Error, fmt.Sprintf("PDU %d of the transaction has no computable event ID", index))
	}
	return o
}

func appendNote(existing, note string) string {
	if existing == "" {
		return note
	}
	return existing + "; " + note
}

// forwardTransaction passes the unchanged body to the homeserver and its
// answer, per-PDU results included, back to the origin.
func (g *Gateway) forwardTransaction(ctx context.Context, ex *exchange, w http.ResponseWriter, outcomes []*itemOutcome) error {
	for _, o := range outcomes {
		o.record.Action = actionForward
	}
	rec := g.requestRecord(ex)
	rec.Action = actionForward
	if err := g.commitItems(ctx, ex); err != nil {
		return err
	}
	resp, err := fetch(ctx, g.upstreamFor(ex), ex, ex.body, ex.authHeaders, maxResponseBytes)
	if err != nil {
		return err
	}
	if err := g.delivered(ctx, ex, resp.status); err != nil {
		return err
	}
	writeForwarded(w, resp, rec.DecisionID)
	return nil
}

// withholdTransaction answers the origin itself: 200 with an error for
// every PDU, so that the origin does not retry the transaction, and a
// record for every withheld item saying why.
func (g *Gateway) withholdTransaction(ctx context.Context, ex *exchange, w http.ResponseWriter, outcomes []*itemOutcome, refusals []string) error {
	pdus := make(map[string]any, len(outcomes))
	for _, o := range outcomes {
		if o.allowed {
			o.record.Action = actionWithheld
			o.record.WithheldBy = refusals[0]
			o.reason = fmt.Sprintf("withheld: another item of this transaction was refused (decision_id %s)", refusals[0])
		}
		if o.eventID == "" {
			continue
		}
		pdus[o.eventID] = map[string]string{"error": o.reason, "decision_id": o.record.DecisionID}
	}
	rec := g.requestRecord(ex)
	rec.Action = actionAnswered
	rec.Status = http.StatusOK
	rec.WithheldBy = refusals[0]
	// The 200 tells the origin not to send these PDUs again, so it is only
	// sent once the records saying why are durable.
	if err := g.finish(ctx, ex); err != nil {
		return err
	}
	w.Header().Set(headerDecisionID, rec.DecisionID)
	writeJSON(w, http.StatusOK, map[string]any{"pdus": pdus})
	return nil
}

// writeRecords writes records and returns once all are written. The
// records are encoded by one goroutine per core, each writing its share as
// one batch, so that the decision log commits them together with one fsync.
func (g *Gateway) writeRecords(ctx context.Context, records []*decisionlog.Record) error {
	ctx = context.WithoutCancel(ctx)
	shares := min(runtime.GOMAXPROCS(0), len(records))
	var wg sync.WaitGroup
	errs := make([]error, shares)
	for i := range shares {
		share := records[len(records)*i/shares : len(records)*(i+1)/shares]
		wg.Go(func() {
			if err := g.decisions.WriteBatch(ctx, share); err != nil {
				g.log.Error("decision records not written", keyCount, len(share), keyErr, err)
				errs[i] = err
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return wrapError(http.StatusServiceUnavailable, codeUnknown, "decision log unavailable", err)
	}
	return nil
}
