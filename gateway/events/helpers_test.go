package events

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/keys"
)

// specSeed is the Ed25519 seed of the signing key in the Matrix
// specification's test vectors (server "domain", key ID "ed25519:1").
const specSeed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

// signer is a server's signing key.
type signer struct {
	server string
	keyID  string
	priv   ed25519.PrivateKey
}

func (s signer) public() ed25519.PublicKey { return s.priv.Public().(ed25519.PublicKey) }

// specSigner returns the signing key of the specification's vectors.
func specSigner(t testing.TB) signer {
	t.Helper()
	seed, err := base64.RawStdEncoding.DecodeString(specSeed)
	if err != nil {
		t.Fatalf("decode spec seed: %v", err)
	}
	return signer{server: "domain", keyID: "ed25519:1", priv: ed25519.NewKeyFromSeed(seed)}
}

// newSigner returns a deterministic key for server, derived from name so
// that test failures are reproducible.
func newSigner(server, keyID, name string) signer {
	seed := sha256.Sum256([]byte("bordergate events test key " + name))
	return signer{server: server, keyID: keyID, priv: ed25519.NewKeyFromSeed(seed[:])}
}

// memLookup is an in-memory keys.Lookup.
type memLookup struct {
	keys    map[string]keys.VerifyKey
	revoked map[string]bool
	// fail, when set, is returned for every key not in keys.
	fail error
	// calls counts LookupKey calls.
	calls int
}

func newMemLookup(signers ...signer) *memLookup {
	l := &memLookup{keys: map[string]keys.VerifyKey{}, revoked: map[string]bool{}}
	for _, s := range signers {
		l.add(s, func(*keys.VerifyKey) {})
	}
	return l
}

func lookupKey(server, keyID string) string { return server + " " + keyID }

// add stores the public key of s, adjusted by edit.
func (l *memLookup) add(s signer, edit func(*keys.VerifyKey)) {
	k := keys.VerifyKey{ServerName: s.server, KeyID: s.keyID, Public: s.public(), Source: keys.SourcePinned}
	edit(&k)
	l.keys[lookupKey(s.server, s.keyID)] = k
}

func (l *memLookup) revoke(server, keyID string) { l.revoked[lookupKey(server, keyID)] = true }

// LookupKey implements keys.Lookup.
func (l *memLookup) LookupKey(_ context.Context, server, keyID string) (keys.VerifyKey, error) {
	l.calls++
	id := lookupKey(server, keyID)
	if l.revoked[id] {
		return keys.VerifyKey{}, fmt.Errorf("key %s of %s: %w", keyID, server, keys.ErrRevokedKey)
	}
	if k, ok := l.keys[id]; ok {
		return k, nil
	}
	if l.fail != nil {
		return keys.VerifyKey{}, l.fail
	}
	return keys.VerifyKey{}, fmt.Errorf("key %s of %s: %w", keyID, server, keys.ErrUnknownKey)
}

func mustParse(t testing.TB, s string) canonicaljson.Value {
	t.Helper()
	v, err := canonicaljson.Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return v
}

func mustVersion(t testing.TB, id string) *RoomVersion {
	t.Helper()
	rv, ok := LookupRoomVersion(id)
	if !ok {
		t.Fatalf("room version %q is unknown", id)
	}
	return rv
}

// mustSign signs v with each signer in turn.
func mustSign(t testing.TB, v canonicaljson.Value, rv *RoomVersion, signers ...signer) canonicaljson.Value {
	t.Helper()
	for _, s := range signers {
		var err error
		v, err = SignEvent(v, rv, s.server, s.keyID, s.priv)
		if err != nil {
			t.Fatalf("sign as %s: %v", s.server, err)
		}
	}
	return v
}

func mustParsePDU(t testing.TB, v canonicaljson.Value, rv *RoomVersion) *PDU {
	t.Helper()
	pdu, err := ParsePDU(v, rv)
	if err != nil {
		t.Fatalf("ParsePDU (room version %s): %v", rv.ID, err)
	}
	return pdu
}

func b64(hash [32]byte) string { return base64.RawStdEncoding.EncodeToString(hash[:]) }

func millis(t time.Time) int64 { return t.UnixMilli() }
