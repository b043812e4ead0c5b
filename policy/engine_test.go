package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func TestDefaultPolicyRequest(t *testing.T) {
	engine := newDefaultEngine(t)
	tests := []struct {
		name    string
		modify  func(in *RequestInput)
		allow   bool
		reasons []string
	}{
		{
			name:    "allow-listed send",
			modify:  func(in *RequestInput) {},
			allow:   true,
			reasons: []string{},
		},
		{
			name: "origin not allow-listed",
			modify: func(in *RequestInput) {
				in.Origin.Allowlisted = false
				in.Origin.Entry = nil
			},
			reasons: []string{"origin not on allow-list"},
		},
		{
			name: "entry expired",
			modify: func(in *RequestInput) {
				in.Origin.Entry.Expires, in.Origin.Entry.Expired = "2026-02-28T00:00:00Z", true
			},
			reasons: []string{"allow-list entry for hs1.example expired"},
		},
		{
			name:    "entry without expiry",
			modify:  func(in *RequestInput) { in.Origin.Entry.Expires = "" },
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "endpoint not permitted",
			modify:  func(in *RequestInput) { in.Origin.Entry.Endpoints = []string{"backfill"} },
			reasons: []string{"endpoint send not permitted for hs1.example"},
		},
		{
			name:    "endpoint listed",
			modify:  func(in *RequestInput) { in.Origin.Entry.Endpoints = []string{"backfill", "send"} },
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "no endpoints listed",
			modify:  func(in *RequestInput) { in.Origin.Entry.Endpoints = nil },
			reasons: []string{"endpoint send not permitted for hs1.example"},
		},
		{
			name:    "mutual TLS missing",
			modify:  func(in *RequestInput) { in.Origin.Entry.RequireMTLS = true },
			reasons: []string{"mutual TLS required for hs1.example"},
		},
		{
			name: "mutual TLS certificate for another server",
			modify: func(in *RequestInput) {
				in.Origin.Entry.RequireMTLS = true
				in.TLS = TLS{ClientCertificate: true, Verified: true, Subject: "CN=hs3.example", DNSNames: []string{"hs3.example"}}
			},
			reasons: []string{"mutual TLS required for hs1.example"},
		},
		{
			name: "mutual TLS verified",
			modify: func(in *RequestInput) {
				in.Origin.Entry.RequireMTLS = true
				in.TLS = TLS{ClientCertificate: true, Verified: true, Subject: "CN=hs1.example", DNSNames: []string{"hs1.example"}, MatchesOrigin: true}
			},
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "not authenticated",
			modify:  func(in *RequestInput) { in.Request.Authenticated = false },
			reasons: []string{"request not authenticated"},
		},
		{
			name: "key server from unknown server",
			modify: func(in *RequestInput) {
				in.Request = Request{Method: "GET", Path: "/_matrix/key/v2/server", Endpoint: "key_server"}
				in.Origin = Origin{}
			},
			allow:   true,
			reasons: []string{},
		},
		{
			name: "key query from unknown server",
			modify: func(in *RequestInput) {
				in.Request = Request{Method: "POST", Path: "/_matrix/key/v2/query", Endpoint: "key_query"}
				in.Origin = Origin{}
			},
			reasons: []string{"origin not on allow-list", "request not authenticated"},
		},
		{
			name: "outbound to unknown destination",
			modify: func(in *RequestInput) {
				in.Direction = DirectionOutbound
				in.Origin = Origin{ServerName: "hs2.example"}
				in.Destination = Destination{ServerName: "evil.example"}
			},
			reasons: []string{"destination not on allow-list"},
		},
		{
			name: "outbound to allow-listed destination",
			modify: func(in *RequestInput) {
				in.Direction = DirectionOutbound
				in.Origin = Origin{ServerName: "hs2.example"}
				in.Destination = Destination{ServerName: "hs1.example", Allowlisted: true, Entry: hs1Entry()}
			},
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "unknown direction",
			modify:  func(in *RequestInput) { in.Direction = "sideways" },
			reasons: []string{"direction sideways not supported, expected inbound or outbound"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := sendRequest()
			tt.modify(in)
			decision, err := engine.Decide(context.Background(), KindRequest, in)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if decision.Allow != tt.allow {
				t.Errorf("Allow = %v, want %v (reasons %q)", decision.Allow, tt.allow, decision.Reasons)
			}
			if !reflect.DeepEqual(decision.Reasons, tt.reasons) {
				t.Errorf("Reasons = %q, want %q", decision.Reasons, tt.reasons)
			}
		})
	}
}

func TestDefaultPolicyPDU(t *testing.T) {
	engine := newDefaultEngine(t)
	tests := []struct {
		name    string
		modify  func(in *PDUInput)
		allow   bool
		reasons []string
	}{
		{
			name:    "message from allow-listed server",
			modify:  func(in *PDUInput) {},
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "type denied by data file",
			modify:  func(in *PDUInput) { in.PDU.Type = "com.example.forbidden" },
			reasons: []string{"event type com.example.forbidden denied"},
		},
		{
			name: "sender server not allow-listed",
			modify: func(in *PDUInput) {
				in.PDU.Sender = "@mallory:evil.example"
				in.PDU.SenderServer = "evil.example"
				in.SenderEntry = nil
			},
			reasons: []string{"sender server evil.example not on allow-list"},
		},
		{
			name: "local sender",
			modify: func(in *PDUInput) {
				in.PDU.Sender = "@bob:hs2.example"
				in.PDU.SenderServer = "hs2.example"
				in.SenderEntry = nil
				in.SenderLocal = true
			},
			allow:   true,
			reasons: []string{},
		},
		{
			name: "unknown type in restricted room",
			modify: func(in *PDUInput) {
				in.Room.RoomID = "!restricted:hs1.example"
				in.PDU.Type = "org.example.custom"
			},
			reasons: []string{"event type org.example.custom not allowed in restricted room !restricted:hs1.example"},
		},
		{
			name: "configured type in restricted room",
			modify: func(in *PDUInput) {
				in.Room.RoomID = "!restricted:hs1.example"
				in.PDU.Type = "com.example.allowed"
			},
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "unknown type in other room",
			modify:  func(in *PDUInput) { in.PDU.Type = "org.example.custom" },
			allow:   true,
			reasons: []string{},
		},
		{
			name:    "type outside entry event_types",
			modify:  func(in *PDUInput) { in.SenderEntry.EventTypes = []string{"m.room.member"} },
			reasons: []string{"event type m.room.message not permitted for hs1.example"},
		},
		{
			name:    "signature check failed",
			modify:  func(in *PDUInput) { in.Verified.Signatures = false },
			reasons: []string{"event signatures check failed"},
		},
		{
			name: "content hash failed",
			modify: func(in *PDUInput) {
				in.Verified.ContentHash = false
				in.Verified.RedactedForHash = true
				in.PDU.Content = map[string]any{}
			},
			allow:   true,
			reasons: []string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := messagePDU()
			tt.modify(in)
			decision, err := engine.Decide(context.Background(), KindPDU, in)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if decision.Allow != tt.allow {
				t.Errorf("Allow = %v, want %v (reasons %q)", decision.Allow, tt.allow, decision.Reasons)
			}
			if !reflect.DeepEqual(decision.Reasons, tt.reasons) {
				t.Errorf("Reasons = %q, want %q", decision.Reasons, tt.reasons)
			}
		})
	}
}

func TestDefaultPolicyEDU(t *testing.T) {
	tests := []struct {
		name     string
		dataFile string
		modify   func(in *EDUInput)
		allow    bool
		reasons  []string
	}{
		{
			name:     "typing from allow-listed server",
			dataFile: "testdata/config.yaml",
			modify:   func(in *EDUInput) {},
			allow:    true,
			reasons:  []string{},
		},
		{
			name:     "unknown type allowed by default",
			dataFile: "testdata/config.yaml",
			modify:   func(in *EDUInput) { in.EDU.EDUType = "org.example.custom" },
			allow:    true,
			reasons:  []string{},
		},
		{
			name:     "unknown type with deny_unknown_edus",
			dataFile: "testdata/config.json",
			modify:   func(in *EDUInput) { in.EDU.EDUType = "org.example.custom" },
			reasons:  []string{"EDU type org.example.custom not allowed"},
		},
		{
			name:     "receipt with deny_unknown_edus",
			dataFile: "testdata/config.json",
			modify:   func(in *EDUInput) { in.EDU.EDUType = "m.receipt" },
			allow:    true,
			reasons:  []string{},
		},
		{
			name:     "origin not allow-listed",
			dataFile: "testdata/config.yaml",
			modify: func(in *EDUInput) {
				in.Origin.Allowlisted = false
				in.Origin.Entry = nil
			},
			reasons: []string{"origin not on allow-list"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine, err := New(context.Background(), Config{Paths: []string{defaultPolicyDir}, DataFile: tt.dataFile})
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			in := typingEDU()
			tt.modify(in)
			decision, err := engine.Decide(context.Background(), KindEDU, in)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if decision.Allow != tt.allow {
				t.Errorf("Allow = %v, want %v (reasons %q)", decision.Allow, tt.allow, decision.Reasons)
			}
			if !reflect.DeepEqual(decision.Reasons, tt.reasons) {
				t.Errorf("Reasons = %q, want %q", decision.Reasons, tt.reasons)
			}
		})
	}
}

func TestDefaultPolicyWithoutDataFile(t *testing.T) {
	engine, err := New(context.Background(), Config{Paths: []string{defaultPolicyDir}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	in := messagePDU()
	in.PDU.Type = "com.example.forbidden"
	decision, err := engine.Decide(context.Background(), KindPDU, in)
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if !decision.Allow {
		t.Errorf("Allow = false, want true without a data file (reasons %q)", decision.Reasons)
	}
}

func TestDecideInputForms(t *testing.T) {
	engine := newDefaultEngine(t)
	in := sendRequest()
	in.Origin.Entry.Endpoints = []string{"backfill"}
	want := []string{"endpoint send not permitted for hs1.example"}

	encoded, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var asMap map[string]any
	if err := json.Unmarshal(encoded, &asMap); err != nil {
		t.Fatal(err)
	}
	asValue, err := ast.ValueFromReader(bytes.NewReader(encoded))
	if err != nil {
		t.Fatal(err)
	}

	inputs := map[string]any{
		"pointer":   in,
		"struct":    *in,
		"map":       asMap,
		"ast.Value": asValue,
	}
	for name, input := range inputs {
		t.Run(name, func(t *testing.T) {
			decision, err := engine.Decide(context.Background(), KindRequest, input)
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if decision.Allow {
				t.Error("Allow = true, want false")
			}
			if !reflect.DeepEqual(decision.Reasons, want) {
				t.Errorf("Reasons = %q, want %q", decision.Reasons, want)
			}
		})
	}
}

func TestDecideRejectsBadCalls(t *testing.T) {
	engine := newDefaultEngine(t)
	pdu := messagePDU()
	pdu.Version = 2
	tests := []struct {
		name  string
		kind  Kind
		input any
		want  string
	}{
		{"unknown kind", Kind("state"), sendRequest(), `decide: unknown decision kind: "state"`},
		{"nil input", KindRequest, nil, "decide request: input is nil"},
		{"nil pointer", KindPDU, (*PDUInput)(nil), "decide pdu: input is nil"},
		{"kind mismatch", KindPDU, sendRequest(), `decide pdu: input kind is "request", expected "pdu"`},
		{"version mismatch", KindPDU, pdu, "decide pdu: input version is 2, expected 1"},
		{"unconvertible input", KindEDU, map[string]any{"c": make(chan int)}, "decide edu: convert input: c: unsupported type chan int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engine.Decide(context.Background(), tt.kind, tt.input)
			if err == nil {
				t.Fatalf("Decide() error = nil, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Decide() error = %q, want %q", err, tt.want)
			}
		})
	}
	if _, err := engine.Decide(context.Background(), Kind("state"), sendRequest()); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Decide(unknown kind) error = %v, want ErrUnknownKind", err)
	}
}

// decisionPolicy returns a policy directory whose three decisions are the
// Rego expression body.
func decisionPolicy(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for _, kind := range kinds {
		files[string(kind)+".rego"] = "package bordergate." + string(kind) + "\n\n" + body + "\n"
	}
	writeFiles(t, dir, files)
	return dir
}

func TestDecideInvalidResults(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr error
		message string
	}{
		{
			name:    "undefined decision",
			body:    "decision := {\"allow\": true, \"reasons\": []} if input.never",
			wantErr: ErrUndefinedDecision,
			message: "decide request: decision is undefined",
		},
		{
			// The compiler cannot type the value, so the policy loads.
			name:    "not an object",
			body:    "decision := json.unmarshal(\"true\")",
			wantErr: ErrInvalidDecision,
			message: "decide request: invalid decision: result is a boolean, expected an object",
		},
		{
			name:    "allow missing",
			body:    "decision := {\"reasons\": []}",
			wantErr: ErrInvalidDecision,
			message: "decide request: invalid decision: allow is missing",
		},
		{
			name:    "allow not boolean",
			body:    "decision := {\"allow\": \"yes\", \"reasons\": []}",
			wantErr: ErrInvalidDecision,
			message: "decide request: invalid decision: allow is a string, expected a boolean",
		},
		{
			name:    "reasons not array",
			body:    "decision := {\"allow\": false, \"reasons\": \"bad\"}",
			wantErr: ErrInvalidDecision,
			message: "decide request: invalid decision: reasons is a string, expected an array of strings",
		},
		{
			name:    "reason not string",
			body:    "decision := {\"allow\": false, \"reasons\": [\"ok\", 7]}",
			wantErr: ErrInvalidDecision,
			message: "decide request: invalid decision: reasons[1] is a number, expected a string",
		},
		{
			name:    "reserved shadow member",
			body:    "decision := {\"allow\": true, \"reasons\": [], \"shadow\": {}}",
			wantErr: ErrInvalidDecision,
			message: `decide request: invalid decision: member "shadow" is reserved for the gateway's record of a shadow decision, rename it`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine, err := New(context.Background(), Config{Paths: []string{decisionPolicy(t, tt.body)}})
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			decision, err := engine.Decide(context.Background(), KindRequest, sendRequest())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Decide() error = %v, want %v", err, tt.wantErr)
			}
			if err.Error() != tt.message {
				t.Errorf("Decide() error = %q, want %q", err, tt.message)
			}
			if decision.Allow {
				t.Error("Allow = true on error, want false")
			}
		})
	}
}

func TestDecideKeepsExtraFields(t *testing.T) {
	body := `decision := {"allow": false, "reasons": ["withheld"], "status": 451, "errcode": "M_FORBIDDEN", "redact": true}`
	engine, err := New(context.Background(), Config{Paths: []string{decisionPolicy(t, body)}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	decision, err := engine.Decide(context.Background(), KindPDU, messagePDU())
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	want := map[string]any{
		"allow":   false,
		"reasons": []any{"withheld"},
		"status":  json.Number("451"),
		"errcode": "M_FORBIDDEN",
		"redact":  true,
	}
	if !reflect.DeepEqual(decision.Result, want) {
		t.Errorf("Result = %#v, want %#v", decision.Result, want)
	}
	if !reflect.DeepEqual(decision.Reasons, []string{"withheld"}) {
		t.Errorf("Reasons = %q, want [withheld]", decision.Reasons)
	}
}

func TestDecideMissingReasonsIsEmpty(t *testing.T) {
	engine, err := New(context.Background(), Config{Paths: []string{decisionPolicy(t, `decision := {"allow": true}`)}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	decision, err := engine.Decide(context.Background(), KindEDU, typingEDU())
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if decision.Reasons == nil || len(decision.Reasons) != 0 {
		t.Errorf("Reasons = %#v, want an empty non-nil slice", decision.Reasons)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		// paths are relative to the test directory; nil means the directory.
		paths    []string
		dataFile string
		want     []string
	}{
		{
			name: "syntax error",
			files: map[string]string{
				"request.rego": "package bordergate.request\n\ndecision := {\"allow\" true}\n",
			},
			want: []string{"parse policy: ", "request.rego:3:", "rego_parse_error"},
		},
		{
			name: "missing decision rule",
			files: map[string]string{
				"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
				"pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
			},
			want: []string{"policy defines no data.bordergate.edu.decision rule: add one to package bordergate.edu"},
		},
		{
			name: "compile error",
			files: map[string]string{
				"request.rego": "package bordergate.request\n\ndecision := {\"allow\": undefined_name, \"reasons\": []}\n",
			},
			want: []string{"compile policy: ", "request.rego:3:", "rego_unsafe_var_error"},
		},
		{
			name:  "no rego files",
			files: map[string]string{"README.md": "policy goes here\n"},
			want:  []string{"no .rego policy files found in "},
		},
		{
			name:  "missing path",
			paths: []string{"absent"},
			want:  []string{"read policy path: stat ", "absent: no such file or directory"},
		},
		{
			name:  "path not rego",
			files: map[string]string{"policy.txt": "x"},
			paths: []string{"policy.txt"},
			want:  []string{"policy path ", "policy.txt: expected a .rego file or a directory"},
		},
		{
			name:     "data file missing",
			files:    map[string]string{"p.rego": "package bordergate.request\n"},
			dataFile: "absent.yaml",
			want:     []string{"read policy data file: open ", "absent.yaml: no such file or directory"},
		},
		{
			name: "data file bad yaml",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.yaml": "denied_event_types:\n  - a\n - b\n",
			},
			dataFile: "data.yaml",
			want:     []string{"policy data file ", "data.yaml: yaml: line 2: "},
		},
		{
			name: "data file bad json",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.json": "{\n  \"a\": [1, 2,,]\n}\n",
			},
			dataFile: "data.json",
			want:     []string{"policy data file ", "data.json: 2:15: invalid character ','"},
		},
		{
			name: "data file truncated json",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.json": "{\n  \"a\": [1, 2",
			},
			dataFile: "data.json",
			want:     []string{"data.json: 2:13: unexpected end of JSON input"},
		},
		{
			name: "data file trailing json",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.json": "{}\n{}\n",
			},
			dataFile: "data.json",
			want:     []string{"data.json: 2:2: unexpected data after the top-level value"},
		},
		{
			name: "data file not object",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.yaml": "- a\n- b\n",
			},
			dataFile: "data.yaml",
			want:     []string{"data.yaml: top level is an array, expected an object"},
		},
		{
			name: "data file non-string key",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.yaml": "labels:\n  1: x\n",
			},
			dataFile: "data.yaml",
			want:     []string{"data.yaml: line 2: key 1 in labels is not a string, quote it"},
		},
		{
			name: "data file duplicate key",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.yaml": "labels:\n  a: x\n  a: y\n",
			},
			dataFile: "data.yaml",
			want:     []string{"data.yaml: line 3: key \"a\" in labels is defined twice"},
		},
		{
			name: "data file extension",
			files: map[string]string{
				"p.rego":    "package bordergate.request\n",
				"data.toml": "a = 1\n",
			},
			dataFile: "data.toml",
			want:     []string{"data.toml: unsupported extension \".toml\", expected .json, .yaml or .yml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files)
			paths := []string{dir}
			for i, path := range tt.paths {
				if i == 0 {
					paths = nil
				}
				paths = append(paths, filepath.Join(dir, path))
			}
			dataFile := ""
			if tt.dataFile != "" {
				dataFile = filepath.Join(dir, tt.dataFile)
			}

			_, err := New(context.Background(), Config{Paths: paths, DataFile: dataFile})
			if err == nil {
				t.Fatalf("New() error = nil, want one containing %q", tt.want)
			}
			for _, part := range tt.want {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("New() error = %q, want it to contain %q", err, part)
				}
			}
		})
	}
}

func TestNewWithoutPaths(t *testing.T) {
	_, err := New(context.Background(), Config{})
	if err == nil || err.Error() != "no policy paths configured" {
		t.Errorf("New() error = %v, want \"no policy paths configured\"", err)
	}
}

func TestNewSkipsTestAndHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	allow := `decision := {"allow": true, "reasons": []}`
	writeFiles(t, dir, map[string]string{
		"request.rego": "package bordergate.request\n\n" + allow + "\n",
		"pdu.rego":     "package bordergate.pdu\n\n" + allow + "\n",
		"sub/edu.rego": "package bordergate.edu\n\n" + allow + "\n",
		// A second decision would conflict, and the syntax errors would fail
		// the parse, if these files were loaded.
		"request_test.rego":       "package bordergate.request\n\ndecision := {\"allow\": false}\n",
		".hidden/broken.rego":     "package broken\n\nthis is not rego\n",
		"..data/edu.rego":         "package bordergate.edu\n\n" + allow + "\n",
		"sub/.editor-backup.rego": "not rego either\n",
	})
	engine, err := New(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	decision, err := engine.Decide(context.Background(), KindRequest, sendRequest())
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if !decision.Allow {
		t.Error("Allow = false, want true from request.rego")
	}
}

func TestNewFileListedTwice(t *testing.T) {
	dir := decisionPolicy(t, `decision := {"allow": true, "reasons": []}`)
	_, err := New(context.Background(), Config{Paths: []string{dir, filepath.Join(dir, "pdu.rego")}})
	if err != nil {
		t.Fatalf("New() error = %v, want the duplicate file loaded once", err)
	}
}

func TestNewSymlinkedDirectory(t *testing.T) {
	target := decisionPolicy(t, `decision := {"allow": true, "reasons": []}`)
	link := filepath.Join(t.TempDir(), "rego")
	if err := os.Symlink(target, link); err != nil {
		t.Skipf("symlink not supported: %v", err)
	}
	engine, err := New(context.Background(), Config{Paths: []string{link}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	direct, err := New(context.Background(), Config{Paths: []string{target}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	if engine.Revision() != direct.Revision() {
		t.Errorf("Revision() through link = %s, want %s", engine.Revision(), direct.Revision())
	}
}

func TestDataFileFormats(t *testing.T) {
	dir := t.TempDir()
	policy := "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": [], \"config\": data.bordergate.config}\n"
	writeFiles(t, dir, map[string]string{
		"rego/request.rego": policy,
		"rego/pdu.rego":     "package bordergate.pdu\n\ndecision := {\"allow\": true}\n",
		"rego/edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": true}\n",
		"config.yaml":       "restricted_rooms: [\"!a:hs1.example\"]\nmax: 9007199254740993\nexpires: 2027-01-01T00:00:00Z\nsince: 2026-01-01\nnested: {on: true}\n",
		"config.yml":        "# only comments\n",
		"config.json":       "{\"restricted_rooms\": [\"!a:hs1.example\"], \"max\": 9007199254740993}",
		"empty.json":        "  \n",
	})
	tests := []struct {
		file string
		want map[string]any
	}{
		{"config.yaml", map[string]any{
			"restricted_rooms": []any{"!a:hs1.example"},
			"max":              json.Number("9007199254740993"),
			"expires":          "2027-01-01T00:00:00Z",
			"since":            "2026-01-01",
			"nested":           map[string]any{"on": true},
		}},
		{"config.yml", map[string]any{}},
		{"config.json", map[string]any{
			"restricted_rooms": []any{"!a:hs1.example"},
			"max":              json.Number("9007199254740993"),
		}},
		{"empty.json", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			engine, err := New(context.Background(), Config{
				Paths:    []string{filepath.Join(dir, "rego")},
				DataFile: filepath.Join(dir, tt.file),
			})
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			decision, err := engine.Decide(context.Background(), KindRequest, sendRequest())
			if err != nil {
				t.Fatalf("Decide() error = %v", err)
			}
			if !reflect.DeepEqual(decision.Result["config"], tt.want) {
				t.Errorf("data.bordergate.config = %#v, want %#v", decision.Result["config"], tt.want)
			}
		})
	}
}

func TestRevision(t *testing.T) {
	load := func(t *testing.T, paths []string, dataFile string) string {
		t.Helper()
		engine, err := New(context.Background(), Config{Paths: paths, DataFile: dataFile})
		if err != nil {
			t.Fatalf("New() error = %v", err)
		}
		return engine.Revision()
	}
	body := `decision := {"allow": true, "reasons": []}`
	first := decisionPolicy(t, body)
	second := decisionPolicy(t, body)
	base := load(t, []string{first}, "")

	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(base) {
		t.Fatalf("Revision() = %q, want 64 lower-case hex digits", base)
	}
	if again := load(t, []string{first}, ""); again != base {
		t.Errorf("Revision() of the same files = %s, want %s", again, base)
	}
	if moved := load(t, []string{second}, ""); moved != base {
		t.Errorf("Revision() of a copy in another directory = %s, want %s", moved, base)
	}

	writeFiles(t, second, map[string]string{"pdu.rego": "package bordergate.pdu\n\n" + body + " # changed\n"})
	if changed := load(t, []string{second}, ""); changed == base {
		t.Error("Revision() unchanged after a policy file changed")
	}

	renamed := decisionPolicy(t, body)
	if err := os.Rename(filepath.Join(renamed, "edu.rego"), filepath.Join(renamed, "edu_rules.rego")); err != nil {
		t.Fatal(err)
	}
	if changed := load(t, []string{renamed}, ""); changed == base {
		t.Error("Revision() unchanged after a policy file was renamed")
	}

	dataDir := t.TempDir()
	writeFiles(t, dataDir, map[string]string{"config.yaml": "deny_unknown_edus: false\n"})
	withData := load(t, []string{first}, filepath.Join(dataDir, "config.yaml"))
	if withData == base {
		t.Error("Revision() unchanged after adding a data file")
	}
	writeFiles(t, dataDir, map[string]string{"config.yaml": "deny_unknown_edus: true\n"})
	if changed := load(t, []string{first}, filepath.Join(dataDir, "config.yaml")); changed == withData {
		t.Error("Revision() unchanged after the data file changed")
	}
}

func TestPath(t *testing.T) {
	engine := newDefaultEngine(t)
	want := map[Kind]string{
		KindRequest: "bordergate/request/decision",
		KindPDU:     "bordergate/pdu/decision",
		KindEDU:     "bordergate/edu/decision",
	}
	for kind, path := range want {
		if got := engine.Path(kind); got != path {
			t.Errorf("Path(%s) = %q, want %q", kind, got, path)
		}
	}
}

func TestPrintGoesToLogger(t *testing.T) {
	dir := decisionPolicy(t, "decision := {\"allow\": true, \"reasons\": []} if {\n\tprint(\"endpoint\", input.request.endpoint)\n}")
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	engine, err := New(context.Background(), Config{Paths: []string{dir}, Logger: logger})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	if _, err := engine.Decide(context.Background(), KindRequest, sendRequest()); err != nil {
		t.Fatalf("Decide() error = %v", err)
	}

	if !strings.Contains(logs.String(), `"msg":"policy loaded"`) {
		t.Errorf("log = %s, want a policy loaded record", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"policy print","location":"`) {
		t.Errorf("log = %s, want a policy print record with a location", logs.String())
	}
	if !strings.Contains(logs.String(), `"message":"endpoint send"`) {
		t.Errorf("log = %s, want the printed message", logs.String())
	}
}

func TestDecideConcurrent(t *testing.T) {
	engine := newDefaultEngine(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			in := messagePDU()
			if i%2 == 1 {
				in.PDU.Type = "com.example.forbidden"
			}
			decision, err := engine.Decide(context.Background(), KindPDU, in)
			switch {
			case err != nil:
				errs <- err
			case decision.Allow != (i%2 == 0):
				errs <- errors.New("decision of one goroutine leaked into another")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkDecidePDU(b *testing.B) {
	engine := newDefaultEngine(b)
	in := messagePDU()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		decision, err := engine.Decide(ctx, KindPDU, in)
		if err != nil || !decision.Allow {
			b.Fatalf("Decide() = %+v, %v; want allowed", decision, err)
		}
	}
}
