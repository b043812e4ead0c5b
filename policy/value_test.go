package policy

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// viaJSON converts x the slow, reference way: encoding/json, then the JSON
// decoder of OPA.
func viaJSON(t testing.TB, x any) ast.Value {
	t.Helper()
	encoded, err := json.Marshal(x)
	if err != nil {
		t.Fatalf("json.Marshal(%#v) error = %v", x, err)
	}
	value, err := ast.ValueFromReader(bytes.NewReader(encoded))
	if err != nil {
		t.Fatalf("ast.ValueFromReader(%s) error = %v", encoded, err)
	}
	return value
}

// assertSameValue checks that toValue(x) equals the encoding/json conversion.
func assertSameValue(t testing.TB, x any) {
	t.Helper()
	got, err := toValue(x)
	if err != nil {
		t.Fatalf("toValue() error = %v", err)
	}
	want := viaJSON(t, x)
	if got.Compare(want) != 0 {
		t.Errorf("toValue() =\n%v\nwant\n%v", got, want)
	}
}

type embedded struct {
	Inner string `json:"inner"`
}

type unusualStruct struct {
	embedded
	Omitted   string            `json:"omitted,omitempty"`
	Kept      string            `json:"kept,omitempty"`
	Skipped   string            `json:"-"`
	Untagged  int8              `json:",omitempty"`
	Quoted    int               `json:"quoted,string"`
	When      time.Time         `json:"when"`
	WhenPtr   *time.Time        `json:"when_ptr"`
	Raw       json.RawMessage   `json:"raw"`
	Bytes     []byte            `json:"bytes"`
	Array     [2]uint16         `json:"array"`
	IntKeys   map[int]string    `json:"int_keys"`
	Float32   float32           `json:"float32"`
	Number    json.Number       `json:"number"`
	Any       any               `json:"any"`
	Nested    []map[string]any  `json:"nested"`
	Strings   map[string]string `json:"strings"`
	NilSlice  []string          `json:"nil_slice"`
	NilMap    map[string]any    `json:"nil_map"`
	EmptyList []string          `json:"empty_list"`
	unexposed string
}

type plainStruct struct {
	Name      string         `json:"name,omitempty"`
	Count     uint32         `json:"count"`
	Ratio     float64        `json:"ratio"`
	Flags     []bool         `json:"flags"`
	Pointer   *string        `json:"pointer"`
	Interface any            `json:"interface"`
	Content   map[string]any `json:"content"`
	Named     Direction      `json:"named"`
	Untagged  string
	skipped   bool
	Omitempty []int `json:"omitempty,omitempty"`
}

func TestToValueMatchesJSON(t *testing.T) {
	stateKey := ""
	when := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	full := messagePDU()
	full.PDU.StateKey = &stateKey
	full.PDU.Redacts = "$redacted"
	full.TLS = TLS{ClientCertificate: true, Verified: true, Subject: "CN=hs1.example", DNSNames: []string{"hs1.example"}, MatchesOrigin: true}
	full.Destination = Destination{ServerName: "hs2.example", Allowlisted: true, Entry: hs3Entry()}
	full.PDU.Content = map[string]any{
		"body":    "caf\u00e9 \U0001F600 <b>&</b>",
		"number":  json.Number("12345678901234567890"),
		"float":   1.5,
		"int":     42,
		"int64":   int64(-7),
		"null":    nil,
		"list":    []any{"a", json.Number("1"), true, nil, map[string]any{"deep": []any{}}},
		"strings": []string{"x"},
		"typed":   map[string]string{"k": "v"},
		"struct":  plainStruct{Name: "inner"},
	}

	tests := map[string]any{
		"request input":  sendRequest(),
		"pdu input":      full,
		"edu input":      typingEDU(),
		"struct value":   *typingEDU(),
		"empty pdu":      &PDUInput{},
		"plain struct":   plainStruct{Name: "n", Count: 3, Ratio: 0.1, Flags: []bool{true}, Interface: []any{1.25}, Named: DirectionOutbound},
		"nil pointer":    (*PDUInput)(nil),
		"string slice":   []string{"a", "b"},
		"map of structs": map[string]plainStruct{"a": {Count: 1}},
		"unusual struct": unusualStruct{
			embedded: embedded{Inner: "in"},
			Kept:     "kept",
			Skipped:  "skipped",
			Untagged: 3,
			Quoted:   7,
			When:     when,
			WhenPtr:  &when,
			Raw:      json.RawMessage(`{"n": 10000000000000000001}`),
			Bytes:    []byte{0, 1, 254},
			Array:    [2]uint16{1, 65535},
			IntKeys:  map[int]string{3: "three"},
			Float32:  0.1,
			Number:   "1e3",
			Any:      map[string]any{"x": []any{}},
			Nested:   []map[string]any{{"k": "v"}, nil},
			Strings:  map[string]string{"a": "b"},
		},
		"invalid utf-8": map[string]any{"bad\xffkey": "a\xffb\xc3", "ok": plainStruct{Name: "\xe2\x82"}},
	}
	for name, input := range tests {
		t.Run(name, func(t *testing.T) {
			assertSameValue(t, input)
		})
	}
}

func TestToValuePassesASTValue(t *testing.T) {
	value := ast.MustParseTerm(`{"kind": "pdu"}`).Value
	got, err := toValue(value)
	if err != nil {
		t.Fatalf("toValue() error = %v", err)
	}
	if got != value {
		t.Errorf("toValue() = %v, want the same ast.Value", got)
	}
}

func TestToValueErrors(t *testing.T) {
	tests := []struct {
		name  string
		input any
		want  string
	}{
		{"channel field", struct {
			C chan int `json:"c"`
		}{make(chan int)}, "c: unsupported type chan int"},
		{"nan", map[string]any{"f": []any{1.0, func() float64 { var zero float64; return zero / zero }()}}, "f: [1]: unsupported number NaN"},
		{"bad number", plainStruct{Interface: json.Number("0x10")}, `interface: invalid number literal "0x10"`},
		{"function", func() {}, "unsupported type func()"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := toValue(tt.input)
			if err == nil {
				t.Fatalf("toValue() error = nil, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("toValue() error = %q, want %q", err, tt.want)
			}
		})
	}
}

func FuzzToValue(f *testing.F) {
	f.Add("hs1.example", "m.room.message", int64(12), 1.5, "1")
	f.Add("bad\xff", "", int64(-1), math.Copysign(0, -1), "-0.5e-3")
	f.Add("\u2028<>&", "\x00", int64(1<<62), 1e300, "")
	f.Fuzz(func(t *testing.T, text, key string, integer int64, float float64, number string) {
		if float != float || float > 1e308 || float < -1e308 {
			t.Skip("encoding/json rejects NaN and infinities")
		}
		if number != "" && !isJSONNumber(number) {
			t.Skip("encoding/json rejects this json.Number")
		}
		in := messagePDU()
		in.PDU.Type = text
		in.PDU.Depth = integer
		in.PDU.StateKey = &key
		in.Request.PathParams = map[string]string{key: text}
		in.PDU.Content = map[string]any{
			key:      text,
			"float":  float,
			"number": json.Number(number),
			"nested": []any{text, integer, map[string]any{text: key}},
		}
		assertSameValue(t, in)
	})
}

func BenchmarkToValue(b *testing.B) {
	in := messagePDU()
	b.Run("walk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := toValue(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ast.InterfaceToValue(in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
