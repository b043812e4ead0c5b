// Package xmatrix parses and formats the X-Matrix Authorization header of
// Matrix federation requests, and signs and verifies the requests it covers.
//
// A sending server signs a JSON object holding the request method, the
// request target, its own server name, the destination's server name and,
// when the request has a body, the parsed body. It sends the signature in an
// Authorization header:
//
//	Authorization: X-Matrix origin="a.example",destination="b.example",key="ed25519:1",sig="..."
//
// [ParseAuthorization] reads such headers as the Matrix specification and
// RFC 9110 allow receivers to write them, [FormatAuthorization] writes them in
// the conservative form the specification recommends for senders, and [Sign]
// and [Verify] compute and check the signature.
package xmatrix

import (
	"errors"
	"log/slog"
)

// Error categories of [ParseAuthorization]. Every error it returns wraps
// exactly one of them.
var (
	// ErrMissing marks a request without any X-Matrix Authorization header.
	// Matrix servers respond to it with 401 M_UNAUTHORIZED.
	ErrMissing = errors.New("missing X-Matrix authorization header")
	// ErrMalformed marks an X-Matrix header that cannot be parsed or lacks a
	// required parameter. Matrix servers respond to it with 400
	// M_UNAUTHORIZED.
	ErrMalformed = errors.New("malformed X-Matrix authorization header")
)

// ErrBadSignature marks a request whose X-Matrix signature does not verify,
// including signatures that are not 64 bytes of base64. Matrix servers
// respond to it with 401 M_UNAUTHORIZED.
var ErrBadSignature = errors.New("invalid X-Matrix signature")

// Credentials are the parameters of one X-Matrix Authorization header.
type Credentials struct {
	// Origin is the server name of the sending server.
	Origin string
	// Destination is the server name of the receiving server as the sender
	// wrote it, or "" when the header has no destination parameter, which
	// senders older than Matrix 1.3 omit.
	Destination string
	// KeyID is the ID of the signing key, such as "ed25519:abc".
	KeyID string
	// Signature is the ed25519 signature in unpadded standard base64, as
	// sent in the sig parameter.
	Signature string
}

// LogValue returns the credentials without the signature. The header has no
// timestamp or nonce, so a logged signature could be replayed with the same
// request.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("origin", c.Origin),
		slog.String("destination", c.Destination),
		slog.String("key_id", c.KeyID),
	)
}
