// Package canonicaljson parses JSON strictly and encodes it in the Matrix
// canonical form.
//
// The parser rejects every input that two JSON implementations could read
// differently: invalid UTF-8, duplicate object keys (compared after escapes
// are decoded), unpaired UTF-16 surrogate escapes, trailing data and nesting
// deeper than a limit. The parsed [Value] keeps object members sorted by the
// byte order of their UTF-8 keys, which is the Matrix canonical order, so
// encoding needs no further sorting.
//
// Numbers keep their source text. Room versions 6 and later accept only
// canonical integers (no fraction, no exponent, no -0, within ±(2^53-1));
// [Value.CheckStrictNumbers] enforces that. Room versions 1 to 5 and the
// lenient encoder accept any JSON number and write integral values as plain
// integers, the form the Matrix specification gives for its `1e10` example.
package canonicaljson

import (
	"slices"
	"strings"
)

// Kind is the JSON type of a [Value].
type Kind uint8

// JSON types.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// String returns the JSON name of the kind.
func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Array:
		return "array"
	case Object:
		return "object"
	}
	return "invalid"
}

// Value is an immutable parsed JSON value. The zero Value is JSON null.
type Value struct {
	kind Kind
	// flag is the boolean of a Bool, for a Number whether its text is a
	// canonical integer, and for a String whether its canonical encoding
	// is its text between quotes, with nothing to escape.
	flag bool
	// num is the value of a Number whose text is a canonical integer.
	num int64
	// str is the decoded string of a String, the source text of a Number,
	// and for a parsed Array or Object whose source text is exactly its
	// canonical encoding, that text, which Append then copies. It is empty
	// for containers built in memory or parsed from other text.
	str string
	// items holds array elements.
	items []Value
	// members holds object members sorted by key, without duplicate keys.
	members []Member
}

// Member is one key and value of a JSON object.
type Member struct {
	Key   string
	Value Value
}

// Kind returns the JSON type of v.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is JSON null.
func (v Value) IsNull() bool { return v.kind == Null }

// Bool returns the boolean of v and whether v is a boolean.
func (v Value) Bool() (bool, bool) { return v.flag, v.kind == Bool }

// Str returns the string of v and whether v is a string.
func (v Value) Str() (string, bool) {
	if v.kind != String {
		return "", false
	}
	return v.str, true
}

// Int returns the integer of v and whether v is a number written as a
// canonical integer (no fraction, no exponent, no -0, within ±(2^53-1)).
func (v Value) Int() (int64, bool) {
	if v.kind != Number || !v.flag {
		return 0, false
	}
	return v.num, true
}

// NumberText returns the source text of a number, or "" for other kinds.
func (v Value) NumberText() string {
	if v.kind != Number {
		return ""
	}
	return v.str
}

// Items returns the elements of an array, or nil for other kinds. The
// returned slice must not be modified.
func (v Value) Items() []Value { return v.items }

// Len returns the number of elements of an array or members of an object.
func (v Value) Len() int {
	if v.kind == Object {
		return len(v.members)
	}
	return len(v.items)
}

// Members returns the members of an object in canonical key order, or nil
// for other kinds. The returned slice must not be modified.
func (v Value) Members() []Member { return v.members }

// Get returns the member value stored under key and whether it exists.
func (v Value) Get(key string) (Value, bool) {
	i, ok := slices.BinarySearchFunc(v.members, key, func(m Member, k string) int {
		return strings.Compare(m.Key, k)
	})
	if !ok {
		return Value{}, false
	}
	return v.members[i].Value, true
}

// Has reports whether the object v has a member under key.
func (v Value) Has(key string) bool {
	_, ok := v.Get(key)
	return ok
}

// GetString returns the string stored under key, and whether it exists and
// is a string.
func (v Value) GetString(key string) (string, bool) {
	m, ok := v.Get(key)
	if !ok {
		return "", false
	}
	return m.Str()
}

// NullValue returns JSON null.
func NullValue() Value { return Value{} }

// BoolValue returns a JSON boolean.
func BoolValue(b bool) Value { return Value{kind: Bool, flag: b} }

// StringValue returns a JSON string. s must be valid UTF-8.
func StringValue(s string) Value { return Value{kind: String, str: s} }

// IntValue returns a JSON number holding i. Integers outside ±(2^53-1) are
// kept but are not canonical.
func IntValue(i int64) Value {
	text := formatInt(i)
	return Value{kind: Number, str: text, num: i, flag: inCanonicalRange(i)}
}

// ArrayValue returns a JSON array of items.
func ArrayValue(items ...Value) Value {
	if items == nil {
		items = []Value{}
	}
	return Value{kind: Array, items: items}
}

// ObjectValue returns a JSON object of members. Members are sorted into
// canonical order; for a repeated key the last member wins.
func ObjectValue(members ...Member) Value {
	sorted := slices.Clone(members)
	slices.SortStableFunc(sorted, compareMembers)
	out := sorted[:0]
	for _, m := range sorted {
		if n := len(out); n > 0 && out[n-1].Key == m.Key {
			out[n-1] = m
			continue
		}
		out = append(out, m)
	}
	if out == nil {
		out = []Member{}
	}
	return Value{kind: Object, members: out}
}

// With returns a copy of the object v with key set to val.
func (v Value) With(key string, val Value) Value {
	i, found := slices.BinarySearchFunc(v.members, key, func(m Member, k string) int {
		return strings.Compare(m.Key, k)
	})
	members := make([]Member, 0, len(v.members)+1)
	members = append(members, v.members[:i]...)
	members = append(members, Member{Key: key, Value: val})
	if found {
		i++
	}
	members = append(members, v.members[i:]...)
	return Value{kind: Object, members: members}
}

// Without returns a copy of the object v without the members under keys.
func (v Value) Without(keys ...string) Value {
	return v.Filter(func(k string) bool { return !slices.Contains(keys, k) })
}

// Filter returns a copy of the object v holding only the members whose key
// keep accepts.
func (v Value) Filter(keep func(key string) bool) Value {
	members := make([]Member, 0, len(v.members))
	for _, m := range v.members {
		if keep(m.Key) {
			members = append(members, m)
		}
	}
	return Value{kind: Object, members: members}
}

func compareMembers(a, b Member) int { return strings.Compare(a.Key, b.Key) }
