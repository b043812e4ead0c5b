package canonicaljson

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// DefaultMaxDepth is the nesting limit of [Parse] when none is given.
const DefaultMaxDepth = 100

// Error categories. Every error returned by [ParseWith] and
// [Value.CheckStrictNumbers] wraps exactly one of them.
var (
	// ErrNotJSON marks input that is not JSON text: a syntax error or
	// invalid UTF-8. Matrix servers respond to it with M_NOT_JSON.
	ErrNotJSON = errors.New("not JSON")
	// ErrBadJSON marks JSON text that is ambiguous or outside what Matrix
	// accepts: duplicate keys, unpaired surrogates, excessive nesting,
	// non-canonical numbers. Matrix servers respond to it with M_BAD_JSON.
	ErrBadJSON = errors.New("bad JSON")
	// ErrTooLarge marks input with more values than [Options.MaxValues]
	// allows. Matrix servers respond to it with M_TOO_LARGE.
	ErrTooLarge = errors.New("JSON too large")
)

// SyntaxError describes why input was rejected and where.
type SyntaxError struct {
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Msg describes what is wrong.
	Msg string
	// category is ErrNotJSON, ErrBadJSON or ErrTooLarge.
	category error
}

// Error returns the message with its offset.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s at offset %d", e.Msg, e.Offset)
}

// Unwrap returns the error category, ErrNotJSON, ErrBadJSON or ErrTooLarge.
func (e *SyntaxError) Unwrap() error { return e.category }

// Options adjusts [ParseWith].
type Options struct {
	// MaxDepth limits the nesting of arrays and objects; zero means
	// DefaultMaxDepth.
	MaxDepth int
	// MaxValues limits how many JSON values (objects, arrays, strings,
	// numbers and literals, at any depth) the input may hold; zero means
	// no limit. A parsed value takes about 80 bytes however short its
	// text, so this bounds the memory that parsing a hostile input costs.
	MaxValues int
}

// Parse parses one JSON value from data, strictly. See the package
// documentation for what is rejected.
func Parse(data []byte) (Value, error) {
	return ParseWith(data, Options{})
}

// ParseWith is [Parse] with options.
func ParseWith(data []byte, opts Options) (Value, error) {
	p := parser{data: data, maxDepth: opts.MaxDepth, valuesLeft: opts.MaxValues}
	if p.valuesLeft <= 0 {
		p.valuesLeft = -1
	}
	if p.maxDepth <= 0 {
		p.maxDepth = DefaultMaxDepth
	}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return Value{}, p.fail(ErrNotJSON, "unexpected data after the JSON value")
	}
	return v, nil
}

type parser struct {
	data     []byte
	pos      int
	maxDepth int
	// valuesLeft counts down the values that may still be parsed; it is
	// negative when there is no limit.
	valuesLeft int
}

func (p *parser) fail(category error, msg string) error {
	return &SyntaxError{Offset: p.pos, Msg: msg, category: category}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (Value, error) {
	if p.pos >= len(p.data) {
		return Value{}, p.fail(ErrNotJSON, "unexpected end of input")
	}
	if p.valuesLeft == 0 {
		return Value{}, p.fail(ErrTooLarge, "more JSON values than the limit")
	}
	p.valuesLeft--
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		return Value{kind: String, str: s}, err
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true", BoolValue(true))
	case c == 'f':
		return p.literal("false", BoolValue(false))
	case c == 'n':
		return p.literal("null", Value{})
	}
	return Value{}, p.fail(ErrNotJSON, fmt.Sprintf("invalid character %q", p.data[p.pos]))
}

func (p *parser) literal(word string, v Value) (Value, error) {
	end := p.pos + len(word)
	if end > len(p.data) || string(p.data[p.pos:end]) != word {
		return Value{}, p.fail(ErrNotJSON, "invalid literal")
	}
	p.pos = end
	return v, nil
}

func (p *parser) object(depth int) (Value, error) {
	if depth > p.maxDepth {
		return Value{}, p.fail(ErrBadJSON, "nesting deeper than the limit")
	}
	objStart := p.pos
	p.pos++ // '{'
	p.skipSpace()
	members := []Member{}
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return Value{kind: Object, members: members}, nil
	}
	sorted := true
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.fail(ErrNotJSON, "expected a string key")
		}
		keyStart := p.pos
		key, err := p.string()
		if err != nil {
			return Value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.fail(ErrNotJSON, "expected ':' after object key")
		}
		p.pos++
		p.skipSpace()
		val, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		if n := len(members); n > 0 && members[n-1].Key >= key {
			if members[n-1].Key == key {
				p.pos = keyStart
				return Value{}, p.fail(ErrBadJSON, fmt.Sprintf("duplicate object key %q", key))
			}
			sorted = false
		}
		members = append(members, Member{Key: key, Value: val})
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.fail(ErrNotJSON, "unexpected end of input in object")
		}
		if p.data[p.pos] == '}' {
			p.pos++
			break
		}
		if p.data[p.pos] != ',' {
			return Value{}, p.fail(ErrNotJSON, "expected ',' or '}' in object")
		}
		p.pos++
		p.skipSpace()
	}
	if !sorted {
		if err := sortMembers(members, objStart); err != nil {
			return Value{}, err
		}
	}
	return Value{kind: Object, members: members}, nil
}

// sortMembers puts members into canonical order and rejects a repeated key.
func sortMembers(members []Member, offset int) error {
	slices.SortFunc(members, compareMembers)
	for i := 1; i < len(members); i++ {
		if members[i].Key == members[i-1].Key {
			return &SyntaxError{
				Offset:   offset,
				Msg:      fmt.Sprintf("duplicate object key %q", members[i].Key),
				category: ErrBadJSON,
			}
		}
	}
	return nil
}

func (p *parser) array(depth int) (Value, error) {
	if depth > p.maxDepth {
		return Value{}, p.fail(ErrBadJSON, "nesting deeper than the limit")
	}
	p.pos++ // '['
	p.skipSpace()
	items := []Value{}
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return Value{kind: Array, items: items}, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		items = append(items, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return Value{}, p.fail(ErrNotJSON, "unexpected end of input in array")
		}
		if p.data[p.pos] == ']' {
			p.pos++
			return Value{kind: Array, items: items}, nil
		}
		if p.data[p.pos] != ',' {
			return Value{}, p.fail(ErrNotJSON, "expected ',' or ']' in array")
		}
		p.pos++
		p.skipSpace()
	}
}

// string parses a JSON string starting at the opening quote and returns it
// decoded.
func (p *parser) string() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, ASCII or valid UTF-8 without control characters.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.data[start:p.pos]
			p.pos++
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		if c < utf8.RuneSelf {
			p.pos++
			continue
		}
		r, size := utf8.DecodeRune(p.data[p.pos:])
		if r == utf8.RuneError && size <= 1 {
			return "", p.fail(ErrNotJSON, "invalid UTF-8 in string")
		}
		p.pos += size
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, p.data[start:p.pos]...)
	return p.stringSlow(buf)
}

func (p *parser) stringSlow(buf []byte) (string, error) {
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c == '\\':
			var err error
			buf, err = p.escape(buf)
			if err != nil {
				return "", err
			}
		case c < 0x20:
			return "", p.fail(ErrNotJSON, "unescaped control character in string")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.fail(ErrNotJSON, "invalid UTF-8 in string")
			}
			buf = append(buf, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
	return "", p.fail(ErrNotJSON, "unterminated string")
}

// escape decodes one backslash escape at p.pos and appends it to buf.
func (p *parser) escape(buf []byte) ([]byte, error) {
	if p.pos+1 >= len(p.data) {
		return nil, p.fail(ErrNotJSON, "unterminated escape")
	}
	c := p.data[p.pos+1]
	if r, ok := simpleEscape(c); ok {
		p.pos += 2
		return append(buf, r), nil
	}
	if c != 'u' {
		return nil, p.fail(ErrNotJSON, fmt.Sprintf("invalid escape \\%c", c))
	}
	r1, err := p.hex4(p.pos + 2)
	if err != nil {
		return nil, err
	}
	if !utf16.IsSurrogate(r1) {
		p.pos += 6
		return utf8.AppendRune(buf, r1), nil
	}
	if r1 >= 0xDC00 {
		return nil, p.fail(ErrBadJSON, "unpaired surrogate escape")
	}
	if p.pos+12 > len(p.data) || p.data[p.pos+6] != '\\' || p.data[p.pos+7] != 'u' {
		return nil, p.fail(ErrBadJSON, "unpaired surrogate escape")
	}
	r2, err := p.hex4(p.pos + 8)
	if err != nil {
		return nil, err
	}
	if r2 < 0xDC00 || r2 > 0xDFFF {
		return nil, p.fail(ErrBadJSON, "unpaired surrogate escape")
	}
	p.pos += 12
	return utf8.AppendRune(buf, utf16.DecodeRune(r1, r2)), nil
}

// simpleEscape returns the byte that the two-character escape \c stands for.
func simpleEscape(c byte) (byte, bool) {
	switch c {
	case '"', '\\', '/':
		return c, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

func (p *parser) hex4(at int) (rune, error) {
	if at+4 > len(p.data) {
		return 0, p.fail(ErrNotJSON, "truncated \\u escape")
	}
	var r rune
	for _, c := range p.data[at : at+4] {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, p.fail(ErrNotJSON, "invalid hex digit in \\u escape")
		}
		r = r<<4 | rune(d)
	}
	return r, nil
}

// number parses a number per the JSON grammar and keeps its text.
func (p *parser) number() (Value, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		p.pos = i
		return Value{}, p.fail(ErrNotJSON, "invalid number")
	}
	intEnd := i
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return Value{}, p.fail(ErrNotJSON, "invalid number fraction")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			p.pos = i
			return Value{}, p.fail(ErrNotJSON, "invalid number exponent")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	p.pos = i
	text := string(d[start:i])
	v := Value{kind: Number, str: text}
	if intEnd == i && text != "-0" {
		if n, err := strconv.ParseInt(text, 10, 64); err == nil && inCanonicalRange(n) {
			v.num, v.flag = n, true
		}
	}
	return v, nil
}

// MaxSafeInteger is the largest magnitude a canonical JSON integer may have,
// 2^53-1.
const MaxSafeInteger = 1<<53 - 1

func inCanonicalRange(n int64) bool { return n >= -MaxSafeInteger && n <= MaxSafeInteger }
