package keys

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// MaxKeyValidity is the longest a fetched key is trusted without a refetch.
// Under the Matrix specification, a requester uses the lesser of the
// response's valid_until_ts and the fetch time plus seven days.
const MaxKeyValidity = 7 * 24 * time.Hour

// ed25519Prefix starts every Ed25519 key ID, the only algorithm Matrix defines.
const ed25519Prefix = "ed25519:"

// ErrBadSignature reports that a signature on a key response is missing or
// does not verify.
var ErrBadSignature = errors.New("bad signature")

// ServerKeys is a parsed /_matrix/key/v2/server response, or one entry of
// the server_keys list a notary returns. The maps contain only Ed25519
// keys. Raw keeps the whole object, keys of other algorithms and unknown
// fields included, because the signatures cover all of it.
type ServerKeys struct {
	// ServerName is the server_name field.
	ServerName string
	// VerifyKeys are the current keys by key ID, from verify_keys.
	VerifyKeys map[string]ed25519.PublicKey
	// OldVerifyKeys are the retired keys by key ID, from old_verify_keys.
	OldVerifyKeys map[string]OldVerifyKey
	// ValidUntil is valid_until_ts, the end of validity the server publishes.
	ValidUntil time.Time
	// Signatures are the base64 signatures by entity and key ID. Entries
	// whose key ID is not Ed25519 are left out.
	Signatures map[string]map[string]string
	// Raw is the whole parsed object.
	Raw canonicaljson.Value
}

// OldVerifyKey is a retired key from old_verify_keys.
type OldVerifyKey struct {
	// Public is the Ed25519 public key.
	Public ed25519.PublicKey
	// Expired is expired_ts: the key verifies only events created before it.
	Expired time.Time
}

// ParseServerKeys parses a key response strictly: the JSON must pass the
// canonicaljson parser and contain only canonical integers, and
// server_name, verify_keys, valid_until_ts and signatures are required. It
// does not check any signature; call [ServerKeys.VerifySelfSignature].
func ParseServerKeys(data []byte) (*ServerKeys, error) {
	v, err := canonicaljson.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("parse key response: %w", err)
	}
	return parseServerKeysValue(v)
}

func parseServerKeysValue(v canonicaljson.Value) (*ServerKeys, error) {
	if v.Kind() != canonicaljson.Object {
		return nil, fmt.Errorf("invalid key response: %s instead of an object", v.Kind())
	}
	if err := v.CheckStrictNumbers(); err != nil {
		return nil, fmt.Errorf("invalid key response: %w", err)
	}
	sk := &ServerKeys{Raw: v}

	name, ok := v.GetString("server_name")
	if !ok || name == "" {
		return nil, errors.New("invalid key response: server_name missing or not a non-empty string")
	}
	sk.ServerName = name

	validUntil, ok := v.Get("valid_until_ts")
	if !ok {
		return nil, errors.New("invalid key response: valid_until_ts missing")
	}
	ms, ok := validUntil.Int()
	if !ok {
		return nil, errors.New("invalid key response: valid_until_ts is not an integer")
	}
	sk.ValidUntil = time.UnixMilli(ms)

	var err error
	if sk.VerifyKeys, err = parseVerifyKeys(v); err != nil {
		return nil, err
	}
	if sk.OldVerifyKeys, err = parseOldVerifyKeys(v); err != nil {
		return nil, err
	}
	if sk.Signatures, err = parseSignatures(v); err != nil {
		return nil, err
	}
	return sk, nil
}

func parseVerifyKeys(v canonicaljson.Value) (map[string]ed25519.PublicKey, error) {
	field, ok := v.Get("verify_keys")
	if !ok {
		return nil, errors.New("invalid key response: verify_keys missing")
	}
	if field.Kind() != canonicaljson.Object {
		return nil, errors.New("invalid key response: verify_keys is not an object")
	}
	out := make(map[string]ed25519.PublicKey, field.Len())
	for _, m := range field.Members() {
		if !strings.HasPrefix(m.Key, ed25519Prefix) {
			continue
		}
		pub, err := parseKeyObject(m.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid key response: verify_keys %q: %w", m.Key, err)
		}
		out[m.Key] = pub
	}
	return out, nil
}

func parseOldVerifyKeys(v canonicaljson.Value) (map[string]OldVerifyKey, error) {
	field, ok := v.Get("old_verify_keys")
	if !ok {
		return map[string]OldVerifyKey{}, nil
	}
	if field.Kind() != canonicaljson.Object {
		return nil, errors.New("invalid key response: old_verify_keys is not an object")
	}
	out := make(map[string]OldVerifyKey, field.Len())
	for _, m := range field.Members() {
		if !strings.HasPrefix(m.Key, ed25519Prefix) {
			continue
		}
		pub, err := parseKeyObject(m.Value)
		if err != nil {
			return nil, fmt.Errorf("invalid key response: old_verify_keys %q: %w", m.Key, err)
		}
		expired, ok := m.Value.Get("expired_ts")
		if !ok {
			return nil, fmt.Errorf("invalid key response: old_verify_keys %q: expired_ts missing", m.Key)
		}
		ms, ok := expired.Int()
		if !ok {
			return nil, fmt.Errorf("invalid key response: old_verify_keys %q: expired_ts is not an integer", m.Key)
		}
		out[m.Key] = OldVerifyKey{Public: pub, Expired: time.UnixMilli(ms)}
	}
	return out, nil
}

// parseKeyObject decodes the Ed25519 key of {"key": "<base64>"}.
func parseKeyObject(v canonicaljson.Value) (ed25519.PublicKey, error) {
	if v.Kind() != canonicaljson.Object {
		return nil, errors.New("not an object")
	}
	text, ok := v.GetString("key")
	if !ok {
		return nil, errors.New("key missing or not a string")
	}
	raw, err := decodeBase64(text)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key is %d bytes instead of %d", len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

func parseSignatures(v canonicaljson.Value) (map[string]map[string]string, error) {
	field, ok := v.Get("signatures")
	if !ok {
		return nil, errors.New("invalid key response: signatures missing")
	}
	if field.Kind() != canonicaljson.Object {
		return nil, errors.New("invalid key response: signatures is not an object")
	}
	out := make(map[string]map[string]string, field.Len())
	for _, entity := range field.Members() {
		if entity.Value.Kind() != canonicaljson.Object {
			return nil, fmt.Errorf("invalid key response: signatures of %q is not an object", entity.Key)
		}
		byKey := make(map[string]string, entity.Value.Len())
		for _, sig := range entity.Value.Members() {
			text, ok := sig.Value.Str()
			if !ok {
				return nil, fmt.Errorf("invalid key response: signature %s of %q is not a string", sig.Key, entity.Key)
			}
			if strings.HasPrefix(sig.Key, ed25519Prefix) {
				byKey[sig.Key] = text
			}
		}
		out[entity.Key] = byKey
	}
	return out, nil
}

// decodeBase64 decodes standard base64 with or without padding, because
// Matrix decoders should accept both forms.
func decodeBase64(s string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
}

// SignedBytes returns the bytes the signatures cover: the canonical JSON of
// the object without its signatures and unsigned members.
func (sk *ServerKeys) SignedBytes() []byte {
	return canonicaljson.Encode(sk.Raw.Without("signatures", "unsigned"))
}

// VerifySelfSignature checks the server's own signature. At least one
// signature by ServerName must be made with a key from VerifyKeys, and
// every such signature must verify. One failing signature rejects the
// response even when another verifies, because a correct server does not
// publish a key object it signed badly, so the object was altered.
// Signatures with key IDs that are not in VerifyKeys are skipped, since
// servers may sign with keys they no longer list. Errors wrap
// [ErrBadSignature].
func (sk *ServerKeys) VerifySelfSignature() error {
	if err := sk.verifySignaturesBy(sk.ServerName, sk.VerifyKeys); err != nil {
		return fmt.Errorf("self-signature of %s: %w", sk.ServerName, err)
	}
	return nil
}

// VerifyNotarySignature checks the signature a notary added to sk, by the
// same rules as [ServerKeys.VerifySelfSignature] with notaryKeys, the
// notary's keys configured by the operator, in place of sk.VerifyKeys. It
// does not check the origin's own signature. Errors wrap [ErrBadSignature].
func VerifyNotarySignature(sk *ServerKeys, notaryName string, notaryKeys map[string]ed25519.PublicKey) error {
	if err := sk.verifySignaturesBy(notaryName, notaryKeys); err != nil {
		return fmt.Errorf("notary signature of %s on keys of %s: %w", notaryName, sk.ServerName, err)
	}
	return nil
}

func (sk *ServerKeys) verifySignaturesBy(entity string, keys map[string]ed25519.PublicKey) error {
	sigs := sk.Signatures[entity]
	if len(sigs) == 0 {
		return fmt.Errorf("%w: no Ed25519 signature by %s", ErrBadSignature, entity)
	}
	message := sk.SignedBytes()
	verified := 0
	for _, keyID := range slices.Sorted(maps.Keys(sigs)) {
		pub, ok := keys[keyID]
		if !ok {
			continue
		}
		sig, err := decodeBase64(sigs[keyID])
		if err != nil {
			return fmt.Errorf("%w: signature %s is not base64: %w", ErrBadSignature, keyID, err)
		}
		if !ed25519.Verify(pub, message, sig) {
			return fmt.Errorf("%w: signature %s does not verify", ErrBadSignature, keyID)
		}
		verified++
	}
	if verified == 0 {
		return fmt.Errorf("%w: no signature by %s with a known key", ErrBadSignature, entity)
	}
	return nil
}

// Keys returns the keys of the response sorted by key ID, current keys
// before old ones. Every key's ValidUntil is the lesser of ValidUntil and
// fetchedAt plus [MaxKeyValidity]. Old keys carry their expired_ts in
// Expired. An old key whose ID is also a current key is left out.
func (sk *ServerKeys) Keys(fetchedAt time.Time, source Source) []VerifyKey {
	validUntil := sk.ValidUntil
	if limit := fetchedAt.Add(MaxKeyValidity); limit.Before(validUntil) {
		validUntil = limit
	}
	return sk.keysValidUntil(validUntil, source)
}

func (sk *ServerKeys) keysValidUntil(validUntil time.Time, source Source) []VerifyKey {
	out := make([]VerifyKey, 0, len(sk.VerifyKeys)+len(sk.OldVerifyKeys))
	for _, keyID := range slices.Sorted(maps.Keys(sk.VerifyKeys)) {
		out = append(out, VerifyKey{
			ServerName: sk.ServerName,
			KeyID:      keyID,
			Public:     sk.VerifyKeys[keyID],
			ValidUntil: validUntil,
			Source:     source,
		})
	}
	for _, keyID := range slices.Sorted(maps.Keys(sk.OldVerifyKeys)) {
		if _, current := sk.VerifyKeys[keyID]; current {
			continue
		}
		old := sk.OldVerifyKeys[keyID]
		out = append(out, VerifyKey{
			ServerName: sk.ServerName,
			KeyID:      keyID,
			Public:     old.Public,
			ValidUntil: validUntil,
			Expired:    old.Expired,
			Source:     source,
		})
	}
	return out
}
