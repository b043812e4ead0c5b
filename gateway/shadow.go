package gateway

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// Outcomes of a shadow decision, in records and counters.
const (
	shadowWouldAllow = "would allow"
	shadowWouldDeny  = "would deny"
	shadowError      = "error"
)

// shadowOutcome is the shadow policy's decision on one item, recorded
// under result.shadow of the item's decision record.
type shadowOutcome struct {
	// Outcome is "would allow", "would deny" or "error".
	Outcome string `json:"outcome"`
	// Revision is the shadow policy's revision.
	Revision string `json:"revision"`
	// Allow and Reasons are the shadow policy's decision.
	Allow   bool     `json:"allow"`
	Reasons []string `json:"reasons"`
	// Agrees reports whether the shadow policy's allow equals the enforced
	// policy's. It is absent when either evaluation failed.
	Agrees *bool `json:"agrees,omitempty"`
	// Error is the error of a failed shadow evaluation.
	Error string `json:"error,omitempty"`
	// Result is the shadow policy's whole decision object.
	Result map[string]any `json:"result,omitempty"`
}

// shadowOutcomes keeps the shadow outcomes of an exchange's records until
// the records are written. PDUs are decided on several goroutines.
type shadowOutcomes struct {
	mu       sync.Mutex // guards byRecord
	byRecord map[*decisionlog.Record]*shadowOutcome

	// timedOut is set once a shadow decision of the exchange ran past
	// policy.shadow.timeout. The exchange's later items are then not
	// shadowed, so that the candidate delays an exchange once at most.
	timedOut atomic.Bool
}

func (s *shadowOutcomes) put(rec *decisionlog.Record, outcome *shadowOutcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byRecord == nil {
		s.byRecord = map[*decisionlog.Record]*shadowOutcome{}
	}
	s.byRecord[rec] = outcome
}

// attach adds the shadow outcome of each record to its result, once the
// pipeline has set the result for good.
func (s *shadowOutcomes) attach(records []*decisionlog.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range records {
		outcome, ok := s.byRecord[rec]
		if !ok {
			continue
		}
		delete(s.byRecord, rec)
		result := map[string]any{}
		if current, ok := rec.Result.(map[string]any); ok {
			result = maps.Clone(current)
		}
		result[policy.ShadowMember] = outcome
		rec.Result = result
	}
}

// decide evaluates the exchange's enforced policy of kind on input. When
// the exchange's shadow policy covers kind, it evaluates that too and
// keeps its outcome for rec. The shadow policy never changes the returned
// decision or error.
func (g *Gateway) decide(ctx context.Context, ex *exchange, kind policy.Kind, input any, rec *decisionlog.Record) (policy.Decision, error) {
	set := ex.policies
	decision, err := set.enforced.Decide(ctx, kind, input)
	if set.shadowing(kind) {
		g.decideShadow(ctx, ex, set, kind, input, rec, decision, err)
	}
	return decision, err
}

// decideShadow evaluates the shadow policy and counts its outcome. A
// panic in the evaluation is recovered and recorded as an error, and so
// is an evaluation that runs past policy.shadow.timeout, which is stopped.
func (g *Gateway) decideShadow(ctx context.Context, ex *exchange, set *policySet, kind policy.Kind, input any, rec *decisionlog.Record,
	enforced policy.Decision, enforcedErr error) {
	outcome := &shadowOutcome{Revision: set.shadow.Revision()}
	timeout := g.cfg.Policy.Shadow.Timeout
	if ex.shadows.timedOut.Load() {
		outcome.Outcome = shadowError
		outcome.Error = fmt.Sprintf("not evaluated: an earlier shadow decision of this exchange ran past policy.shadow.timeout (%s)", timeout)
	} else {
		g.evaluateShadow(ctx, ex, set, kind, input, timeout, outcome)
	}
	if outcome.Outcome == shadowError {
		outcome.Allow, outcome.Reasons, outcome.Result = false, []string{}, nil
	}
	ex.shadows.put(rec, outcome)

	kindAttr := attribute.String("kind", string(kind))
	g.counters.shadowDecisions.Add(ctx, 1, metric.WithAttributes(kindAttr, attribute.String("outcome", counterOutcome(outcome.Outcome))))
	if outcome.Outcome == shadowError {
		g.log.WarnContext(ctx, "shadow policy evaluation failed; the enforced decision stands",
			keyKind, string(kind), keyDecisionID, rec.DecisionID, keyErr, outcome.Error)
		return
	}
	if enforcedErr != nil {
		return
	}
	agrees := outcome.Allow == enforced.Allow
	outcome.Agrees = &agrees
	if !agrees {
		enforcedOutcome := "deny"
		if enforced.Allow {
			enforcedOutcome = "allow"
		}
		g.counters.shadowDisagreements.Add(ctx, 1, metric.WithAttributes(kindAttr, attribute.String("enforced", enforcedOutcome)))
	}
}

// evaluateShadow runs the shadow policy on input within timeout and fills
// outcome with its decision or its error.
func (g *Gateway) evaluateShadow(ctx context.Context, ex *exchange, set *policySet, kind policy.Kind, input any,
	timeout time.Duration, outcome *shadowOutcome) {
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			outcome.Outcome, outcome.Error = shadowError, fmt.Sprintf("shadow evaluation panicked: %v", r)
		}
	}()
	decision, err := set.shadow.Decide(ctx, kind, input)
	switch {
	case err != nil && ctx.Err() != nil && parent.Err() == nil:
		ex.shadows.timedOut.Store(true)
		outcome.Outcome = shadowError
		outcome.Error = fmt.Sprintf("stopped: the shadow decision ran past policy.shadow.timeout (%s)", timeout)
	case err != nil:
		outcome.Outcome, outcome.Error = shadowError, err.Error()
	case decision.Allow:
		outcome.Outcome = shadowWouldAllow
	default:
		outcome.Outcome = shadowWouldDeny
	}
	outcome.Allow, outcome.Reasons, outcome.Result = decision.Allow, decision.Reasons, decision.Result
}

// counterOutcome turns an outcome into a metric attribute value, such as
// "would_deny".
func counterOutcome(outcome string) string {
	switch outcome {
	case shadowWouldAllow:
		return "would_allow"
	case shadowWouldDeny:
		return "would_deny"
	}
	return outcome
}
