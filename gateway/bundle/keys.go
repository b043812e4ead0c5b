package bundle

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	opabundle "github.com/open-policy-agent/opa/v1/bundle"
)

// Key is a public key that bundle signatures may be made with.
type Key struct {
	// ID is the key ID that signatures made with the key name in their
	// "kid" header, as opa build --signing-key with --claims-file or
	// --signing-plugin writes it.
	ID string
	// Algorithm is the JWS algorithm of the signatures: RS256, RS384,
	// RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA.
	Algorithm string
	// PEM is the public key, as a PEM "PUBLIC KEY" or "RSA PUBLIC KEY"
	// block, or a PEM certificate that holds it.
	PEM []byte
}

// Verifier checks bundle signatures against a set of keys. A signature
// names its key by key ID, so a bundle signed with any configured key is
// accepted, which lets keys be rotated: configure the new key beside the
// old one, sign with the new key, then remove the old one. A nil *Verifier
// accepts only unsigned bundles.
type Verifier struct {
	keys  map[string]*opabundle.KeyConfig
	scope string
}

// NewVerifier checks keys and returns a verifier for them. scope, when not
// empty, must equal the scope claim of every signature.
func NewVerifier(keys []Key, scope string) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("no keys: list at least one public key")
	}
	v := &Verifier{keys: make(map[string]*opabundle.KeyConfig, len(keys)), scope: scope}
	for i, k := range keys {
		if k.ID == "" {
			return nil, fmt.Errorf("keys[%d]: key_id is missing; write the ID that signatures name in their kid header", i)
		}
		if _, duplicate := v.keys[k.ID]; duplicate {
			return nil, fmt.Errorf("keys[%d]: key_id %q is listed twice", i, k.ID)
		}
		if err := checkKey(k); err != nil {
			return nil, fmt.Errorf("keys[%d] (%s): %w", i, k.ID, err)
		}
		v.keys[k.ID] = &opabundle.KeyConfig{Key: string(k.PEM), Algorithm: k.Algorithm, Scope: scope}
	}
	return v, nil
}

// KeyIDs returns the IDs of the verifier's keys, in no particular order.
func (v *Verifier) KeyIDs() []string {
	if v == nil {
		return nil
	}
	ids := make([]string, 0, len(v.keys))
	for id := range v.keys {
		ids = append(ids, id)
	}
	return ids
}

// config returns OPA's verification configuration, nil for a nil verifier.
// The key ID is left empty, so that OPA takes it from each signature.
func (v *Verifier) config() *opabundle.VerificationConfig {
	if v == nil {
		return nil
	}
	return opabundle.NewVerificationConfig(v.keys, "", v.scope, nil)
}

// optionalConfig is config with signatures optional.
func (v *Verifier) optionalConfig() *opabundle.VerificationConfig {
	return v.config().WithOptionalSignature()
}

// checkKey parses the PEM key and checks that it suits the algorithm.
func checkKey(k Key) error {
	block, rest := pem.Decode(k.PEM)
	if block == nil {
		return errors.New("no PEM block found; write the public key in PEM form")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return errors.New("more than one PEM block; keep one public key per key")
	}
	var public any
	var err error
	switch block.Type {
	case "PUBLIC KEY":
		public, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		public, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			public = cert.PublicKey
		}
	default:
		return fmt.Errorf("PEM block is %q; write a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block, never a private key", block.Type)
	}
	if err != nil {
		return fmt.Errorf("parse public key: %w", err)
	}
	return checkAlgorithm(k.Algorithm, public)
}

func checkAlgorithm(algorithm string, public any) error {
	var ok bool
	switch algorithm {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok = public.(*rsa.PublicKey)
	case "ES256", "ES384", "ES512":
		var key *ecdsa.PublicKey
		if key, ok = public.(*ecdsa.PublicKey); ok {
			want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[algorithm]
			ok = key.Curve == want
		}
	case "EdDSA":
		_, ok = public.(ed25519.PublicKey)
	case "":
		return errors.New("algorithm is missing; write the JWS algorithm of the signatures, such as EdDSA or RS256")
	default:
		return fmt.Errorf("algorithm %q is not supported; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA", algorithm)
	}
	if !ok {
		return fmt.Errorf("the key is a %T, which does not suit algorithm %s", public, algorithm)
	}
	return nil
}

// signatureKeyID returns the key ID that a bundle signature names: the
// kid of its JWS header, else the deprecated keyid claim. It returns ""
// when neither can be read.
func signatureKeyID(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return ""
	}
	var header struct {
		KeyID string `json:"kid"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil && json.Unmarshal(raw, &header) == nil && header.KeyID != "" {
		return header.KeyID
	}
	var claims struct {
		KeyID string `json:"keyid"`
	}
	if raw, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil && json.Unmarshal(raw, &claims) == nil {
		return claims.KeyID
	}
	return ""
}
