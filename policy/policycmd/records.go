package policycmd

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// Outcome is a decision as the policy returned it.
type Outcome struct {
	// Allow is the decision's allow.
	Allow bool `json:"allow"`
	// Reasons are the decision's reasons, sorted.
	Reasons []string `json:"reasons"`
}

// SkipReason is the reason why a decision record was not replayed.
type SkipReason string

// Reasons to skip a record.
const (
	// SkipUnknownPath is a record whose path names no decision of the
	// gateway.
	SkipUnknownPath SkipReason = "unknown_path"
	// SkipNoInput is a record without input: the gateway refused the item
	// before it built the policy input.
	SkipNoInput SkipReason = "no_input"
	// SkipNoResult is a record with input but without result.
	SkipNoResult SkipReason = "no_result"
	// SkipGatewayResult is a record whose result the gateway wrote itself
	// because it did not ask the policy or the evaluation failed: the
	// record has an error and a result {"allow": false, "reasons": [R]}
	// where the error starts with R.
	SkipGatewayResult SkipReason = "gateway_result"
	// SkipInvalidResult is a record whose result is not a decision object
	// with a boolean allow and a list of string reasons.
	SkipInvalidResult SkipReason = "invalid_result"
	// SkipInvalidInput is a record whose input is not an object, or whose
	// input.kind is not the kind of its path.
	SkipInvalidInput SkipReason = "invalid_input"
	// SkipResultMasked is a record whose result.allow or result.reasons was
	// erased or replaced by masking, so there is nothing to compare with.
	SkipResultMasked SkipReason = "result_masked"
	// SkipMaskFailed is a record whose mask policy failed, so the gateway
	// wrote it without input and result.
	SkipMaskFailed SkipReason = "mask_failed"
)

// skipDescriptions explain the skip reasons in reports.
var skipDescriptions = map[SkipReason]string{
	SkipUnknownPath:   "the path names no bordergate decision",
	SkipNoInput:       "no input: the gateway refused the item before asking the policy",
	SkipNoResult:      "no policy result in the record",
	SkipGatewayResult: "the result is the gateway's own refusal: the policy was not asked or its evaluation failed",
	SkipInvalidResult: "the result is not a decision object with a boolean allow and string reasons",
	SkipInvalidInput:  "the input is not an object of the record's kind",
	SkipResultMasked:  "masking erased the recorded allow or reasons",
	SkipMaskFailed:    "the mask policy failed, so the gateway erased the input and result",
}

// replayCase is the part of a decision record that replay evaluates and
// compares.
type replayCase struct {
	kind     policy.Kind
	input    map[string]any
	recorded Outcome
	// pointers are the record's erased and masked JSON pointers.
	pointers []string
}

// caseOfRecord extracts the kind, input and recorded policy outcome of rec,
// or the reason why rec cannot be replayed.
func caseOfRecord(rec *decisionlog.Record) (replayCase, SkipReason) {
	kind, ok := kindOfPath(rec.Path)
	if !ok {
		return replayCase{}, SkipUnknownPath
	}
	if rec.MaskError != "" {
		return replayCase{}, SkipMaskFailed
	}
	if rec.Input == nil {
		return replayCase{}, SkipNoInput
	}
	input, ok := rec.Input.(map[string]any)
	if !ok {
		return replayCase{}, SkipInvalidInput
	}
	if inputKind, present := input["kind"]; present && inputKind != string(kind) {
		return replayCase{}, SkipInvalidInput
	}
	pointers := slices.Concat(rec.Erased, rec.Masked)
	if slices.ContainsFunc(pointers, masksResult) {
		return replayCase{}, SkipResultMasked
	}
	if rec.Result == nil {
		return replayCase{}, SkipNoResult
	}
	recorded, ok := outcomeOfResult(rec.Result)
	if !ok {
		return replayCase{}, SkipInvalidResult
	}
	if isGatewayResult(rec, recorded) {
		return replayCase{}, SkipGatewayResult
	}
	return replayCase{kind: kind, input: input, recorded: recorded, pointers: pointers}, ""
}

// masksResult reports whether masking at pointer hides the recorded allow or
// reasons. The empty pointer is the whole record.
func masksResult(pointer string) bool {
	switch pointer {
	case "", "/result", "/result/allow", "/result/reasons":
		return true
	}
	return strings.HasPrefix(pointer, "/result/reasons/")
}

// outcomeOfResult reads allow and reasons from a recorded result. A missing
// or null reasons is no reasons, as the engine reads it.
func outcomeOfResult(result any) (Outcome, bool) {
	object, ok := result.(map[string]any)
	if !ok {
		return Outcome{}, false
	}
	allow, ok := object["allow"].(bool)
	if !ok {
		return Outcome{}, false
	}
	reasons := []string{}
	if list, present := object["reasons"]; present && list != nil {
		items, ok := list.([]any)
		if !ok {
			return Outcome{}, false
		}
		for _, item := range items {
			reason, ok := item.(string)
			if !ok {
				return Outcome{}, false
			}
			reasons = append(reasons, reason)
		}
	}
	slices.Sort(reasons)
	return Outcome{Allow: allow, Reasons: reasons}, true
}

// isGatewayResult reports whether the gateway wrote rec's result itself.
// It then writes the refusal message as the one reason and the same message,
// followed by details, as the record's error.
//
// NOTE: a record does not say outright whether its result came from the
// policy. A policy that denies with exactly one reason, on a record whose
// error starts with that reason, would be taken for the gateway's refusal.
func isGatewayResult(rec *decisionlog.Record, recorded Outcome) bool {
	return rec.Error != "" && !recorded.Allow && len(recorded.Reasons) == 1 &&
		strings.HasPrefix(rec.Error, recorded.Reasons[0])
}

// outcomeOf converts a decision of the engine.
func outcomeOf(decision policy.Decision) Outcome {
	reasons := slices.Clone(decision.Reasons)
	if reasons == nil {
		reasons = []string{}
	}
	slices.Sort(reasons)
	return Outcome{Allow: decision.Allow, Reasons: reasons}
}

// reasonChanges returns the reasons of after that before lacks, and those of
// before that after lacks. Both lists are sorted; a reason given twice
// counts twice.
func reasonChanges(before, after []string) (added, removed []string) {
	i, j := 0, 0
	for i < len(before) || j < len(after) {
		switch {
		case j == len(after) || (i < len(before) && before[i] < after[j]):
			removed = append(removed, before[i])
			i++
		case i == len(before) || after[j] < before[i]:
			added = append(added, after[j])
			j++
		default:
			i++
			j++
		}
	}
	return added, removed
}

// verdict returns "allow" or "deny".
func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// describeOutcome returns "allow" or "deny" with the reasons, for people.
func describeOutcome(outcome Outcome) string {
	if len(outcome.Reasons) == 0 {
		return verdict(outcome.Allow)
	}
	return fmt.Sprintf("%s (%s)", verdict(outcome.Allow), strings.Join(outcome.Reasons, "; "))
}
