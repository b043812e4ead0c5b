package canonicaljson

import (
	"bytes"
	"testing"
)

// rebuild returns a copy of v made with the constructors, so that encoding
// it cannot copy any source text.
func rebuild(v Value) Value {
	switch v.Kind() {
	case String:
		s, _ := v.Str()
		return StringValue(s)
	case Array:
		items := make([]Value, 0, v.Len())
		for _, item := range v.Items() {
			items = append(items, rebuild(item))
		}
		return ArrayValue(items...)
	case Object:
		members := make([]Member, 0, v.Len())
		for _, m := range v.Members() {
			members = append(members, Member{Key: m.Key, Value: rebuild(m.Value)})
		}
		return ObjectValue(members...)
	default:
		return v
	}
}

// sourceCases are inputs whose text is canonical, or differs from the
// canonical encoding in one place.
var sourceCases = []struct {
	name      string
	in        string
	canonical bool
}{
	{"compact sorted object", `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`, true},
	{"empty containers", `{"a":{},"b":[]}`, true},
	{"canonical short escapes", `{"a":"x\"y\\z\n\t\r\b\f"}`, true},
	{"canonical control escape", `["\u0001\u001f"]`, true},
	{"raw non-ASCII", "[\"é€😀\x7f\"]", true},
	{"escaped delete", `["\u007f"]`, false},
	{"space after colon", `{"a": 1}`, false},
	{"space after comma", `[1, 2]`, false},
	{"space inside brackets", `[ 1 ]`, false},
	{"newline before brace", "{\"a\":1\n}", false},
	{"unsorted keys", `{"b":1,"a":2}`, false},
	{"escaped slash", `["a\/b"]`, false},
	{"escaped letter", `["\u0041"]`, false},
	{"escaped newline as u", `["\u000a"]`, false},
	{"upper-case hex", `["\u001F"]`, false},
	{"escaped non-ASCII", `["\u00e9"]`, false},
	{"surrogate pair escape", `["\ud83d\ude00"]`, false},
	{"exponent", `[1e2]`, false},
	{"negative zero", `[-0]`, false},
	{"fraction kept", `[1.5]`, true},
	{"nested non-canonical", `{"a":{"c":1,"b":2},"d":"e"}`, false},
}

func TestEncodeFromSource(t *testing.T) {
	for _, tc := range sourceCases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := Parse([]byte(tc.in))
			if err != nil {
				t.Fatalf("Parse(%s): %v", tc.in, err)
			}
			got, want := Encode(v), Encode(rebuild(v))
			if !bytes.Equal(got, want) {
				t.Errorf("Encode = %s, want %s as the rebuilt value encodes", got, want)
			}
			if isSame := bytes.Equal(got, []byte(tc.in)); isSame != tc.canonical {
				t.Errorf("encoding equals the source = %v, want %v", isSame, tc.canonical)
			}
		})
	}
}

func TestSourceNotCopiedAfterChange(t *testing.T) {
	v, err := Parse([]byte(`{"a":1,"b":2}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    Value
		want string
	}{
		{"with", v.With("c", IntValue(3)), `{"a":1,"b":2,"c":3}`},
		{"without", v.Without("a"), `{"b":2}`},
		{"filter", v.Filter(func(k string) bool { return k == "b" }), `{"b":2}`},
	}
	for _, tc := range tests {
		if got := string(Encode(tc.v)); got != tc.want {
			t.Errorf("%s: Encode = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// FuzzEncodeFromSource checks that copying canonical source text encodes
// exactly as encoding the value member by member.
func FuzzEncodeFromSource(f *testing.F) {
	for _, tc := range sourceCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		if got, want := Encode(v), Encode(rebuild(v)); !bytes.Equal(got, want) {
			t.Fatalf("input %q: Encode = %q, rebuilt value encodes to %q", data, got, want)
		}
	})
}
