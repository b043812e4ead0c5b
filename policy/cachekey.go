package policy

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Tags of the cache key encoding. Every value starts with one, and the
// content after a tag is self-delimiting, so that two different sequences of
// values never encode to the same bytes. Equal encodings mean equal policy
// input values, because what toValue makes of a value is determined by its
// tag and content: a struct's tag carries the ID of its layout, which names
// its members.
const (
	tagNull      = 'n'
	tagAbsent    = 'o' // an object member that the JSON form omits
	tagTrue      = 't'
	tagFalse     = 'f'
	tagString    = 's'
	tagNumber    = 'N' // a json.Number literal
	tagInt       = 'i'
	tagUint      = 'u'
	tagFloat32   = 'g'
	tagFloat64   = 'G'
	tagBytes     = 'b'
	tagArray     = 'a'
	tagObject    = 'm'
	tagStruct    = 'S'
	tagJSON      = 'J' // the encoding/json form of a value that marshals itself
	tagPathDepth = 'p'
)

var astValueType = reflect.TypeFor[ast.Value]()

// keyPlan builds the cache keys of inputs of one Go type: for each path, the
// depth that a walk along it reaches and the value found there. A walk
// stops early at a nil pointer, at a value that is not a struct (a map's
// whole value is then encoded, which contains the rest of the path), and at
// a member that the JSON form lacks.
type keyPlan struct {
	paths []pathPlan
}

// pathPlan is one path, resolved on the Go types as far as they are static.
type pathPlan struct {
	steps []pathStep
	// rest is the part of the path below the last step, walked at run time
	// because the type there is an interface, a map or a struct that
	// encodes itself.
	rest []string
}

// pathStep is a pointer to follow or a struct field to select.
type pathStep struct {
	deref     bool
	field     int
	omitEmpty bool
}

func newKeyPlan(t reflect.Type, paths [][]string) *keyPlan {
	plan := &keyPlan{paths: make([]pathPlan, len(paths))}
	for i, path := range paths {
		plan.paths[i] = newPathPlan(t, path)
	}
	return plan
}

func newPathPlan(t reflect.Type, path []string) pathPlan {
	var plan pathPlan
	for depth := 0; depth < len(path); {
		if t.Kind() == reflect.Pointer && !marshalsItself(t) {
			plan.steps = append(plan.steps, pathStep{deref: true})
			t = t.Elem()
			continue
		}
		if t.Kind() != reflect.Struct || marshalsItself(t) || layoutOf(t).viaJSON {
			plan.rest = path[depth:]
			return plan
		}
		field, ok := layoutOf(t).field(path[depth])
		if !ok {
			// Every value of t lacks the member, so the walk stops here.
			plan.rest = path[depth:]
			return plan
		}
		plan.steps = append(plan.steps, pathStep{field: field.index, omitEmpty: field.omitEmpty})
		t = t.Field(field.index).Type
		depth++
	}
	return plan
}

// append appends the key of v to buf.
func (p *keyPlan) append(buf []byte, v reflect.Value) ([]byte, error) {
	for i := range p.paths {
		var err error
		if buf, err = p.paths[i].append(buf, v); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func (p *pathPlan) append(buf []byte, v reflect.Value) ([]byte, error) {
	depth := 0
	for _, step := range p.steps {
		if step.deref {
			if v.IsNil() {
				return append(appendDepth(buf, depth), tagNull), nil
			}
			v = v.Elem()
			continue
		}
		v = v.Field(step.field)
		if step.omitEmpty && isEmptyValue(v) {
			return append(appendDepth(buf, depth), tagAbsent), nil
		}
		depth++
	}
	return appendPathValue(buf, v, p.rest, depth)
}

// appendPathValue walks path from v, at depth below the input's root, with
// reflection at every step.
func appendPathValue(buf []byte, v reflect.Value, path []string, depth int) ([]byte, error) {
	for _, name := range path {
		v = indirect(v)
		if !v.IsValid() || v.Kind() != reflect.Struct || marshalsItself(v.Type()) || layoutOf(v.Type()).viaJSON {
			return appendValue(appendDepth(buf, depth), v)
		}
		field, ok := layoutOf(v.Type()).field(name)
		if !ok {
			return append(appendDepth(buf, depth), tagAbsent), nil
		}
		v = v.Field(field.index)
		if field.omitEmpty && isEmptyValue(v) {
			return append(appendDepth(buf, depth), tagAbsent), nil
		}
		depth++
	}
	return appendValue(appendDepth(buf, depth), v)
}

func appendDepth(buf []byte, depth int) []byte {
	return binary.AppendUvarint(append(buf, tagPathDepth), uint64(depth))
}

// indirect follows pointers and interfaces down to a concrete value, or to
// an invalid value for nil. It stops at a pointer that marshals itself.
func indirect(v reflect.Value) reflect.Value {
	for v.IsValid() && (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) {
		if v.IsNil() {
			return reflect.Value{}
		}
		if v.Kind() == reflect.Pointer && marshalsItself(v.Type()) {
			return v
		}
		v = v.Elem()
	}
	return v
}

// appendValue appends the encoding of v.
func appendValue(buf []byte, v reflect.Value) ([]byte, error) {
	if !v.IsValid() {
		return append(buf, tagNull), nil
	}
	return encoderFor(v.Type())(buf, v)
}

// keyEncoder appends the encoding of a value of one type.
type keyEncoder func(buf []byte, v reflect.Value) ([]byte, error)

// keyEncoders caches a keyEncoder per reflect.Type.
var keyEncoders sync.Map

// encoderFor returns the encoder of type t, building it on first use. A
// recursive type finds its own encoder through a stand-in that waits until
// the encoder is built.
func encoderFor(t reflect.Type) keyEncoder {
	if cached, ok := keyEncoders.Load(t); ok {
		return cached.(keyEncoder)
	}
	var (
		built keyEncoder
		ready sync.WaitGroup
	)
	ready.Add(1)
	standIn := keyEncoder(func(buf []byte, v reflect.Value) ([]byte, error) {
		ready.Wait()
		return built(buf, v)
	})
	if cached, loaded := keyEncoders.LoadOrStore(t, standIn); loaded {
		return cached.(keyEncoder)
	}
	built = newEncoder(t)
	ready.Done()
	keyEncoders.Store(t, built)
	return built
}

func newEncoder(t reflect.Type) keyEncoder {
	if t.Kind() != reflect.Interface && marshalsItself(t) {
		return encodeJSON
	}
	switch t {
	case mapStringAnyType:
		return encodeAnyMap
	case sliceAnyType:
		return encodeAnySlice
	case jsonNumberType:
		return encodeNumber
	}
	switch t.Kind() {
	case reflect.Pointer:
		return pointerEncoder(t)
	case reflect.Interface:
		return encodeInterface
	case reflect.Bool:
		return encodeBool
	case reflect.String:
		return encodeString
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return encodeInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return encodeUint
	case reflect.Float32:
		return encodeFloat32
	case reflect.Float64:
		return encodeFloat64
	case reflect.Slice:
		return sliceEncoder(t)
	case reflect.Array:
		return elementsEncoder(t)
	case reflect.Map:
		return mapEncoder(t)
	case reflect.Struct:
		return structEncoder(t)
	default:
		return encodeUnsupported
	}
}

func encodeUnsupported([]byte, reflect.Value) ([]byte, error) {
	return nil, errNoKey
}

func encodeJSON(buf []byte, v reflect.Value) ([]byte, error) {
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return append(buf, tagNull), nil
	}
	x := v.Interface()
	if v.CanAddr() {
		// As in jsonToTerm, a marshal method on the pointer receiver only
		// runs on a pointer.
		x = v.Addr().Interface()
	}
	encoded, err := json.Marshal(x)
	if err != nil {
		return nil, errNoKey
	}
	return appendString(append(buf, tagJSON), string(encoded)), nil
}

func encodeNumber(buf []byte, v reflect.Value) ([]byte, error) {
	return appendString(append(buf, tagNumber), v.String()), nil
}

func encodeInterface(buf []byte, v reflect.Value) ([]byte, error) {
	if v.IsNil() {
		return append(buf, tagNull), nil
	}
	return appendValue(buf, v.Elem())
}

func pointerEncoder(t reflect.Type) keyEncoder {
	elem := encoderFor(t.Elem())
	return func(buf []byte, v reflect.Value) ([]byte, error) {
		if v.IsNil() {
			return append(buf, tagNull), nil
		}
		return elem(buf, v.Elem())
	}
}

func encodeBool(buf []byte, v reflect.Value) ([]byte, error) {
	if v.Bool() {
		return append(buf, tagTrue), nil
	}
	return append(buf, tagFalse), nil
}

func encodeString(buf []byte, v reflect.Value) ([]byte, error) {
	return appendString(append(buf, tagString), v.String()), nil
}

func encodeInt(buf []byte, v reflect.Value) ([]byte, error) {
	return binary.AppendVarint(append(buf, tagInt), v.Int()), nil
}

func encodeUint(buf []byte, v reflect.Value) ([]byte, error) {
	return binary.AppendUvarint(append(buf, tagUint), v.Uint()), nil
}

func encodeFloat32(buf []byte, v reflect.Value) ([]byte, error) {
	return binary.LittleEndian.AppendUint32(append(buf, tagFloat32), math.Float32bits(float32(v.Float()))), nil
}

func encodeFloat64(buf []byte, v reflect.Value) ([]byte, error) {
	return binary.LittleEndian.AppendUint64(append(buf, tagFloat64), math.Float64bits(v.Float())), nil
}

func appendString(buf []byte, s string) []byte {
	return append(binary.AppendUvarint(buf, uint64(len(s))), s...)
}

// sliceEncoder encodes a byte slice as its bytes, which encoding/json
// writes as base64, and any other slice as an array.
func sliceEncoder(t reflect.Type) keyEncoder {
	if t.Elem().Kind() == reflect.Uint8 && !marshalsItself(t.Elem()) {
		return func(buf []byte, v reflect.Value) ([]byte, error) {
			if v.IsNil() {
				return append(buf, tagNull), nil
			}
			return appendString(append(buf, tagBytes), string(v.Bytes())), nil
		}
	}
	elements := elementsEncoder(t)
	return func(buf []byte, v reflect.Value) ([]byte, error) {
		if v.IsNil() {
			return append(buf, tagNull), nil
		}
		return elements(buf, v)
	}
}

func elementsEncoder(t reflect.Type) keyEncoder {
	elem := encoderFor(t.Elem())
	return func(buf []byte, v reflect.Value) ([]byte, error) {
		buf = binary.AppendUvarint(append(buf, tagArray), uint64(v.Len()))
		for i := range v.Len() {
			var err error
			if buf, err = elem(buf, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
}

// mapEncoder encodes a map with string keys as its members sorted by key.
// Other maps follow encoding/json's key rules, so they go through it.
func mapEncoder(t reflect.Type) keyEncoder {
	if t.Key().Kind() != reflect.String || marshalsItself(t.Key()) {
		return encodeJSON
	}
	elem := encoderFor(t.Elem())
	return func(buf []byte, v reflect.Value) ([]byte, error) {
		if v.IsNil() {
			return append(buf, tagNull), nil
		}
		keys := make([]reflect.Value, 0, v.Len())
		for iter := v.MapRange(); iter.Next(); {
			keys = append(keys, iter.Key())
		}
		slices.SortFunc(keys, func(a, b reflect.Value) int {
			return strings.Compare(a.String(), b.String())
		})
		buf = binary.AppendUvarint(append(buf, tagObject), uint64(len(keys)))
		for _, key := range keys {
			buf = appendString(buf, key.String())
			var err error
			if buf, err = elem(buf, v.MapIndex(key)); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
}

func encodeAnyMap(buf []byte, v reflect.Value) ([]byte, error) {
	if v.IsNil() {
		return append(buf, tagNull), nil
	}
	m := v.Interface().(map[string]any)
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	buf = binary.AppendUvarint(append(buf, tagObject), uint64(len(keys)))
	for _, key := range keys {
		buf = appendString(buf, key)
		var err error
		if buf, err = appendValue(buf, reflect.ValueOf(m[key])); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func encodeAnySlice(buf []byte, v reflect.Value) ([]byte, error) {
	if v.IsNil() {
		return append(buf, tagNull), nil
	}
	items := v.Interface().([]any)
	buf = binary.AppendUvarint(append(buf, tagArray), uint64(len(items)))
	for _, item := range items {
		var err error
		if buf, err = appendValue(buf, reflect.ValueOf(item)); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// structEncoder encodes a struct as its layout's ID and its fields in
// layout order, with tagAbsent for the fields that omitempty drops.
func structEncoder(t reflect.Type) keyEncoder {
	layout := layoutOf(t)
	if layout.viaJSON {
		return encodeJSON
	}
	fields := make([]keyEncoder, len(layout.fields))
	for i, field := range layout.fields {
		fields[i] = encoderFor(t.Field(field.index).Type)
	}
	return func(buf []byte, v reflect.Value) ([]byte, error) {
		buf = binary.AppendUvarint(append(buf, tagStruct), layout.id)
		for i, field := range layout.fields {
			value := v.Field(field.index)
			if field.omitEmpty && isEmptyValue(value) {
				buf = append(buf, tagAbsent)
				continue
			}
			var err error
			if buf, err = fields[i](buf, value); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
}
