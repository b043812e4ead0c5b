package canonicaljson

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

type specVectors struct {
	CanonicalJSON []struct {
		Source string `json:"source"`
		Input  string `json:"input"`
		Output string `json:"output"`
	} `json:"canonical_json"`
}

func loadVectors(t *testing.T) specVectors {
	t.Helper()
	data, err := os.ReadFile("testdata/matrix-spec.json")
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	var v specVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	if len(v.CanonicalJSON) == 0 {
		t.Fatal("no canonical_json vectors in testdata/matrix-spec.json")
	}
	return v
}

func TestSpecVectors(t *testing.T) {
	for _, vec := range loadVectors(t).CanonicalJSON {
		t.Run(vec.Input, func(t *testing.T) {
			v, err := Parse([]byte(vec.Input))
			if err != nil {
				t.Fatalf("Parse(%q): %v", vec.Input, err)
			}
			if got := string(Encode(v)); got != vec.Output {
				t.Errorf("Encode = %q, want %q", got, vec.Output)
			}
		})
	}
}

func TestEncodeEdgeCases(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"nothing escaped beyond controls", `{"a":"\u2028<>&/\u007f"}`, "{\"a\":\"\u2028<>&/\x7f\"}"},
		{"lower-case control escapes", `{"a":"\u001F\u0000\u000b"}`, `{"a":"\u001f\u0000\u000b"}`},
		{"short escapes", `["\b\f\n\r\t\"\\"]`, `["\b\f\n\r\t\"\\"]`},
		{"solidus escape decoded", `"\/"`, `"/"`},
		{"surrogate pair decoded", `"\ud83d\ude00"`, `"😀"`},
		{"code point order not UTF-16 order", `{"\ud83d\ude00":2,"\ufb33":1}`, "{\"\uFB33\":1,\"\U0001F600\":2}"},
		{"big integer exact", `{"n":9007199254740993}`, `{"n":9007199254740993}`},
		{"exponent normalised", `[1e6,1E+2,-0,0.0,120.00,12e-1]`, `[1000000,100,0,0,120,12e-1]`},
		{"whitespace removed", " {\n\t\"a\" : [ 1 , true , null ] } ", `{"a":[1,true,null]}`},
		{"nested sort", `{"b":{"d":1,"c":2},"a":[{"z":1,"y":2}]}`, `{"a":[{"y":2,"z":1}],"b":{"c":2,"d":1}}`},
		{"huge exponent kept", `1e1000000`, `1e1000000`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got := string(Encode(v)); got != tc.want {
				t.Errorf("Encode(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		category error
		msg      string
	}{
		{"duplicate key", `{"a":1,"a":2}`, ErrBadJSON, `duplicate object key "a"`},
		{"duplicate key after escape", `{"apple":"foo","appl\u0065":"bar"}`, ErrBadJSON, `duplicate object key "apple"`},
		{"duplicate key unsorted", `{"b":1,"a":2,"b":3}`, ErrBadJSON, `duplicate object key "b"`},
		{"lone high surrogate", `{"a":"\ud800x"}`, ErrBadJSON, "unpaired surrogate escape"},
		{"lone low surrogate", `"\udc00"`, ErrBadJSON, "unpaired surrogate escape"},
		{"high then non-low", `"\ud800\u0041"`, ErrBadJSON, "unpaired surrogate escape"},
		{"invalid UTF-8", "\"\xff\"", ErrNotJSON, "invalid UTF-8 in string"},
		{"invalid UTF-8 after escape", "\"\\n\xc3\"", ErrNotJSON, "invalid UTF-8 in string"},
		{"encoded surrogate bytes", "\"\xed\xa0\x80\"", ErrNotJSON, "invalid UTF-8 in string"},
		{"raw control character", "\"a\x01\"", ErrNotJSON, "unescaped control character in string"},
		{"trailing data", `{} {}`, ErrNotJSON, "unexpected data after the JSON value"},
		{"trailing comma", `[1,]`, ErrNotJSON, `invalid character ']'`},
		{"leading zero", `01`, ErrNotJSON, "unexpected data after the JSON value"},
		{"NaN", `NaN`, ErrNotJSON, `invalid character 'N'`},
		{"bare fraction", `1.`, ErrNotJSON, "invalid number fraction"},
		{"empty", ``, ErrNotJSON, "unexpected end of input"},
		{"single quotes", `{'a':1}`, ErrNotJSON, "expected a string key"},
		{"bad escape", `"\x"`, ErrNotJSON, `invalid escape \x`},
		{"unterminated", `"abc`, ErrNotJSON, "unterminated string"},
		{"too deep", strings.Repeat("[", DefaultMaxDepth+1) + strings.Repeat("]", DefaultMaxDepth+1), ErrBadJSON, "nesting deeper than the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.in))
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want error", tc.in)
			}
			if !errors.Is(err, tc.category) {
				t.Errorf("Parse(%q) error %v is not %v", tc.in, err, tc.category)
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %T is not *SyntaxError", err)
			}
			if se.Msg != tc.msg {
				t.Errorf("message = %q, want %q", se.Msg, tc.msg)
			}
		})
	}
}

func TestDepthLimitAccepted(t *testing.T) {
	in := strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth)
	if _, err := Parse([]byte(in)); err != nil {
		t.Fatalf("Parse at exactly the depth limit: %v", err)
	}
}

func TestCheckStrictNumbers(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{"a":[1,-2,{"b":9007199254740991}]}`, true},
		{`-9007199254740991`, true},
		{`9007199254740992`, false},
		{`-9007199254740992`, false},
		{`1e10`, false},
		{`-0`, false},
		{`1.0`, false},
		{`{"a":[0.5]}`, false},
	}
	for _, tc := range tests {
		v, err := Parse([]byte(tc.in))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.in, err)
		}
		err = v.CheckStrictNumbers()
		if tc.ok && err != nil {
			t.Errorf("CheckStrictNumbers(%s) = %v, want nil", tc.in, err)
		}
		if !tc.ok && !errors.Is(err, ErrBadJSON) {
			t.Errorf("CheckStrictNumbers(%s) = %v, want ErrBadJSON", tc.in, err)
		}
	}
}

func TestAccessors(t *testing.T) {
	v, err := Parse([]byte(`{"s":"x","n":5,"b":true,"a":[1,2],"z":null}`))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := v.GetString("s"); !ok || s != "x" {
		t.Errorf("GetString(s) = %q, %v", s, ok)
	}
	if n, _ := v.Get("n"); func() bool { i, ok := n.Int(); return !ok || i != 5 }() {
		t.Errorf("Int(n) wrong: %v", n)
	}
	if b, _ := v.Get("b"); func() bool { x, ok := b.Bool(); return !ok || !x }() {
		t.Errorf("Bool(b) wrong")
	}
	if a, _ := v.Get("a"); a.Len() != 2 {
		t.Errorf("Len(a) = %d", a.Len())
	}
	if _, ok := v.Get("missing"); ok {
		t.Error("Get(missing) found a member")
	}
	w := v.With("c", StringValue("new")).Without("s", "n")
	if got, want := string(Encode(w)), `{"a":[1,2],"b":true,"c":"new","z":null}`; got != want {
		t.Errorf("With/Without = %s, want %s", got, want)
	}
	if got := string(Encode(v)); !strings.Contains(got, `"s":"x"`) {
		t.Errorf("With/Without modified the original: %s", got)
	}
	o := ObjectValue(Member{"b", IntValue(1)}, Member{"a", IntValue(2)}, Member{"b", IntValue(3)})
	if got, want := string(Encode(o)), `{"a":2,"b":3}`; got != want {
		t.Errorf("ObjectValue = %s, want %s", got, want)
	}
}

func TestInterfaceRoundTrip(t *testing.T) {
	in := `{"a":[1,"x",true,null,{"b":2}],"n":9007199254740993}`
	v, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in {
		t.Errorf("json.Marshal(Interface()) = %s, want %s", out, in)
	}
}

func TestMaxValues(t *testing.T) {
	in := []byte(`{"a":[1,2,{"b":null}],"c":"x"}`) // 7 values
	if _, err := ParseWith(in, Options{MaxValues: 7}); err != nil {
		t.Fatalf("ParseWith at exactly the limit: %v", err)
	}
	_, err := ParseWith(in, Options{MaxValues: 6})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ParseWith over the limit = %v, want ErrTooLarge", err)
	}
	if _, err := ParseWith(in, Options{}); err != nil {
		t.Errorf("ParseWith without a limit: %v", err)
	}
}
