package canonicaljson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
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
	scratch := scratchPool.Get().(*parseScratch)
	defer scratch.release()
	p := parser{
		data:       data,
		src:        string(data),
		maxDepth:   opts.MaxDepth,
		valuesLeft: opts.MaxValues,
		members:    scratch.members[:0],
		items:      scratch.items[:0],
	}
	defer func() { scratch.members, scratch.items = p.members, p.items }()
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

// parseScratch holds the container stacks of a parser between parses.
type parseScratch struct {
	members []Member
	items   []Value
}

// maxPooledScratch bounds the stacks kept in the pool, so that one huge
// input does not keep its stacks alive.
const maxPooledScratch = 4096

var scratchPool = sync.Pool{New: func() any { return new(parseScratch) }}

// release returns the stacks to the pool. The parser clears each part of a
// stack that it pops, so pooled stacks keep no parsed strings alive.
func (s *parseScratch) release() {
	if cap(s.members) > maxPooledScratch || cap(s.items) > maxPooledScratch {
		return
	}
	scratchPool.Put(s)
}

type parser struct {
	data []byte
	// src is data as a string, converted once, so that strings and number
	// texts without escapes are substrings of it instead of copies.
	src      string
	pos      int
	maxDepth int
	// valuesLeft counts down the values that may still be parsed; it is
	// negative when there is no limit.
	valuesLeft int
	// members and items are stacks of the members and elements of the
	// objects and arrays being parsed. Each finished object or array copies
	// its own part into a slice of exactly its length, so that parsing
	// allocates once per container instead of once per growth.
	members []Member
	items   []Value
	// canonical reports whether the source text of the value that value
	// parsed last is exactly its canonical encoding.
	canonical bool
}

func (p *parser) fail(category error, msg string) error {
	return &SyntaxError{Offset: p.pos, Msg: msg, category: category}
}

// skipSpace skips white space and reports whether there was any.
func (p *parser) skipSpace() bool {
	start := p.pos
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return p.pos != start
		}
	}
	return p.pos != start
}

func (p *parser) value(depth int) (Value, error) {
	if p.pos >= len(p.data) {
		return Value{}, p.fail(ErrNotJSON, "unexpected end of input")
	}
	if p.valuesLeft == 0 {
		return Value{}, p.fail(ErrTooLarge, "more JSON values than the limit")
	}
	p.valuesLeft--
	start := p.pos
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, canonical, err := p.string()
		p.canonical = canonical
		// A string without escapes in canonical source encodes as its
		// text between quotes, and the flag lets Append skip the scan.
		raw := canonical && len(s)+2 == p.pos-start
		return Value{kind: String, str: s, flag: raw}, err
	case c == '-' || (c >= '0' && c <= '9'):
		v, err := p.number()
		p.canonical = v.flag || (err == nil && string(appendLenientNumber(nil, v.str)) == v.str)
		return v, err
	case c == 't':
		p.canonical = true
		return p.literal("true", BoolValue(true))
	case c == 'f':
		p.canonical = true
		return p.literal("false", BoolValue(false))
	case c == 'n':
		p.canonical = true
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
	canonical := !p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return Value{kind: Object, members: []Member{}, str: p.canonicalSource(canonical, objStart)}, nil
	}
	base := len(p.members)
	defer func() {
		clear(p.members[base:])
		p.members = p.members[:base]
	}()
	sorted := true
	for {
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return Value{}, p.fail(ErrNotJSON, "expected a string key")
		}
		keyStart := p.pos
		key, keyCanonical, err := p.string()
		if err != nil {
			return Value{}, err
		}
		spaced := p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return Value{}, p.fail(ErrNotJSON, "expected ':' after object key")
		}
		p.pos++
		spaced = p.skipSpace() || spaced
		val, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		canonical = canonical && keyCanonical && !spaced && p.canonical
		if n := len(p.members); n > base && p.members[n-1].Key >= key {
			if p.members[n-1].Key == key {
				p.pos = keyStart
				return Value{}, p.fail(ErrBadJSON, fmt.Sprintf("duplicate object key %q", key))
			}
			sorted = false
		}
		p.members = append(p.members, Member{Key: key, Value: val})
		canonical = !p.skipSpace() && canonical
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
		canonical = !p.skipSpace() && canonical
	}
	members := slices.Clone(p.members[base:])
	if !sorted {
		if err := sortMembers(members, objStart); err != nil {
			return Value{}, err
		}
	}
	return Value{kind: Object, members: members, str: p.canonicalSource(canonical && sorted, objStart)}, nil
}

// canonicalSource returns the source text from start to the current
// position when canonical is set: the text is then exactly the canonical
// encoding of the value just parsed, and Append copies it.
func (p *parser) canonicalSource(canonical bool, start int) string {
	p.canonical = canonical
	if !canonical {
		return ""
	}
	return p.src[start:p.pos]
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
	arrStart := p.pos
	p.pos++ // '['
	canonical := !p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return Value{kind: Array, items: []Value{}, str: p.canonicalSource(canonical, arrStart)}, nil
	}
	base := len(p.items)
	defer func() {
		clear(p.items[base:])
		p.items = p.items[:base]
	}()
	for {
		v, err := p.value(depth)
		if err != nil {
			return Value{}, err
		}
		p.items = append(p.items, v)
		canonical = !p.skipSpace() && canonical && p.canonical
		if p.pos >= len(p.data) {
			return Value{}, p.fail(ErrNotJSON, "unexpected end of input in array")
		}
		if p.data[p.pos] == ']' {
			p.pos++
			return Value{kind: Array, items: slices.Clone(p.items[base:]), str: p.canonicalSource(canonical, arrStart)}, nil
		}
		if p.data[p.pos] != ',' {
			return Value{}, p.fail(ErrNotJSON, "expected ',' or ']' in array")
		}
		p.pos++
		canonical = !p.skipSpace() && canonical
	}
}

// string parses a JSON string starting at the opening quote and returns it
// decoded. It also reports whether the source text is the string's
// canonical encoding: raw UTF-8, with only the escapes that the canonical
// encoder writes.
func (p *parser) string() (string, bool, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes, ASCII or valid UTF-8 without control characters.
	for p.pos < len(p.data) {
		p.pos += plainASCIIPrefix(p.data[p.pos:])
		if p.pos >= len(p.data) {
			break
		}
		c := p.data[p.pos]
		if c == '"' {
			s := p.src[start:p.pos]
			p.pos++
			return s, true, nil
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
			return "", false, p.fail(ErrNotJSON, "invalid UTF-8 in string")
		}
		p.pos += size
	}
	buf := make([]byte, 0, p.pos-start+16)
	buf = append(buf, p.data[start:p.pos]...)
	return p.stringSlow(buf)
}

// Masks of plainASCIIPrefix: one byte repeated in every byte of a word.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// plainASCIIPrefix returns the length of the leading run of data, in whole
// 8-byte words, in which every byte is printable ASCII other than the quote
// and the backslash: bytes that a string scan passes over unchanged.
func plainASCIIPrefix(data []byte) int {
	n := 0
	for len(data)-n >= 8 {
		w := binary.LittleEndian.Uint64(data[n:])
		// A byte is flagged when its high bit is set (non-ASCII), when it
		// is below 0x20, or when it equals '"' or '\\'. Each test sets the
		// high bit of the flagged bytes of its word. A borrow only starts
		// at a flagged byte, so a word without one has no bit set.
		control := (w - ones*0x20) &^ w
		quote := w ^ (ones * '"')
		backslash := w ^ (ones * '\\')
		found := (w | control | (quote-ones)&^quote | (backslash-ones)&^backslash) & highs
		if found != 0 {
			return n
		}
		n += 8
	}
	return n
}

func (p *parser) stringSlow(buf []byte) (string, bool, error) {
	canonical := true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), canonical, nil
		case c == '\\':
			canonical = canonical && p.canonicalEscape()
			var err error
			buf, err = p.escape(buf)
			if err != nil {
				return "", false, err
			}
		case c < 0x20:
			return "", false, p.fail(ErrNotJSON, "unescaped control character in string")
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", false, p.fail(ErrNotJSON, "invalid UTF-8 in string")
			}
			buf = append(buf, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
	return "", false, p.fail(ErrNotJSON, "unterminated string")
}

// canonicalEscape reports whether the escape at p.pos is one that
// AppendString writes: the short escapes of the quote, the backslash,
// \b, \t, \n, \f and \r, and \u00xx in lower-case hex for the other
// control characters. It does not check that the escape is valid.
func (p *parser) canonicalEscape() bool {
	if p.pos+1 >= len(p.data) {
		return false
	}
	switch p.data[p.pos+1] {
	case '"', '\\', 'b', 't', 'n', 'f', 'r':
		return true
	case 'u':
	default:
		return false
	}
	if p.pos+6 > len(p.data) {
		return false
	}
	hex := p.src[p.pos+2 : p.pos+6]
	if hex[0] != '0' || hex[1] != '0' || (hex[2] != '0' && hex[2] != '1') || !isLowerHexDigit(hex[3]) {
		return false
	}
	switch hex[2:] {
	case "08", "09", "0a", "0c", "0d":
		return false // these have short escapes
	}
	return true
}

func isLowerHexDigit(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
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
	text := p.src[start:i]
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
