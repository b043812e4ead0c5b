package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestDocsExamplesMatchInput checks that the JSON examples of
// docs/policy-input.md decode into the input types without unknown fields,
// contain every field of those types, and are allowed by the default policy.
func TestDocsExamplesMatchInput(t *testing.T) {
	doc, err := os.ReadFile("../docs/policy-input.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```json\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) != 3 {
		t.Fatalf("found %d JSON examples, want 3 (request, PDU, EDU)", len(blocks))
	}

	engine := newDefaultEngine(t)
	examples := []struct {
		kind  Kind
		input any
	}{
		{KindRequest, &RequestInput{}},
		{KindPDU, &PDUInput{}},
		{KindEDU, &EDUInput{}},
	}
	for i, example := range examples {
		t.Run(string(example.kind), func(t *testing.T) {
			src := blocks[i][1]
			decoder := json.NewDecoder(bytes.NewReader(src))
			decoder.DisallowUnknownFields()
			if err := decoder.Decode(example.input); err != nil {
				t.Fatalf("decode example: %v", err)
			}

			var documented, encoded any
			if err := json.Unmarshal(src, &documented); err != nil {
				t.Fatal(err)
			}
			reencoded, err := json.Marshal(example.input)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(reencoded, &encoded); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(documented, encoded) {
				t.Errorf("example differs from its input type, which has every field:\n%s", reencoded)
			}

			decision, err := engine.Decide(context.Background(), example.kind, example.input)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if !decision.Allow {
				t.Errorf("Allow = false, want true (reasons %q)", decision.Reasons)
			}
		})
	}
}

// TestDocsRegoExamplesParse checks that the Rego examples of
// docs/policy-input.md are valid Rego v1.
func TestDocsRegoExamplesParse(t *testing.T) {
	doc, err := os.ReadFile("../docs/policy-input.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```rego\n(.*?)```").FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("found no Rego examples")
	}
	for i, block := range blocks {
		if _, err := ast.ParseModuleWithOpts("example.rego", string(block[1]), ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
			t.Errorf("Rego example %d: %v", i+1, err)
		}
	}
}
