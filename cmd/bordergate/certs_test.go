package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
)

// caPaths returns a CA certificate and key path in a new directory.
func caPaths(t *testing.T) (certFile, keyFile string) {
	dir := t.TempDir()
	return filepath.Join(dir, "intercept-ca.pem"), filepath.Join(dir, "intercept-ca-key.pem")
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %o, want %o", filepath.Base(path), got, want)
	}
}

func checkNotCreated(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after a failed command (stat error %v)", filepath.Base(path), err)
	}
}

func TestCertsInitCA(t *testing.T) {
	certFile, keyFile := caPaths(t)
	before := time.Now()
	out, err := runCommand(t, "", "certs", "init-ca", "--cert", certFile, "--key", keyFile)
	if err != nil {
		t.Fatalf("init-ca: %v\n%s", err, out)
	}

	ca, err := certs.LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatalf("LoadCA of the written files: %v", err)
	}
	cert := ca.Certificate()
	if cert.Subject.CommonName != "bordergate interception CA" {
		t.Errorf("CommonName = %q, want the default name", cert.Subject.CommonName)
	}
	if got, want := cert.NotAfter.Sub(before).Round(time.Hour), 87600*time.Hour; got != want {
		t.Errorf("validity = %s, want %s", got, want)
	}
	checkMode(t, certFile, 0o644)
	checkMode(t, keyFile, 0o600)

	for _, want := range []string{
		"certificate:  " + certFile,
		"private key:  " + keyFile,
		"outbound.intercept_ca.cert_file",
		"federation_custom_ca_list",
		"SSL_CERT_FILE",
		"Dendrite",
		"docs/outbound.md",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
}

func TestCertsInitCAOptions(t *testing.T) {
	certFile, keyFile := caPaths(t)
	before := time.Now()
	out, err := runCommand(t, "", "certs", "init-ca", "--cert", certFile, "--key", keyFile,
		"--name", "Ministry Two interception CA", "--validity", "720h")
	if err != nil {
		t.Fatalf("init-ca: %v\n%s", err, out)
	}
	ca, err := certs.LoadCA(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := ca.Certificate().Subject.CommonName; got != "Ministry Two interception CA" {
		t.Errorf("CommonName = %q, want the --name value", got)
	}
	if got := ca.Certificate().NotAfter.Sub(before).Round(time.Hour); got != 720*time.Hour {
		t.Errorf("validity = %s, want 720h", got)
	}
}

func TestCertsInitCARefusesOverwrite(t *testing.T) {
	tests := []struct {
		name     string
		existing func(certFile, keyFile string) string
	}{
		{"certificate exists", func(certFile, _ string) string { return certFile }},
		{"key exists", func(_, keyFile string) string { return keyFile }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := caPaths(t)
			existing := tt.existing(certFile, keyFile)
			if err := os.WriteFile(existing, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}

			_, err := runCommand(t, "", "certs", "init-ca", "--cert", certFile, "--key", keyFile)
			want := "create CA files: file already exists: " + existing + " (pass --force to replace it)"
			if err == nil || err.Error() != want {
				t.Errorf("init-ca error = %v\nwant %q", err, want)
			}
			data, err := os.ReadFile(existing)
			if err != nil || string(data) != "old\n" {
				t.Errorf("existing file now holds %q, %v, want it unchanged", data, err)
			}
			for _, path := range []string{certFile, keyFile} {
				if path != existing {
					checkNotCreated(t, path)
				}
			}
		})
	}
}

func TestCertsInitCAForce(t *testing.T) {
	certFile, keyFile := caPaths(t)
	for _, path := range []string{certFile, keyFile} {
		if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runCommand(t, "", "certs", "init-ca", "--cert", certFile, "--key", keyFile, "--force")
	if err != nil {
		t.Fatalf("init-ca --force: %v\n%s", err, out)
	}
	if _, err := certs.LoadCA(certFile, keyFile); err != nil {
		t.Errorf("LoadCA after --force: %v", err)
	}
	checkMode(t, keyFile, 0o600)
}

func TestCertsInitCAInvalidFlags(t *testing.T) {
	certFile, keyFile := caPaths(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"zero validity", []string{"--cert", certFile, "--key", keyFile, "--validity", "0s"},
			"invalid --validity 0s: must be positive"},
		{"negative validity", []string{"--cert", certFile, "--key", keyFile, "--validity", "-1h"},
			"invalid --validity -1h0m0s: must be positive"},
		{"validity without unit", []string{"--cert", certFile, "--key", keyFile, "--validity", "10"},
			`invalid argument "10" for "--validity" flag: must be a duration like "30s" or "5m"`},
		{"empty name", []string{"--cert", certFile, "--key", keyFile, "--name", ""},
			"--name must not be empty"},
		{"same file", []string{"--cert", certFile, "--key", certFile},
			"--cert and --key name the same file " + certFile},
		{"missing key flag", []string{"--cert", certFile},
			`required flag(s) "key" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"certs", "init-ca"}, tt.args...)
			_, err := runCommand(t, "", args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("init-ca error = %v\nwant %q", err, tt.want)
			}
			checkNotCreated(t, certFile)
			checkNotCreated(t, keyFile)
		})
	}
}

// writeTestCA writes a new CA to a temporary directory for issue-client.
func writeTestCA(t *testing.T) (ca *certs.CA, certFile, keyFile string) {
	t.Helper()
	ca, err := certs.NewCA("Ministry One test CA", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = caPaths(t)
	if err := ca.WriteFiles(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	return ca, certFile, keyFile
}

func readChain(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var chain []*x509.Certificate
	for block, rest := pem.Decode(data); block != nil; block, rest = pem.Decode(rest) {
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, cert)
	}
	return chain
}

func TestCertsIssueClient(t *testing.T) {
	ca, caCert, caKey := writeTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")

	out, err := runCommand(t, "", "certs", "issue-client", "--ca-cert", caCert, "--ca-key", caKey,
		"--server-name", "hs2.example:8448", "--cert", certFile, "--key", keyFile)
	if err != nil {
		t.Fatalf("issue-client: %v\n%s", err, out)
	}
	chain := readChain(t, certFile)
	if len(chain) != 1 {
		t.Fatalf("certificate file holds %d certificates, want 1 for a self-signed CA", len(chain))
	}
	cert := chain[0]
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("ExtKeyUsage = %v, want [ClientAuth]", cert.ExtKeyUsage)
	}
	if !certs.MatchesServerName(cert, "hs2.example:8448") {
		t.Errorf("certificate names %q, want hs2.example", certs.PeerNames(cert))
	}
	// The CA lives 48h, so the default validity of 8760h is capped.
	if !cert.NotAfter.Equal(ca.Certificate().NotAfter) {
		t.Errorf("NotAfter = %s, want the CA's NotAfter %s", cert.NotAfter, ca.Certificate().NotAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate does not verify against the CA: %v", err)
	}
	checkMode(t, certFile, 0o644)
	checkMode(t, keyFile, 0o600)
	if !strings.Contains(out, "outbound.client_tls.cert_file") {
		t.Errorf("output does not name outbound.client_tls:\n%s", out)
	}

	_, err = runCommand(t, "", "certs", "issue-client", "--ca-cert", caCert, "--ca-key", caKey,
		"--server-name", "hs2.example", "--cert", certFile, "--key", keyFile)
	want := "file already exists: " + certFile + " (pass --force to replace it)"
	if err == nil || err.Error() != want {
		t.Errorf("second issue-client error = %v\nwant %q", err, want)
	}

	_, err = runCommand(t, "", "certs", "issue-client", "--ca-cert", caCert, "--ca-key", caKey,
		"--server-name", "hs3.example", "--cert", certFile, "--key", keyFile, "--force")
	if err != nil {
		t.Fatalf("issue-client --force: %v", err)
	}
	if got := readChain(t, certFile)[0]; !certs.MatchesServerName(got, "hs3.example") {
		t.Errorf("after --force the certificate names %q, want hs3.example", certs.PeerNames(got))
	}
}

func TestCertsIssueClientErrors(t *testing.T) {
	_, caCert, caKey := writeTestCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	missing := filepath.Join(dir, "missing.pem")

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"invalid server name", []string{"--ca-cert", caCert, "--ca-key", caKey, "--server-name", "hs_2.example"},
			`issue client certificate: invalid server name "hs_2.example": character '_' not allowed`},
		{"missing CA", []string{"--ca-cert", missing, "--ca-key", caKey, "--server-name", "hs2.example"},
			"load CA: read certificate file: open " + missing + ": no such file or directory"},
		{"zero validity", []string{"--ca-cert", caCert, "--ca-key", caKey, "--server-name", "hs2.example", "--validity", "0s"},
			"invalid --validity 0s: must be positive"},
		{"missing server name", []string{"--ca-cert", caCert, "--ca-key", caKey},
			`required flag(s) "server-name" not set`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"certs", "issue-client", "--cert", certFile, "--key", keyFile}, tt.args...)
			_, err := runCommand(t, "", args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("issue-client error = %v\nwant %q", err, tt.want)
			}
			checkNotCreated(t, certFile)
			checkNotCreated(t, keyFile)
		})
	}
}

// writeIntermediateCA writes an intermediate CA signed by a new root and
// returns the root and the intermediate's files.
func writeIntermediateCA(t *testing.T) (root *x509.Certificate, certFile, keyFile string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return key
	}
	create := func(template, parent *x509.Certificate, public *ecdsa.PublicKey, signer *ecdsa.PrivateKey) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, template, parent, public, signer)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	caTemplate := func(serial int64, name string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: name},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().Add(48 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
	}

	rootKey, intermediateKey := newKey(), newKey()
	rootTemplate := caTemplate(1, "State test root CA")
	root = create(rootTemplate, rootTemplate, &rootKey.PublicKey, rootKey)
	intermediate := create(caTemplate(2, "State test federation CA"), root, &intermediateKey.PublicKey, rootKey)

	keyDER, err := x509.MarshalPKCS8PrivateKey(intermediateKey)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = caPaths(t)
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: intermediate.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return root, certFile, keyFile
}

func TestCertsIssueClientIntermediateCA(t *testing.T) {
	root, caCert, caKey := writeIntermediateCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")

	out, err := runCommand(t, "", "certs", "issue-client", "--ca-cert", caCert, "--ca-key", caKey,
		"--server-name", "hs2.example", "--cert", certFile, "--key", keyFile)
	if err != nil {
		t.Fatalf("issue-client: %v\n%s", err, out)
	}
	chain := readChain(t, certFile)
	if len(chain) != 2 {
		t.Fatalf("certificate file holds %d certificates, want the leaf and the intermediate CA", len(chain))
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	intermediates := x509.NewCertPool()
	intermediates.AddCert(chain[1])
	_, err = chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		t.Errorf("client chain does not verify against the root alone: %v", err)
	}
}
