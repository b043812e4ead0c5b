package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"github.com/bordergate/bordergate/gateway/internal/testdns"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/keys"
)

// testPKI is a test CA with helpers to issue TLS certificates from it.
type testPKI struct {
	ca   *certs.CA
	pool *x509.CertPool
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca, err := certs.NewCA("bordergate egress test CA", time.Hour)
	if err != nil {
		t.Fatalf("create CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	return &testPKI{ca: ca, pool: pool}
}

func (p *testPKI) server(t testing.TB, names ...string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := p.ca.IssueServer(names, time.Hour)
	if err != nil {
		t.Fatalf("issue server certificate: %v", err)
	}
	return keyPair(t, certPEM, keyPEM)
}

func (p *testPKI) client(t testing.TB, serverName string) tls.Certificate {
	t.Helper()
	certPEM, keyPEM, err := p.ca.IssueClient(serverName, time.Hour)
	if err != nil {
		t.Fatalf("issue client certificate: %v", err)
	}
	return keyPair(t, certPEM, keyPEM)
}

func keyPair(t testing.TB, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("load key pair: %v", err)
	}
	return cert
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// seen is what a test server records of one request.
type seen struct {
	requestURI string
	host       string
	sni        string
	proto      int
	clientCN   string
	body       string
	header     http.Header
}

// peer is a remote Matrix server on 127.0.0.1 for tests. It records every
// request and counts accepted connections.
type peer struct {
	srv  *httptest.Server
	port int

	mu       sync.Mutex // guards requests and conns
	requests []seen
	conns    int
}

type peerOptions struct {
	names      []string // certificate names; "hs.test" when empty
	cert       *tls.Certificate
	http2      bool
	clientAuth tls.ClientAuthType
	clientCAs  *x509.CertPool
	maxVersion uint16
	handler    http.HandlerFunc // replaces the default 200 {} response
}

func startPeer(t testing.TB, pki *testPKI, opts peerOptions) *peer {
	t.Helper()
	if len(opts.names) == 0 {
		opts.names = []string{"hs.test"}
	}
	cert := opts.cert
	if cert == nil {
		c := pki.server(t, opts.names...)
		cert = &c
	}

	p := &peer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.record(r)
		if opts.handler != nil {
			opts.handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	srv.EnableHTTP2 = opts.http2
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{*cert},
		ClientAuth:   opts.clientAuth,
		ClientCAs:    opts.clientCAs,
		MaxVersion:   opts.maxVersion,
	}
	srv.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
		}
	}
	// Failed handshakes are expected in tests of certificate checks.
	srv.Config.ErrorLog = discardLog()
	srv.StartTLS()
	t.Cleanup(srv.Close)

	p.srv = srv
	p.port = srv.Listener.Addr().(*net.TCPAddr).Port
	return p
}

func (p *peer) record(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := seen{
		requestURI: r.RequestURI,
		host:       r.Host,
		proto:      r.ProtoMajor,
		body:       string(body),
		header:     r.Header.Clone(),
	}
	if r.TLS != nil {
		s.sni = r.TLS.ServerName
		if len(r.TLS.PeerCertificates) > 0 {
			s.clientCN = r.TLS.PeerCertificates[0].Subject.CommonName
		}
	}
	p.mu.Lock()
	p.requests = append(p.requests, s)
	p.mu.Unlock()
}

func (p *peer) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// withPort returns host:port with the peer's port.
func (p *peer) withPort(host string) string { return host + ":" + strconv.Itoa(p.port) }

func (p *peer) connCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

func (p *peer) last(t testing.TB) seen {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) == 0 {
		t.Fatal("peer received no request")
	}
	return p.requests[len(p.requests)-1]
}

func (p *peer) requestCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

// fixture is a test CA and DNS server with a client factory.
type fixture struct {
	pki *testPKI
	dns *testdns.Server
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return &fixture{pki: newTestPKI(t), dns: testdns.Start(t)}
}

// client returns a Client that resolves with f's DNS server, trusts f's
// CA and accepts loopback addresses unless edit changes the config.
func (f *fixture) client(t testing.TB, edit func(*Config)) *Client {
	t.Helper()
	resolver := f.dns.Resolver()
	dialer := &keys.Dialer{AllowPrivate: true, Resolver: resolver}
	cfg := Config{
		Dialer:  dialer,
		RootCAs: f.pki.pool,
		Timeout: 5 * time.Second,
	}
	if edit != nil {
		edit(&cfg)
	}
	if cfg.Discovery == nil {
		cfg.Discovery = keys.NewDiscovery(keys.DiscoveryConfig{
			Resolver: resolver,
			Dialer:   cfg.Dialer,
			RootCAs:  f.pki.pool,
			Timeout:  2 * time.Second,
		})
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// pinnedTo returns a Pinned function with one entry.
func pinnedTo(serverName, address string, requireMTLS bool) func(string) (string, bool, bool) {
	return func(name string) (string, bool, bool) {
		if name != serverName {
			return "", false, false
		}
		return address, requireMTLS, true
	}
}

// get sends GET target to serverName and returns the response with its
// body read and closed.
func get(t testing.TB, c *Client, serverName, target string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "https://placeholder.invalid"+target, nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	return send(t, c, serverName, req)
}

func send(t testing.TB, c *Client, serverName string, req *http.Request) (*http.Response, string, error) {
	t.Helper()
	resp, err := c.Do(context.Background(), serverName, req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return resp, string(body), nil
}

// listenLoopback443 listens on port 443 of a random address in 127.0.0.0/8
// other than 127.0.0.1, as .well-known lookups always use port 443. It
// skips the test when the process may not bind privileged ports.
func listenLoopback443(t testing.TB) net.Listener {
	t.Helper()
	for range 20 {
		ip := net.IPv4(127, byte(1+rand.IntN(250)), byte(rand.IntN(256)), byte(1+rand.IntN(250)))
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "443"))
		if err == nil {
			return ln
		}
		if errors.Is(err, syscall.EACCES) {
			t.Skipf("cannot listen on port 443 for .well-known lookups: %v", err)
		}
	}
	t.Fatal("no free loopback address for port 443 after 20 tries")
	return nil
}
