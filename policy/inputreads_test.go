package policy

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// engineWithPDURule loads a policy whose PDU decision denies when deny holds,
// with deny defined by rules, and trivial request and EDU decisions.
func engineWithPDURule(t *testing.T, rules string) *Engine {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"pdu.rego": "package bordergate.pdu\n\ndefault deny := false\n\ndecision := {\"allow\": deny == false, \"reasons\": []}\n\n" + rules,
		"rest.rego": `package bordergate.request

decision := {"allow": true, "reasons": []}
`,
		"edu.rego": `package bordergate.edu

decision := {"allow": true, "reasons": []}
`,
	})
	engine, err := New(context.Background(), Config{Paths: []string{dir}})
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	return engine
}

func TestReadMaskedDefaultPolicy(t *testing.T) {
	engine := newDefaultEngine(t)
	tests := []struct {
		pointer string
		want    bool
	}{
		{"/input/pdu/content/body", false},
		{"/input/pdu/content/formatted_body", false},
		{"/input/pdu/content/ciphertext", false},
		{"/input/edu/content/messages", false},
		{"/input/pdu/content", false},
		{"/input/pdu/type", true},
		{"/input/pdu", true},
		{"/input", true},
		{"/input/verified/format", true},
		{"/input/verified/unknown_check", true},
		{"/input/sender_entry", true},
		{"/input/origin/entry/labels/classification", true},
		{"/result/reasons", false},
		{"/result", false},
	}
	for _, tt := range tests {
		if _, got := engine.ReadMasked(tt.pointer); got != tt.want {
			t.Errorf("ReadMasked(%q) = %v, want %v", tt.pointer, got, tt.want)
		}
	}
}

func TestReadMaskedRules(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		read  []string
		not   []string
	}{
		{
			name:  "direct reference",
			rules: `deny if contains(input.pdu.content.body, "secret")`,
			read:  []string{"/input/pdu/content/body", "/input/pdu/content", "/input/pdu", "/input"},
			not:   []string{"/input/pdu/content/formatted_body", "/input/edu/content/messages"},
		},
		{
			name:  "type check reads only the value's type",
			rules: `deny if not is_object(input.pdu.content)`,
			read:  []string{"/input/pdu/content", "/input/pdu"},
			not:   []string{"/input/pdu/content/body"},
		},
		{
			name:  "count reads the whole value",
			rules: `deny if count(input.pdu.content) > 2`,
			read:  []string{"/input/pdu/content/body"},
		},
		{
			name:  "iteration over keys",
			rules: `deny if input.pdu.content[_] == "x"`,
			read:  []string{"/input/pdu/content/body", "/input/pdu/content/anything"},
			not:   []string{"/input/pdu/type"},
		},
		{
			name: "local variable",
			rules: `deny if {
	event := input.pdu
	event.content.body == "x"
}`,
			read: []string{"/input/pdu/content/body"},
			not:  []string{"/input/pdu/content/formatted_body"},
		},
		{
			name:  "object.get with a path",
			rules: `deny if object.get(input, ["pdu", "content", "body"], "") == "x"`,
			read:  []string{"/input/pdu/content/body", "/input/pdu"},
			not:   []string{"/input/pdu/content/formatted_body", "/input/edu"},
		},
		{
			name:  "object.get with a key",
			rules: `deny if object.get(input.pdu.content, "body", "") == "x"`,
			read:  []string{"/input/pdu/content/body"},
			not:   []string{"/input/pdu/content/formatted_body"},
		},
		{
			name: "object.get with a computed key",
			rules: `deny if {
	some key in ["a", "b"]
	object.get(input.pdu.content, key, "") == "x"
}`,
			read: []string{"/input/pdu/content/body"},
		},
		{
			name:  "print does not decide",
			rules: "deny if {\n\tprint(input.pdu.content.body)\n\tinput.pdu.type == \"x\"\n}",
			read:  []string{"/input/pdu/type"},
			not:   []string{"/input/pdu/content/body"},
		},
		{
			name: "value printed by a direct internal.print call and compared",
			rules: `deny if {
	bodies := {b | b := input.pdu.content.body}
	internal.print([bodies])
	bodies == {"x"}
}`,
			read: []string{"/input/pdu/content/body"},
		},
		{
			name:  "value passed to a function",
			rules: "deny if secret(input.pdu)\n\nsecret(event) if event.content.body == \"x\"",
			read:  []string{"/input/pdu/content/body", "/input/pdu/type"},
		},
		{
			name:  "walk over the whole input",
			rules: `deny if walk(input, [_, "secret"])`,
			read:  []string{"/input/pdu/content/body", "/input/edu/content/messages"},
		},
		{
			name:  "array index",
			rules: `deny if input.pdu.prev_events[0] == "$x"`,
			read:  []string{"/input/pdu/prev_events/0", "/input/pdu/prev_events"},
			not:   []string{"/input/pdu/prev_events/1"},
		},
		{
			name:  "escaped key",
			rules: `deny if input.pdu.content["a/b~c"] == "x"`,
			read:  []string{"/input/pdu/content/a~1b~0c"},
			not:   []string{"/input/pdu/content/a~1b"},
		},
		{
			name:  "reference inside a reference",
			rules: `deny if input.pdu.content[input.pdu.type] == "x"`,
			read:  []string{"/input/pdu/type", "/input/pdu/content/body"},
		},
		{
			name:  "rule value",
			rules: "deny if body == \"x\"\n\nbody := input.pdu.content.body",
			read:  []string{"/input/pdu/content/body"},
		},
		{
			name:  "comprehension",
			rules: `deny if count([v | some v in input.edu.content.messages]) > 1`,
			read:  []string{"/input/edu/content/messages"},
			not:   []string{"/input/pdu/content/body"},
		},
		{
			name:  "invalid pointer counts as read",
			rules: `deny if input.pdu.type == "x"`,
			read:  []string{"/input/a~2", "input/pdu"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			engine := engineWithPDURule(t, tt.rules)
			for _, pointer := range tt.read {
				if _, got := engine.ReadMasked(pointer); !got {
					t.Errorf("ReadMasked(%q) = false, want true; reads %v", pointer, engine.InputReads())
				}
			}
			for _, pointer := range tt.not {
				if read, got := engine.ReadMasked(pointer); got {
					t.Errorf("ReadMasked(%q) = true (read %s at %v), want false", pointer, read, read.Location)
				}
			}
		})
	}
}

func TestReadMaskedNamesLocation(t *testing.T) {
	engine := engineWithPDURule(t, `deny if input.pdu.content.body == "x"`)
	read, ok := engine.ReadMasked("/input/pdu/content/body")
	if !ok {
		t.Fatal("ReadMasked() = false, want true")
	}
	if got := read.String(); got != "input.pdu.content.body" {
		t.Errorf("read = %s, want input.pdu.content.body", got)
	}
	if read.Location == nil || filepath.Base(read.Location.File) != "pdu.rego" || read.Location.Row != 7 {
		t.Errorf("location = %v, want pdu.rego:7", read.Location)
	}
}

func TestReadMaskedUnknownReads(t *testing.T) {
	var engine Engine
	if _, ok := engine.ReadMasked("/input/pdu/content/body"); !ok {
		t.Error("ReadMasked() on an Engine without the analysis = false, want true")
	}
	if _, ok := engine.ReadMasked("/result/reasons"); ok {
		t.Error("ReadMasked(/result/reasons) = true, want false")
	}
}

func TestInputReadString(t *testing.T) {
	key := func(s string) *string { return &s }
	tests := []struct {
		path []*string
		want string
	}{
		{nil, "input"},
		{[]*string{key("pdu"), key("content"), nil}, "input.pdu.content[_]"},
		{[]*string{key("pdu"), key("prev_events"), key("0")}, `input.pdu.prev_events["0"]`},
		{[]*string{key("content"), key("m.new_content")}, `input.content["m.new_content"]`},
	}
	for _, tt := range tests {
		if got := (InputRead{Path: tt.path}).String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
	}
}

func TestParsePointer(t *testing.T) {
	tests := []struct {
		pointer string
		want    []string
		err     string
	}{
		{"", nil, ""},
		{"/", []string{""}, ""},
		{"/input/pdu/content/body", []string{"input", "pdu", "content", "body"}, ""},
		{"/a~1b/c~0d/~01", []string{"a/b", "c~d", "~1"}, ""},
		{"input", nil, `invalid JSON pointer "input": must be empty or start with /`},
		{"/a~", nil, `invalid JSON pointer "/a~": ~ must be followed by 0 or 1`},
		{"/a~2", nil, `invalid JSON pointer "/a~2": ~ must be followed by 0 or 1`},
	}
	for _, tt := range tests {
		got, err := ParsePointer(tt.pointer)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParsePointer(%q) error = %v, want %q", tt.pointer, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParsePointer(%q) = %q, %v, want %q", tt.pointer, got, err, tt.want)
		}
	}
}

// FuzzParsePointer checks that every pointer that parses gives back its
// text when its tokens are escaped and joined again.
func FuzzParsePointer(f *testing.F) {
	for _, seed := range []string{"", "/", "/input/pdu/content/body", "/a~1b~0c", "/~", "/~2", "x/y", "//"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pointer string) {
		tokens, err := ParsePointer(pointer)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, token := range tokens {
			b.WriteString("/" + strings.NewReplacer("~", "~0", "/", "~1").Replace(token))
		}
		if b.String() != pointer {
			t.Errorf("ParsePointer(%q) = %q, which escapes back to %q", pointer, tokens, b.String())
		}
	})
}
