package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/topdown/print"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// MaskRuleRef is the rule of a decision-log mask policy, at the path where
// Open Policy Agent looks for it. Its input is the decision record before
// masking, and its value is a set (or array) of JSON pointers to erase and
// of objects {"op": "upsert", "path": POINTER, "value": VALUE} that replace
// a value. An object with "op": "remove", or without op, erases its path.
const MaskRuleRef = "data.system.log.mask"

// Errors of [Engine.MaskRules].
var (
	// ErrNoMaskRule means that the policy defines no data.system.log.mask
	// rule, so it has no opinion on masking.
	ErrNoMaskRule = errors.New("policy defines no " + MaskRuleRef + " rule")
	// ErrInvalidMask means that the mask rule returned something other
	// than a set or array of JSON pointers and mask objects.
	ErrInvalidMask = errors.New("invalid mask")
)

// maskQuery is the prepared mask rule and the cache of its results.
type maskQuery struct {
	query rego.PreparedEvalQuery
	// cache is nil when the mask rule reads the record in a way that the
	// read-set analysis cannot follow, or caching is off.
	cache *resultCache[[]decisionlog.MaskRule]
}

// prepareMask prepares the mask rule, or returns nil when the policy does
// not define it.
func prepareMask(ctx context.Context, compiler *ast.Compiler, store storage.Store, hook print.Hook, logger *slog.Logger, cacheSize int) (*maskQuery, error) {
	ref := ast.MustParseRef(MaskRuleRef)
	if len(compiler.GetRules(ref)) == 0 {
		return nil, nil
	}
	prepared, err := prepareEval(ctx, MaskRuleRef, compiler, store, hook)
	if err != nil {
		return nil, err
	}
	return &maskQuery{
		query: prepared,
		cache: newCacheFor[[]decisionlog.MaskRule](ctx, logger, compiler, ref, "mask", cacheSize),
	}, nil
}

// HasMaskRule reports whether the policy defines the decision-log mask
// rule data.system.log.mask.
func (e *Engine) HasMaskRule() bool {
	return e.mask != nil
}

// MaskRules evaluates data.system.log.mask with rec, the unmasked record,
// as input, and returns its rules in the order of the set or array. An
// undefined mask gives no rules, as in Open Policy Agent. Like Decide, it
// keeps results for records that agree on every path the mask rule reads,
// so that a mask rule that reads nothing, or only input.path, is evaluated
// once per distinct value. It returns ErrNoMaskRule when the policy has no
// mask rule, and an error wrapping ErrInvalidMask for a malformed result.
// The returned slice is shared and must not be modified.
func (e *Engine) MaskRules(ctx context.Context, rec *decisionlog.Record) ([]decisionlog.MaskRule, error) {
	if e.mask == nil {
		return nil, ErrNoMaskRule
	}
	if rec == nil {
		return nil, errors.New("mask: record is nil")
	}
	return cachedEval(e.mask.cache, rec, func() ([]decisionlog.MaskRule, error) {
		return e.mask.evaluate(ctx, rec)
	})
}

// MaskCacheStats returns the hits and misses of the mask rule's cache. Both
// are zero when mask results are not cached.
func (e *Engine) MaskCacheStats() (hits, misses uint64) {
	if e.mask == nil {
		return 0, 0
	}
	return e.mask.cache.stats()
}

func (q *maskQuery) evaluate(ctx context.Context, rec *decisionlog.Record) ([]decisionlog.MaskRule, error) {
	value, err := toValue(rec)
	if err != nil {
		return nil, fmt.Errorf("mask: convert record: %w", err)
	}
	results, err := q.query.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return nil, fmt.Errorf("mask: evaluate %s: %w", MaskRuleRef, err)
	}
	if len(results) == 0 || len(results[0].Expressions) == 0 {
		return nil, nil
	}
	return maskRulesFromResult(results[0].Expressions[0].Value)
}

// maskRulesFromResult converts the value of the mask rule, as the Rego
// result set holds it, to mask rules. Every entry must be valid, because a
// skipped entry could leave a value unmasked.
func maskRulesFromResult(value any) ([]decisionlog.MaskRule, error) {
	items, ok := value.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is %s, expected a set of JSON pointers and mask objects",
			ErrInvalidMask, MaskRuleRef, typeName(value))
	}
	rules := make([]decisionlog.MaskRule, 0, len(items))
	for _, item := range items {
		rule, err := maskRuleFromItem(item)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidMask, err)
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// maskRuleFromItem converts one entry of the mask rule's value: a JSON
// pointer to erase, or an object with op, path and value.
func maskRuleFromItem(item any) (decisionlog.MaskRule, error) {
	switch entry := item.(type) {
	case string:
		return decisionlog.NewMaskRule(decisionlog.MaskRemove, entry, nil)
	case map[string]any:
		op := decisionlog.MaskRemove
		if raw, present := entry["op"]; present {
			text, ok := raw.(string)
			if !ok {
				return decisionlog.MaskRule{}, fmt.Errorf("mask object op is %s, expected %q or %q",
					typeName(raw), decisionlog.MaskRemove, decisionlog.MaskUpsert)
			}
			op = decisionlog.MaskOp(text)
		}
		path, ok := entry["path"].(string)
		if !ok {
			return decisionlog.MaskRule{}, fmt.Errorf("mask object path is %s, expected a JSON pointer string such as \"/input/pdu/content/body\"",
				typeName(entry["path"]))
		}
		return decisionlog.NewMaskRule(op, path, entry["value"])
	default:
		return decisionlog.MaskRule{}, fmt.Errorf("mask entry is %s, expected a JSON pointer string or an object with op and path",
			typeName(item))
	}
}
