package policycmd

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

func TestReasonChanges(t *testing.T) {
	tests := []struct {
		before, after  []string
		added, removed []string
	}{
		{nil, nil, nil, nil},
		{[]string{"a"}, []string{"a"}, nil, nil},
		{[]string{"a", "c"}, []string{"b", "c", "d"}, []string{"b", "d"}, []string{"a"}},
		{[]string{"a", "a"}, []string{"a"}, nil, []string{"a"}},
		{nil, []string{"x", "y"}, []string{"x", "y"}, nil},
	}
	for _, tt := range tests {
		added, removed := reasonChanges(tt.before, tt.after)
		if !slices.Equal(added, tt.added) || !slices.Equal(removed, tt.removed) {
			t.Errorf("reasonChanges(%q, %q) = %q, %q, want %q, %q", tt.before, tt.after, added, removed, tt.added, tt.removed)
		}
	}
}

func TestAddExampleKeepsEarliest(t *testing.T) {
	at := func(second int, id string) Example {
		return Example{DecisionID: id, Timestamp: time.Date(2026, 1, 1, 0, 0, second, 0, time.UTC)}
	}
	var examples []Example
	for _, example := range []Example{at(5, "e"), at(1, "a"), at(3, "c"), at(1, "b"), at(9, "z")} {
		examples = addExample(examples, example, 3)
	}
	if ids := []string{examples[0].DecisionID, examples[1].DecisionID, examples[2].DecisionID}; !slices.Equal(ids, []string{"a", "b", "c"}) || len(examples) != 3 {
		t.Errorf("examples = %v, want a, b, c", examples)
	}
	if got := addExample(nil, at(1, "a"), 0); len(got) != 0 {
		t.Errorf("addExample with limit 0 = %v, want none", got)
	}
}

func TestCaseOfRecord(t *testing.T) {
	input := map[string]any{"kind": "pdu", "version": json.Number("1")}
	tests := []struct {
		name string
		rec  decisionlog.Record
		skip SkipReason
		want Outcome
	}{
		{"policy decision", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Result: map[string]any{"allow": false, "reasons": []any{"b", "a"}, "remove": true}},
			"", Outcome{Reasons: []string{"a", "b"}}},
		{"null reasons", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Result: map[string]any{"allow": true, "reasons": nil}}, "", Outcome{Allow: true, Reasons: []string{}}},
		{"policy denial with a later pipeline error", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Error:  "denied by policy: x (403 M_FORBIDDEN)",
			Result: map[string]any{"allow": false, "reasons": []any{"x"}}}, "", Outcome{Reasons: []string{"x"}}},
		{"allowed, then refused by the pipeline", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Error:  "homeserver unreachable (502 M_UNKNOWN)",
			Result: map[string]any{"allow": true, "reasons": []any{}}}, "", Outcome{Allow: true, Reasons: []string{}}},
		{"unknown path", decisionlog.Record{Path: "data/x", Input: input}, SkipUnknownPath, Outcome{}},
		{"no input", decisionlog.Record{Path: "bordergate/edu/decision"}, SkipNoInput, Outcome{}},
		{"mask policy failed", decisionlog.Record{Path: "bordergate/pdu/decision", Erased: []string{"/input", "/result"},
			MaskError: "mask policy failed: x; input and result erased"}, SkipMaskFailed, Outcome{}},
		{"input of another kind", decisionlog.Record{Path: "bordergate/edu/decision", Input: input}, SkipInvalidInput, Outcome{}},
		{"input not an object", decisionlog.Record{Path: "bordergate/pdu/decision", Input: "x"}, SkipInvalidInput, Outcome{}},
		{"no result", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input}, SkipNoResult, Outcome{}},
		{"allow not a boolean", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Result: map[string]any{"allow": "yes"}}, SkipInvalidResult, Outcome{}},
		{"reason not a string", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Result: map[string]any{"allow": false, "reasons": []any{json.Number("1")}}}, SkipInvalidResult, Outcome{}},
		{"gateway's refusal", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input,
			Error:  "policy evaluation failed: decide pdu: evaluate: boom",
			Result: map[string]any{"allow": false, "reasons": []any{"policy evaluation failed: decide pdu: evaluate: boom"}}},
			SkipGatewayResult, Outcome{}},
		{"result masked", decisionlog.Record{Path: "bordergate/pdu/decision", Input: input, Erased: []string{"/result/reasons/0"},
			Result: map[string]any{"allow": false, "reasons": []any{nil}}}, SkipResultMasked, Outcome{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skip := caseOfRecord(&tt.rec)
			if skip != tt.skip {
				t.Fatalf("skip = %q, want %q", skip, tt.skip)
			}
			if skip == "" && !reflect.DeepEqual(got.recorded, tt.want) {
				t.Errorf("recorded = %+v, want %+v", got.recorded, tt.want)
			}
		})
	}
}

// FuzzDecodeDocument checks that the strict decoder accepts only objects
// that encoding/json decodes to the same value, and never panics.
func FuzzDecodeDocument(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"a": [1, 2.5e3, "x", null, true, {"b": {}}]}`, `{"a": 1, "a": 2}`, `[1]`, `{"a": 1} x`,
		`{"\u00e9": "\ud800"}`, `{"a":` + string(bytes.Repeat([]byte("["), 600)),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		object, err := decodeDocument(src)
		if err != nil {
			return
		}
		decoder := json.NewDecoder(bytes.NewReader(src))
		decoder.UseNumber()
		var want any
		if err := decoder.Decode(&want); err != nil {
			t.Fatalf("decodeDocument accepted %q, which encoding/json rejects: %v", src, err)
		}
		if !reflect.DeepEqual(any(object), want) {
			t.Errorf("decodeDocument(%q) = %#v, encoding/json gives %#v", src, object, want)
		}
	})
}
