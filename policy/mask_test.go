package policy

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// maskEngine returns an engine whose decisions allow everything and whose
// mask rules are the Rego text mask, in package system.log.
func maskEngine(t *testing.T, mask string) *Engine {
	t.Helper()
	dir := decisionPolicy(t, `decision := {"allow": true, "reasons": []}`)
	writeFiles(t, dir, map[string]string{"mask.rego": "package system.log\n\n" + mask + "\n"})
	engine, err := New(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return engine
}

// pduRecord returns an unmasked record of messagePDU with the body text.
func pduRecord(body string) *decisionlog.Record {
	in := messagePDU()
	in.PDU.Content = map[string]any{"msgtype": "m.text", "body": body}
	rec := decisionlog.NewRecord("bordergate/pdu/decision")
	rec.Input = in
	rec.Result = map[string]any{"allow": true, "reasons": []string{}}
	return rec
}

// rulePaths returns the op and path of each rule.
func rulePaths(rules []decisionlog.MaskRule) []string {
	var out []string
	for _, rule := range rules {
		out = append(out, string(rule.Op())+" "+rule.Path())
	}
	return out
}

func TestDefaultMaskPolicy(t *testing.T) {
	engine := newDefaultEngine(t)
	if !engine.HasMaskRule() {
		t.Fatal("HasMaskRule() = false for the default policy, want true")
	}
	var want []string
	for _, pointer := range decisionlog.DefaultMaskPointers() {
		want = append(want, "remove "+pointer)
	}

	ctx := context.Background()
	for i, rec := range []*decisionlog.Record{pduRecord("first"), pduRecord("second"), decisionlog.NewRecord("bordergate/request/decision")} {
		rules, err := engine.MaskRules(ctx, rec)
		if err != nil {
			t.Fatalf("MaskRules(record %d) error = %v", i, err)
		}
		if got := rulePaths(rules); !slices.Equal(got, want) {
			t.Errorf("MaskRules(record %d) = %q, want %q", i, got, want)
		}
	}
	hits, misses := engine.MaskCacheStats()
	if hits != 2 || misses != 1 {
		t.Errorf("MaskCacheStats() = %d hits, %d misses; want 2 hits and 1 miss, because the default mask reads no input", hits, misses)
	}
}

func TestMaskRulesCachedByReadPaths(t *testing.T) {
	engine := maskEngine(t, `mask contains "/input/pdu/content/body" if input.path == "bordergate/pdu/decision"`)
	ctx := context.Background()

	pdu, err := engine.MaskRules(ctx, pduRecord("one"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rulePaths(pdu), []string{"remove /input/pdu/content/body"}; !slices.Equal(got, want) {
		t.Errorf("MaskRules(PDU record) = %q, want %q", got, want)
	}
	if _, err := engine.MaskRules(ctx, pduRecord("two")); err != nil {
		t.Fatal(err)
	}
	request, err := engine.MaskRules(ctx, decisionlog.NewRecord("bordergate/request/decision"))
	if err != nil {
		t.Fatal(err)
	}
	if len(request) != 0 {
		t.Errorf("MaskRules(request record) = %q, want none", rulePaths(request))
	}
	if hits, misses := engine.MaskCacheStats(); hits != 1 || misses != 2 {
		t.Errorf("MaskCacheStats() = %d hits, %d misses; want 1 hit (the second PDU record) and 2 misses", hits, misses)
	}
}

func TestMaskRulesReadingContent(t *testing.T) {
	engine := maskEngine(t, `mask contains {"op": "upsert", "path": "/input/pdu/content/body", "value": "[secret]"} if {
	contains(input.input.pdu.content.body, "secret")
}`)
	ctx := context.Background()
	secret, err := engine.MaskRules(ctx, pduRecord("a secret plan"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rulePaths(secret), []string{"upsert /input/pdu/content/body"}; !slices.Equal(got, want) {
		t.Errorf("MaskRules(secret) = %q, want %q", got, want)
	}
	plain, err := engine.MaskRules(ctx, pduRecord("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 0 {
		t.Errorf("MaskRules(plain) = %q, want none", rulePaths(plain))
	}
	if hits, _ := engine.MaskCacheStats(); hits != 0 {
		t.Errorf("MaskCacheStats() hits = %d, want 0: the bodies differ", hits)
	}
}

func TestMaskRulesUndefined(t *testing.T) {
	engine := maskEngine(t, `mask := {"/input/pdu"} if input.never`)
	rules, err := engine.MaskRules(context.Background(), pduRecord("x"))
	if err != nil {
		t.Fatalf("MaskRules() error = %v, want none for an undefined mask", err)
	}
	if len(rules) != 0 {
		t.Errorf("MaskRules() = %q, want none", rulePaths(rules))
	}
}

func TestMaskRulesWithoutRule(t *testing.T) {
	engine, err := New(context.Background(), Config{Paths: []string{decisionPolicy(t, `decision := {"allow": true, "reasons": []}`)}})
	if err != nil {
		t.Fatal(err)
	}
	if engine.HasMaskRule() {
		t.Error("HasMaskRule() = true without a system.log package, want false")
	}
	if _, err := engine.MaskRules(context.Background(), pduRecord("x")); !errors.Is(err, ErrNoMaskRule) {
		t.Errorf("MaskRules() error = %v, want ErrNoMaskRule", err)
	}
	if _, err := maskEngine(t, "x := 1").MaskRules(context.Background(), nil); !errors.Is(err, ErrNoMaskRule) {
		t.Errorf("MaskRules() without a mask rule error = %v, want ErrNoMaskRule", err)
	}
}

func TestMaskRulesNilRecord(t *testing.T) {
	engine := newDefaultEngine(t)
	_, err := engine.MaskRules(context.Background(), nil)
	if err == nil || err.Error() != "mask: record is nil" {
		t.Errorf("MaskRules(nil) error = %v, want %q", err, "mask: record is nil")
	}
}

func TestMaskRulesInvalid(t *testing.T) {
	tests := []struct {
		name    string
		mask    string
		message string
	}{
		{
			name:    "not a set",
			mask:    `mask := "/input/pdu"`,
			message: "invalid mask: data.system.log.mask is a string, expected a set of JSON pointers and mask objects",
		},
		{
			name:    "number entry",
			mask:    `mask contains 7`,
			message: "invalid mask: mask entry is a number, expected a JSON pointer string or an object with op and path",
		},
		{
			name:    "pointer outside input and result",
			mask:    `mask contains "/labels/id"`,
			message: `invalid mask: invalid mask pointer "/labels/id": must start with /input or /result`,
		},
		{
			name:    "relative pointer",
			mask:    `mask contains "input/pdu"`,
			message: `invalid mask: invalid mask pointer "input/pdu": must start with /input or /result`,
		},
		{
			name:    "bad escape",
			mask:    `mask contains "/input/a~2"`,
			message: `invalid mask: invalid mask pointer "/input/a~2": reference token "a~2" contains invalid escape ~2, only ~0 and ~1 are defined`,
		},
		{
			name:    "unknown op",
			mask:    `mask contains {"op": "replace", "path": "/input/pdu"}`,
			message: `invalid mask: invalid mask op "replace" for /input/pdu, use "remove" or "upsert"`,
		},
		{
			name:    "op not a string",
			mask:    `mask contains {"op": true, "path": "/input/pdu"}`,
			message: `invalid mask: mask object op is a boolean, expected "remove" or "upsert"`,
		},
		{
			name:    "path missing",
			mask:    `mask contains {"op": "upsert", "value": 1}`,
			message: `invalid mask: mask object path is null, expected a JSON pointer string such as "/input/pdu/content/body"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := maskEngine(t, tt.mask)
			_, err := engine.MaskRules(context.Background(), pduRecord("x"))
			if !errors.Is(err, ErrInvalidMask) {
				t.Fatalf("MaskRules() error = %v, want ErrInvalidMask", err)
			}
			if err.Error() != tt.message {
				t.Errorf("MaskRules() error = %q, want %q", err, tt.message)
			}
		})
	}
}

func TestMaskRulesEvaluationError(t *testing.T) {
	engine := maskEngine(t, `mask contains x if x := sprintf("/input/%s", [to_number(input.path)])`)
	_, err := engine.MaskRules(context.Background(), pduRecord("x"))
	if err == nil {
		t.Fatal("MaskRules() error = nil for a failing built-in, want one")
	}
	if errors.Is(err, ErrInvalidMask) {
		t.Errorf("MaskRules() error = %v, want an evaluation error, not ErrInvalidMask", err)
	}
	if _, misses := engine.MaskCacheStats(); misses != 1 {
		t.Errorf("MaskCacheStats() misses = %d, want 1", misses)
	}
	if _, err := engine.MaskRules(context.Background(), pduRecord("y")); err == nil {
		t.Error("second MaskRules() error = nil, want the error again: errors are never cached")
	}
}

func TestMaskRulesUpsert(t *testing.T) {
	engine := maskEngine(t, `mask contains {"op": "upsert", "path": "/input/origin/entry/labels", "value": {"classification": "redacted"}}
mask contains {"path": "/result/reasons"}`)
	rules, err := engine.MaskRules(context.Background(), pduRecord("x"))
	if err != nil {
		t.Fatal(err)
	}
	// A Rego set orders objects by their sorted keys, so the object with
	// an op comes before the one whose first key is path.
	want := []string{"upsert /input/origin/entry/labels", "remove /result/reasons"}
	if got := rulePaths(rules); !slices.Equal(got, want) {
		t.Errorf("MaskRules() = %q, want %q", got, want)
	}
}
