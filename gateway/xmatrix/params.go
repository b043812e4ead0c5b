package xmatrix

import (
	"fmt"
	"strings"
)

// params holds the parameters of one X-Matrix header. The four known ones
// are kept in fields; other names are kept only to detect repeats.
type params struct {
	origin, destination, key, sig string

	seen    uint8    // one bit per known parameter that was set
	unknown []string // lower-cased names of unknown parameters
}

// Bits of params.seen.
const (
	bitOrigin uint8 = 1 << iota
	bitDestination
	bitKey
	bitSig
)

func knownParamBit(name string) (uint8, bool) {
	switch {
	case strings.EqualFold(name, paramOrigin):
		return bitOrigin, true
	case strings.EqualFold(name, paramDestination):
		return bitDestination, true
	case strings.EqualFold(name, paramKey):
		return bitKey, true
	case strings.EqualFold(name, paramSig):
		return bitSig, true
	}
	return 0, false
}

func (p *params) has(name string) bool {
	bit, _ := knownParamBit(name)
	return p.seen&bit != 0
}

// set stores one parameter. RFC 9110 allows each name once per header.
func (p *params) set(name, value string) error {
	bit, known := knownParamBit(name)
	if !known {
		lower := strings.ToLower(name)
		for _, n := range p.unknown {
			if n == lower {
				return fmt.Errorf("duplicate parameter %q", lower)
			}
		}
		p.unknown = append(p.unknown, lower)
		return nil
	}

	if p.seen&bit != 0 {
		return fmt.Errorf("duplicate parameter %q", strings.ToLower(name))
	}
	p.seen |= bit
	switch bit {
	case bitOrigin:
		p.origin = value
	case bitDestination:
		p.destination = value
	case bitKey:
		p.key = value
	case bitSig:
		p.sig = value
	}
	return nil
}

// parseParams parses the comma-separated parameter list that follows the
// scheme. See ParseAuthorization for the accepted syntax.
func parseParams(s string) (params, error) {
	var p params
	i := 0
	for {
		i = skipOWS(s, i)
		if i == len(s) {
			return p, nil
		}
		if s[i] == ',' {
			i++
			continue
		}

		start := i
		for i < len(s) && isTChar(s[i]) {
			i++
		}
		name := s[start:i]
		if name == "" {
			return p, fmt.Errorf("%s where a parameter name was expected", describeByte(s[i]))
		}

		i = skipOWS(s, i)
		if i == len(s) || s[i] != '=' {
			return p, fmt.Errorf("missing '=' after parameter %q", name)
		}
		i = skipOWS(s, i+1)

		var value string
		var err error
		value, i, err = parseValue(s, i, name)
		if err != nil {
			return p, err
		}
		if err := p.set(name, value); err != nil {
			return p, err
		}

		i = skipOWS(s, i)
		if i < len(s) && s[i] != ',' {
			return p, fmt.Errorf("%s after the value of parameter %q, want ','", describeByte(s[i]), name)
		}
	}
}

// parseValue parses a quoted or unquoted value starting at s[i] and returns
// it with the index after it.
func parseValue(s string, i int, name string) (string, int, error) {
	if i < len(s) && s[i] == '"' {
		return parseQuoted(s, i+1, name)
	}
	start := i
	for i < len(s) && isUnquotedValueChar(s[i]) {
		i++
	}
	if i == start {
		if i == len(s) {
			return "", i, fmt.Errorf("missing value of parameter %q", name)
		}
		return "", i, fmt.Errorf("%s where the value of parameter %q was expected", describeByte(s[i]), name)
	}
	return s[start:i], i, nil
}

// parseQuoted parses the rest of a quoted-string whose opening quote is at
// s[i-1]. A backslash and the character after it stand for that character.
// The value is a substring of s unless it contains an escape.
func parseQuoted(s string, i int, name string) (string, int, error) {
	start := i
	var unescaped []byte // nil until the first backslash
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			if unescaped == nil {
				return s[start:i], i + 1, nil
			}
			return string(unescaped), i + 1, nil
		case c == '\\':
			if i+1 == len(s) {
				return "", i, fmt.Errorf("unterminated quoted value of parameter %q", name)
			}
			escaped := s[i+1]
			if !isQuotedPairChar(escaped) {
				return "", i, fmt.Errorf("%s after '\\' in the value of parameter %q", describeByte(escaped), name)
			}
			if unescaped == nil {
				unescaped = append(make([]byte, 0, len(s)-start), s[start:i]...)
			}
			unescaped = append(unescaped, escaped)
			i += 2
		case isQDText(c):
			if unescaped != nil {
				unescaped = append(unescaped, c)
			}
			i++
		default:
			return "", i, fmt.Errorf("%s in the quoted value of parameter %q", describeByte(c), name)
		}
	}
	return "", i, fmt.Errorf("unterminated quoted value of parameter %q", name)
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

func trimOWS(s string) string {
	return strings.Trim(s, " \t")
}

func isAlphaNum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Byte classes of the parameter syntax, as lookup tables because the parser
// tests every byte of every header.
var (
	// tchars are the bytes of an RFC 9110 token.
	tchars = byteSet("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
	// unquotedValueChars are the bytes of an unquoted value: token
	// characters, ':' for old senders, and '/', '=', '[' and ']' for base64
	// signatures and IPv6 server names.
	unquotedValueChars = byteSet("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz:/=[]")
)

func byteSet(chars string) (set [256]bool) {
	for i := 0; i < len(chars); i++ {
		set[chars[i]] = true
	}
	return set
}

func isTChar(c byte) bool {
	return tchars[c]
}

func isUnquotedValueChar(c byte) bool {
	return unquotedValueChars[c]
}

// isQDText reports whether c may appear unescaped in an RFC 9110
// quoted-string.
func isQDText(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || 0x23 <= c && c <= 0x5b || 0x5d <= c && c <= 0x7e || c >= 0x80
}

// isQuotedPairChar reports whether c may follow a backslash in an RFC 9110
// quoted-string.
func isQuotedPairChar(c byte) bool {
	return c == '\t' || c == ' ' || 0x21 <= c && c <= 0x7e || c >= 0x80
}

// describeByte names a byte for an error message: printable ASCII in quotes,
// anything else in hex.
func describeByte(c byte) string {
	if c > ' ' && c < 0x7f {
		return fmt.Sprintf("character %q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
