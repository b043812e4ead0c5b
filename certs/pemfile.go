package certs

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// readCertificates parses every CERTIFICATE block of a PEM file, in file
// order. Blocks of other types are skipped. Errors name the file.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate file: %w", err)
	}
	return parseCertificates(path, data)
}

// parseCertificates parses data, the contents of the file at path, like
// [readCertificates]. path is only used in errors.
func parseCertificates(path string, data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate file %s: certificate %d: %w", path, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("certificate file %s: no PEM CERTIFICATE block found", path)
	}
	return certs, nil
}

// readPrivateKey parses the first private key block of a PEM file: PKCS #8
// ("PRIVATE KEY"), SEC 1 ("EC PRIVATE KEY") or PKCS #1 ("RSA PRIVATE KEY").
// Errors name the file.
func readPrivateKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	return parsePrivateKey(path, data)
}

// parsePrivateKey parses data, the contents of the file at path, like
// [readPrivateKey]. path is only used in errors.
func parsePrivateKey(path string, data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("key file %s: no PEM private key block found "+
				"(expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)", path)
		}
		key, err := parsePrivateKeyBlock(block)
		if errors.Is(err, errNotAKeyBlock) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("key file %s: %w", path, err)
		}
		return key, nil
	}
}

var errNotAKeyBlock = errors.New("not a private key block")

func parsePrivateKeyBlock(block *pem.Block) (crypto.Signer, error) {
	var (
		key any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, errNotAKeyBlock
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s block: %w", block.Type, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", key)
	}
	return signer, nil
}
