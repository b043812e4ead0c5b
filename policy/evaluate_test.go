package policy

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/types"
)

func TestEvaluatePanicIsError(t *testing.T) {
	ctx := context.Background()
	boom := &rego.Function{Name: "boom", Decl: types.NewFunction(types.Args(types.S), types.B)}
	query, err := rego.New(
		rego.Query("data.bordergate.pdu.decision"),
		rego.Module("pdu.rego", "package bordergate.pdu\n\ndecision := {\"allow\": boom(\"x\"), \"reasons\": []}\n"),
		rego.Function1(boom, func(rego.BuiltinContext, *ast.Term) (*ast.Term, error) { panic("inside evaluation") }),
	).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	engine := newDefaultEngine(t)
	_, err = engine.evaluate(ctx, KindPDU, query, messagePDU())
	if !errors.Is(err, ErrEvaluationPanic) {
		t.Fatalf("evaluate error = %v, want ErrEvaluationPanic", err)
	}
	if !strings.Contains(err.Error(), "inside evaluation") {
		t.Errorf("error %q does not carry the panic value", err)
	}
}

func TestEvaluationTimeLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a policy for EvaluationTimeout")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		// About a hundred million iterations, minutes of work without the limit.
		"pdu.rego": "package bordergate.pdu\n\ndecision := {\"allow\": count(hits) == 0, \"reasons\": []}\n\n" +
			"hits contains [i, j] if {\n\tsome i in numbers.range(1, 10000)\n\tsome j in numbers.range(1, 10000)\n\ti * j == -1\n}\n",
		"edu.rego": "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
	})
	engine, err := New(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = engine.Decide(context.Background(), KindPDU, messagePDU())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("Decide error = nil, want the evaluation stopped at its time limit")
	}
	if elapsed > 10*EvaluationTimeout {
		t.Errorf("Decide returned after %v, want about %v", elapsed, EvaluationTimeout)
	}
}
