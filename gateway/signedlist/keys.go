package signedlist

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"os"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Key is one verification key of a signed list.
type Key struct {
	// ID is the key ID, matched against the kid header of a list.
	ID string
	// Algorithm is the only JWS algorithm the key verifies.
	Algorithm jwa.SignatureAlgorithm
	// Public is the public key: ed25519.PublicKey, *ecdsa.PublicKey or
	// *rsa.PublicKey.
	Public any
}

// KeySet is the verification keys of a signed list, by key ID.
type KeySet struct {
	keys map[string]Key
}

// IDs returns the key IDs, sorted.
func (s *KeySet) IDs() []string {
	ids := make([]string, 0, len(s.keys))
	for id := range s.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// rsaAlgorithms are the algorithms an RSA key may name in its alg member.
var rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// LoadKeys reads a JWK Set file (RFC 7517) of public keys. Every key needs
// a kid, distinct from the others. The algorithm of each key follows from
// its type: EdDSA for an Ed25519 key, ES256, ES384 or ES512 for an EC key
// on P-256, P-384 or P-521. An RSA key must name its algorithm in alg. An
// alg that disagrees with the key type, a private key, and a file that
// every local user may write are errors.
func LoadKeys(path string) (*KeySet, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read keys file: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o002 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets every local user add a signing key (run chmod o-w %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keys file: %w", err)
	}
	set, err := ParseKeys(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// ParseKeys parses a JWK Set as LoadKeys does.
func ParseKeys(data []byte) (*KeySet, error) {
	set, err := jwk.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("invalid JWK Set (expected {\"keys\": [...]} of public keys): %w", err)
	}
	if set.Len() == 0 {
		return nil, fmt.Errorf("no keys (expected at least one public key with a kid)")
	}
	out := &KeySet{keys: make(map[string]Key, set.Len())}
	for i := range set.Len() {
		raw, _ := set.Key(i)
		key, err := convertKey(raw)
		if err != nil {
			return nil, fmt.Errorf("keys[%d]: %w", i, err)
		}
		if _, dup := out.keys[key.ID]; dup {
			return nil, fmt.Errorf("keys[%d]: duplicate kid %q (expected a distinct kid per key)", i, key.ID)
		}
		out.keys[key.ID] = key
	}
	return out, nil
}

// convertKey checks one JWK and returns it as a Key.
func convertKey(raw jwk.Key) (Key, error) {
	kid, ok := raw.KeyID()
	if !ok || kid == "" {
		return Key{}, fmt.Errorf("missing kid (expected a key ID, which lists name in their kid header)")
	}
	if private, err := jwk.IsPrivateKey(raw); err != nil || private {
		return Key{}, fmt.Errorf("kid %q: not a public key (expected only public keys; keep the private key with the list's signer)", kid)
	}
	var public any
	if err := jwk.Export(raw, &public); err != nil {
		return Key{}, fmt.Errorf("kid %q: %w", kid, err)
	}
	declared := ""
	if alg, ok := raw.Algorithm(); ok {
		declared = alg.String()
	}
	name, err := algorithmFor(public, declared)
	if err != nil {
		return Key{}, fmt.Errorf("kid %q: %w", kid, err)
	}
	alg, ok := jwa.LookupSignatureAlgorithm(name)
	if !ok {
		return Key{}, fmt.Errorf("kid %q: algorithm %s not supported", kid, name)
	}
	return Key{ID: kid, Algorithm: alg, Public: public}, nil
}

// algorithmFor returns the JWS algorithm of a public key, checked against
// the declared alg when there is one.
func algorithmFor(public any, declared string) (string, error) {
	var implied string
	switch k := public.(type) {
	case ed25519.PublicKey:
		implied = "EdDSA"
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			implied = "ES256"
		case elliptic.P384():
			implied = "ES384"
		case elliptic.P521():
			implied = "ES512"
		default:
			return "", fmt.Errorf("EC curve %s not supported (expected P-256, P-384 or P-521)", k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if !slices.Contains(rsaAlgorithms, declared) {
			return "", fmt.Errorf("RSA key with alg %q (expected one of %v)", declared, rsaAlgorithms)
		}
		if k.N.BitLen() < 2048 {
			return "", fmt.Errorf("RSA key of %d bits (expected at least 2048)", k.N.BitLen())
		}
		return declared, nil
	default:
		return "", fmt.Errorf("key type %T not supported (expected an Ed25519, EC or RSA public key)", public)
	}
	if declared != "" && declared != implied {
		return "", fmt.Errorf("alg %q does not fit the key, which signs with %s", declared, implied)
	}
	return implied, nil
}
