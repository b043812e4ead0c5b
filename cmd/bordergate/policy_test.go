package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/policy/policycmd"
)

// defaultRego returns the absolute path of the repository's default policy.
func defaultRego(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../rego")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writePolicyFiles writes name -> content files into a new directory and
// returns it.
func writePolicyFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// checkExit checks the exit status that main would use for err.
func checkExit(t *testing.T, err error, want int) {
	t.Helper()
	got := 0
	if err != nil {
		got = exitCode(err)
	}
	if got != want {
		t.Errorf("exit status = %d (error %v), want %d", got, err, want)
	}
}

const examplePolicy = `package example

limit := 3

configured := data.bordergate.config.limit
`

const exampleTests = `package example_test

import data.example

test_limit_passes if example.limit == 3

test_limit_fails if {
	print("limit is", example.limit)
	example.limit == 4
}

test_configured if example.configured == 7
`

func TestPolicyTestDefaultPolicy(t *testing.T) {
	out, err := runCommand(t, "", "policy", "test", defaultRego(t))
	if err != nil {
		t.Fatalf("policy test: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^PASS: (\d+)/(\d+)$`).MatchString(out) {
		t.Errorf("output has no PASS summary:\n%s", out)
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("output reports a failure:\n%s", out)
	}
}

func TestPolicyTestFailures(t *testing.T) {
	dir := writePolicyFiles(t, map[string]string{"example.rego": examplePolicy, "example_test.rego": exampleTests})
	data := writePolicyFiles(t, map[string]string{"data.yaml": "limit: 7\n"})
	out, err := runCommand(t, "", "policy", "test", dir, "--data", filepath.Join(data, "data.yaml"))
	checkExit(t, err, policycmd.ExitCodeFailed)
	if err == nil || err.Error() != "1 of 3 Rego tests did not pass" {
		t.Errorf("error = %v, want 1 of 3 Rego tests did not pass", err)
	}
	for _, want := range []string{
		filepath.Join(dir, "example_test.rego") + ":7:\ndata.example_test.test_limit_fails: FAIL",
		"limit is 3",
		filepath.Join(dir, "example_test.rego") + ":9:",
		"example.limit == 4",
		"PASS: 2/3",
		"FAIL: 1/3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "test_limit_passes") {
		t.Errorf("output names a passing test without -v:\n%s", out)
	}
}

func TestPolicyTestVerboseAndRun(t *testing.T) {
	dir := writePolicyFiles(t, map[string]string{"example.rego": examplePolicy, "example_test.rego": exampleTests})
	out, err := runCommand(t, "", "policy", "test", dir, "-v", "--run", "passes$")
	if err != nil {
		t.Fatalf("policy test -v --run: %v\n%s", err, out)
	}
	if !strings.Contains(out, "data.example_test.test_limit_passes: PASS") {
		t.Errorf("verbose output does not list the passing test:\n%s", out)
	}
	if strings.Contains(out, "test_limit_fails") || !strings.Contains(out, "PASS: 1/1") {
		t.Errorf("--run did not select one test:\n%s", out)
	}
}

func TestPolicyTestJSON(t *testing.T) {
	dir := writePolicyFiles(t, map[string]string{"example.rego": examplePolicy, "example_test.rego": exampleTests})
	out, err := runCommand(t, "", "policy", "test", dir, "--format", "json")
	checkExit(t, err, policycmd.ExitCodeFailed)
	var results []struct {
		Name     string `json:"name"`
		Fail     bool   `json:"fail"`
		Location struct {
			File string `json:"file"`
			Row  int    `json:"row"`
		} `json:"location"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	outcomes := map[string]bool{}
	for _, result := range results {
		outcomes[result.Name] = result.Fail
	}
	want := map[string]bool{"test_configured": true, "test_limit_fails": true, "test_limit_passes": false}
	for name, fail := range want {
		if got, ok := outcomes[name]; !ok || got != fail {
			t.Errorf("result of %s: fail = %v (present %v), want %v", name, got, ok, fail)
		}
	}
}

func TestPolicyTestErrors(t *testing.T) {
	badSyntax := writePolicyFiles(t, map[string]string{"bad.rego": "package bad\n\nx := {\n"})
	noTests := writePolicyFiles(t, map[string]string{"example.rego": examplePolicy})
	tests := writePolicyFiles(t, map[string]string{"example.rego": examplePolicy, "example_test.rego": exampleTests})
	missing := filepath.Join(t.TempDir(), "missing")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing directory", []string{missing}, "read policy path: stat " + missing + ": no such file or directory"},
		{"parse error", []string{badSyntax},
			"parse policy: 2 errors occurred:\n" + filepath.Join(badSyntax, "bad.rego") + ":4: rego_parse_error: unexpected eof token\n\tx := {\n\t     ^\n" +
				filepath.Join(badSyntax, "bad.rego") + ":4: rego_parse_error: unexpected eof token: expected rule value term (e.g., x := <VALUE> { ... })\n\tx := {\n\t     ^"},
		{"no tests", []string{noTests}, "no Rego tests found: name test rules test_... in _test.rego files"},
		{"run matches nothing", []string{tests, "--run", "nothing"}, `no Rego test matches --run "nothing"`},
		{"invalid run", []string{tests, "--run", "(("}, "invalid test name pattern \"((\": error parsing regexp: missing closing ): `((`"},
		{"invalid format", []string{tests, "--format", "xml"}, `invalid --format "xml": expected pretty or json`},
		{"missing data file", []string{tests, "--data", missing + ".yaml"}, "read policy data file: open " + missing + ".yaml: no such file or directory"},
		{"no arguments", nil, "requires at least 1 arg(s), only received 0"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCommand(t, "", append([]string{"policy", "test"}, tt.args...)...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant %s", err, tt.want)
			}
			checkExit(t, err, policycmd.ExitCodeError)
		})
	}
}

func TestPolicyTestBuiltinError(t *testing.T) {
	dir := writePolicyFiles(t, map[string]string{
		"example_test.rego": "package example_test\n\ntest_time if time.parse_rfc3339_ns(\"next year\") > 0\n",
	})
	out, err := runCommand(t, "", "policy", "test", dir)
	checkExit(t, err, policycmd.ExitCodeFailed)
	if !strings.Contains(out, "ERROR: 1/1") || !strings.Contains(out, "parsing time") {
		t.Errorf("output does not report the built-in error:\n%s", out)
	}
}

func TestPolicyCheckValid(t *testing.T) {
	rego := defaultRego(t)
	out, err := runCommand(t, "", "policy", "check", rego)
	if err != nil {
		t.Fatalf("policy check: %v\n%s", err, out)
	}
	want := rego + ": policy is valid: it compiles with its tests and defines the request, pdu and edu decisions\n"
	if out != want {
		t.Errorf("output = %q, want %q", out, want)
	}

	out, err = runCommand(t, "", "policy", "check", rego, "--format", "json")
	if err != nil || out != "{\n  \"errors\": []\n}\n" {
		t.Errorf("policy check --format json = %q, %v, want no errors", out, err)
	}
}

func TestPolicyCheckProblems(t *testing.T) {
	dir := writePolicyFiles(t, map[string]string{
		"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": true, \"reasons\": []}\n\nx := undefined_function(1)\n",
		"edu.rego":     "package bordergate.edu\n\ndecision contains \"allow\"\n\ny := other_function(2)\n",
	})
	out, err := runCommand(t, "", "policy", "check", dir)
	checkExit(t, err, policycmd.ExitCodeError)
	if err == nil || err.Error() != "policy check found 2 problems" {
		t.Errorf("error = %v, want policy check found 2 problems", err)
	}
	want := filepath.Join(dir, "edu.rego") + ":5:6: rego_type_error: undefined function other_function\n" +
		filepath.Join(dir, "pdu.rego") + ":5:6: rego_type_error: undefined function undefined_function\n"
	if out != want {
		t.Errorf("output =\n%s\nwant\n%s", out, want)
	}

	// Once it compiles, the set rule is the problem.
	if err := os.WriteFile(filepath.Join(dir, "pdu.rego"), []byte("package bordergate.pdu\n\ndecision := {\"allow\": true, \"reasons\": []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "edu.rego"), []byte("package bordergate.edu\n\ndecision contains \"allow\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCommand(t, "", "policy", "check", dir, "--format", "json")
	checkExit(t, err, policycmd.ExitCodeError)
	var report struct {
		Errors []struct {
			Code     string `json:"code"`
			Message  string `json:"message"`
			Location struct {
				File string `json:"file"`
				Row  int    `json:"row"`
				Col  int    `json:"col"`
			} `json:"location"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(report.Errors) != 1 {
		t.Fatalf("errors = %+v, want one", report.Errors)
	}
	got := report.Errors[0]
	if got.Code != "bordergate_decision_error" || got.Location.File != filepath.Join(dir, "edu.rego") || got.Location.Row != 3 || got.Location.Col != 1 ||
		got.Message != "data.bordergate.edu.decision is a set (contains) rule, expected a rule with a decision object as its value" {
		t.Errorf("error = %+v, want the set rule at edu.rego:3:1", got)
	}
}

func TestPolicyCheckErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := runCommand(t, "", "policy", "check", missing)
	if want := "read policy path: stat " + missing + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	checkExit(t, err, policycmd.ExitCodeError)
}

// clockPolicy is a policy whose PDU decision parses input.now, so that an
// input with an invalid time fails to evaluate.
var clockPolicy = map[string]string{
	"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
	"edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
	"pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": time.parse_rfc3339_ns(input.now) > 0, \"reasons\": []}\n",
}

// testInput returns the path of an input document in testdata.
func testInput(kind string) string {
	return filepath.Join("testdata", kind+"-input.json")
}

func TestPolicyEvalInputs(t *testing.T) {
	rego := defaultRego(t)
	data := writePolicyFiles(t, map[string]string{"data.json": `{"denied_event_types": ["m.room.message"]}`})
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"request", []string{"--input", testInput("request")}, "request decision: allow\nresult: {\"allow\":true,\"reasons\":[]}\n"},
		{"edu", []string{"--input", testInput("edu")}, "edu decision: allow\n"},
		{"pdu", []string{"--input", testInput("pdu")}, "pdu decision: allow\n"},
		{"pdu with data", []string{"--input", testInput("pdu"), "--data", filepath.Join(data, "data.json")},
			"pdu decision: deny\n  reason: event type m.room.message denied\n"},
		{"explicit kind", []string{"--input", testInput("pdu"), "--kind", "pdu"}, "pdu decision: allow\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"policy", "eval", "--policy", rego}, tt.args...)
			out, err := runCommand(t, "", args...)
			if err != nil {
				t.Fatalf("policy eval: %v\n%s", err, out)
			}
			if !strings.HasPrefix(out, tt.want) {
				t.Errorf("output =\n%s\nwant it to start with\n%s", out, tt.want)
			}
			if !regexp.MustCompile(`(?m)^policy revision: [0-9a-f]{64}$`).MatchString(out) {
				t.Errorf("output has no policy revision:\n%s", out)
			}
		})
	}
}

func TestPolicyEvalJSONAndFailOnDeny(t *testing.T) {
	data := writePolicyFiles(t, map[string]string{"data.json": `{"denied_event_types": ["m.room.message"]}`})
	out, err := runCommand(t, "", "policy", "eval", "--policy", defaultRego(t), "--data", filepath.Join(data, "data.json"),
		"--input", testInput("pdu"), "--format", "json", "--fail-on-deny")
	checkExit(t, err, policycmd.ExitCodeFailed)
	if err == nil || err.Error() != "the policy denies the pdu" {
		t.Errorf("error = %v, want the policy denies the pdu", err)
	}
	var report policycmd.EvalReport
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if report.Kind != "pdu" || report.Allow || len(report.Reasons) != 1 || report.Reasons[0] != "event type m.room.message denied" ||
		report.Path != "bordergate/pdu/decision" || report.Result["allow"] != false {
		t.Errorf("report = %+v, want the pdu denial", report)
	}
}

func TestPolicyEvalStdinAndConfig(t *testing.T) {
	input, err := os.ReadFile(testInput("pdu"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeCheckConfig(t, dir, "servers: []\n")
	config, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	config = []byte(strings.Replace(string(config), "policy: {paths:", "policy: {data_file: data.json, paths:", 1))
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"denied_event_types": ["m.room.message"]}`), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := runCommand(t, string(input), "policy", "eval", "--config", path, "--input", "-")
	if err != nil {
		t.Fatalf("policy eval --config: %v\n%s", err, out)
	}
	if !strings.HasPrefix(out, "pdu decision: deny\n  reason: event type m.room.message denied\n") {
		t.Errorf("output does not use the data file of the configuration:\n%s", out)
	}
}

func TestPolicyEvalConfigWithBundle(t *testing.T) {
	dir := t.TempDir()
	path := writeCheckConfig(t, dir, "servers: []\n")
	config, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	policyLine := regexp.MustCompile(`(?m)^policy: .*$`)
	config = policyLine.ReplaceAll(config, []byte(`policy: {bundle: {url: "https://127.0.0.1:1/bundle.tar.gz"}}`))
	if err := os.WriteFile(path, config, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = runCommand(t, "", "policy", "eval", "--config", path, "--input", testInput("pdu"))
	want := path + " takes its policy from a bundle (policy.bundle): pass --policy with the policy's files"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}
	checkExit(t, err, policycmd.ExitCodeError)
}

// writeRecord writes a decision record with the given input and result.
func writeRecord(t *testing.T, record map[string]any) string {
	t.Helper()
	data, err := json.Marshal(record)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "record.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readInput returns an input document of testdata, decoded.
func readInputDocument(t *testing.T, kind string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(testInput(kind))
	if err != nil {
		t.Fatal(err)
	}
	var input map[string]any
	if err := json.Unmarshal(data, &input); err != nil {
		t.Fatal(err)
	}
	return input
}

func TestPolicyEvalRecord(t *testing.T) {
	input := readInputDocument(t, "pdu")
	delete(input["pdu"].(map[string]any)["content"].(map[string]any), "body")
	record := writeRecord(t, map[string]any{
		"decision_id": "rec-1",
		"path":        "bordergate/pdu/decision",
		"allow":       true,
		"input":       input,
		"result":      map[string]any{"allow": true, "reasons": []any{}},
		"erased":      []any{"/input/pdu/content/body"},
	})

	out, err := runCommand(t, "", "policy", "eval", "--policy", defaultRego(t), "--input", record)
	if err != nil {
		t.Fatalf("policy eval: %v\n%s", err, out)
	}
	if !strings.Contains(out, "recorded decision rec-1: allow, the same\n") {
		t.Errorf("output does not compare with the record:\n%s", out)
	}
	if strings.Contains(out, "masked:") {
		t.Errorf("output warns about masking although the default policy does not read the body:\n%s", out)
	}

	reader := writePolicyFiles(t, map[string]string{
		"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"pdu.rego":     "package bordergate.pdu\n\ndefault secret := false\n\ndecision := {\"allow\": secret == false, \"reasons\": []}\n\nsecret if contains(input.pdu.content.body, \"secret\")\n",
	})
	out, err = runCommand(t, "", "policy", "eval", "--policy", reader, "--input", record)
	if err != nil {
		t.Fatalf("policy eval: %v\n%s", err, out)
	}
	want := "masked: /input/pdu/content/body was removed from the record, and the policy reads it as input.pdu.content.body at " +
		filepath.Join(reader, "pdu.rego") + ":7:"
	if !strings.Contains(out, want) {
		t.Errorf("output does not warn about the masked body:\n%s\nwant %s", out, want)
	}
}

func TestPolicyEvalErrors(t *testing.T) {
	rego := defaultRego(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pdu := readInputDocument(t, "pdu")
	pduJSON, err := json.Marshal(pdu)
	if err != nil {
		t.Fatal(err)
	}
	withoutKind := strings.Replace(string(pduJSON), `"kind":"pdu",`, "", 1)
	badNow := strings.Replace(string(pduJSON), `"now":"2026-03-01T12:00:00Z"`, `"now":"yesterday"`, 1)
	missing := filepath.Join(dir, "missing.json")
	clock := writePolicyFiles(t, clockPolicy)

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing input file", []string{"--input", missing}, "input file " + missing + " does not exist"},
		{"missing input flag", nil, `required flag(s) "input" not set`},
		{"invalid JSON", []string{"--input", write("bad.json", "{\n  \"kind\": \"pdu\",\n  \"version\": 1,,\n}")},
			"input " + filepath.Join(dir, "bad.json") + ": line 3, column 15: invalid character ',' looking for beginning of object key string"},
		{"truncated JSON", []string{"--input", write("cut.json", `{"kind": "pdu"`)},
			"input " + filepath.Join(dir, "cut.json") + ": line 1, column 15: unexpected end of JSON input"},
		{"empty file", []string{"--input", write("empty.json", "")},
			"input " + filepath.Join(dir, "empty.json") + ": line 1, column 1: unexpected end of JSON input"},
		{"duplicate key", []string{"--input", write("dup.json", `{"kind": "pdu", "pdu": {"type": "a", "type": "b"}}`)},
			"input " + filepath.Join(dir, "dup.json") + `: line 1, column 38: key "type" appears twice in the same object`},
		{"top-level array", []string{"--input", write("array.json", `[1]`)},
			"input " + filepath.Join(dir, "array.json") + ": top level is an array, expected an object"},
		{"trailing data", []string{"--input", write("two.json", `{} {}`)},
			"input " + filepath.Join(dir, "two.json") + ": line 1, column 4: unexpected data after the top-level value"},
		{"unknown kind flag", []string{"--input", testInput("pdu"), "--kind", "event"},
			`invalid --kind: unknown decision kind "event": expected request, pdu or edu`},
		{"unknown input kind", []string{"--input", write("kind.json", `{"kind": "event"}`)},
			`invalid input.kind: unknown decision kind "event": expected request, pdu or edu`},
		{"kind not a string", []string{"--input", write("kindnum.json", `{"kind": 3}`)},
			"input.kind is a number, expected request, pdu or edu"},
		{"kind mismatch", []string{"--input", testInput("pdu"), "--kind", "edu"},
			"--kind is edu but input.kind is pdu: use an input of the kind that you evaluate"},
		{"no kind", []string{"--input", write("nokind.json", withoutKind)},
			"the input has no kind: add input.kind or pass --kind request, pdu or edu"},
		{"record without input", []string{"--input", write("noinput.json", `{"decision_id": "d1", "path": "bordergate/request/decision", "allow": false}`)},
			"decision record d1 has no input: the gateway refused the item before asking the policy, so there is nothing to evaluate"},
		{"record with unknown path", []string{"--input", write("path.json", `{"decision_id": "d2", "path": "other/decision", "input": {"kind": "pdu"}}`)},
			`decision record d2: path "other/decision" names no bordergate decision`},
		{"record path and kind differ", []string{"--input", write("differ.json", `{"decision_id": "d3", "path": "bordergate/edu/decision", "input": {"kind": "pdu"}}`)},
			"the record's path is edu but input.kind is pdu: use an input of the kind that you evaluate"},
		{"record input not an object", []string{"--input", write("inputarray.json", `{"decision_id": "d4", "path": "bordergate/edu/decision", "input": [1]}`)},
			"decision record d4: input is an array, expected an object"},
		{"evaluation error", []string{"--input", write("badnow.json", badNow), "--policy", clock},
			"decide pdu: evaluate: " + filepath.Join(clock, "pdu.rego") + ":3: eval_builtin_error: time.parse_rfc3339_ns: parsing time \"yesterday\" as \"2006-01-02T15:04:05Z07:00\": cannot parse \"yesterday\" as \"2006\"; the gateway denies on this error"},
		{"missing policy", []string{"--input", testInput("pdu"), "--policy", filepath.Join(dir, "nopolicy")},
			"read policy path: stat " + filepath.Join(dir, "nopolicy") + ": no such file or directory"},
		{"invalid format", []string{"--input", testInput("pdu"), "--format", "yaml"}, `invalid --format "yaml": expected pretty or json`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"policy", "eval", "--policy", rego}, tt.args...)
			if tt.name == "missing policy" || tt.name == "evaluation error" {
				args = append([]string{"policy", "eval"}, tt.args...)
			}
			_, err := runCommand(t, "", args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant %s", err, tt.want)
			}
			checkExit(t, err, policycmd.ExitCodeError)
		})
	}
}

func TestExitCodeOfPlainError(t *testing.T) {
	if got := exitCode(errors.New("plain")); got != 1 {
		t.Errorf("exitCode(plain error) = %d, want 1", got)
	}
	wrapped := &policycmd.ExitError{Code: policycmd.ExitCodeFailed, Err: errors.New("changed")}
	if got := exitCode(errors.Join(errors.New("context"), wrapped)); got != policycmd.ExitCodeFailed {
		t.Errorf("exitCode(wrapped ExitError) = %d, want %d", got, policycmd.ExitCodeFailed)
	}
}
