package policy

import (
	"context"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const (
	requestDecision = "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n"
	pduDecision     = "package bordergate.pdu\n\ndecision := {\"allow\": true, \"reasons\": []}\n"
	eduDecision     = "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n"
)

func TestCheckDefaultPolicy(t *testing.T) {
	problems, err := Check(context.Background(), Config{Paths: []string{defaultPolicyDir}, DataFile: "testdata/config.yaml"})
	if err != nil {
		t.Fatalf("Check() error = %v", err)
	}
	if len(problems) != 0 {
		t.Errorf("Check() = %+v, want no problems", problems)
	}
}

func TestCheckProblems(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []Problem // File relative to the policy directory
	}{
		{
			name: "parse errors in two files",
			files: map[string]string{
				"request.rego": requestDecision,
				"pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": true,\n",
				"edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n\nx if {\n\ty := \n}\n",
			},
			want: []Problem{
				{File: "edu.rego", Row: 7, Col: 1, Code: "rego_parse_error", Message: "unexpected } token"},
				{File: "pdu.rego", Row: 4, Code: "rego_parse_error", Message: "unexpected eof token"},
				{File: "pdu.rego", Row: 4, Code: "rego_parse_error", Message: "unexpected eof token: expected rule value term (e.g., decision := <VALUE> { ... })"},
			},
		},
		{
			name: "compile errors",
			files: map[string]string{
				"request.rego": requestDecision,
				"pdu.rego":     pduDecision + "\nx := undefined_function(2)\n\ny := other_function(3)\n",
				"edu.rego":     eduDecision + "\nz := third_function(4)\n",
			},
			want: []Problem{
				{File: "edu.rego", Row: 5, Col: 6, Code: "rego_type_error", Message: "undefined function third_function"},
				{File: "pdu.rego", Row: 5, Col: 6, Code: "rego_type_error", Message: "undefined function undefined_function"},
				{File: "pdu.rego", Row: 7, Col: 6, Code: "rego_type_error", Message: "undefined function other_function"},
			},
		},
		{
			name: "missing decision",
			files: map[string]string{
				"request.rego": requestDecision,
				"pdu.rego":     "package bordergate.pdu\n\nallow := true\n",
			},
			want: []Problem{
				{Code: ProblemDecision, Message: "policy defines no data.bordergate.pdu.decision rule: add one to package bordergate.pdu"},
				{Code: ProblemDecision, Message: "policy defines no data.bordergate.edu.decision rule: add one to package bordergate.edu"},
			},
		},
		{
			name: "decision is a function or a set",
			files: map[string]string{
				"request.rego": requestDecision,
				"pdu.rego":     "package bordergate.pdu\n\ndecision(x) := {\"allow\": x}\n",
				"edu.rego":     "package bordergate.edu\n\ndecision contains \"allow\"\n",
			},
			want: []Problem{
				{File: "edu.rego", Row: 3, Col: 1, Code: ProblemDecision, Message: "data.bordergate.edu.decision is a set (contains) rule, expected a rule with a decision object as its value"},
				{File: "pdu.rego", Row: 3, Col: 1, Code: ProblemDecision, Message: "data.bordergate.pdu.decision is a function, expected a rule with a decision object as its value"},
			},
		},
		{
			name: "decision is not an object",
			files: map[string]string{
				"request.rego": requestDecision,
				"pdu.rego":     "package bordergate.pdu\n\ndecision := input.pdu.type == \"m.room.message\"\n",
				"edu.rego":     "package bordergate.edu\n\ndecision := [\"allow\"]\n",
			},
			want: []Problem{
				{File: "edu.rego", Row: 3, Col: 1, Code: ProblemDecision, Message: `data.bordergate.edu.decision is of type array<string>, expected a decision object such as {"allow": true, "reasons": []}`},
				{File: "pdu.rego", Row: 3, Col: 1, Code: ProblemDecision, Message: `data.bordergate.pdu.decision is of type boolean, expected a decision object such as {"allow": true, "reasons": []}`},
			},
		},
		{
			name: "error in a test file",
			files: map[string]string{
				"request.rego":      requestDecision,
				"pdu.rego":          pduDecision,
				"edu.rego":          eduDecision,
				"request_test.rego": "package bordergate.request_test\n\ntest_x if data.bordergate.request.decision.allow == missing_var\n",
			},
			want: []Problem{
				{File: "request_test.rego", Row: 3, Col: 11, Code: "rego_unsafe_var_error", Message: "var missing_var is unsafe"},
			},
		},
		{
			name: "policy needs its test files",
			files: map[string]string{
				"request.rego":     requestDecision,
				"pdu.rego":         pduDecision + "\nx := helper(1)\n",
				"edu.rego":         eduDecision,
				"helper_test.rego": "package bordergate.pdu\n\nhelper(n) := n\n",
			},
			want: []Problem{
				{Code: ProblemLoad, Message: "compile policy: 1 error occurred: DIR/pdu.rego:5: rego_type_error: undefined function helper"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			problems, err := Check(context.Background(), Config{Paths: []string{dir}})
			if err != nil {
				t.Fatalf("Check() error = %v", err)
			}
			for i := range problems {
				if problems[i].File != "" {
					problems[i].File = strings.TrimPrefix(problems[i].File, dir+string(filepath.Separator))
				}
				problems[i].Message = strings.ReplaceAll(problems[i].Message, dir, "DIR")
			}
			if !reflect.DeepEqual(problems, tt.want) {
				t.Errorf("Check() =\n%#v\nwant\n%#v", problems, tt.want)
			}
		})
	}
}

func TestCheckErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"request.rego": requestDecision, "bad.json": "{\"a\": }"})
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing path", Config{Paths: []string{missing}},
			"read policy path: stat " + missing + ": no such file or directory"},
		{"no paths", Config{}, "no policy paths configured"},
		{"bad data file", Config{Paths: []string{dir}, DataFile: filepath.Join(dir, "bad.json")},
			"policy data file " + filepath.Join(dir, "bad.json") + ": 1:8: invalid character '}' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Check(context.Background(), tt.cfg)
			if err == nil || err.Error() != tt.want {
				t.Errorf("Check() error = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestProblemLocation(t *testing.T) {
	tests := []struct {
		problem Problem
		want    string
	}{
		{Problem{File: "a.rego", Row: 3, Col: 7}, "a.rego:3:7"},
		{Problem{File: "a.rego", Row: 3}, "a.rego:3"},
		{Problem{File: "a.rego"}, "a.rego"},
		{Problem{}, ""},
	}
	for _, tt := range tests {
		if got := tt.problem.Location(); got != tt.want {
			t.Errorf("Location() = %q, want %q", got, tt.want)
		}
	}
}

func TestRunTestsWithOptions(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"example.rego":      "package example\n\nlimit := 3\n",
		"example_test.rego": "package example_test\n\nimport data.example\n\ntest_limit if example.limit == 3\n\ntest_other if example.limit == 4\n",
	})
	results, err := RunTestsWithOptions(context.Background(), Config{Paths: []string{dir}}, TestOptions{Run: "limit$", Trace: true})
	if err != nil {
		t.Fatalf("RunTestsWithOptions() error = %v", err)
	}
	if len(results) != 1 || results[0].Name != "test_limit" {
		t.Fatalf("results = %v, want test_limit only", results)
	}
	if len(results[0].Trace) == 0 {
		t.Error("Trace option recorded no trace")
	}

	_, err = RunTestsWithOptions(context.Background(), Config{Paths: []string{dir}}, TestOptions{Run: "test_(("})
	want := regexp.MustCompile(`^invalid test name pattern "test_\(\(": error parsing regexp: missing closing \): .*`)
	if err == nil || !want.MatchString(err.Error()) {
		t.Errorf("RunTestsWithOptions(bad pattern) error = %v, want %s", err, want)
	}
}
