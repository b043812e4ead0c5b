package xmatrix

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// bodySizeGuess is the buffer room SigningInput reserves for a body. Larger
// bodies make append grow the buffer.
const bodySizeGuess = 512

// SigningInput returns the bytes an X-Matrix signature covers: the canonical
// JSON object
//
//	{"content":...,"destination":...,"method":...,"origin":...,"uri":...}
//
// with "content" omitted when content is nil. uri is the request target
// exactly as sent, path and query, without scheme and host. destination is
// always present: senders have signed it since before the header had a
// destination parameter.
//
// The strings must be valid UTF-8, or the result is not JSON. [Verify]
// checks this; a caller of SigningInput must check it itself.
func SigningInput(method, uri, origin, destination string, content *canonicaljson.Value) []byte {
	const fixedLen = len(`{"content":,"destination":"","method":"","origin":"","uri":""}`)
	size := fixedLen + len(method) + len(uri) + len(origin) + len(destination)
	if content != nil {
		size += bodySizeGuess
	}
	buf := make([]byte, 0, size)

	// Members are written in canonical order, which is byte order of keys.
	buf = append(buf, '{')
	if content != nil {
		buf = append(buf, `"content":`...)
		buf = canonicaljson.Append(buf, *content)
		buf = append(buf, ',')
	}
	buf = append(buf, `"destination":`...)
	buf = canonicaljson.AppendString(buf, destination)
	buf = append(buf, `,"method":`...)
	buf = canonicaljson.AppendString(buf, method)
	buf = append(buf, `,"origin":`...)
	buf = canonicaljson.AppendString(buf, origin)
	buf = append(buf, `,"uri":`...)
	buf = canonicaljson.AppendString(buf, uri)
	return append(buf, '}')
}

// Sign signs a request as the origin server and returns its credentials.
// method, uri, destination and content are as for [SigningInput], and
// content is nil for a request without a body.
func Sign(key ed25519.PrivateKey, keyID, method, uri, origin, destination string, content *canonicaljson.Value) Credentials {
	sig := ed25519.Sign(key, SigningInput(method, uri, origin, destination, content))
	return Credentials{
		Origin:      origin,
		Destination: destination,
		KeyID:       keyID,
		Signature:   base64.RawStdEncoding.EncodeToString(sig),
	}
}

// Verify checks the signature in c over a received request with the
// origin's public key pub, which the caller looked up by c.Origin and
// c.KeyID.
//
// method and uri are the raw method and request target as received
// (http.Request.RequestURI, never a re-encoded URL). content is the parsed
// request body, or nil when the request has none.
//
// destination is the receiver's own server name, not the header's, so the
// signature must cover the name the request reached, as in Synapse. A caller
// first rejects a header destination that is not one of its names (with
// 401), then passes the matching name here.
//
// The signature may be standard base64 with or without padding and must
// decode to 64 bytes. Every verification failure wraps [ErrBadSignature].
// A public key of the wrong length returns an error that does not, because
// it is the caller's fault and not the sender's.
func Verify(c Credentials, method, uri, destination string, content *canonicaljson.Value, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("verify X-Matrix signature: public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	sig, err := decodeSignature(c.Signature)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSignature, err)
	}
	for _, f := range [...]struct{ name, value string }{
		{"method", method}, {"uri", uri}, {"origin", c.Origin}, {"destination", destination},
	} {
		if !utf8.ValidString(f.value) {
			return fmt.Errorf("%w: %s is not valid UTF-8, so the signed JSON cannot be rebuilt", ErrBadSignature, f.name)
		}
	}

	if !ed25519.Verify(pub, SigningInput(method, uri, c.Origin, destination, content), sig) {
		return fmt.Errorf("%w: signature by %s with key %s does not match %s %s",
			ErrBadSignature, c.Origin, c.KeyID, method, uri)
	}
	return nil
}

// decodeSignature decodes standard base64 with or without padding. Matrix
// sends base64 unpadded, and the specification recommends that decoders accept
// padding too. Strict decoding rejects non-zero trailing bits, so each
// signature has one accepted spelling per padding style.
func decodeSignature(s string) ([]byte, error) {
	encoding := base64.RawStdEncoding.Strict()
	if strings.HasSuffix(s, "=") {
		encoding = base64.StdEncoding.Strict()
	}
	sig, err := encoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("signature is not base64: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	return sig, nil
}
