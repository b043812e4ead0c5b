package policy

import (
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// compileForTest compiles Rego modules given as file name to source, with
// the options the Engine uses.
func compileForTest(t *testing.T, sources map[string]string) *ast.Compiler {
	t.Helper()
	modules := map[string]*ast.Module{}
	for name, source := range sources {
		module, err := ast.ParseModuleWithOpts(name, source, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		modules[name] = module
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(true)
	if compiler.Compile(modules); compiler.Failed() {
		t.Fatalf("compile: %v", compiler.Errors)
	}
	return compiler
}

func TestInputReadsDefaultPolicy(t *testing.T) {
	files, err := collectPolicyFiles([]string{defaultPolicyDir}, false)
	if err != nil {
		t.Fatal(err)
	}
	modules, err := parseModules(files)
	if err != nil {
		t.Fatal(err)
	}
	compiler := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1).WithEnablePrintStatements(true)
	if compiler.Compile(modules); compiler.Failed() {
		t.Fatal(compiler.Errors)
	}

	want := map[Kind][]string{
		KindRequest: {"destination", "direction", "origin", "request.authenticated", "request.endpoint",
			"tls.client_certificate", "tls.matches_origin", "tls.verified", "version"},
		KindPDU: {"destination", "direction", "origin", "pdu.sender_server", "pdu.type", "room.room_id",
			"sender_deny_entry", "sender_entry", "sender_local", "verified", "version"},
		KindEDU: {"destination", "direction", "edu.edu_type", "origin", "version"},
	}
	for _, kind := range kinds {
		reads := analyzeInputReads(compiler, decisionRef(kind))
		if !reads.pure {
			t.Errorf("%s: pure = false (%s), want true", kind, reads.reason)
		}
		if got := joinPaths(reads.paths); !slices.Equal(got, want[kind]) {
			t.Errorf("%s: paths = %q, want %q", kind, got, want[kind])
		}
	}
}

func TestInputReads(t *testing.T) {
	const header = "package bordergate.pdu\n\n"
	tests := []struct {
		name   string
		policy string
		// extra is a second module, in package bordergate.helpers.
		extra  string
		paths  []string
		reason string
	}{
		{
			name:   "constant decision",
			policy: `decision := {"allow": true, "reasons": []}`,
			paths:  []string{},
		},
		{
			name: "nested paths collapse into their prefix",
			policy: `decision := {"allow": allow, "reasons": []}
allow if input.pdu.type == "m.room.message"
allow if input.pdu.content.body == "x"
allow if input.pdu == {}`,
			paths: []string{"pdu"},
		},
		{
			name: "variable key stops the path, a number does not",
			policy: `decision := {"allow": count(r) == 0, "reasons": r}
r contains k if some k, _ in input.verified
r contains "x" if input.pdu.prev_events[0] == "$a"`,
			paths: []string{"pdu.prev_events.0", "verified"},
		},
		{
			name:   "input in a reference key",
			policy: `decision := {"allow": data.table[input.room.room_id], "reasons": []}`,
			paths:  []string{"room.room_id"},
		},
		{
			name: "function in another package",
			policy: `import data.bordergate.helpers
decision := {"allow": helpers.ok(input.pdu.type), "reasons": []}`,
			extra: `ok(t) if { t == "m.room.message"; input.sender_local }`,
			paths: []string{"pdu.type", "sender_local"},
		},
		{
			name: "else branch",
			policy: `decision := {"allow": allow, "reasons": []}
allow := true if input.direction == "inbound"
else := input.sender_local`,
			paths: []string{"direction", "sender_local"},
		},
		{
			name: "rule of another kind is not reachable",
			policy: `decision := {"allow": true, "reasons": []}
unused := input`,
			paths: []string{},
		},
		{
			name:   "object.get on the input",
			policy: `decision := {"allow": object.get(input, "x", false), "reasons": []}`,
			paths:  []string{"x"},
		},
		{
			name:   "object.get with a key known at evaluation",
			policy: `decision := {"allow": object.get(input.verified, input.check, false), "reasons": []}`,
			paths:  []string{"check", "verified"},
		},
		{
			name:   "whole input passed to a function",
			policy: `decision := {"allow": count(input) > 0, "reasons": []}`,
			reason: "a rule reads the input document as a whole",
		},
		{
			name:   "variable key on the input",
			policy: `decision := {"allow": count([k | some k, _ in input]) > 0, "reasons": []}`,
			reason: "a rule reads the input document as a whole",
		},
		{
			name:   "whole input through a helper",
			policy: "import data.bordergate.helpers\ndecision := {\"allow\": helpers.all_of, \"reasons\": []}",
			extra:  `all_of := input`,
			reason: "a rule reads the input document as a whole",
		},
		{
			name:   "with keyword",
			policy: "decision := {\"allow\": a, \"reasons\": []}\na if {\n\tallow with input.pdu as {}\n}\nallow if input.pdu",
			reason: "the policy uses the with keyword",
		},
		{
			name:   "clock",
			policy: `decision := {"allow": time.now_ns() > 0, "reasons": []}`,
			reason: "the policy calls time.now_ns, which is nondeterministic",
		},
		{
			name:   "print",
			policy: `decision := {"allow": true, "reasons": []} if print(input.pdu.type)`,
			reason: "the policy calls internal.print",
		},
		{
			name:   "JWT verification reads the clock",
			policy: `decision := {"allow": io.jwt.decode_verify(input.token, {"secret": "s"})[0], "reasons": []}`,
			reason: "the policy calls io.jwt.decode_verify",
		},
		{
			name:   "http.send",
			policy: `decision := {"allow": http.send({"method": "GET", "url": "http://127.0.0.1:1/"}).status_code == 200, "reasons": []}`,
			reason: "the policy calls http.send, which is nondeterministic",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sources := map[string]string{"pdu.rego": header + tt.policy}
			if tt.extra != "" {
				sources["helpers.rego"] = "package bordergate.helpers\n\n" + tt.extra
			}
			compiler := compileForTest(t, sources)
			reads := analyzeInputReads(compiler, decisionRef(KindPDU))
			if tt.reason != "" {
				if reads.pure {
					t.Fatalf("pure = true with paths %q, want false", joinPaths(reads.paths))
				}
				if reads.reason != tt.reason {
					t.Errorf("reason = %q, want %q", reads.reason, tt.reason)
				}
				return
			}
			if !reads.pure {
				t.Fatalf("pure = false (%s), want true", reads.reason)
			}
			if got := joinPaths(reads.paths); !slices.Equal(got, tt.paths) {
				t.Errorf("paths = %q, want %q", got, tt.paths)
			}
		})
	}
}

func joinPaths(paths [][]string) []string {
	joined := []string{}
	for _, path := range paths {
		joined = append(joined, strings.Join(path, "."))
	}
	return joined
}
