package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// tlsServer accepts TLS connections on 127.0.0.1 until the test ends. For
// each one it completes the handshake, writes one byte, so that a TLS 1.3
// client reads the session ticket, and reports what it saw.
type tlsServer struct {
	addr    string
	results chan handshakeResult
}

func startTLSServer(t *testing.T, config *tls.Config) *tlsServer {
	t.Helper()
	listener, err := tls.Listen("tcp", "127.0.0.1:0", config)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { listener.Close() })
	server := &tlsServer{addr: listener.Addr().String(), results: make(chan handshakeResult, 16)}
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go server.handle(conn.(*tls.Conn))
		}
	}()
	return server
}

func (s *tlsServer) handle(conn *tls.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	err := conn.HandshakeContext(context.Background())
	if err == nil {
		_, err = conn.Write([]byte{1})
	}
	s.results <- handshakeResult{state: conn.ConnectionState(), err: err}
}

// connect completes a handshake as a client, reads the server's byte and
// returns both sides' views. In TLS 1.3 the server checks the client
// certificate after the client's handshake returns, so a rejection shows
// in the read and on the server side.
func (s *tlsServer) connect(t *testing.T, config *tls.Config) (client tls.ConnectionState, clientErr error, server handshakeResult) {
	t.Helper()
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: config}
	conn, err := dialer.Dial("tcp", s.addr)
	if err == nil {
		tlsConn := conn.(*tls.Conn)
		tlsConn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = io.ReadFull(tlsConn, make([]byte, 1))
		client = tlsConn.ConnectionState()
		tlsConn.Close()
	}
	select {
	case server = <-s.results:
	case <-time.After(5 * time.Second):
		t.Fatal("server reported no handshake within 5s")
	}
	return client, err, server
}

// reloadPKI is a listener's files on disk and two CAs to switch between.
type reloadPKI struct {
	caA, caB     *CA
	server       pairFiles
	clientCAFile string
	roots        *x509.CertPool // trusts server certificates from both CAs
}

func newReloadPKI(t *testing.T) reloadPKI {
	t.Helper()
	pki := reloadPKI{
		caA:          newTestCA(t),
		caB:          newTestCA(t),
		server:       newPairFiles(t),
		clientCAFile: filepath.Join(t.TempDir(), "client-ca.pem"),
		roots:        x509.NewCertPool(),
	}
	pki.roots.AddCert(pki.caA.Certificate())
	pki.roots.AddCert(pki.caB.Certificate())
	certPEM, keyPEM, _ := issuePair(t, pki.caA)
	writePair(t, pki.server, certPEM, keyPEM)
	replaceFile(t, pki.clientCAFile, pki.caA.CertPEM())
	return pki
}

func (pki reloadPKI) clientConfig(t *testing.T, clientCA *CA) *tls.Config {
	config := &tls.Config{RootCAs: pki.roots, ServerName: "hs2.localhost"}
	if clientCA != nil {
		config.Certificates = []tls.Certificate{*clientKeyPair(t, clientCA, "hs1.localhost")}
	}
	return config
}

func newReloadingServer(t *testing.T, pki reloadPKI) (*tlsServer, *Reloader) {
	t.Helper()
	config, reloader, err := ServerTLSConfigReloading(
		pki.server.certFile, pki.server.keyFile, pki.clientCAFile, ServerTLSOptions{})
	if err != nil {
		t.Fatalf("ServerTLSConfigReloading: %v", err)
	}
	return startTLSServer(t, config), reloader
}

func TestServerTLSConfigReloadingHandshake(t *testing.T) {
	pki := newReloadPKI(t)
	server, reloader := newReloadingServer(t, pki)
	serialA := reloader.KeyPair().Certificate().Leaf.SerialNumber

	checkServerSerial := func(t *testing.T, state tls.ConnectionState, want *big.Int) {
		t.Helper()
		if len(state.PeerCertificates) == 0 {
			t.Fatal("server sent no certificate")
		}
		if got := state.PeerCertificates[0].SerialNumber; got.Cmp(want) != 0 {
			t.Errorf("server certificate serial = %s, want %s", got, want)
		}
	}
	checkClientVerified := func(t *testing.T, result handshakeResult, want bool) {
		t.Helper()
		if want && result.err != nil {
			t.Fatalf("server handshake: %v", result.err)
		}
		if !want && result.err == nil {
			t.Fatal("server accepted a client certificate from a CA that is no longer trusted")
		}
		if got := len(result.state.VerifiedChains) > 0; want && !got {
			t.Error("server did not verify the client certificate")
		}
	}

	client, err, result := server.connect(t, pki.clientConfig(t, pki.caA))
	if err != nil {
		t.Fatalf("first handshake: %v", err)
	}
	checkServerSerial(t, client, serialA)
	checkClientVerified(t, result, true)

	// New server certificate from CA B, client CA bundle switched to B.
	certB, keyB, serialB := issuePair(t, pki.caB)
	writePair(t, pki.server, certB, keyB)
	replaceFile(t, pki.clientCAFile, pki.caB.CertPEM())
	if err := reloader.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}

	client, err, result = server.connect(t, pki.clientConfig(t, pki.caB))
	if err != nil {
		t.Fatalf("handshake after reload: %v", err)
	}
	checkServerSerial(t, client, serialB)
	checkClientVerified(t, result, true)

	_, err, result = server.connect(t, pki.clientConfig(t, pki.caA))
	if err == nil {
		t.Error("client with a certificate from the removed CA completed the exchange")
	}
	checkClientVerified(t, result, false)

	// Broken files keep what was loaded.
	replaceFile(t, pki.server.certFile, []byte("garbage\n"))
	replaceFile(t, pki.clientCAFile, []byte("garbage\n"))
	err = reloader.Reload()
	want := "reload key pair: certificate file " + pki.server.certFile +
		": no PEM CERTIFICATE block found (the previously loaded key pair stays in use)\n" +
		"reload CA bundle: certificate file " + pki.clientCAFile +
		": no PEM CERTIFICATE block found (the previously loaded CA bundle stays in use)"
	if err == nil || err.Error() != want {
		t.Errorf("Reload() of broken files error = %v\nwant %q", err, want)
	}
	client, err, result = server.connect(t, pki.clientConfig(t, pki.caB))
	if err != nil {
		t.Fatalf("handshake after a failed reload: %v", err)
	}
	checkServerSerial(t, client, serialB)
	checkClientVerified(t, result, true)
}

func TestServerTLSConfigReloadingOnAccess(t *testing.T) {
	pki := newReloadPKI(t)
	clock := newTestClock()
	config, _, err := ServerTLSConfigReloading(pki.server.certFile, pki.server.keyFile, pki.clientCAFile,
		ServerTLSOptions{ReloadOptions: ReloadOptions{Now: clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	server := startTLSServer(t, config)

	replaceFile(t, pki.clientCAFile, pki.caB.CertPEM())
	if _, _, result := server.connect(t, pki.clientConfig(t, pki.caB)); result.err == nil {
		t.Error("client CA B trusted before the reload interval passed")
	}
	clock.Advance(DefaultReloadInterval)
	if _, _, result := server.connect(t, pki.clientConfig(t, pki.caB)); result.err != nil {
		t.Errorf("client CA B not trusted after the reload interval: %v", result.err)
	}
}

func TestServerTLSConfigReloadingResumption(t *testing.T) {
	tests := []struct {
		name       string
		switchCA   bool
		wantResume bool
	}{
		{"same CA bundle resumes", false, true},
		{"removed CA does not resume", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pki := newReloadPKI(t)
			server, reloader := newReloadingServer(t, pki)
			client := pki.clientConfig(t, pki.caA)
			client.ClientSessionCache = tls.NewLRUClientSessionCache(4)

			if _, err, result := server.connect(t, client); err != nil || result.err != nil {
				t.Fatalf("first handshake: client %v, server %v", err, result.err)
			}
			if tt.switchCA {
				replaceFile(t, pki.clientCAFile, pki.caB.CertPEM())
				if err := reloader.Reload(); err != nil {
					t.Fatal(err)
				}
			}

			_, _, result := server.connect(t, client)
			if tt.wantResume {
				if result.err != nil {
					t.Fatalf("second handshake: %v", result.err)
				}
				if !result.state.DidResume {
					t.Error("second handshake did not resume the session")
				}
				return
			}
			if result.err == nil {
				t.Errorf("second handshake succeeded (DidResume = %v), want the client certificate rejected",
					result.state.DidResume)
			}
		})
	}
}

func TestServerTLSConfigReloadingHTTP2(t *testing.T) {
	pki := newReloadPKI(t)
	config, reloader, err := ServerTLSConfigReloading(
		pki.server.certFile, pki.server.keyFile, pki.clientCAFile, ServerTLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig:         config,
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if len(r.TLS.VerifiedChains) == 0 {
				http.Error(w, "client certificate not verified", http.StatusForbidden)
			}
		}),
	}
	go srv.ServeTLS(listener, "", "")
	t.Cleanup(func() { srv.Close() })
	url := "https://" + listener.Addr().String() + "/"

	get := func(t *testing.T, clientCA *CA) {
		t.Helper()
		client := &http.Client{
			Timeout: 5 * time.Second,
			Transport: &http.Transport{
				TLSClientConfig:   pki.clientConfig(t, clientCA),
				ForceAttemptHTTP2: true,
			},
		}
		defer client.CloseIdleConnections()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status = %d, want 200", resp.StatusCode)
		}
		if resp.ProtoMajor != 2 {
			t.Errorf("protocol = %s, want HTTP/2.0", resp.Proto)
		}
	}
	get(t, pki.caA)

	replaceFile(t, pki.clientCAFile, pki.caB.CertPEM())
	if err := reloader.Reload(); err != nil {
		t.Fatal(err)
	}
	get(t, pki.caB)
}

func TestServerTLSConfigReloadingSettings(t *testing.T) {
	pki := newReloadPKI(t)

	config, reloader, err := ServerTLSConfigReloading(pki.server.certFile, pki.server.keyFile, "", ServerTLSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if config.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", config.MinVersion)
	}
	if config.ClientAuth != tls.NoClientCert || config.GetConfigForClient != nil {
		t.Errorf("without a client CA: ClientAuth = %v, GetConfigForClient set = %v, want NoClientCert, false",
			config.ClientAuth, config.GetConfigForClient != nil)
	}
	if reloader.ClientCAs() != nil {
		t.Error("ClientCAs() is not nil without a client CA file")
	}
	if !slices.Equal(config.NextProtos, []string{"h2", "http/1.1"}) {
		t.Errorf("NextProtos = %q, want [h2 http/1.1]", config.NextProtos)
	}
	cert, err := config.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || cert != reloader.KeyPair().Certificate() {
		t.Errorf("GetCertificate = %p, %v, want the reloader's pair", cert, err)
	}

	config, reloader, err = ServerTLSConfigReloading(pki.server.certFile, pki.server.keyFile, pki.clientCAFile,
		ServerTLSOptions{NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(config.NextProtos, []string{"http/1.1"}) {
		t.Errorf("NextProtos = %q, want [http/1.1]", config.NextProtos)
	}
	if config.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("ClientAuth = %v, want VerifyClientCertIfGiven", config.ClientAuth)
	}
	derived, err := config.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if derived.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("derived ClientAuth = %v, want VerifyClientCertIfGiven", derived.ClientAuth)
	}
	if derived.ClientCAs != reloader.ClientCAs().Pool() {
		t.Error("derived ClientCAs is not the current pool")
	}
	if derived.GetConfigForClient != nil {
		t.Error("derived configuration has GetConfigForClient set")
	}
	if !slices.Equal(derived.NextProtos, []string{"http/1.1"}) {
		t.Errorf("derived NextProtos = %q, want [http/1.1]", derived.NextProtos)
	}
	again, _ := config.GetConfigForClient(&tls.ClientHelloInfo{})
	if again != derived {
		t.Error("GetConfigForClient built a new configuration although the pool did not change")
	}

	replaceFile(t, pki.clientCAFile, pki.caB.CertPEM())
	if err := reloader.Reload(); err != nil {
		t.Fatal(err)
	}
	after, _ := config.GetConfigForClient(&tls.ClientHelloInfo{})
	if after == derived || after.ClientCAs != reloader.ClientCAs().Pool() {
		t.Error("GetConfigForClient did not switch to the reloaded pool")
	}
}

func TestServerTLSConfigReloadingErrors(t *testing.T) {
	pki := newReloadPKI(t)
	missing := filepath.Join(t.TempDir(), "missing.pem")
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name                            string
		certFile, keyFile, clientCAFile string
		want                            string
	}{
		{"no certificate file", "", pki.server.keyFile, "",
			"server TLS: certificate file and key file are both required"},
		{"no key file", pki.server.certFile, "", "",
			"server TLS: certificate file and key file are both required"},
		{"missing certificate", missing, pki.server.keyFile, "",
			"server TLS: read certificate file: open " + missing + ": no such file or directory"},
		{"missing client CA", pki.server.certFile, pki.server.keyFile, missing,
			"server TLS: client CA: read certificate file: open " + missing + ": no such file or directory"},
		{"client CA without PEM", pki.server.certFile, pki.server.keyFile, garbage,
			"server TLS: client CA: certificate file " + garbage + ": no PEM CERTIFICATE block found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ServerTLSConfigReloading(tt.certFile, tt.keyFile, tt.clientCAFile, ServerTLSOptions{})
			if err == nil || err.Error() != tt.want {
				t.Errorf("ServerTLSConfigReloading() error = %v\nwant %q", err, tt.want)
			}
		})
	}
}
