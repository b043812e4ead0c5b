package decisionlog

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// GenerateAuditKey returns a new Ed25519 audit key.
func GenerateAuditKey() (ed25519.PrivateKey, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate audit key: %w", err)
	}
	return key, nil
}

// MarshalAuditKey returns key as a PEM "PRIVATE KEY" block (PKCS #8), the
// form that `openssl genpkey -algorithm ed25519` writes.
func MarshalAuditKey(key ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode audit key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey returns pub as a PEM "PUBLIC KEY" block (PKIX), the form
// that `openssl pkey -pubout` writes.
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// LoadAuditKey reads an Ed25519 private key from a PEM file in PKCS #8
// form. It rejects a file that other users may read or write, because
// the holder of the key can sign checkpoints over a rewritten log.
func LoadAuditKey(path string) (ed25519.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load audit key: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o007 != 0 {
		return nil, fmt.Errorf("load audit key %s: mode %04o gives other users access; run chmod 0600 %s", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load audit key: %w", err)
	}
	key, err := ParseAuditKey(data)
	if err != nil {
		return nil, fmt.Errorf("load audit key %s: %w", path, err)
	}
	return key, nil
}

// ParseAuditKey decodes an Ed25519 private key from a PEM "PRIVATE KEY"
// block in PKCS #8 form.
func ParseAuditKey(data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New(`no PEM "PRIVATE KEY" block; create the key with bordergate audit keygen or openssl genpkey -algorithm ed25519`)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("invalid PKCS #8 private key: %w", err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is a %T, want an Ed25519 key", parsed)
	}
	return key, nil
}

// ParseVerifyKey decodes an Ed25519 public key from a PEM "PUBLIC KEY"
// block (PKIX), or derives it from a PEM "PRIVATE KEY" block (PKCS #8).
func ParseVerifyKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New(`no PEM block; give a "PUBLIC KEY" or "PRIVATE KEY" PEM file`)
	}
	switch block.Type {
	case "PRIVATE KEY":
		key, err := ParseAuditKey(data)
		if err != nil {
			return nil, err
		}
		return key.Public().(ed25519.PublicKey), nil
	case "PUBLIC KEY":
		parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid PKIX public key: %w", err)
		}
		pub, ok := parsed.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is a %T, want an Ed25519 key", parsed)
		}
		return pub, nil
	default:
		return nil, fmt.Errorf(`PEM block is %q, want "PUBLIC KEY" or "PRIVATE KEY"`, block.Type)
	}
}

// WriteAuditKeyFiles generates an audit key and writes it to keyPath with
// mode 0600, and its public key to pubPath with mode 0644 unless pubPath is
// empty. Existing files are kept, and reported with fs.ErrExist, unless
// replace is true. It returns the key ID.
func WriteAuditKeyFiles(keyPath, pubPath string, replace bool) (string, error) {
	key, err := GenerateAuditKey()
	if err != nil {
		return "", err
	}
	keyPEM, err := MarshalAuditKey(key)
	if err != nil {
		return "", err
	}
	pub := key.Public().(ed25519.PublicKey)
	pubPEM, err := MarshalPublicKey(pub)
	if err != nil {
		return "", err
	}
	if err := writeNewFile(keyPath, keyPEM, 0o600, replace); err != nil {
		return "", err
	}
	if pubPath != "" {
		if err := writeNewFile(pubPath, pubPEM, 0o644, replace); err != nil {
			return "", err
		}
	}
	return KeyID(pub), nil
}

// writeNewFile writes data to a new file at path, or replaces the file
// when replace is true, and syncs it.
func writeNewFile(path string, data []byte, perm fs.FileMode, replace bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if replace {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	file, err := os.OpenFile(path, flags, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := file.Chmod(perm); err != nil {
		_ = file.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = file.Write(data)
	if err == nil {
		err = file.Sync()
	}
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
