package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// rulesPolicy is a MaskPolicy with fixed rules, or a fixed error to inject
// a failing policy.
type rulesPolicy struct {
	rules []MaskRule
	err   error
}

func (p rulesPolicy) MaskRules(context.Context, *Record) ([]MaskRule, error) {
	return p.rules, p.err
}

func mustRule(t *testing.T, op MaskOp, path string, value any) MaskRule {
	t.Helper()
	rule, err := NewMaskRule(op, path, value)
	if err != nil {
		t.Fatalf("NewMaskRule(%s, %s): %v", op, path, err)
	}
	return rule
}

// decodeLine decodes one encoded record into generic values.
func decodeLine(t *testing.T, line []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %s: %v", line, err)
	}
	return out
}

func TestMaskRuleUpsert(t *testing.T) {
	input := `{"pdu": {"content": {"body": "secret", "tags": ["a", "b"]}, "type": "m.room.message"}, "note": "text"}`
	tests := []struct {
		name       string
		path       string
		value      any
		wantInput  string
		wantMasked []string
	}{
		{
			name:       "existing member",
			path:       "/input/pdu/content/body",
			value:      "[redacted]",
			wantInput:  `{"note": "text", "pdu": {"content": {"body": "[redacted]", "tags": ["a", "b"]}, "type": "m.room.message"}}`,
			wantMasked: []string{"/input/pdu/content/body"},
		},
		{
			name:       "missing members created",
			path:       "/input/pdu/unsigned/note/by",
			value:      map[string]any{"gateway": true},
			wantInput:  `{"note": "text", "pdu": {"content": {"body": "secret", "tags": ["a", "b"]}, "type": "m.room.message", "unsigned": {"note": {"by": {"gateway": true}}}}}`,
			wantMasked: []string{"/input/pdu/unsigned/note/by"},
		},
		{
			name:       "array element",
			path:       "/input/pdu/content/tags/1",
			value:      nil,
			wantInput:  `{"note": "text", "pdu": {"content": {"body": "secret", "tags": ["a", null]}, "type": "m.room.message"}}`,
			wantMasked: []string{"/input/pdu/content/tags/1"},
		},
		{
			name:      "array index past the end",
			path:      "/input/pdu/content/tags/2",
			value:     "c",
			wantInput: input,
		},
		{
			name:      "through a string",
			path:      "/input/note/x",
			value:     1,
			wantInput: input,
		},
		{
			name:       "whole input",
			path:       "/input",
			value:      map[string]any{"masked": true},
			wantInput:  `{"masked": true}`,
			wantMasked: []string{"/input"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy := rulesPolicy{rules: []MaskRule{mustRule(t, MaskUpsert, tt.path, tt.value)}}
			m, err := NewPolicyMasker(policy, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := Record{Input: decodeJSON(t, input)}

			line, err := appendRecord(nil, &rec, m)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeLine(t, line)
			if !reflect.DeepEqual(got["input"], decodeJSON(t, tt.wantInput)) {
				t.Errorf("encoded input = %v, want %s", got["input"], tt.wantInput)
			}
			if masked := stringList(got["masked"]); !slices.Equal(masked, tt.wantMasked) {
				t.Errorf("encoded masked = %q, want %q", masked, tt.wantMasked)
			}
			if _, ok := got["erased"]; ok {
				t.Errorf("encoded erased = %v, want none", got["erased"])
			}

			applied, err := m.Apply(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(applied.Input, decodeJSON(t, tt.wantInput)) {
				t.Errorf("Apply input = %v, want %s", applied.Input, tt.wantInput)
			}
			if !slices.Equal(applied.Masked, tt.wantMasked) {
				t.Errorf("Apply masked = %q, want %q", applied.Masked, tt.wantMasked)
			}
		})
	}
}

// stringList converts a decoded JSON array of strings.
func stringList(v any) []string {
	items, _ := v.([]any)
	var out []string
	for _, item := range items {
		s, _ := item.(string)
		out = append(out, s)
	}
	return out
}

func TestMaskRulesThenPointers(t *testing.T) {
	policy := rulesPolicy{rules: []MaskRule{
		mustRule(t, MaskRemove, "/input/a", nil),
		mustRule(t, MaskUpsert, "/result/reasons", []string{"masked"}),
	}}
	m, err := NewPolicyMasker(policy, []string{"/input/b", "/input/a"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{
		Input:  map[string]any{"a": 1, "b": 2, "c": 3},
		Result: map[string]any{"allow": false, "reasons": []any{"quoted a message"}},
		Erased: []string{"/input/earlier"},
	}
	line, err := appendRecord(nil, &rec, m)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeLine(t, line)
	if want := []string{"/input/earlier", "/input/a", "/input/b"}; !slices.Equal(stringList(got["erased"]), want) {
		t.Errorf("erased = %q, want %q: the policy's rules first, then the pointers, each once it matched", stringList(got["erased"]), want)
	}
	if want := []string{"/result/reasons"}; !slices.Equal(stringList(got["masked"]), want) {
		t.Errorf("masked = %q, want %q", stringList(got["masked"]), want)
	}
	if want := decodeJSON(t, `{"c": 3}`); !reflect.DeepEqual(got["input"], want) {
		t.Errorf("input = %v, want %v", got["input"], want)
	}
	if want := decodeJSON(t, `{"allow": false, "reasons": ["masked"]}`); !reflect.DeepEqual(got["result"], want) {
		t.Errorf("result = %v, want %v", got["result"], want)
	}
}

func TestMaskPolicyErrorFailsClosed(t *testing.T) {
	var reported []error
	var reportedIDs []string
	failure := errors.New("eval_conflict_error: functions must not produce multiple outputs")
	m, err := NewPolicyMasker(rulesPolicy{err: failure}, []string{"/input/a"}, func(rec *Record, err error) {
		reportedIDs = append(reportedIDs, rec.DecisionID)
		reported = append(reported, err)
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{
		DecisionID: "d1",
		Allow:      true,
		Input:      map[string]any{"pdu": map[string]any{"content": map[string]any{"body": "secret"}}},
		Result:     map[string]any{"allow": true, "reasons": []any{"secret"}},
	}
	line, err := appendRecord(nil, &rec, m)
	if err != nil {
		t.Fatalf("appendRecord error = %v, want the record written without input", err)
	}
	if bytes.Contains(line, []byte("secret")) {
		t.Errorf("record %s holds unmasked content after a mask policy error", line)
	}
	got := decodeLine(t, line)
	for _, member := range []string{"input", "result"} {
		if _, ok := got[member]; ok {
			t.Errorf("record has %s after a mask policy error, want it erased", member)
		}
	}
	if want := []string{"/input", "/result"}; !slices.Equal(stringList(got["erased"]), want) {
		t.Errorf("erased = %q, want %q", stringList(got["erased"]), want)
	}
	wantMessage := "mask policy failed: eval_conflict_error: functions must not produce multiple outputs; input and result erased"
	if got["mask_error"] != wantMessage {
		t.Errorf("mask_error = %v, want %q", got["mask_error"], wantMessage)
	}
	if got["allow"] != true {
		t.Errorf("allow = %v, want true: the outcome stays in the record", got["allow"])
	}
	if len(reported) != 1 || !errors.Is(reported[0], ErrMaskFailed) || !errors.Is(reported[0], failure) {
		t.Errorf("reported errors = %v, want one wrapping ErrMaskFailed and the policy's error", reported)
	}
	if !slices.Equal(reportedIDs, []string{"d1"}) {
		t.Errorf("reported decision IDs = %q, want [d1]", reportedIDs)
	}

	applied, err := m.Apply(rec)
	if err != nil {
		t.Fatal(err)
	}
	if applied.Input != nil || applied.Result != nil || applied.MaskError != wantMessage {
		t.Errorf("Apply = input %v, result %v, mask error %q; want none, none, %q", applied.Input, applied.Result, applied.MaskError, wantMessage)
	}
}

func TestMaskPolicyErrorWithoutInput(t *testing.T) {
	m, err := NewPolicyMasker(rulesPolicy{err: errors.New("boom")}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := appendRecord(nil, &Record{DecisionID: "d2", Erased: []string{"/input/x"}}, m)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeLine(t, line)
	if want := []string{"/input/x"}; !slices.Equal(stringList(got["erased"]), want) {
		t.Errorf("erased = %q, want %q: no input or result was there to erase", stringList(got["erased"]), want)
	}
	if got["mask_error"] != "mask policy failed: boom; input and result erased" {
		t.Errorf("mask_error = %v", got["mask_error"])
	}
}

func TestMaskRuleValueNotShared(t *testing.T) {
	policy := rulesPolicy{rules: []MaskRule{
		mustRule(t, MaskUpsert, "/input/x", map[string]any{"keep": 1, "drop": 2}),
		mustRule(t, MaskRemove, "/input/x/drop", nil),
	}}
	m, err := NewPolicyMasker(policy, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		got, err := m.Apply(Record{Input: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if want := decodeJSON(t, `{"x": {"keep": 1}}`); !reflect.DeepEqual(got.Input, want) {
			t.Errorf("Apply input = %v, want %v", got.Input, want)
		}
		if want := []string{"/input/x/drop"}; !slices.Equal(got.Erased, want) {
			t.Errorf("Apply erased = %q, want %q: the rule's value must come back whole each time", got.Erased, want)
		}
	}
}

func TestNewMaskRuleErrors(t *testing.T) {
	tests := []struct {
		name    string
		op      MaskOp
		path    string
		value   any
		message string
	}{
		{"unknown op", "replace", "/input/a", nil, `invalid mask op "replace" for /input/a, use "remove" or "upsert"`},
		{"empty op", "", "/input/a", nil, `invalid mask op "" for /input/a, use "remove" or "upsert"`},
		{"bad root", MaskUpsert, "/labels", 1, `invalid mask pointer "/labels": must start with /input or /result`},
		{"invalid UTF-8", MaskUpsert, "/input/\xf0", 1, `invalid mask pointer "/input/\xf0": not valid UTF-8`},
		{"unencodable value", MaskUpsert, "/input/a", func() {}, "upsert value of mask rule /input/a: json: unsupported type: func()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMaskRule(tt.op, tt.path, tt.value)
			if err == nil || err.Error() != tt.message {
				t.Errorf("NewMaskRule() error = %v, want %q", err, tt.message)
			}
		})
	}
}

func TestDefaultMaskRules(t *testing.T) {
	var got []string
	for _, rule := range DefaultMaskRules() {
		if rule.Op() != MaskRemove {
			t.Errorf("default rule %s has op %s, want remove", rule.Path(), rule.Op())
		}
		got = append(got, rule.Path())
	}
	if !slices.Equal(got, DefaultMaskPointers()) {
		t.Errorf("DefaultMaskRules paths = %q, want %q", got, DefaultMaskPointers())
	}
}

// FuzzMaskRulesEncoding checks that a policy's remove and upsert rules give
// the same record, with the same erased and masked pointers in the same
// order, on the encoded path of appendRecord as on the decoded path of
// Apply.
func FuzzMaskRulesEncoding(f *testing.F) {
	f.Add(`{"pdu":{"content":{"body":"x"}}}`, "/input/pdu/content/body", true, "/input/pdu/content/body", `"[masked]"`)
	f.Add(`{"a":[1,{"b":2}]}`, "/input/a/1/b", false, "/input/a/1/c/d", `{"e":[1,2]}`)
	f.Add(`[1,2,3]`, "/input/2", true, "/input/0", `null`)
	f.Add(`"text"`, "/input", false, "/input/a", `1`)
	f.Add(`{"a":{"b":1}}`, "/input/a", true, "/input", `{"c":2.5e3}`)
	f.Add(`{"a":{}}`, "/input/a/-", false, "/input/a/b/0", `true`)
	f.Fuzz(func(t *testing.T, input, first string, firstUpserts bool, second, value string) {
		if !json.Valid([]byte(input)) || !json.Valid([]byte(value)) {
			return
		}
		op := MaskRemove
		if firstUpserts {
			op = MaskUpsert
		}
		one, err := NewMaskRule(op, first, decodeJSON(t, value))
		if err != nil {
			return
		}
		two, err := NewMaskRule(MaskUpsert, second, decodeJSON(t, value))
		if err != nil {
			return
		}
		m, err := NewPolicyMasker(rulesPolicy{rules: []MaskRule{one, two}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		rec := Record{Input: decodeJSON(t, input)}
		got, err := appendRecord(nil, &rec, m)
		if err != nil {
			t.Fatalf("appendRecord(%s): %v", input, err)
		}
		want := encodeWithEncodingJSON(t, rec, m)
		if canonicalForm(t, got) != canonicalForm(t, want) {
			t.Fatalf("input %s, rules %s %q and upsert %q of %s:\n got %s\nwant %s", input, op, first, second, value, got, want)
		}
	})
}
