package canonicaljson

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxExpandedDigits bounds how far the lenient encoder expands an integral
// number written with an exponent, so that `1e1000000` cannot make it
// allocate a megabyte. Longer numbers keep their source text.
const maxExpandedDigits = 400

// Encode returns the canonical JSON encoding of v.
func Encode(v Value) []byte {
	return Append(make([]byte, 0, 256), v)
}

// Append appends the canonical JSON encoding of v to dst. Numbers that are
// not canonical integers are normalised as described in the package
// documentation; call [Value.CheckStrictNumbers] first where they must be
// rejected.
func Append(dst []byte, v Value) []byte {
	switch v.kind {
	case Null:
		return append(dst, "null"...)
	case Bool:
		if v.flag {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Number:
		if v.flag {
			return strconv.AppendInt(dst, v.num, 10)
		}
		return appendLenientNumber(dst, v.str)
	case String:
		if v.flag {
			dst = append(dst, '"')
			dst = append(dst, v.str...)
			return append(dst, '"')
		}
		return AppendString(dst, v.str)
	case Array:
		if v.str != "" {
			return append(dst, v.str...)
		}
		dst = append(dst, '[')
		for i, item := range v.items {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = Append(dst, item)
		}
		return append(dst, ']')
	case Object:
		if v.str != "" {
			return append(dst, v.str...)
		}
		dst = append(dst, '{')
		for i, m := range v.members {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, m.Key)
			dst = append(dst, ':')
			dst = Append(dst, m.Value)
		}
		return append(dst, '}')
	}
	return dst
}

// AppendString appends s as a canonical JSON string: raw UTF-8 except for
// the quote, the backslash and the control characters U+0000 to U+001F,
// which use the short escapes where JSON has them and lower-case \u00XX
// otherwise.
func AppendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendLenientNumber writes an integral number as a plain integer and any
// other number as its source text.
//
// NOTE: a number with a fraction keeps its source text. Room versions 1 to 5
// allow such numbers, and their origin's encoder decides how they were
// signed; the Matrix specification defines no canonical form for them.
func appendLenientNumber(dst []byte, text string) []byte {
	if s, ok := integralDigits(text); ok {
		return append(dst, s...)
	}
	return append(dst, text...)
}

// integralDigits returns the plain integer spelling of a JSON number whose
// value is an integer, such as "10000000000" for "1e10" or "0" for "-0".
func integralDigits(text string) (string, bool) {
	neg := strings.HasPrefix(text, "-")
	body := strings.TrimPrefix(text, "-")
	mantissa, expText, hasExp := strings.Cut(strings.ToLower(body), "e")
	exp := 0
	if hasExp {
		e, err := strconv.Atoi(expText)
		if err != nil || e > maxExpandedDigits || e < -maxExpandedDigits {
			return "", false
		}
		exp = e
	}
	intPart, fracPart, _ := strings.Cut(mantissa, ".")
	digits := strings.TrimLeft(intPart+fracPart, "0")
	point := len(intPart) + exp - (len(intPart+fracPart) - len(digits))
	if digits == "" {
		return "0", true
	}
	trimmed := strings.TrimRight(digits, "0")
	if point < len(trimmed) || point > maxExpandedDigits {
		return "", false
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(trimmed)
	b.WriteString(strings.Repeat("0", point-len(trimmed)))
	return b.String(), true
}

// CheckStrictNumbers returns an error wrapping [ErrBadJSON] if v contains a
// number that is not a canonical integer, as room versions 6 and later and
// all request bodies outside events require.
func (v Value) CheckStrictNumbers() error {
	switch v.kind {
	case Number:
		if !v.flag {
			return &SyntaxError{Offset: -1, Msg: fmt.Sprintf("number %s is not a canonical integer", v.str), category: ErrBadJSON}
		}
	case Array:
		for _, item := range v.items {
			if err := item.CheckStrictNumbers(); err != nil {
				return err
			}
		}
	case Object:
		for _, m := range v.members {
			if err := m.Value.CheckStrictNumbers(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Interface converts v to the Go values encoding/json produces with
// UseNumber: map[string]any, []any, string, json.Number, bool and nil.
// Numbers are canonical integers or, where the lenient form applies, their
// normalised text.
func (v Value) Interface() any {
	switch v.kind {
	case Bool:
		return v.flag
	case Number:
		return json.Number(Append(nil, v))
	case String:
		return v.str
	case Array:
		out := make([]any, len(v.items))
		for i, item := range v.items {
			out[i] = item.Interface()
		}
		return out
	case Object:
		out := make(map[string]any, len(v.members))
		for _, m := range v.members {
			out[m.Key] = m.Value.Interface()
		}
		return out
	}
	return nil
}

// MarshalJSON encodes v canonically, so a Value can be embedded in
// structures given to encoding/json.
func (v Value) MarshalJSON() ([]byte, error) { return Encode(v), nil }

func formatInt(i int64) string { return strconv.FormatInt(i, 10) }
