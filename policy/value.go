package policy

import (
	"bytes"
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts a Go value to the AST value that its encoding/json form
// would parse to, so that a decision record's JSON input replays to the same
// decision. Like encoding/json, it replaces each invalid UTF-8 byte of a string
// with U+FFFD. Structs, pointers, slices and maps are walked directly, which
// avoids the JSON encode and decode that ast.InterfaceToValue does for types it
// does not know. Types that marshal themselves (json.Marshaler,
// encoding.TextMarshaler) and struct layouts that this walk does not model
// (embedded fields, the ",string" and ",omitzero" options) go through
// encoding/json instead. An ast.Value is returned unchanged.
func toValue(x any) (ast.Value, error) {
	if value, ok := x.(ast.Value); ok {
		return value, nil
	}
	term, err := anyToTerm(x)
	if err != nil {
		return nil, err
	}
	return term.Value, nil
}

// anyToTerm converts the dynamic types of decoded JSON without reflection and
// hands every other type to reflectToTerm.
func anyToTerm(x any) (*ast.Term, error) {
	switch v := x.(type) {
	case nil:
		return ast.InternedNullTerm, nil
	case bool:
		return ast.InternedTerm(v), nil
	case string:
		return stringTerm(v), nil
	case json.Number:
		return numberTerm(string(v))
	case float64:
		return floatTerm(v, 64)
	case int:
		return ast.InternedTerm(v), nil
	case int64:
		return ast.InternedTerm(v), nil
	case map[string]any:
		if v == nil {
			return ast.InternedNullTerm, nil
		}
		object := ast.NewObjectWithCapacity(len(v))
		for key, item := range v {
			term, err := anyToTerm(item)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", key, err)
			}
			object.Insert(stringTerm(key), term)
		}
		return ast.NewTerm(object), nil
	case []any:
		if v == nil {
			return ast.InternedNullTerm, nil
		}
		terms := make([]*ast.Term, len(v))
		for i, item := range v {
			term, err := anyToTerm(item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			terms[i] = term
		}
		return ast.ArrayTerm(terms...), nil
	default:
		return reflectToTerm(reflect.ValueOf(x))
	}
}

var (
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	jsonNumberType    = reflect.TypeFor[json.Number]()
	mapStringAnyType  = reflect.TypeFor[map[string]any]()
	sliceAnyType      = reflect.TypeFor[[]any]()
)

func reflectToTerm(v reflect.Value) (*ast.Term, error) {
	if !v.IsValid() {
		return ast.InternedNullTerm, nil
	}
	t := v.Type()
	if marshalsItself(t) {
		return jsonToTerm(v)
	}

	switch t.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		return reflectToTerm(v.Elem())
	case reflect.Bool:
		return ast.InternedTerm(v.Bool()), nil
	case reflect.String:
		if t == jsonNumberType {
			return numberTerm(v.String())
		}
		return stringTerm(v.String()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return ast.InternedTerm(v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if n := v.Uint(); n <= math.MaxInt64 {
			return ast.InternedTerm(int64(n)), nil
		}
		return ast.NumberTerm(json.Number(strconv.FormatUint(v.Uint(), 10))), nil
	case reflect.Float32, reflect.Float64:
		return floatTerm(v.Float(), t.Bits())
	case reflect.Slice:
		return sliceToTerm(v)
	case reflect.Array:
		return arrayToTerm(v)
	case reflect.Map:
		return mapToTerm(v)
	case reflect.Struct:
		return structToTerm(v)
	default:
		return nil, fmt.Errorf("unsupported type %s", t)
	}
}

// marshalsItself reports whether encoding/json would call a marshal method of
// t (or of *t) instead of encoding its fields. Answers are cached per type,
// because the method set checks cost more than the conversion they guard.
func marshalsItself(t reflect.Type) bool {
	if t.Kind() == reflect.Interface {
		return false
	}
	if cached, ok := marshalers.Load(t); ok {
		return cached.(bool)
	}
	pointer := reflect.PointerTo(t)
	marshals := t.Implements(jsonMarshalerType) || t.Implements(textMarshalerType) ||
		pointer.Implements(jsonMarshalerType) || pointer.Implements(textMarshalerType)
	marshalers.Store(t, marshals)
	return marshals
}

// marshalers caches marshalsItself per reflect.Type.
var marshalers sync.Map

// jsonToTerm converts v through its JSON encoding.
func jsonToTerm(v reflect.Value) (*ast.Term, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return ast.InternedNullTerm, nil
	}
	var x any
	if v.CanAddr() {
		// A marshal method on the pointer receiver only runs on a pointer.
		x = v.Addr().Interface()
	} else {
		x = v.Interface()
	}
	encoded, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	// ValueFromReader decodes numbers as json.Number, so they stay exact.
	value, err := ast.ValueFromReader(bytes.NewReader(encoded))
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(value), nil
}

// numberTerm converts a json.Number, which encoding/json writes as 0 when it
// is empty and rejects when it is not a JSON number literal.
func numberTerm(s string) (*ast.Term, error) {
	if s == "" {
		return ast.InternedTerm(0), nil
	}
	if !isJSONNumber(s) {
		return nil, fmt.Errorf("invalid number literal %q", s)
	}
	number, err := ast.NumberChecked(s)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(number), nil
}

// isJSONNumber reports whether s is exactly one JSON number literal.
func isJSONNumber(s string) bool {
	first, last := s[0], s[len(s)-1]
	if first != '-' && (first < '0' || first > '9') {
		return false
	}
	// json.Valid accepts surrounding white space, which a literal cannot have.
	return last >= '0' && last <= '9' && json.Valid([]byte(s))
}

// stringTerm returns s as an AST string, with each invalid UTF-8 byte
// replaced by U+FFFD as encoding/json does.
func stringTerm(s string) *ast.Term {
	if utf8.ValidString(s) {
		return ast.InternedTerm(s)
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return ast.StringTerm(b.String())
}

func floatTerm(f float64, bits int) (*ast.Term, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("unsupported number %v", f)
	}
	return ast.NewTerm(ast.Number(strconv.FormatFloat(f, 'g', -1, bits))), nil
}

func sliceToTerm(v reflect.Value) (*ast.Term, error) {
	if v.IsNil() {
		return ast.InternedNullTerm, nil
	}
	if v.Type() == sliceAnyType {
		return anyToTerm(v.Interface())
	}
	if v.Type().Elem().Kind() == reflect.Uint8 && !marshalsItself(v.Type().Elem()) {
		// encoding/json encodes a byte slice as a base64 string.
		return ast.StringTerm(base64.StdEncoding.EncodeToString(v.Bytes())), nil
	}
	return arrayToTerm(v)
}

func arrayToTerm(v reflect.Value) (*ast.Term, error) {
	terms := make([]*ast.Term, v.Len())
	for i := range terms {
		term, err := reflectToTerm(v.Index(i))
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		terms[i] = term
	}
	return ast.ArrayTerm(terms...), nil
}

func mapToTerm(v reflect.Value) (*ast.Term, error) {
	if v.IsNil() {
		return ast.InternedNullTerm, nil
	}
	t := v.Type()
	if t == mapStringAnyType {
		return anyToTerm(v.Interface())
	}
	if t.Key().Kind() != reflect.String || marshalsItself(t.Key()) {
		// Integer and text-marshaling keys follow encoding/json's rules.
		return jsonToTerm(v)
	}

	object := ast.NewObjectWithCapacity(v.Len())
	iter := v.MapRange()
	for iter.Next() {
		key := iter.Key().String()
		term, err := reflectToTerm(iter.Value())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		object.Insert(stringTerm(key), term)
	}
	return ast.NewTerm(object), nil
}

func structToTerm(v reflect.Value) (*ast.Term, error) {
	layout := layoutOf(v.Type())
	if layout.viaJSON {
		return jsonToTerm(v)
	}

	object := ast.NewObjectWithCapacity(len(layout.fields))
	for _, field := range layout.fields {
		fieldValue := v.Field(field.index)
		if field.omitEmpty && isEmptyValue(fieldValue) {
			continue
		}
		term, err := reflectToTerm(fieldValue)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field.name, err)
		}
		object.Insert(field.key, term)
	}
	return ast.NewTerm(object), nil
}

// structLayout is the encoding/json field layout of a struct type.
type structLayout struct {
	// id is unique among the layouts of the process, so that cache keys can
	// tell struct types apart.
	id     uint64
	fields []structField
	// byName maps a JSON member name to its index in fields.
	byName map[string]int
	// viaJSON is set when the struct uses a feature that structToTerm does
	// not model, so encoding/json converts it.
	viaJSON bool
}

type structField struct {
	index int
	name  string
	// key is the name as a term, built once and shared by every object that
	// the layout produces, because evaluation never modifies input terms.
	key       *ast.Term
	omitEmpty bool
}

// field returns the field whose JSON member name is name.
func (l *structLayout) field(name string) (structField, bool) {
	i, ok := l.byName[name]
	if !ok {
		return structField{}, false
	}
	return l.fields[i], true
}

// structLayouts caches a *structLayout per reflect.Type, and layoutIDs
// numbers them.
var (
	structLayouts sync.Map
	layoutIDs     atomic.Uint64
)

func layoutOf(t reflect.Type) *structLayout {
	if cached, ok := structLayouts.Load(t); ok {
		return cached.(*structLayout)
	}
	layout := buildLayout(t)
	layout.id = layoutIDs.Add(1)
	cached, _ := structLayouts.LoadOrStore(t, layout)
	return cached.(*structLayout)
}

func buildLayout(t reflect.Type) *structLayout {
	layout := &structLayout{byName: map[string]int{}}
	names := make(map[string]bool, t.NumField())
	for i := range t.NumField() {
		field := t.Field(i)
		tag := field.Tag.Get("json")
		if tag == "-" {
			continue
		}
		if field.Anonymous {
			// Embedded fields follow promotion and conflict rules that only
			// encoding/json implements exactly.
			return &structLayout{viaJSON: true}
		}
		if !field.IsExported() {
			continue
		}

		name, options, _ := strings.Cut(tag, ",")
		if name == "" {
			name = field.Name
		}
		if hasOption(options, "string") || hasOption(options, "omitzero") || names[name] {
			return &structLayout{viaJSON: true}
		}
		names[name] = true
		layout.byName[name] = len(layout.fields)
		layout.fields = append(layout.fields, structField{
			index:     i,
			name:      name,
			key:       stringTerm(name),
			omitEmpty: hasOption(options, "omitempty"),
		})
	}
	return layout
}

func hasOption(options, option string) bool {
	for options != "" {
		var current string
		current, options, _ = strings.Cut(options, ",")
		if current == option {
			return true
		}
	}
	return false
}

// isEmptyValue reports whether encoding/json's omitempty drops v.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	default:
		return false
	}
}
