package testfed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/servername"
)

// certValidity is the lifetime of the test CA and its certificates.
const certValidity = 24 * time.Hour

// newTestCA creates the federation's CA and writes its certificate to
// dir/ca.pem, the trust bundle that every process of the federation gets.
func newTestCA(dir string) (*certs.CA, string, error) {
	ca, err := certs.NewCA("bordergate e2e test CA", certValidity)
	if err != nil {
		return nil, "", err
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		return nil, "", fmt.Errorf("write CA certificate: %w", err)
	}
	return ca, caFile, nil
}

// writeServerCert issues a server certificate for names and writes it to
// dir/BASE.pem and its key to dir/BASE-key.pem.
func writeServerCert(ca *certs.CA, dir, base string, names ...string) (certFile, keyFile string, err error) {
	certPEM, keyPEM, err := ca.IssueServer(names, certValidity)
	if err != nil {
		return "", "", err
	}
	certFile = filepath.Join(dir, base+".pem")
	keyFile = filepath.Join(dir, base+"-key.pem")
	if err := writeKeyPair(certFile, keyFile, certPEM, keyPEM); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// writeKeyPair writes a PEM certificate and its private key, the key
// readable by its owner only.
func writeKeyPair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		return fmt.Errorf("write certificate: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return fmt.Errorf("write key: %w", err)
	}
	return nil
}

// newHTTPClient returns an HTTP client that trusts only ca.
func newHTTPClient(ca *certs.CA) *http.Client {
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Transport: transport, Timeout: 2 * time.Minute}
}

// newPinnedHTTPClient returns an HTTP client that trusts only ca and
// connects to addr for every request, whatever host its URL names. The URL's
// host still sets the Host header and the TLS server name.
func newPinnedHTTPClient(ca *certs.CA, addr string) *http.Client {
	client := newHTTPClient(ca)
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	client.Transport.(*http.Transport).DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	return client
}

// mustHost returns the host part of one of the harness's own server names,
// which are valid by construction.
func mustHost(serverName string) string {
	host, _, err := servername.Split(serverName)
	if err != nil {
		panic("testfed: " + err.Error())
	}
	return host
}
