package certs

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	before := time.Now()
	ca, err := NewCA("test root", 48*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	cert := ca.Certificate()

	if !cert.IsCA {
		t.Error("IsCA = false, want true")
	}
	if cert.Subject.CommonName != "test root" {
		t.Errorf("CommonName = %q, want %q", cert.Subject.CommonName, "test root")
	}
	if cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("MaxPathLen = %d, MaxPathLenZero = %v, want 0, true", cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("KeyUsage = %b, want the CertSign bit", cert.KeyUsage)
	}
	if key, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve.Params().Name != "P-256" {
		t.Errorf("public key = %T, want an ECDSA P-256 key", cert.PublicKey)
	}
	if got, want := cert.NotAfter.Sub(before).Round(time.Hour), 48*time.Hour; got != want {
		t.Errorf("NotAfter - now = %s, want %s", got, want)
	}
	if !cert.NotBefore.Before(before) {
		t.Errorf("NotBefore = %s, want before %s", cert.NotBefore, before)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		t.Errorf("CA certificate is not self-signed: %v", err)
	}
}

func TestNewCAInvalidArguments(t *testing.T) {
	tests := []struct {
		name       string
		commonName string
		validity   time.Duration
		wantErr    string
	}{
		{"empty common name", "", time.Hour, "create CA: common name is empty"},
		{"zero validity", "ca", 0, "create CA: validity 0s is not positive"},
		{"negative validity", "ca", -time.Minute, "create CA: validity -1m0s is not positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCA(tt.commonName, tt.validity)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("NewCA() error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCAWriteFilesLoadCA(t *testing.T) {
	dir := t.TempDir()
	certFile := filepath.Join(dir, "ca.pem")
	keyFile := filepath.Join(dir, "ca-key.pem")

	// A key file that already exists with a wide mode must end up 0600.
	if err := os.WriteFile(keyFile, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t)
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		t.Fatalf("WriteFiles: %v", err)
	}

	for file, want := range map[string]fs.FileMode{certFile: 0o644, keyFile: 0o600} {
		info, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("mode of %s = %o, want %o", filepath.Base(file), got, want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Errorf("directory holds %d entries after WriteFiles, want 2 (no temporary files left)", len(entries))
	}

	loaded, err := LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadCA: %v", err)
	}
	if !loaded.Certificate().Equal(ca.Certificate()) {
		t.Error("loaded certificate differs from the written one")
	}
	if string(loaded.CertPEM()) != string(ca.CertPEM()) {
		t.Error("loaded CertPEM differs from the written one")
	}

	// The loaded CA must sign certificates that chain to the original.
	certPEM, _, err := loaded.IssueServer([]string{"hs1.localhost"}, time.Hour)
	if err != nil {
		t.Fatalf("IssueServer with loaded CA: %v", err)
	}
	verifyChain(t, ca, parsePEMCert(t, certPEM), x509.ExtKeyUsageServerAuth)
}

func TestLoadCAErrors(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	certFile := filepath.Join(dir, "ca.pem")
	keyFile := filepath.Join(dir, "ca-key.pem")
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	otherKeyFile := filepath.Join(dir, "other-key.pem")
	if err := newTestCA(t).WriteFiles(filepath.Join(dir, "other.pem"), otherKeyFile); err != nil {
		t.Fatal(err)
	}
	leafFile := filepath.Join(dir, "leaf.pem")
	leafKeyFile := filepath.Join(dir, "leaf-key.pem")
	writeServerPair(t, ca, leafFile, leafKeyFile, "hs1.localhost")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name     string
		certFile string
		keyFile  string
		wantErr  string
	}{
		{"missing certificate", missing, keyFile,
			"load CA: read certificate file: open " + missing + ": no such file or directory"},
		{"missing key", certFile, missing,
			"load CA: read key file: open " + missing + ": no such file or directory"},
		{"certificate without PEM", garbage, keyFile,
			"load CA: certificate file " + garbage + ": no PEM CERTIFICATE block found"},
		{"key without PEM", certFile, garbage,
			"load CA: key file " + garbage + ": no PEM private key block found " +
				"(expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"},
		{"key of another CA", certFile, otherKeyFile,
			"load CA: key in " + otherKeyFile + " does not match the certificate in " + certFile},
		{"leaf certificate", leafFile, leafKeyFile,
			"load CA: certificate in " + leafFile + " is not a CA certificate (basic constraints CA=false)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadCA(tt.certFile, tt.keyFile)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("LoadCA() error = %v\nwant %q", err, tt.wantErr)
			}
			if tt.certFile == missing || tt.keyFile == missing {
				checkNotExist(t, err)
			}
		})
	}
}

func TestIssueServer(t *testing.T) {
	ca := newTestCA(t)
	certPEM, keyPEM, err := ca.IssueServer([]string{"hs2.localhost", "127.0.0.1", "[::1]"}, time.Hour)
	if err != nil {
		t.Fatalf("IssueServer: %v", err)
	}
	cert := parsePEMCert(t, certPEM)

	if !slices.Equal(cert.DNSNames, []string{"hs2.localhost"}) {
		t.Errorf("DNSNames = %q, want [hs2.localhost]", cert.DNSNames)
	}
	wantIPs := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}
	if !slices.EqualFunc(cert.IPAddresses, wantIPs, net.IP.Equal) {
		t.Errorf("IPAddresses = %v, want %v", cert.IPAddresses, wantIPs)
	}
	if cert.Subject.CommonName != "hs2.localhost" {
		t.Errorf("CommonName = %q, want hs2.localhost", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("ExtKeyUsage = %v, want [ServerAuth]", cert.ExtKeyUsage)
	}
	if cert.IsCA {
		t.Error("server certificate has IsCA = true")
	}
	verifyChain(t, ca, cert, x509.ExtKeyUsageServerAuth)
	checkKeyMatches(t, keyPEM, cert)
}

func TestIssueServerInvalidNames(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name    string
		names   []string
		wantErr string
	}{
		{"no names", nil, "issue server certificate: no names given"},
		{"empty name", []string{""}, "issue server certificate: empty name"},
		{"name with port", []string{"hs2.localhost:8448"},
			`issue server certificate: name "hs2.localhost:8448" contains a port or is not a valid IP literal: pass the host part only`},
		{"name with slash", []string{"hs2.localhost/x"},
			`issue server certificate: name "hs2.localhost/x" is not a valid DNS name`},
		{"bracketed DNS name", []string{"[hs2.localhost]"},
			`issue server certificate: name "[hs2.localhost]" is not a valid DNS name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ca.IssueServer(tt.names, time.Hour)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("IssueServer(%q) error = %v\nwant %q", tt.names, err, tt.wantErr)
			}
		})
	}
}

func TestIssueServerValidityCappedAtCA(t *testing.T) {
	ca, err := NewCA("short-lived CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := ca.IssueServer([]string{"hs1.localhost"}, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEMCert(t, certPEM)
	if !cert.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("NotAfter = %s, want the CA's NotAfter %s", cert.NotAfter, ca.Certificate().NotAfter)
	}
}

func TestIssueClient(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		serverName string
		wantCN     string
		wantDNS    []string
		wantIPs    []net.IP
	}{
		{"hs1.localhost:8481", "hs1.localhost", []string{"hs1.localhost"}, nil},
		{"example.org", "example.org", []string{"example.org"}, nil},
		{"[::1]:8448", "::1", nil, []net.IP{net.ParseIP("::1")}},
		{"127.0.0.1:8448", "127.0.0.1", nil, []net.IP{net.ParseIP("127.0.0.1")}},
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			certPEM, keyPEM, err := ca.IssueClient(tt.serverName, time.Hour)
			if err != nil {
				t.Fatalf("IssueClient: %v", err)
			}
			cert := parsePEMCert(t, certPEM)
			if cert.Subject.CommonName != tt.wantCN {
				t.Errorf("CommonName = %q, want %q", cert.Subject.CommonName, tt.wantCN)
			}
			if !slices.Equal(cert.DNSNames, tt.wantDNS) {
				t.Errorf("DNSNames = %q, want %q", cert.DNSNames, tt.wantDNS)
			}
			if !slices.EqualFunc(cert.IPAddresses, tt.wantIPs, net.IP.Equal) {
				t.Errorf("IPAddresses = %v, want %v", cert.IPAddresses, tt.wantIPs)
			}
			if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
				t.Errorf("ExtKeyUsage = %v, want [ClientAuth]", cert.ExtKeyUsage)
			}
			if !MatchesServerName(cert, tt.serverName) {
				t.Errorf("MatchesServerName(cert, %q) = false, want true", tt.serverName)
			}
			verifyChain(t, ca, cert, x509.ExtKeyUsageClientAuth)
			checkKeyMatches(t, keyPEM, cert)
		})
	}
}

func TestIssueClientInvalidServerName(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		serverName string
		want       string
	}{
		{"", `issue client certificate: invalid server name "": empty`},
		{"hs1.localhost:", `issue client certificate: invalid server name "hs1.localhost:": empty port`},
		{"::1", `issue client certificate: invalid server name "::1": empty host`},
		{"[::1", `issue client certificate: invalid server name "[::1": missing ']' after IPv6 address`},
		{"a:b:c", `issue client certificate: invalid server name "a:b:c": port "b:c": character 'b' not allowed`},
		{"hs1.localhost.", `issue client certificate: invalid server name "hs1.localhost.": host ends with '.'`},
		{"hs_1.localhost", `issue client certificate: invalid server name "hs_1.localhost": character '_' not allowed`},
		{"[::1]:99999", `issue client certificate: invalid server name "[::1]:99999": port 99999 out of range 1-65535`},
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			_, _, err := ca.IssueClient(tt.serverName, time.Hour)
			if err == nil || err.Error() != tt.want {
				t.Errorf("IssueClient(%q) error = %v, want %q", tt.serverName, err, tt.want)
			}
		})
	}
}

func TestIssueInvalidValidity(t *testing.T) {
	ca := newTestCA(t)
	_, _, err := ca.IssueClient("hs1.localhost", 0)
	want := "issue client certificate for hs1.localhost: validity 0s is not positive"
	if err == nil || err.Error() != want {
		t.Errorf("IssueClient(validity 0) error = %v, want %q", err, want)
	}
}

// verifyChain checks that cert chains to ca for the given extended key usage.
func verifyChain(t *testing.T, ca *CA, cert *x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}})
	if err != nil {
		t.Errorf("certificate does not verify against the CA: %v", err)
	}
}

// checkKeyMatches checks that keyPEM holds the PKCS #8 private key of cert.
func checkKeyMatches(t *testing.T, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key PEM block = %v, want type PRIVATE KEY", block)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("key type = %T, want *ecdsa.PrivateKey", key)
	}
	if !ecKey.PublicKey.Equal(cert.PublicKey) {
		t.Error("private key does not match the certificate")
	}
}

// writeServerPair issues a server certificate for names and writes it and its
// key to the given files.
func writeServerPair(t *testing.T, ca *CA, certFile, keyFile string, names ...string) {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueServer(names, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkNotExist checks that err still wraps fs.ErrNotExist, for tests that
// otherwise compare only the error text.
func checkNotExist(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false, want true", err)
	}
}
