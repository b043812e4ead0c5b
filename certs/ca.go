// Package certs builds TLS configurations for the gateway's listeners, issues
// certificates from a small internal or test CA, and matches peer certificates
// against Matrix server names.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/bordergate/bordergate/gateway/servername"
)

// clockSkew is how far NotBefore is moved into the past, so that a peer whose
// clock runs a little behind still accepts a certificate issued just now.
const clockSkew = 5 * time.Minute

// CA is a certificate authority with an ECDSA P-256 key. It signs server and
// client certificates for tests and for internal deployments that run their
// own federation PKI.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
}

// NewCA creates a self-signed CA valid for validity from now. The CA may sign
// leaf certificates only (path length zero).
func NewCA(commonName string, validity time.Duration) (*CA, error) {
	if commonName == "" {
		return nil, errors.New("create CA: common name is empty")
	}
	if validity <= 0 {
		return nil, fmt.Errorf("create CA: validity %s is not positive", validity)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create CA: generate key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}

	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA: sign certificate: %w", err)
	}
	return newCA(der, key)
}

// LoadCA reads a CA certificate and its private key from PEM files, as written
// by [CA.WriteFiles]. The key may be PKCS #8 or SEC 1 encoded and must be an
// ECDSA key that matches the certificate.
func LoadCA(certFile, keyFile string) (*CA, error) {
	certs, err := readCertificates(certFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	cert := certs[0]
	if !cert.IsCA {
		return nil, fmt.Errorf("load CA: certificate in %s is not a CA certificate (basic constraints CA=false)", certFile)
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	ecKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("load CA: key in %s is a %T, expected an ECDSA key", keyFile, key)
	}
	if !ecKey.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("load CA: key in %s does not match the certificate in %s", keyFile, certFile)
	}
	return newCA(cert.Raw, ecKey)
}

func newCA(der []byte, key *ecdsa.PrivateKey) (*CA, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &CA{
		cert:    cert,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:     key,
	}, nil
}

// Certificate returns the parsed CA certificate. Callers must not modify it.
func (ca *CA) Certificate() *x509.Certificate {
	return ca.cert
}

// CertPEM returns the CA certificate in PEM form, for a trust bundle.
func (ca *CA) CertPEM() []byte {
	return append([]byte(nil), ca.certPEM...)
}

// WriteFiles writes the CA certificate (mode 0644) and its PKCS #8 private key
// (mode 0600). Each file is written to a temporary file in the same directory
// and renamed into place, so a reader never sees a partial file.
func (ca *CA) WriteFiles(certFile, keyFile string) error {
	keyPEM, err := encodePrivateKey(ca.key)
	if err != nil {
		return fmt.Errorf("write CA files: %w", err)
	}
	if err := writeFileAtomic(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write CA key: %w", err)
	}
	if err := writeFileAtomic(certFile, ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("write CA certificate: %w", err)
	}
	return nil
}

// IssueServer issues a server certificate (ServerAuth extended key usage) for
// names, which are DNS names or IP literals (IPv6 with or without brackets).
// The first name is also the subject common name. NotAfter is capped at the
// CA's own NotAfter.
func (ca *CA) IssueServer(names []string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if len(names) == 0 {
		return nil, nil, errors.New("issue server certificate: no names given")
	}
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: strings.Trim(names[0], "[]")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, name := range names {
		if err := addSubjectAltName(template, name); err != nil {
			return nil, nil, fmt.Errorf("issue server certificate: %w", err)
		}
	}
	certPEM, keyPEM, err = ca.issue(template, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("issue server certificate for %s: %w", names[0], err)
	}
	return certPEM, keyPEM, nil
}

// IssueClient issues a client certificate (ClientAuth extended key usage) that
// names the Matrix server serverName, for mutual TLS between federation peers.
// The host part of serverName (port and IPv6 brackets removed) becomes the
// common name and the only subject alternative name, a DNS name or an IP
// address. [MatchesServerName] accepts the result for serverName. A
// serverName that [servername.Validate] rejects returns an error.
func (ca *CA) IssueClient(serverName string, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	host, _, err := servername.Split(serverName)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate: %w", err)
	}
	template := &x509.Certificate{
		Subject:     pkix.Name{CommonName: host},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := addSubjectAltName(template, host); err != nil {
		return nil, nil, fmt.Errorf("issue client certificate: %w", err)
	}
	certPEM, keyPEM, err = ca.issue(template, validity)
	if err != nil {
		return nil, nil, fmt.Errorf("issue client certificate for %s: %w", serverName, err)
	}
	return certPEM, keyPEM, nil
}

// issue fills in serial number and validity, generates a P-256 key and signs
// template with the CA key.
func (ca *CA) issue(template *x509.Certificate, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if validity <= 0 {
		return nil, nil, fmt.Errorf("validity %s is not positive", validity)
	}
	now := time.Now()
	if !now.Before(ca.cert.NotAfter) {
		return nil, nil, fmt.Errorf("CA certificate expired at %s", ca.cert.NotAfter.Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	template.SerialNumber = serial
	template.NotBefore = now.Add(-clockSkew)
	template.NotAfter = now.Add(validity)
	if template.NotAfter.After(ca.cert.NotAfter) {
		template.NotAfter = ca.cert.NotAfter
	}
	template.BasicConstraintsValid = true

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodePrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return certPEM, keyPEM, nil
}

// addSubjectAltName adds name to the certificate as an IP address or a DNS
// name. A name with a port is rejected, because a port is not part of a
// certificate identity.
func addSubjectAltName(template *x509.Certificate, name string) error {
	if ip := net.ParseIP(strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")); ip != nil {
		template.IPAddresses = append(template.IPAddresses, ip)
		return nil
	}
	switch {
	case name == "":
		return errors.New("empty name")
	case strings.Contains(name, ":"):
		return fmt.Errorf("name %q contains a port or is not a valid IP literal: pass the host part only", name)
	case strings.ContainsAny(name, " /\\@[]"):
		return fmt.Errorf("name %q is not a valid DNS name", name)
	}
	template.DNSNames = append(template.DNSNames, name)
	return nil
}

func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	serial, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return serial, nil
}

func encodePrivateKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFileAtomic writes data to a temporary file next to path, sets mode and
// renames it over path. The mode is set even when path already exists with a
// wider one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // fails harmlessly after the rename

	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmpName, path)
}
