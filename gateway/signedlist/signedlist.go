// Package signedlist reads signed federation lists: allow-list entries
// that an authority of the federation signs as a JWS (RFC 7515) in compact
// serialization, with a validity window.
//
// The protected header names the signing key in kid and has typ
// "bordergate-allowlist+jws", so that a JWS signed for another purpose
// with the same key is never taken for a list. The payload is a JSON
// object:
//
//	{
//	  "issuer": "federation-authority.example.org",
//	  "issued": "2026-03-01T00:00:00Z",
//	  "not_before": "2026-03-01T00:00:00Z",
//	  "expires": "2026-03-08T00:00:00Z",
//	  "servers": [ allow-list entries, as in the allow-list file ]
//	}
package signedlist

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/bordergate/bordergate/gateway/store"
)

// MediaType is the typ header of a signed list.
const MediaType = "bordergate-allowlist+jws"

// MaxBytes is the maximum size of a signed list, in bytes.
const MaxBytes = 16 << 20

// MaxIssuedSkew is how far a list's issued time may lie after the
// gateway's clock, for clocks that differ by a little.
const MaxIssuedSkew = 5 * time.Minute

// Errors that a rejected list wraps, by what is wrong with it.
var (
	// ErrSignature is a list whose signature, key or header is not valid.
	ErrSignature = errors.New("signature not valid")
	// ErrPayload is a list whose payload or entries are not valid.
	ErrPayload = errors.New("payload not valid")
	// ErrWindow is a list outside its validity window.
	ErrWindow = errors.New("outside validity window")
	// ErrExpired is a list at or past its expires, and wraps ErrWindow.
	ErrExpired = fmt.Errorf("%w: expired", ErrWindow)
)

// List is a verified signed list.
type List struct {
	// KeyID is the key that verified the signature.
	KeyID string
	// Issuer names the authority that issued the list.
	Issuer string
	// Issued is when the list was issued. A list issued earlier than the
	// one in force is a rollback, which the gateway rejects.
	Issued time.Time
	// NotBefore and Expires bound when the list is valid: from NotBefore,
	// until Expires excluded.
	NotBefore, Expires time.Time
	// Entries are the validated entries.
	Entries []store.Entry
	// Payload is the signed payload as it was read. Two lists with the
	// same payload say the same thing, whatever their signatures.
	Payload []byte
}

// header is the protected header of a signed list.
type header struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Typ  string   `json:"typ"`
	Crit []string `json:"crit"`
	B64  *bool    `json:"b64"`
}

// payload is the JSON payload of a signed list.
type payload struct {
	Issuer    string          `json:"issuer"`
	Issued    string          `json:"issued"`
	NotBefore string          `json:"not_before"`
	Expires   string          `json:"expires"`
	Servers   json.RawMessage `json:"servers"`
}

// Verify checks the signature of a compact JWS against keys and parses its
// payload. It does not check the validity window: see [List.CheckWindow].
// Errors wrap [ErrSignature] or [ErrPayload].
func Verify(compact []byte, keys *KeySet) (*List, error) {
	compact = bytes.TrimSpace(compact)
	if len(compact) > MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrSignature, len(compact), MaxBytes)
	}
	parts := bytes.Split(compact, []byte("."))
	if len(parts) != 3 {
		return nil, fmt.Errorf("%w: not a JWS in compact serialization (expected three base64url parts separated by dots)", ErrSignature)
	}
	h, err := parseHeader(parts[0])
	if err != nil {
		return nil, err
	}
	key, ok := keys.keys[h.Kid]
	if !ok {
		return nil, fmt.Errorf("%w: unknown kid %q (expected one of %s)", ErrSignature, h.Kid, strings.Join(keys.IDs(), ", "))
	}
	if h.Alg != key.Algorithm.String() {
		return nil, fmt.Errorf("%w: alg %q for kid %q, whose key signs with %s", ErrSignature, h.Alg, h.Kid, key.Algorithm)
	}
	data, err := jws.Verify(compact, jws.WithKey(key.Algorithm, key.Public), jws.WithCompact())
	if err != nil {
		return nil, fmt.Errorf("%w: kid %q: %v", ErrSignature, h.Kid, err)
	}
	list, err := ParsePayload(data)
	if err != nil {
		return nil, err
	}
	list.KeyID = h.Kid
	return list, nil
}

// parseHeader decodes and checks the protected header.
func parseHeader(encoded []byte) (header, error) {
	raw, err := base64.RawURLEncoding.DecodeString(string(encoded))
	if err != nil {
		return header{}, fmt.Errorf("%w: protected header is not base64url: %v", ErrSignature, err)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return header{}, fmt.Errorf("%w: protected header is not a JSON object: %v", ErrSignature, err)
	}
	switch {
	case h.Typ != MediaType:
		return header{}, fmt.Errorf("%w: typ %q (expected %q)", ErrSignature, h.Typ, MediaType)
	case h.Kid == "":
		return header{}, fmt.Errorf("%w: no kid in the protected header (expected the ID of the signing key)", ErrSignature)
	case len(h.Crit) > 0 || h.B64 != nil:
		return header{}, fmt.Errorf("%w: crit or b64 header present (expected neither)", ErrSignature)
	}
	return h, nil
}

// ParsePayload parses and validates the JSON payload of a signed list:
// the four fields of the window and issuer, all required, and servers,
// whose entries are checked as the allow-list file's are. Errors wrap
// [ErrPayload].
func ParsePayload(data []byte) (*List, error) {
	var p payload
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: %v (expected an object with issuer, issued, not_before, expires and servers)", ErrPayload, err)
	}
	if len(bytes.TrimLeft(data[decoder.InputOffset():], " \t\r\n")) > 0 {
		return nil, fmt.Errorf("%w: data after the payload object", ErrPayload)
	}
	if p.Issuer == "" {
		return nil, fmt.Errorf("%w: issuer missing (expected the name of the list's authority)", ErrPayload)
	}
	list := &List{Issuer: p.Issuer, Payload: bytes.Clone(data)}
	for _, field := range []struct {
		name  string
		value string
		dst   *time.Time
	}{
		{"issued", p.Issued, &list.Issued},
		{"not_before", p.NotBefore, &list.NotBefore},
		{"expires", p.Expires, &list.Expires},
	} {
		t, err := time.Parse(time.RFC3339, field.value)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: invalid value %q (expected an RFC 3339 timestamp such as \"2027-12-31T00:00:00Z\")", ErrPayload, field.name, field.value)
		}
		*field.dst = t.UTC()
	}
	if !list.Expires.After(list.NotBefore) {
		return nil, fmt.Errorf("%w: expires %s is not after not_before %s", ErrPayload, p.Expires, p.NotBefore)
	}
	if len(p.Servers) == 0 || bytes.Equal(p.Servers, []byte("null")) {
		return nil, fmt.Errorf("%w: servers missing (expected a list of allow-list entries, possibly empty)", ErrPayload)
	}
	document, err := json.Marshal(map[string]json.RawMessage{"servers": p.Servers})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPayload, err)
	}
	entries, err := store.ParseAllowlist("payload", document)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPayload, err)
	}
	list.Entries = entries
	return list, nil
}

// CheckWindow returns an error wrapping [ErrWindow] unless now is within
// the list's validity window and the list was not issued more than
// [MaxIssuedSkew] after now. A list from the future would make every later
// list of its authority look like a rollback until then. An expired list
// gives an error wrapping [ErrExpired].
func (l *List) CheckWindow(now time.Time) error {
	switch {
	case now.Before(l.NotBefore):
		return fmt.Errorf("%w: not valid before %s", ErrWindow, l.NotBefore.Format(time.RFC3339))
	case l.Issued.Sub(now) > MaxIssuedSkew:
		return fmt.Errorf("%w: issued %s, after the gateway's clock %s by more than %s (check the clocks of the authority and the gateway)",
			ErrWindow, l.Issued.Format(time.RFC3339), now.UTC().Format(time.RFC3339), MaxIssuedSkew)
	case !now.Before(l.Expires):
		return fmt.Errorf("%w at %s", ErrExpired, l.Expires.Format(time.RFC3339))
	}
	return nil
}

// Sign signs payload as a signed list in compact serialization, with the
// private key of kid and its algorithm: ed25519.PrivateKey for EdDSA,
// *ecdsa.PrivateKey for ES256, ES384 and ES512, *rsa.PrivateKey for the RSA
// algorithms. It is what an authority's tooling does, and what the tests
// use to make lists.
func Sign(payload []byte, kid, algorithm string, private any) ([]byte, error) {
	alg, ok := jwa.LookupSignatureAlgorithm(algorithm)
	if !ok {
		return nil, fmt.Errorf("unknown algorithm %q", algorithm)
	}
	headers := jws.NewHeaders()
	for name, value := range map[string]string{jws.KeyIDKey: kid, jws.TypeKey: MediaType} {
		if err := headers.Set(name, value); err != nil {
			return nil, fmt.Errorf("set header %s: %w", name, err)
		}
	}
	signed, err := jws.Sign(payload, jws.WithKey(alg, private, jws.WithProtectedHeaders(headers)))
	if err != nil {
		return nil, fmt.Errorf("sign list: %w", err)
	}
	return signed, nil
}
