package decisionlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// MaskOp is the operation of a [MaskRule], named as in Open Policy Agent's
// decision-log mask rules.
type MaskOp string

const (
	// MaskRemove erases the value at the rule's path. The path is then
	// listed in the record's erased field.
	MaskRemove MaskOp = "remove"
	// MaskUpsert sets the value at the rule's path, creating the missing
	// objects on the way. The path is then listed in the record's masked
	// field.
	MaskUpsert MaskOp = "upsert"
)

// MaskRule is one entry of a decision-log mask policy: a JSON pointer into
// the record's input or result, and what to do with the value there. A
// MaskRule is immutable, so one rule can mask many records at once.
type MaskRule struct {
	op      MaskOp
	pointer maskPointer
	// value is the upserted value decoded as encoding/json decodes it
	// with UseNumber, for the decoded path of Masker.Apply.
	value any
	// encoded is the upserted value for the encoded path of appendRecord.
	encoded canonicaljson.Value
}

// NewMaskRule returns the rule that applies op at path. The path must be
// "/input", "/result" or start with "/input/" or "/result/", as for
// [NewMasker]. For MaskUpsert, value is the new value, any value that
// encoding/json encodes; it is ignored for MaskRemove.
func NewMaskRule(op MaskOp, path string, value any) (MaskRule, error) {
	pointer, err := parseMaskPointer(path)
	if err != nil {
		return MaskRule{}, err
	}
	switch op {
	case MaskRemove:
		return MaskRule{op: op, pointer: pointer}, nil
	case MaskUpsert:
	default:
		return MaskRule{}, fmt.Errorf("invalid mask op %q for %s, use %q or %q", op, path, MaskRemove, MaskUpsert)
	}

	encoded, err := marshalNoHTMLEscape(value)
	if err != nil {
		return MaskRule{}, fmt.Errorf("upsert value of mask rule %s: %w", path, err)
	}
	decoded, err := decodedCopy(value)
	if err != nil {
		return MaskRule{}, fmt.Errorf("upsert value of mask rule %s: %w", path, err)
	}
	parsed, err := canonicaljson.ParseWith(encoded, canonicaljson.Options{MaxDepth: maxMaskDepth})
	if err != nil {
		return MaskRule{}, fmt.Errorf("upsert value of mask rule %s: %w", path, err)
	}
	return MaskRule{op: op, pointer: pointer, value: decoded, encoded: parsed}, nil
}

// Op returns the operation of r.
func (r MaskRule) Op() MaskOp {
	return r.op
}

// Path returns the JSON pointer of r as it was given.
func (r MaskRule) Path() string {
	return r.pointer.text
}

// MaskPolicy computes the mask rules of each record, as a Rego rule
// data.system.log.mask does in Open Policy Agent. The gateway's policy
// engine implements it.
type MaskPolicy interface {
	// MaskRules returns the rules for rec, which is unmasked and must not
	// be modified. An error means the record cannot be masked, and the
	// Masker then erases its whole input and result.
	MaskRules(ctx context.Context, rec *Record) ([]MaskRule, error)
}

// MaskErrorFunc receives each error of a [MaskPolicy], with the record
// that was written without its input and result because of it. It is
// called from the goroutine that writes the record, so it must not block.
type MaskErrorFunc func(rec *Record, err error)

// ErrMaskFailed marks the error that a Masker passes to its MaskErrorFunc
// when the mask policy fails.
var ErrMaskFailed = errors.New("mask policy failed")

// NewPolicyMasker returns a Masker that applies, to each record, the rules
// that policy returns for it and then removes the values at pointers, as
// [NewMasker] does. When policy returns an error, the record is written
// with no input and no result, "/input" and "/result" are listed in its
// erased field, and mask_error contains the reason. onError, when not
// nil, is then called. A nil policy gives the Masker of NewMasker(pointers).
func NewPolicyMasker(policy MaskPolicy, pointers []string, onError MaskErrorFunc) (*Masker, error) {
	m, err := NewMasker(pointers)
	if err != nil {
		return nil, err
	}
	m.policy = policy
	m.onError = onError
	return m, nil
}

// DefaultMaskRules returns the remove rules of [DefaultMaskPointers], for a
// MaskPolicy that has no rules of its own. The slice is shared and must
// not be modified.
func DefaultMaskRules() []MaskRule {
	return defaultMaskRules()
}

var defaultMaskRules = sync.OnceValue(func() []MaskRule {
	return DefaultMasker().fixed.rules
})

// maxRuleSets bounds the rule sets a Masker keeps for the rule slices of
// its policy. A policy whose mask results are cached returns a few slices
// again and again; one evaluated for each record returns a new slice
// each time, which would fill the cache without use.
const maxRuleSets = 64

// ruleSet is the rules that apply to a record, in order, with the trees
// for masking an encoded document in one pass.
type ruleSet struct {
	// source is the policy's slice that the set was made for, kept so that
	// the address of its first rule, the key of Masker.sets, stays unique.
	source []MaskRule
	rules  []MaskRule
	// trees holds the rules of "input" and of "result" as trees, nil for
	// a root whose rules need the parsed form (see buildMaskTree).
	trees map[string]*maskNode
}

func newRuleSet(source, rules []MaskRule) *ruleSet {
	return &ruleSet{
		source: source,
		rules:  rules,
		trees: map[string]*maskNode{
			"input":  buildMaskTree(rules, "input"),
			"result": buildMaskTree(rules, "result"),
		},
	}
}

// hasRoot reports whether a rule of s applies to root.
func (s *ruleSet) hasRoot(root string) bool {
	for i := range s.rules {
		if s.rules[i].pointer.root == root {
			return true
		}
	}
	return false
}

// ruleSetFor returns the rules that apply to rec: those of the policy,
// then the Masker's own. A policy error is returned wrapped in
// ErrMaskFailed.
func (m *Masker) ruleSetFor(rec *Record) (*ruleSet, error) {
	if m.policy == nil {
		return m.fixed, nil
	}
	rules, err := m.policy.MaskRules(context.Background(), rec)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMaskFailed, err)
	}
	if len(rules) == 0 {
		return m.fixed, nil
	}
	key := &rules[0]
	if cached, ok := m.sets.Load(key); ok {
		if set := cached.(*ruleSet); len(set.source) == len(rules) {
			return set, nil
		}
	}
	set := newRuleSet(rules, slices.Concat(rules, m.fixed.rules))
	if m.setCount.Add(1) > maxRuleSets {
		m.sets.Clear()
		m.setCount.Store(1)
	}
	m.sets.Store(key, set)
	return set, nil
}

// failClosed returns the erased list and mask error of a record whose mask
// policy failed with err, and reports the failure.
func (m *Masker) failClosed(rec *Record, err error) ([]string, string) {
	erased := rec.Erased
	if rec.Input != nil {
		erased = append(erased[:len(erased):len(erased)], "/input")
	}
	if rec.Result != nil {
		erased = append(erased[:len(erased):len(erased)], "/result")
	}
	if m.onError != nil {
		m.onError(rec, err)
	}
	return erased, err.Error() + "; input and result erased"
}
