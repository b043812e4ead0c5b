package gateway

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/telemetry"
	"github.com/bordergate/bordergate/policy"
)

// maskFailureLogInterval is the minimum time between two log entries of
// mask policy failures; the failures in between are counted.
const maskFailureLogInterval = 10 * time.Second

// decisionLogCounters count what happens to decision records after the
// pipeline has decided.
type decisionLogCounters struct {
	maskFailures metric.Int64Counter
}

func newDecisionLogCounters(m *telemetry.Metrics) decisionLogCounters {
	return decisionLogCounters{
		maskFailures: m.Counter("bordergate_decision_log_mask_failures",
			"Decision records whose mask policy failed, written without input and result."),
	}
}

// maskPolicy is the gateway's decision-log mask policy: the
// data.system.log.mask rule of the enforced policy in force when a record
// is written, so that a reloaded mask rule applies from the next record
// on. A policy without that rule gets the default pointers of
// decisionlog.DefaultMaskRules, so that message bodies are never written
// because a custom policy left the mask out.
type maskPolicy struct {
	g *Gateway
}

// MaskRules returns the mask rules for rec.
func (p maskPolicy) MaskRules(ctx context.Context, rec *decisionlog.Record) ([]decisionlog.MaskRule, error) {
	set := p.g.currentPolicies()
	if set == nil || set.enforced == nil || !set.enforced.HasMaskRule() {
		return decisionlog.DefaultMaskRules(), nil
	}
	return set.enforced.MaskRules(ctx, rec)
}

// newMasker returns the Masker of the decision log: the mask policy, then
// the pointers of decision_log.mask.
func (g *Gateway) newMasker() (*decisionlog.Masker, error) {
	return decisionlog.NewPolicyMasker(maskPolicy{g: g}, g.cfg.DecisionLog.Mask, g.maskFailed)
}

// maskFailed counts a record whose mask policy failed and logs it, at most
// once per maskFailureLogInterval.
func (g *Gateway) maskFailed(rec *decisionlog.Record, err error) {
	g.logCounters.maskFailures.Add(context.Background(), 1)
	if suppressed, ok := g.maskFailureLog.Allow(time.Now()); ok {
		g.log.Error("decision record mask policy failed; input and result erased",
			keyDecisionID, rec.DecisionID, keyErr, err, keySuppressed, suppressed)
	}
}

// warnWithoutMaskRule logs that an enforced policy defines no mask rule.
func (g *Gateway) warnWithoutMaskRule(ctx context.Context, src *policySource, engine *policy.Engine) {
	if src.role != roleEnforced || engine.HasMaskRule() {
		return
	}
	g.log.WarnContext(ctx, "policy defines no "+policy.MaskRuleRef+" rule; records are masked with the default pointers",
		keySource, src.name(), keyRevision, engine.Revision())
}
