package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// handshakeResult is what the server side of a test handshake observed.
type handshakeResult struct {
	state tls.ConnectionState
	err   error
}

// serveOnce accepts one TLS connection on 127.0.0.1, completes the handshake
// and reports the result on the returned channel.
func serveOnce(t *testing.T, config *tls.Config) (addr string, result <-chan handshakeResult) {
	t.Helper()
	listener, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { listener.Close() })

	results := make(chan handshakeResult, 1)
	go func() {
		conn, err := listener.Accept()
		if err != nil {
			results <- handshakeResult{err: err}
			return
		}
		defer conn.Close()
		tlsConn := conn.(*tls.Conn)
		tlsConn.SetDeadline(time.Now().Add(5 * time.Second))
		err = tlsConn.HandshakeContext(context.Background())
		results <- handshakeResult{state: tlsConn.ConnectionState(), err: err}
	}()
	return listener.Addr().String(), results
}

// testPKI writes a CA, a server certificate for hs2.localhost and the CA
// bundle into a temporary directory.
type testPKI struct {
	ca                                *CA
	caFile, serverCert, serverKeyFile string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	pki := testPKI{
		ca:            newTestCA(t),
		caFile:        filepath.Join(dir, "ca.pem"),
		serverCert:    filepath.Join(dir, "server.pem"),
		serverKeyFile: filepath.Join(dir, "server-key.pem"),
	}
	if err := os.WriteFile(pki.caFile, pki.ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	writeServerPair(t, pki.ca, pki.serverCert, pki.serverKeyFile, "hs2.localhost", "127.0.0.1")
	return pki
}

func clientConfig(t *testing.T, ca *CA, clientCert *tls.Certificate) *tls.Config {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	config := &tls.Config{RootCAs: roots, ServerName: "hs2.localhost"}
	if clientCert != nil {
		config.Certificates = []tls.Certificate{*clientCert}
	}
	return config
}

func clientKeyPair(t *testing.T, ca *CA, serverName string) *tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueClient(serverName, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &pair
}

func TestServerTLSConfigHandshake(t *testing.T) {
	pki := newTestPKI(t)
	otherCA := newTestCA(t)

	tests := []struct {
		name        string
		clientCAs   bool
		clientCert  *tls.Certificate
		wantErr     bool
		wantPeer    bool
		wantMatches string
	}{
		{name: "no client CA, no client certificate"},
		{name: "client CA, no client certificate", clientCAs: true},
		{
			name:        "client CA, trusted client certificate",
			clientCAs:   true,
			clientCert:  clientKeyPair(t, pki.ca, "hs1.localhost:8481"),
			wantPeer:    true,
			wantMatches: "hs1.localhost:8481",
		},
		{
			name:       "client CA, client certificate from another CA",
			clientCAs:  true,
			clientCert: clientKeyPair(t, otherCA, "hs1.localhost:8481"),
			wantErr:    true,
		},
		{
			// Without a client CA the server does not request a certificate,
			// so the client sends none.
			name:       "no client CA, client certificate offered",
			clientCert: clientKeyPair(t, pki.ca, "hs1.localhost:8481"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientCAFile := ""
			if tt.clientCAs {
				clientCAFile = pki.caFile
			}
			config, err := ServerTLSConfig(pki.serverCert, pki.serverKeyFile, clientCAFile)
			if err != nil {
				t.Fatalf("ServerTLSConfig: %v", err)
			}
			addr, results := serveOnce(t, config)

			dialer := &tls.Dialer{Config: clientConfig(t, pki.ca, tt.clientCert)}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, clientErr := dialer.DialContext(ctx, "tcp", addr)
			if clientErr == nil {
				// In TLS 1.3 the client learns of a rejected certificate
				// only on its first read.
				conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				_, clientErr = conn.Read(make([]byte, 1))
				if ne, ok := clientErr.(net.Error); ok && ne.Timeout() {
					clientErr = nil
				}
				conn.Close()
			}
			result := <-results

			if tt.wantErr {
				if result.err == nil {
					t.Error("server handshake succeeded, want a failure")
				}
				if clientErr == nil {
					t.Error("client saw no error, want the server's alert")
				}
				return
			}
			if result.err != nil {
				t.Fatalf("server handshake: %v", result.err)
			}
			if clientErr != nil && !strings.Contains(clientErr.Error(), "EOF") {
				t.Errorf("client: %v", clientErr)
			}
			if result.state.Version < tls.VersionTLS12 {
				t.Errorf("TLS version = %x, want at least TLS 1.2", result.state.Version)
			}
			gotPeer := len(result.state.PeerCertificates) > 0
			if gotPeer != tt.wantPeer {
				t.Fatalf("server saw a client certificate = %v, want %v", gotPeer, tt.wantPeer)
			}
			if tt.wantMatches != "" && !MatchesServerName(result.state.PeerCertificates[0], tt.wantMatches) {
				t.Errorf("client certificate %v does not match %q", PeerNames(result.state.PeerCertificates[0]), tt.wantMatches)
			}
		})
	}
}

func TestServerTLSConfigSettings(t *testing.T) {
	pki := newTestPKI(t)

	withoutCA, err := ServerTLSConfig(pki.serverCert, pki.serverKeyFile, "")
	if err != nil {
		t.Fatal(err)
	}
	if withoutCA.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want %x", withoutCA.MinVersion, tls.VersionTLS12)
	}
	if withoutCA.ClientAuth != tls.NoClientCert {
		t.Errorf("ClientAuth without client CA = %v, want NoClientCert", withoutCA.ClientAuth)
	}
	if withoutCA.ClientCAs != nil {
		t.Error("ClientCAs is set without a client CA file")
	}
	if leaf := withoutCA.Certificates[0].Leaf; leaf == nil || leaf.DNSNames[0] != "hs2.localhost" {
		t.Errorf("certificate leaf = %v, want the hs2.localhost certificate", leaf)
	}

	withCA, err := ServerTLSConfig(pki.serverCert, pki.serverKeyFile, pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	if withCA.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("ClientAuth with client CA = %v, want VerifyClientCertIfGiven", withCA.ClientAuth)
	}
	if withCA.ClientCAs == nil {
		t.Error("ClientCAs is nil with a client CA file")
	}
}

func TestServerTLSConfigErrors(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("-----BEGIN NOTHING\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherCert := filepath.Join(dir, "other.pem")
	otherKey := filepath.Join(dir, "other-key.pem")
	writeServerPair(t, pki.ca, otherCert, otherKey, "hs1.localhost")
	// A key file that holds only a certificate has PEM blocks but no key.
	certOnlyKey := filepath.Join(dir, "cert-as-key.pem")
	if err := os.WriteFile(certOnlyKey, pki.ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}

	const noKeyBlock = ": no PEM private key block found (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)"
	tests := []struct {
		name         string
		certFile     string
		keyFile      string
		clientCAFile string
		wantErr      string
		wantNotExist bool
	}{
		{
			name: "no certificate file", keyFile: pki.serverKeyFile,
			wantErr: "server TLS: certificate file and key file are both required",
		},
		{
			name: "missing certificate file", certFile: missing, keyFile: pki.serverKeyFile,
			wantErr:      "server TLS: read certificate file: open " + missing + ": no such file or directory",
			wantNotExist: true,
		},
		{
			name: "missing key file", certFile: pki.serverCert, keyFile: missing,
			wantErr:      "server TLS: read key file: open " + missing + ": no such file or directory",
			wantNotExist: true,
		},
		{
			name: "certificate file without PEM block", certFile: garbage, keyFile: pki.serverKeyFile,
			wantErr: "server TLS: certificate file " + garbage + ": no PEM CERTIFICATE block found",
		},
		{
			name: "key file without PEM block", certFile: pki.serverCert, keyFile: garbage,
			wantErr: "server TLS: key file " + garbage + noKeyBlock,
		},
		{
			name: "key file with a certificate only", certFile: pki.serverCert, keyFile: certOnlyKey,
			wantErr: "server TLS: key file " + certOnlyKey + noKeyBlock,
		},
		{
			name: "key does not match certificate", certFile: pki.serverCert, keyFile: otherKey,
			wantErr: "server TLS: key file " + otherKey + " does not match the first certificate in " + pki.serverCert,
		},
		{
			name: "missing client CA file", certFile: pki.serverCert, keyFile: pki.serverKeyFile, clientCAFile: missing,
			wantErr:      "server TLS: client CA: read certificate file: open " + missing + ": no such file or directory",
			wantNotExist: true,
		},
		{
			name: "client CA file without PEM block", certFile: pki.serverCert, keyFile: pki.serverKeyFile, clientCAFile: garbage,
			wantErr: "server TLS: client CA: certificate file " + garbage + ": no PEM CERTIFICATE block found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config, err := ServerTLSConfig(tt.certFile, tt.keyFile, tt.clientCAFile)
			if config != nil {
				t.Error("config is not nil on error")
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("ServerTLSConfig() error = %v\nwant %q", err, tt.wantErr)
			}
			if tt.wantNotExist {
				checkNotExist(t, err)
			}
		})
	}
}

func TestLoadCertPool(t *testing.T) {
	pki := newTestPKI(t)
	otherCA := newTestCA(t)
	bundle := filepath.Join(t.TempDir(), "bundle.pem")
	data := append(pki.ca.CertPEM(), otherCA.CertPEM()...)
	if err := os.WriteFile(bundle, data, 0o644); err != nil {
		t.Fatal(err)
	}

	pool, err := LoadCertPool(bundle)
	if err != nil {
		t.Fatalf("LoadCertPool: %v", err)
	}
	for name, ca := range map[string]*CA{"first": pki.ca, "second": otherCA} {
		_, err := parsePEMCert(t, mustIssue(t, ca)).Verify(x509.VerifyOptions{Roots: pool, DNSName: "hs1.localhost"})
		if err != nil {
			t.Errorf("certificate from the %s CA of the bundle does not verify: %v", name, err)
		}
	}
	if _, err := parsePEMCert(t, mustIssue(t, newTestCA(t))).Verify(x509.VerifyOptions{Roots: pool}); err == nil {
		t.Error("certificate from a CA outside the bundle verifies")
	}

	missing := filepath.Join(t.TempDir(), "missing.pem")
	_, err = LoadCertPool(missing)
	want := "read certificate file: open " + missing + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("LoadCertPool(missing) error = %v, want %q", err, want)
	}
	checkNotExist(t, err)
}

func mustIssue(t *testing.T, ca *CA) []byte {
	t.Helper()
	certPEM, _, err := ca.IssueServer([]string{"hs1.localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM
}
