// Package keys finds and caches the Ed25519 verify keys of remote Matrix
// servers: keys pinned in the allow-list, keys fetched from a server's own
// key server, and keys vouched for by notary servers.
//
// To reach key servers it also resolves Matrix server names to connection
// targets ([Discovery]) and dials them with a [Dialer] that rejects
// loopback, private and other internal addresses.
package keys

import (
	"context"
	"crypto/ed25519"
	"errors"
	"time"
)

// ErrUnknownKey reports that no verify key with the requested ID could be
// found for a server.
var ErrUnknownKey = errors.New("unknown verify key")

// ErrRevokedKey reports that a key is listed as revoked in the allow-list.
var ErrRevokedKey = errors.New("revoked verify key")

// Source is where a verify key came from.
type Source string

// Key sources.
const (
	SourcePinned Source = "pinned" // allow-list entry
	SourceServer Source = "server" // the server's own /_matrix/key/v2/server
	SourceNotary Source = "notary" // a notary's /_matrix/key/v2/query
	SourceFile   Source = "file"   // a key response read from a file
)

// VerifyKey is one public key of a server with its validity.
type VerifyKey struct {
	// ServerName is the server the key belongs to.
	ServerName string
	// KeyID is the key ID, such as "ed25519:abc".
	KeyID string
	// Public is the Ed25519 public key.
	Public ed25519.PublicKey
	// ValidUntil is the end of the key's validity: the key response's
	// valid_until_ts capped at seven days after it was fetched. It is the
	// zero time for pinned keys, which do not expire.
	ValidUntil time.Time
	// Expired is set for keys from old_verify_keys: the key only verifies
	// events whose origin_server_ts is before this time, and never requests.
	Expired time.Time
	// Source is where the key came from.
	Source Source
}

// ValidForRequestAt reports whether the key may verify a request signed at
// time t: it is a current key whose validity has not ended.
func (k VerifyKey) ValidForRequestAt(t time.Time) bool {
	if !k.Expired.IsZero() {
		return false
	}
	return k.ValidUntil.IsZero() || !t.After(k.ValidUntil)
}

// ValidForEventAt reports whether the key may verify an event created at
// ts (its origin_server_ts). Room versions 1 to 4 ignore the end of a
// key's validity, as the Matrix specification states; later versions require
// the validity to reach ts.
func (k VerifyKey) ValidForEventAt(ts time.Time, enforceValidity bool) bool {
	if !k.Expired.IsZero() && !ts.Before(k.Expired) {
		return false
	}
	if !enforceValidity || k.ValidUntil.IsZero() {
		return true
	}
	return !ts.After(k.ValidUntil)
}

// Lookup finds verify keys. Implementations return an error wrapping
// ErrUnknownKey when the server has no such key, and ErrRevokedKey when the
// key is revoked.
type Lookup interface {
	// LookupKey returns the key keyID of serverName.
	LookupKey(ctx context.Context, serverName, keyID string) (VerifyKey, error)
}
