package policy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
)

// TestRegoUnitTests runs the Rego unit tests of the default policy, so that
// go test covers the policy rules as well as the engine.
func TestRegoUnitTests(t *testing.T) {
	results, err := RunTests(context.Background(), Config{Paths: []string{defaultPolicyDir}})
	if err != nil {
		t.Fatalf("RunTests(%s) error = %v", defaultPolicyDir, err)
	}
	if len(results) == 0 {
		t.Fatalf("RunTests(%s) found no Rego tests", defaultPolicyDir)
	}

	for _, result := range results {
		if result.Pass() {
			continue
		}
		location := ""
		if result.Location != nil {
			location = result.Location.String()
		}
		switch {
		case result.Error != nil:
			t.Errorf("%s.%s (%s): error: %v", result.Package, result.Name, location, result.Error)
		case result.Skip:
			t.Errorf("%s.%s (%s): skipped; the default policy must not skip tests", result.Package, result.Name, location)
		default:
			t.Errorf("%s.%s (%s): failed%s", result.Package, result.Name, location, failureDetail(result.FailedAt, result.Output))
		}
	}
	t.Logf("ran %d Rego tests", len(results))
}

// failureDetail describes where a failed Rego test stopped and what it
// printed.
func failureDetail(failedAt *ast.Expr, output []byte) string {
	detail := ""
	if failedAt != nil {
		detail += " at " + failedAt.String()
	}
	if len(output) > 0 {
		detail += "\n" + string(output)
	}
	return detail
}

// TestRegoFormatted checks that the default policy is in the layout of
// opa fmt, so that diffs of policy changes stay small.
func TestRegoFormatted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(defaultPolicyDir, "*.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no .rego files in %s", defaultPolicyDir)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		formatted, err := format.SourceWithOpts(file, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Errorf("format %s: %v", file, err)
			continue
		}
		if !bytes.Equal(formatted, src) {
			t.Errorf("%s is not formatted; run opa fmt -w on it", file)
		}
	}
}

func TestRunTestsReportsOutcomes(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"example.rego": "package example\n\nlimit := 3\n",
		"example_test.rego": `package example_test

import data.example

test_limit_passes if example.limit == 3

test_limit_fails if example.limit == 4

test_builtin_error if time.parse_rfc3339_ns("next year") > 0
`,
	})
	results, err := RunTests(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatalf("RunTests() error = %v", err)
	}

	outcomes := map[string]string{}
	for _, result := range results {
		switch {
		case result.Error != nil:
			outcomes[result.Name] = "error"
		case result.Fail:
			outcomes[result.Name] = "fail"
		default:
			outcomes[result.Name] = "pass"
		}
	}
	want := map[string]string{
		"test_builtin_error": "error",
		"test_limit_fails":   "fail",
		"test_limit_passes":  "pass",
	}
	if !reflect.DeepEqual(outcomes, want) {
		t.Errorf("outcomes = %v, want %v", outcomes, want)
	}
}
