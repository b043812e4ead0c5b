package certs

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// publicKeyEqualer is implemented by the public key types of crypto/ecdsa,
// crypto/ed25519 and crypto/rsa.
type publicKeyEqualer interface {
	Equal(x crypto.PublicKey) bool
}

// ServerTLSConfig returns the TLS configuration of a listener that presents
// the certificate chain in certFile with the private key in keyFile. TLS 1.2
// is the minimum version.
//
// When clientCAFile is not empty, the listener verifies a client certificate
// against the CAs in that file whenever the client sends one
// ([tls.VerifyClientCertIfGiven]). A client without a certificate still
// completes the handshake: whether a peer must present one is decided per
// origin after the handshake, from the allow-list.
//
// Errors name the file and what is wrong with it: missing file, no PEM block,
// or a key that does not match the certificate.
func ServerTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("server TLS: certificate file and key file are both required")
	}
	cert, err := loadKeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server TLS: %w", err)
	}
	config := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if clientCAFile == "" {
		return config, nil
	}

	pool, err := LoadCertPool(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("server TLS: client CA: %w", err)
	}
	config.ClientCAs = pool
	config.ClientAuth = tls.VerifyClientCertIfGiven
	return config, nil
}

// loadKeyPair reads a certificate chain and its private key. Unlike
// [tls.LoadX509KeyPair], its errors name the file at fault.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	chain, err := readCertificates(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := readPrivateKey(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	return newKeyPair(certFile, keyFile, chain, key)
}

// newKeyPair checks that key belongs to the first certificate of chain and
// builds the [tls.Certificate]. The file names are only used in errors.
func newKeyPair(certFile, keyFile string, chain []*x509.Certificate, key crypto.Signer) (tls.Certificate, error) {
	leaf := chain[0]
	public, ok := key.Public().(publicKeyEqualer)
	if !ok || !public.Equal(leaf.PublicKey) {
		return tls.Certificate{}, fmt.Errorf("key file %s does not match the first certificate in %s", keyFile, certFile)
	}

	cert := tls.Certificate{PrivateKey: key, Leaf: leaf}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// LoadCertPool returns a new pool with every certificate of the PEM file at
// path, for RootCAs or ClientCAs of a [tls.Config]. Unlike
// [x509.CertPool.AppendCertsFromPEM], it fails on a file without
// certificates and on a certificate that does not parse, naming the file.
func LoadCertPool(path string) (*x509.CertPool, error) {
	certs, err := readCertificates(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

// SharedCAs returns the subjects of the certificates that both PEM files
// hold, in the order of the file at a. Two certificates count as the same
// CA when they have the same subject and public key, so a CA certificate
// reissued with its old key is found too.
func SharedCAs(a, b string) ([]string, error) {
	first, err := readCertificates(a)
	if err != nil {
		return nil, err
	}
	second, err := readCertificates(b)
	if err != nil {
		return nil, err
	}
	var shared []string
	for _, x := range first {
		for _, y := range second {
			if bytes.Equal(x.RawSubject, y.RawSubject) && bytes.Equal(x.RawSubjectPublicKeyInfo, y.RawSubjectPublicKeyInfo) {
				shared = append(shared, x.Subject.String())
				break
			}
		}
	}
	return shared, nil
}
