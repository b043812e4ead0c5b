package decisionlog

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// decodeJSON decodes text the way Masker.Apply decodes documents.
func decodeJSON(t *testing.T, text string) any {
	t.Helper()
	if text == "" {
		return nil
	}
	doc, err := decodedCopy(json.RawMessage(text))
	if err != nil {
		t.Fatalf("decode %s: %v", text, err)
	}
	return doc
}

func TestMaskerApply(t *testing.T) {
	tests := []struct {
		name       string
		pointers   []string
		input      string
		result     string
		wantInput  string
		wantResult string
		wantErased []string
	}{
		{
			name:       "nested member",
			pointers:   []string{"/input/pdu/content/body"},
			input:      `{"pdu":{"content":{"body":"secret","msgtype":"m.text"},"type":"m.room.message"}}`,
			wantInput:  `{"pdu":{"content":{"msgtype":"m.text"},"type":"m.room.message"}}`,
			wantErased: []string{"/input/pdu/content/body"},
		},
		{
			name:       "missing path",
			pointers:   []string{"/input/pdu/content/body", "/input/edu/content/messages"},
			input:      `{"pdu":{"content":{"membership":"join"}}}`,
			wantInput:  `{"pdu":{"content":{"membership":"join"}}}`,
			wantErased: nil,
		},
		{
			name:       "path through a string",
			pointers:   []string{"/input/pdu/content/body/x"},
			input:      `{"pdu":{"content":{"body":"text"}}}`,
			wantInput:  `{"pdu":{"content":{"body":"text"}}}`,
			wantErased: nil,
		},
		{
			name:       "escaped slash and tilde",
			pointers:   []string{"/input/content/m.relates~1to", "/input/content/a~0b", "/input/content/~01"},
			input:      `{"content":{"m.relates/to":{"rel_type":"m.thread"},"a~b":1,"~1":2,"a/b":3,"keep":4}}`,
			wantInput:  `{"content":{"a/b":3,"keep":4}}`,
			wantErased: []string{"/input/content/m.relates~1to", "/input/content/a~0b", "/input/content/~01"},
		},
		{
			name:       "array element by index",
			pointers:   []string{"/input/pdus/1/content/body", "/input/tags/0", "/input/tags/2"},
			input:      `{"pdus":[{"content":{"body":"a"}},{"content":{"body":"b"}}],"tags":["x","y","z"]}`,
			wantInput:  `{"pdus":[{"content":{"body":"a"}},{"content":{}}],"tags":[null,"y",null]}`,
			wantErased: []string{"/input/pdus/1/content/body", "/input/tags/0", "/input/tags/2"},
		},
		{
			name:       "array index out of range or not canonical",
			pointers:   []string{"/input/tags/3", "/input/tags/01", "/input/tags/-", "/input/tags/+1"},
			input:      `{"tags":["x","y","z"]}`,
			wantInput:  `{"tags":["x","y","z"]}`,
			wantErased: nil,
		},
		{
			name:       "digits as object key",
			pointers:   []string{"/input/rooms/01"},
			input:      `{"rooms":{"01":"a","1":"b"}}`,
			wantInput:  `{"rooms":{"1":"b"}}`,
			wantErased: []string{"/input/rooms/01"},
		},
		{
			name:       "empty key",
			pointers:   []string{"/input/"},
			input:      `{"":"empty","x":"kept"}`,
			wantInput:  `{"x":"kept"}`,
			wantErased: []string{"/input/"},
		},
		{
			name:       "whole input",
			pointers:   []string{"/input", "/input/pdu"},
			input:      `{"pdu":{}}`,
			wantInput:  ``,
			wantErased: []string{"/input"},
		},
		{
			name:       "result member",
			pointers:   []string{"/result/reasons"},
			input:      `{"a":1}`,
			result:     `{"allow":false,"reasons":["denied"]}`,
			wantInput:  `{"a":1}`,
			wantResult: `{"allow":false}`,
			wantErased: []string{"/result/reasons"},
		},
		{
			name:       "parent erased before child",
			pointers:   []string{"/input/pdu/content", "/input/pdu/content/body"},
			input:      `{"pdu":{"content":{"body":"x"},"type":"t"}}`,
			wantInput:  `{"pdu":{"type":"t"}}`,
			wantErased: []string{"/input/pdu/content"},
		},
		{
			name:       "large number kept exact",
			pointers:   []string{"/input/x"},
			input:      `{"n":12345678901234567890,"x":1}`,
			wantInput:  `{"n":12345678901234567890}`,
			wantErased: []string{"/input/x"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMasker(tt.pointers)
			if err != nil {
				t.Fatal(err)
			}
			rec := Record{Input: decodeJSON(t, tt.input), Result: decodeJSON(t, tt.result)}

			got, err := m.Apply(rec)
			if err != nil {
				t.Fatal(err)
			}
			if want := decodeJSON(t, tt.wantInput); !reflect.DeepEqual(got.Input, want) {
				t.Errorf("input = %s, want %s", mustJSON(t, got.Input), tt.wantInput)
			}
			if want := decodeJSON(t, tt.wantResult); !reflect.DeepEqual(got.Result, want) {
				t.Errorf("result = %s, want %s", mustJSON(t, got.Result), tt.wantResult)
			}
			if !slices.Equal(got.Erased, tt.wantErased) {
				t.Errorf("erased = %q, want %q", got.Erased, tt.wantErased)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	encoded, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(encoded)
}

func TestMaskerApplyKeepsCallerInput(t *testing.T) {
	content := map[string]any{"body": "secret", "msgtype": "m.text"}
	input := map[string]any{"pdu": map[string]any{"content": content}}
	tags := []string{"a", "b"}
	rec := Record{
		Input:  input,
		Result: map[string]any{"tags": tags},
		Erased: make([]string, 0, 4),
	}
	m, err := NewMasker([]string{"/input/pdu/content/body", "/result/tags/0"})
	if err != nil {
		t.Fatal(err)
	}

	got, err := m.Apply(rec)
	if err != nil {
		t.Fatal(err)
	}
	if content["body"] != "secret" {
		t.Errorf("caller's content body = %v, want secret", content["body"])
	}
	if tags[0] != "a" {
		t.Errorf("caller's tags[0] = %q, want a", tags[0])
	}
	if len(rec.Erased) != 0 {
		t.Errorf("caller's erased = %q, want empty", rec.Erased)
	}
	if want := []string{"/input/pdu/content/body", "/result/tags/0"}; !slices.Equal(got.Erased, want) {
		t.Errorf("erased = %q, want %q", got.Erased, want)
	}
}

func TestMaskerApplyStructInput(t *testing.T) {
	type content struct {
		Body    string `json:"body"`
		MsgType string `json:"msgtype"`
	}
	type pdu struct {
		Content content `json:"content"`
	}
	input := struct {
		PDU pdu `json:"pdu"`
	}{PDU: pdu{Content: content{Body: "secret", MsgType: "m.text"}}}

	got, err := DefaultMasker().Apply(Record{Input: input})
	if err != nil {
		t.Fatal(err)
	}
	if encoded := mustJSON(t, got.Input); encoded != `{"pdu":{"content":{"msgtype":"m.text"}}}` {
		t.Errorf("input = %s, want the body erased", encoded)
	}
	if input.PDU.Content.Body != "secret" {
		t.Errorf("caller's body = %q, want secret", input.PDU.Content.Body)
	}
}

func TestMaskerApplyAppendsToErased(t *testing.T) {
	m, err := NewMasker([]string{"/input/a"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Apply(Record{Input: map[string]any{"a": 1}, Erased: []string{"/input/earlier"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/input/earlier", "/input/a"}; !slices.Equal(got.Erased, want) {
		t.Errorf("erased = %q, want %q", got.Erased, want)
	}
}

func TestMaskerApplyEncodeError(t *testing.T) {
	_, err := DefaultMasker().Apply(Record{Input: map[string]any{"f": func() {}}})
	if err == nil {
		t.Fatal("Apply with a func in the input returned nil error")
	}
	if !strings.Contains(err.Error(), "mask input") {
		t.Errorf("error = %q, want it to name the input", err)
	}
}

func TestMaskerDefaultPointers(t *testing.T) {
	want := []string{
		"/input/edu/content/messages",
		"/input/pdu/content/body",
		"/input/pdu/content/ciphertext",
		"/input/pdu/content/formatted_body",
		"/input/pdu/content/m.message",
		"/input/pdu/content/m.new_content",
		"/input/pdu/content/m.poll.start",
		"/input/pdu/content/m.text",
		"/input/pdu/content/org.matrix.msc1767.text",
		"/input/pdu/content/org.matrix.msc3381.poll.start",
	}
	if got := DefaultMasker().Pointers(); !slices.Equal(got, want) {
		t.Errorf("DefaultMasker().Pointers() = %q, want %q", got, want)
	}

	pointers := DefaultMaskPointers()
	pointers[0] = "/input/changed"
	if got := DefaultMaskPointers()[0]; got != want[0] {
		t.Errorf("DefaultMaskPointers()[0] = %q after changing a returned slice, want %q", got, want[0])
	}
}

func TestMaskerDefaultErasesMessages(t *testing.T) {
	input := decodeJSON(t, `{
		"pdu": {"content": {"body": "b", "formatted_body": "f", "ciphertext": "c", "msgtype": "m.text"}},
		"edu": {"edu_type": "m.direct_to_device", "content": {"messages": {"@a:x": {}}, "sender": "@b:y"}}
	}`)
	got, err := DefaultMasker().Apply(Record{Input: input})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"edu":{"content":{"sender":"@b:y"},"edu_type":"m.direct_to_device"},"pdu":{"content":{"msgtype":"m.text"}}}`
	if encoded := mustJSON(t, got.Input); encoded != want {
		t.Errorf("input = %s, want %s", encoded, want)
	}
	wantErased := []string{"/input/edu/content/messages", "/input/pdu/content/body", "/input/pdu/content/ciphertext", "/input/pdu/content/formatted_body"}
	if !slices.Equal(got.Erased, wantErased) {
		t.Errorf("erased = %q, want %q", got.Erased, wantErased)
	}
}

func TestMaskerWithoutPointers(t *testing.T) {
	m, err := NewMasker(nil)
	if err != nil {
		t.Fatal(err)
	}
	input := map[string]any{"pdu": map[string]any{"content": map[string]any{"body": "kept"}}}
	got, err := m.Apply(Record{Input: input})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Input, input) {
		t.Errorf("input = %v, want %v", got.Input, input)
	}
	if got.Erased != nil {
		t.Errorf("erased = %q, want nil", got.Erased)
	}
}

func TestNewMaskerDeduplicates(t *testing.T) {
	m, err := NewMasker([]string{"/input/a", "/input/b", "/input/a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/input/a", "/input/b"}; !slices.Equal(m.Pointers(), want) {
		t.Errorf("Pointers() = %q, want %q", m.Pointers(), want)
	}
}

func TestNewMaskerInvalidPointer(t *testing.T) {
	tests := []struct {
		name    string
		pointer string
		wantErr string
	}{
		{"empty", "", `invalid mask pointer "": must start with /input or /result`},
		{"no leading slash", "input/pdu", `invalid mask pointer "input/pdu": must start with /input or /result`},
		{"other root", "/nd_builtin_cache/x", `invalid mask pointer "/nd_builtin_cache/x": must start with /input or /result`},
		{"root prefix only", "/inputs/x", `invalid mask pointer "/inputs/x": must start with /input or /result`},
		{"whole record", "/", `invalid mask pointer "/": must start with /input or /result`},
		{"escaped root", "/in~0put", `invalid mask pointer "/in~0put": must start with /input or /result`},
		{"tilde at end", "/input/a~", `invalid mask pointer "/input/a~": reference token "a~" ends with ~, use ~0 for a literal ~`},
		{"unknown escape", "/input/a~2b", `invalid mask pointer "/input/a~2b": reference token "a~2b" contains invalid escape ~2, only ~0 and ~1 are defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMasker([]string{"/input/ok", tt.pointer})
			if err == nil {
				t.Fatalf("NewMasker(%q) = %v, want an error", tt.pointer, m.Pointers())
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q, want %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzMaskerApply(f *testing.F) {
	f.Add(`{"pdu":{"content":{"body":"x"}}}`, "/input/pdu/content/body")
	f.Add(`{"a":[1,{"b~/":2}]}`, "/input/a/1/b~0~1")
	f.Add(`[1,2,3]`, "/input/2")
	f.Add(`"text"`, "/input")
	f.Add(`{"":{"":0}}`, "/input//")
	f.Fuzz(func(t *testing.T, input, pointer string) {
		if !json.Valid([]byte(input)) {
			return
		}
		m, err := NewMasker([]string{pointer})
		if err != nil {
			return
		}
		original := decodeJSON(t, input)
		callerCopy := decodeJSON(t, input)

		got, err := m.Apply(Record{Input: callerCopy})
		if err != nil {
			t.Fatalf("Apply(%s) with %q: %v", input, pointer, err)
		}
		if !reflect.DeepEqual(callerCopy, original) {
			t.Fatalf("Apply changed the caller's input %s", input)
		}
		if len(got.Erased) > 1 {
			t.Fatalf("erased = %q, want at most one pointer", got.Erased)
		}
		if _, err := json.Marshal(got.Input); err != nil {
			t.Fatalf("masked input does not encode: %v", err)
		}
	})
}

// Message text also travels outside body and formatted_body: the new text
// of an edit in m.new_content, and the question, answers and text
// fallbacks of a poll in the keys of extensible events. The default mask
// erases them too.
func TestMaskerDefaultErasesEditsAndPolls(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"edit",
			`{"body": "* Quartz", "msgtype": "m.text", "m.new_content": {"body": "Quartz", "formatted_body": "<b>Quartz</b>", "msgtype": "m.text"}, "m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}}`,
			`{"m.relates_to":{"event_id":"$e","rel_type":"m.replace"},"msgtype":"m.text"}`},
		{"stable poll",
			`{"m.poll.start": {"question": {"m.text": "Zephyr?"}, "answers": [{"id": "a", "m.text": "Xylophone"}]}, "m.message": [{"mimetype": "text/plain", "body": "Zephyr? Xylophone"}], "m.text": "Zephyr?"}`,
			`{}`},
		{"unstable poll",
			`{"org.matrix.msc3381.poll.start": {"question": {"org.matrix.msc1767.text": "Zephyr?"}}, "org.matrix.msc1767.text": "Zephyr?", "body": "Zephyr?"}`,
			`{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := decodeJSON(t, `{"pdu": {"type": "x", "content": `+tt.content+`}}`)
			got, err := DefaultMasker().Apply(Record{Input: input})
			if err != nil {
				t.Fatal(err)
			}
			want := `{"pdu":{"content":` + tt.want + `,"type":"x"}}`
			if encoded := mustJSON(t, got.Input); encoded != want {
				t.Errorf("input = %s, want %s", encoded, want)
			}
			line, err := Encode(&Record{DecisionID: "d", Input: input}, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, text := range []string{"Quartz", "Zephyr", "Xylophone"} {
				if strings.Contains(string(line), text) {
					t.Errorf("encoded record still holds %q: %s", text, line)
				}
			}
		})
	}
}
