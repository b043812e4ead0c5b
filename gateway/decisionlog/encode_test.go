package decisionlog

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// encodeWithEncodingJSON encodes rec masked through Apply and
// encoding/json, the way records were written before appendRecord.
func encodeWithEncodingJSON(t *testing.T, rec Record, m *Masker) []byte {
	t.Helper()
	masked, err := m.Apply(rec)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&masked); err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return buf.Bytes()
}

// canonicalForm returns the canonical JSON of a JSON document, so that two
// encodings of one document compare equal whatever their key order,
// escapes and number spelling.
func canonicalForm(t *testing.T, data []byte) string {
	t.Helper()
	v, err := canonicaljson.ParseWith(bytes.TrimSpace(data), canonicaljson.Options{MaxDepth: maxMaskDepth})
	if err != nil {
		t.Fatalf("parse %s: %v", data, err)
	}
	return string(canonicaljson.Encode(v))
}

func TestAppendRecordMatchesEncodingJSON(t *testing.T) {
	full := fullRecord(t)
	unmasked, err := NewMasker(nil)
	if err != nil {
		t.Fatal(err)
	}
	type pduInput struct {
		Direction string         `json:"direction"`
		Content   map[string]any `json:"content"`
		Note      string         `json:"note,omitempty"`
	}
	records := map[string]Record{
		"full":            full,
		"empty":           {},
		"empty matrix":    {Matrix: &Matrix{}, Timestamp: time.Unix(0, 0).UTC()},
		"escapes":         {Error: "a\"b\\c\n\r\t\b\f\x01<>&\u2028\u2029\xff", Path: "é/😀"},
		"struct input":    {Input: &pduInput{Direction: "inbound", Content: map[string]any{"body": "secret", "n": 1.5e21}}},
		"html in input":   {Input: map[string]any{"body": "<b>&</b>"}},
		"array input":     {Input: []any{1, "two", nil}},
		"scalar result":   {Result: true},
		"nested messages": {Input: map[string]any{"edu": map[string]any{"content": map[string]any{"messages": map[string]any{"@a:b": 1}}}}},
	}
	for name, rec := range records {
		for _, m := range []*Masker{unmasked, DefaultMasker()} {
			got, err := appendRecord(nil, &rec, m)
			if err != nil {
				t.Fatalf("%s: appendRecord: %v", name, err)
			}
			want := encodeWithEncodingJSON(t, rec, m)
			if canonicalForm(t, got) != canonicalForm(t, want) {
				t.Errorf("%s with %d mask pointers:\n got %s\nwant %s", name, len(m.Pointers()), got, want)
			}
			if m == unmasked && !bytes.Equal(got, want) {
				t.Errorf("%s unmasked: bytes differ from encoding/json:\n got %s\nwant %s", name, got, want)
			}
		}
	}
}

func TestAppendRecordErasesWholeRoot(t *testing.T) {
	m, err := NewMasker([]string{"/input/a", "/input", "/input/b", "/result/0"})
	if err != nil {
		t.Fatal(err)
	}
	rec := Record{Input: map[string]any{"a": 1, "b": 2}, Result: []any{"x", "y"}}
	line, err := appendRecord(nil, &rec, m)
	if err != nil {
		t.Fatal(err)
	}
	var decoded map[string]any
	if err := json.Unmarshal(line, &decoded); err != nil {
		t.Fatalf("decode %s: %v", line, err)
	}
	if _, ok := decoded["input"]; ok {
		t.Errorf("input = %v, want it omitted", decoded["input"])
	}
	if want := []any{nil, "y"}; !reflect.DeepEqual(decoded["result"], want) {
		t.Errorf("result = %v, want %v", decoded["result"], want)
	}
	if want := []any{"/input/a", "/input", "/result/0"}; !reflect.DeepEqual(decoded["erased"], want) {
		t.Errorf("erased = %v, want %v", decoded["erased"], want)
	}
}

func TestAppendRecordInvalidUTF8Keys(t *testing.T) {
	// Both keys encode as "a\ufffd", which the strict parser rejects as a
	// duplicate, so masking falls back to a decoded copy.
	rec := Record{Input: map[string]any{"a\xff": 1, "a\xfe": 2, "pdu": map[string]any{"content": map[string]any{"body": "x"}}}}
	got, err := appendRecord(nil, &rec, DefaultMasker())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got, []byte(`"body"`)) {
		t.Errorf("record %s still holds the message body", got)
	}
}

func TestAppendRecordUnencodableInput(t *testing.T) {
	rec := Record{Input: map[string]any{"f": func() {}}}
	if _, err := appendRecord(nil, &rec, DefaultMasker()); err == nil {
		t.Error("appendRecord with a function in the input: error = nil, want one")
	}
}

// FuzzAppendJSONString checks the string encoder against encoding/json.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b\\c", "\x00\x1f\x7f", "é😀", "\xff\xfe", "\u2028\u2029", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		want := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	})
}

// FuzzMaskedEncoding checks that masking the encoded input gives the same
// document, and the same erased pointers in the same order, as masking a
// decoded copy.
func FuzzMaskedEncoding(f *testing.F) {
	f.Add(`{"pdu":{"content":{"body":"x","n":1e21}}}`, "/input/pdu/content/body", "/input/pdu/content/formatted_body")
	f.Add(`{"a":[1,{"b~/":2}]}`, "/input/a/1/b~0~1", "/input/a/0")
	f.Add(`[1,2,3]`, "/input/2", "/input/0")
	f.Add(`"text"`, "/input", "/input/a")
	f.Add(`{"":{"":0}}`, "/input//", "/input/")
	f.Add(`{"a":{"b":1},"c":""}"}`, "/input/a", "/input/a/b")
	f.Add(`{"a\"b":{"c":1}}`, "/input/a\"b/c", "/result/x")
	f.Fuzz(func(t *testing.T, input, first, second string) {
		if !json.Valid([]byte(input)) {
			return
		}
		m, err := NewMasker([]string{first, second})
		if err != nil {
			return
		}
		rec := Record{Input: decodeJSON(t, input)}
		got, err := appendRecord(nil, &rec, m)
		if err != nil {
			t.Fatalf("appendRecord(%s) with %q and %q: %v", input, first, second, err)
		}
		want := encodeWithEncodingJSON(t, rec, m)
		if canonicalForm(t, got) != canonicalForm(t, want) {
			t.Fatalf("input %s, pointers %q and %q:\n got %s\nwant %s", input, first, second, got, want)
		}
	})
}

func TestAppendRecordAllocations(t *testing.T) {
	rec := pduRecord()
	masker := DefaultMasker()
	buf := make([]byte, 0, 8192)
	encode := func() {
		var err error
		if buf, err = appendRecord(buf[:0], rec, masker); err != nil {
			t.Fatal(err)
		}
	}
	encode()
	// Measured with Go 1.26 on linux/amd64: 115, most of them
	// encoding/json's, for the maps of the input, and a few more under the
	// race detector, whose pools drop items.
	if got := testing.AllocsPerRun(100, encode); got > 130 {
		t.Errorf("appendRecord allocates %v times per PDU record, want at most 130", got)
	}
}
