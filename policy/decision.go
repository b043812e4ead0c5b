package policy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/rego"
)

// Kind is a kind of policy decision. Each kind has its own input type and its
// own rule, data.bordergate.<kind>.decision.
type Kind string

// Kinds of decision.
const (
	KindRequest Kind = "request" // one per federation request
	KindPDU     Kind = "pdu"     // one per PDU, in a request or a response
	KindEDU     Kind = "edu"     // one per EDU of a transaction
)

// Decision is the outcome of one policy evaluation. An Engine may return the
// same Decision, with the same Reasons slice and Result map, for many
// inputs, so callers must not modify them.
type Decision struct {
	// Allow reports whether the item may cross the gateway.
	Allow bool `json:"allow"`
	// Reasons are the policy's short explanations, empty (not nil) when the
	// policy gave none.
	Reasons []string `json:"reasons"`
	// Result is the whole decision object that the policy returned, including
	// allow, reasons and any fields the policy added (such as status or
	// errcode). Numbers are json.Number values.
	Result map[string]any `json:"-"`
}

// ShadowMember is the member of a decision object that decision records
// use for the outcome of a shadow policy. A policy must not return it.
const ShadowMember = "shadow"

// Errors for a policy result that is not a valid decision. Decide wraps them.
var (
	// ErrUndefinedDecision means that the decision rule produced no value.
	ErrUndefinedDecision = errors.New("decision is undefined")
	// ErrInvalidDecision means that the decision is not an object with a
	// boolean allow and an array of string reasons.
	ErrInvalidDecision = errors.New("invalid decision")
)

// decisionFromResults checks the result of a decision query and converts it
// to a Decision. A missing reasons field or a null one counts as no reasons.
func decisionFromResults(results rego.ResultSet) (Decision, error) {
	if len(results) == 0 || len(results[0].Expressions) == 0 {
		return Decision{}, ErrUndefinedDecision
	}

	value := results[0].Expressions[0].Value
	object, ok := value.(map[string]any)
	if !ok {
		return Decision{}, fmt.Errorf("%w: result is %s, expected an object", ErrInvalidDecision, typeName(value))
	}
	rawAllow, present := object["allow"]
	if !present {
		return Decision{}, fmt.Errorf("%w: allow is missing", ErrInvalidDecision)
	}
	allow, ok := rawAllow.(bool)
	if !ok {
		return Decision{}, fmt.Errorf("%w: allow is %s, expected a boolean", ErrInvalidDecision, typeName(rawAllow))
	}
	reasons, err := reasonsFromResult(object["reasons"])
	if err != nil {
		return Decision{}, err
	}
	if _, reserved := object[ShadowMember]; reserved {
		return Decision{}, fmt.Errorf("%w: member %q is reserved for the gateway's record of a shadow decision, rename it",
			ErrInvalidDecision, ShadowMember)
	}

	return Decision{Allow: allow, Reasons: reasons, Result: object}, nil
}

// reasonsFromResult converts the reasons field of a decision object.
func reasonsFromResult(value any) ([]string, error) {
	if value == nil {
		return []string{}, nil
	}
	items, ok := value.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: reasons is %s, expected an array of strings", ErrInvalidDecision, typeName(value))
	}

	reasons := make([]string, len(items))
	for i, item := range items {
		reason, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%w: reasons[%d] is %s, expected a string", ErrInvalidDecision, i, typeName(item))
		}
		reasons[i] = reason
	}
	return reasons, nil
}

// typeName returns the JSON type name of a decoded value, such as a decision
// converted from Rego (where sets have become arrays) or a data file.
func typeName(value any) string {
	return JSONTypeName(value)
}

// JSONTypeName returns the JSON type name of a value decoded from JSON or
// converted from Rego, with its article, such as "an array", for error
// messages.
func JSONTypeName(value any) string {
	switch value.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	case json.Number, int, int64, uint64, float64:
		return "a number"
	default:
		return fmt.Sprintf("%T", value)
	}
}
