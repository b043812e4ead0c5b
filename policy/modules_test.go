package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// defaultModules reads the default policy, without its tests, as modules.
func defaultModules(t *testing.T) []Module {
	t.Helper()
	entries, err := os.ReadDir(defaultPolicyDir)
	if err != nil {
		t.Fatal(err)
	}
	var modules []Module
	for _, entry := range entries {
		if !strings.HasSuffix(entry.Name(), ".rego") || isTestFile(entry.Name()) {
			continue
		}
		src, err := os.ReadFile(filepath.Join(defaultPolicyDir, entry.Name()))
		if err != nil {
			t.Fatal(err)
		}
		modules = append(modules, Module{Name: "bordergate/" + entry.Name(), Source: src})
	}
	return modules
}

func TestNewFromModulesDecides(t *testing.T) {
	data := map[string]any{"denied_event_types": []any{"m.room.message"}}
	engine, err := NewFromModules(context.Background(), ModulesConfig{Modules: defaultModules(t), Data: data})
	if err != nil {
		t.Fatalf("NewFromModules() error = %v", err)
	}
	decision, err := engine.Decide(context.Background(), KindPDU, messagePDU())
	if err != nil {
		t.Fatalf("Decide() error = %v", err)
	}
	if decision.Allow {
		t.Errorf("Allow = true for a message whose type the data denies, want false; reasons %q", decision.Reasons)
	}
	if len(engine.Revision()) != 64 {
		t.Errorf("Revision() = %q, want 64 hex digits", engine.Revision())
	}
}

func TestNewFromModulesRevision(t *testing.T) {
	ctx := context.Background()
	modules := defaultModules(t)
	load := func(cfg ModulesConfig) string {
		t.Helper()
		engine, err := NewFromModules(ctx, cfg)
		if err != nil {
			t.Fatalf("NewFromModules() error = %v", err)
		}
		return engine.Revision()
	}
	base := load(ModulesConfig{Modules: modules, Data: map[string]any{"a": 1.0, "b": "x"}})
	reversed := make([]Module, len(modules))
	for i, m := range modules {
		reversed[len(modules)-1-i] = m
	}
	if got := load(ModulesConfig{Modules: reversed, Data: map[string]any{"b": "x", "a": 1.0}}); got != base {
		t.Errorf("revision of the same modules and data in another order = %s, want %s", got, base)
	}
	if got := load(ModulesConfig{Modules: modules, Data: map[string]any{"a": 2.0, "b": "x"}}); got == base {
		t.Error("revision did not change with the data")
	}
	if got := load(ModulesConfig{Modules: modules, Revision: "v7@sha256:00"}); got != "v7@sha256:00" {
		t.Errorf("revision = %q, want the given v7@sha256:00", got)
	}
}

func TestNewFromModulesErrors(t *testing.T) {
	valid := "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n"
	tests := []struct {
		name    string
		modules []Module
		stage   LoadStage
		message string
	}{
		{"no modules", nil, StageRead, "no policy modules"},
		{
			"duplicate name",
			[]Module{{Name: "a.rego", Source: []byte(valid)}, {Name: "a.rego", Source: []byte(valid)}},
			StageRead, `policy module "a.rego" is given twice`,
		},
		{
			"syntax error",
			[]Module{{Name: "x/request.rego", Source: []byte("package bordergate.request\n\ndecision := {\n")}},
			StageParse, "parse policy: 2 errors occurred:\nx/request.rego:4: rego_parse_error: unexpected eof token",
		},
		{
			"compile error",
			[]Module{{Name: "x/request.rego", Source: []byte("package bordergate.request\n\ndecision := {\"allow\": nowhere}\n")}},
			StageCompile, "compile policy: 1 error occurred: x/request.rego:3:",
		},
		{
			"missing decision rule",
			[]Module{{Name: "x/request.rego", Source: []byte(valid)}},
			StageDecisionRule, "policy defines no data.bordergate.pdu.decision rule: add one to package bordergate.pdu",
		},
		{
			// Every PDU decision would fail, which denies all events.
			"decision rule is a set",
			[]Module{
				{Name: "x/request.rego", Source: []byte(valid)},
				{Name: "x/pdu.rego", Source: []byte("package bordergate.pdu\n\ndecision contains {\"allow\": true, \"reasons\": []}\n")},
				{Name: "x/edu.rego", Source: []byte(strings.Replace(valid, "request", "edu", 1))},
			},
			StageDecisionRule, "x/pdu.rego:3:1: data.bordergate.pdu.decision is a set (contains) rule, expected a rule with a decision object as its value",
		},
		{
			"decision rule is a boolean",
			[]Module{
				{Name: "x/request.rego", Source: []byte(valid)},
				{Name: "x/pdu.rego", Source: []byte("package bordergate.pdu\n\ndefault decision := false\n\ndecision := true if input.pdu.type == \"m.room.message\"\n")},
				{Name: "x/edu.rego", Source: []byte(strings.Replace(valid, "request", "edu", 1))},
			},
			StageDecisionRule, "x/pdu.rego:3:1: data.bordergate.pdu.decision is of type boolean, expected a decision object such as {\"allow\": true, \"reasons\": []}",
		},
		{
			"decision rule is a function",
			[]Module{
				{Name: "x/request.rego", Source: []byte(valid)},
				{Name: "x/pdu.rego", Source: []byte("package bordergate.pdu\n\ndecision(x) := {\"allow\": x, \"reasons\": []}\n")},
				{Name: "x/edu.rego", Source: []byte(strings.Replace(valid, "request", "edu", 1))},
			},
			StageDecisionRule, "x/pdu.rego:3:1: data.bordergate.pdu.decision is a function, expected a rule with a decision object as its value",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewFromModules(context.Background(), ModulesConfig{Modules: tt.modules})
			if err == nil {
				t.Fatal("NewFromModules() error = nil, want an error")
			}
			if got := Stage(err); got != tt.stage {
				t.Errorf("Stage(%v) = %q, want %q", err, got, tt.stage)
			}
			if !strings.HasPrefix(err.Error(), tt.message) {
				t.Errorf("error = %q, want prefix %q", err, tt.message)
			}
		})
	}
}

func TestNewErrorStages(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"parse/p.rego":   "package bordergate.request\n\ndecision := {\n",
		"compile/p.rego": "package bordergate.request\n\ndecision := {\"allow\": nowhere}\n",
		"rule/p.rego":    "package bordergate.request\n\ndecision := {\"allow\": true}\n",
		"data.yaml":      "a: [\n",
	})
	tests := []struct {
		name     string
		paths    []string
		dataFile string
		stage    LoadStage
	}{
		{"missing path", []string{filepath.Join(dir, "absent")}, "", StageRead},
		{"parse", []string{filepath.Join(dir, "parse")}, "", StageParse},
		{"compile", []string{filepath.Join(dir, "compile")}, "", StageCompile},
		{"decision rule", []string{filepath.Join(dir, "rule")}, "", StageDecisionRule},
		{"data", []string{filepath.Join(dir, "rule")}, filepath.Join(dir, "data.yaml"), StageData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), Config{Paths: tt.paths, DataFile: tt.dataFile})
			if got := Stage(err); got != tt.stage {
				t.Errorf("Stage(%v) = %q, want %q", err, got, tt.stage)
			}
		})
	}
	if got := Stage(errors.New("other")); got != "" {
		t.Errorf("Stage(plain error) = %q, want empty", got)
	}
}
