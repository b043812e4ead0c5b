package xmatrix

import (
	"fmt"
	"strings"

	"github.com/bordergate/bordergate/gateway/servername"
)

// scheme is the authentication scheme of Matrix federation requests,
// compared case-insensitively as RFC 9110 requires.
const scheme = "X-Matrix"

// Parameter names, in the order FormatAuthorization writes them.
const (
	paramOrigin      = "origin"
	paramDestination = "destination"
	paramKey         = "key"
	paramSig         = "sig"
)

// keyAlgorithm is the only signing-key algorithm Matrix defines.
const keyAlgorithm = "ed25519"

// ParseAuthorization returns the credentials of every Authorization header
// value in values whose scheme is X-Matrix. Values with other schemes, such
// as Bearer, are skipped.
//
// The parser accepts what RFC 9110 section 11 allows in credentials, and the
// Matrix specification's additions:
//   - the scheme in any case, followed by spaces or tabs;
//   - parameters separated by commas with optional spaces and tabs around
//     them, and empty list elements (",,");
//   - spaces and tabs around "=", which RFC 9110 calls bad whitespace and
//     requires recipients to accept;
//   - parameter names in any case and any order, unknown names skipped;
//   - values as a quoted-string, where a backslash escapes the next
//     character, or unquoted;
//   - unquoted values that are tokens or contain ':' (which the Matrix
//     specification requires receivers to accept because old senders wrote
//     origin=example.org:8448), and '/', '=', '[' and ']', which base64
//     signatures and IPv6 server names need.
//
// Each header needs origin, key and sig, and may carry destination. A
// parameter given twice in one header, an origin that is not a valid server
// name, a key ID other than "ed25519:" and a version (see checkKeyID), and
// an empty destination are errors. Several X-Matrix headers must agree on
// origin and destination.
//
// The error wraps [ErrMissing] when no value has the X-Matrix scheme and
// [ErrMalformed] otherwise. The destination is not compared with the
// receiver's names here: a caller must reject a destination that is not one
// of them with 401.
func ParseAuthorization(values []string) ([]Credentials, error) {
	var creds []Credentials
	for i, value := range values {
		c, isXMatrix, err := parseHeader(value)
		if !isXMatrix {
			continue
		}
		if err == nil && len(creds) > 0 {
			err = checkSameSender(creds[0], c)
		}
		if err != nil {
			if len(values) > 1 {
				return nil, fmt.Errorf("%w: header %d: %w", ErrMalformed, i+1, err)
			}
			return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		creds = append(creds, c)
	}
	if len(creds) == 0 {
		return nil, ErrMissing
	}
	return creds, nil
}

// FormatAuthorization returns the X-Matrix header value for c in the form
// the Matrix specification recommends for senders: one space after the
// scheme, lower-case names, every value quoted, no whitespace around commas
// and no backslashes. All four fields are required, and a value that would
// need an escape (a quote, a backslash, a control character or non-ASCII)
// is rejected rather than escaped.
func FormatAuthorization(c Credentials) (string, error) {
	fields := [...]struct{ name, value string }{
		{paramOrigin, c.Origin},
		{paramDestination, c.Destination},
		{paramKey, c.KeyID},
		{paramSig, c.Signature},
	}
	var b strings.Builder
	b.Grow(len(scheme) + 40 + len(c.Origin) + len(c.Destination) + len(c.KeyID) + len(c.Signature))
	b.WriteString(scheme)
	b.WriteByte(' ')
	for i, f := range fields {
		if f.value == "" {
			return "", fmt.Errorf("format X-Matrix header: missing %s", f.name)
		}
		if !isPlainQuotable(f.value) {
			return "", fmt.Errorf("format X-Matrix header: %s %q needs escaping", f.name, f.value)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(f.name)
		b.WriteString(`="`)
		b.WriteString(f.value)
		b.WriteByte('"')
	}
	return b.String(), nil
}

// parseHeader parses one Authorization value. isXMatrix is false, and err
// nil, when the value has another scheme.
func parseHeader(value string) (c Credentials, isXMatrix bool, err error) {
	value = trimOWS(value)
	end := strings.IndexAny(value, " \t")
	if end < 0 {
		end = len(value)
	}
	if !strings.EqualFold(value[:end], scheme) {
		return Credentials{}, false, nil
	}

	params, err := parseParams(value[end:])
	if err != nil {
		return Credentials{}, true, err
	}
	c, err = credentialsFrom(params)
	return c, true, err
}

// credentialsFrom checks the parameters of one header.
func credentialsFrom(p params) (Credentials, error) {
	c := Credentials{
		Origin:      p.origin,
		Destination: p.destination,
		KeyID:       p.key,
		Signature:   p.sig,
	}
	switch {
	case !p.has(paramOrigin):
		return c, fmt.Errorf("missing parameter %q", paramOrigin)
	case !p.has(paramKey):
		return c, fmt.Errorf("missing parameter %q", paramKey)
	case !p.has(paramSig):
		return c, fmt.Errorf("missing parameter %q", paramSig)
	case p.has(paramDestination) && c.Destination == "":
		return c, fmt.Errorf("empty parameter %q", paramDestination)
	case c.Signature == "":
		return c, fmt.Errorf("empty parameter %q", paramSig)
	}
	if err := servername.Validate(c.Origin); err != nil {
		return c, fmt.Errorf("origin: %w", err)
	}
	if err := checkKeyID(c.KeyID); err != nil {
		return c, err
	}
	return c, nil
}

// checkKeyID accepts "ed25519:" followed by a key version. The Matrix
// specification limits versions to [a-zA-Z0-9_]. Synapse does not enforce
// that, and events signed with keys such as "ed25519:i+b2" exist in public
// rooms, so '+' and '/', the other base64 characters, are accepted too.
func checkKeyID(id string) error {
	algorithm, version, found := strings.Cut(id, ":")
	if !found {
		return fmt.Errorf("key %q: want %s:<version>", id, keyAlgorithm)
	}
	if algorithm != keyAlgorithm {
		return fmt.Errorf("key %q: unsupported algorithm %q, only %s is supported", id, algorithm, keyAlgorithm)
	}
	if version == "" {
		return fmt.Errorf("key %q: empty version", id)
	}
	for i := 0; i < len(version); i++ {
		if c := version[i]; !isAlphaNum(c) && c != '_' && c != '+' && c != '/' {
			return fmt.Errorf("key %q: version may contain only letters, digits, '_', '+' and '/'", id)
		}
	}
	return nil
}

func checkSameSender(first, next Credentials) error {
	if next.Origin != first.Origin {
		return fmt.Errorf("origin %q differs from %q in an earlier header", next.Origin, first.Origin)
	}
	if next.Destination != first.Destination {
		return fmt.Errorf("destination %q differs from %q in an earlier header", next.Destination, first.Destination)
	}
	return nil
}

// isPlainQuotable reports whether s can be written inside a quoted-string
// without escapes and is printable ASCII.
func isPlainQuotable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
