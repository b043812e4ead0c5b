package bench_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway"
)

// homeserverStub is the local homeserver's stand-in: it reads each
// request body and answers 200 with an empty /send response.
type homeserverStub struct{ requests atomic.Int64 }

func (h *homeserverStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h.requests.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"pdus":{}}`)
}

// sendFixture is a running gateway and a plain reverse proxy, both with
// TLS on loopback, forwarding to the same homeserver stand-in.
type sendFixture struct {
	hs         *homeserverStub
	gatewayURL string
	// noSyncURL is a second gateway, configured alike but with
	// decision_log.sync "none", to show the share of fsync in latency.
	noSyncURL   string
	proxyURL    string
	gatewayHTTP *http.Client
	proxyHTTP   *http.Client
	close       func()
}

var (
	fixtureOnce sync.Once
	fixture     *sendFixture
	fixtureErr  error
)

// sharedFixture starts the fixture on first use. TestMain stops it.
func sharedFixture(tb testing.TB) *sendFixture {
	tb.Helper()
	fixtureOnce.Do(func() { fixture, fixtureErr = startFixture() })
	if fixtureErr != nil {
		tb.Fatalf("start gateway fixture: %v", fixtureErr)
	}
	return fixture
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture != nil {
		fixture.close()
	}
	os.Exit(code)
}

func startFixture() (*sendFixture, error) {
	dir, err := os.MkdirTemp("", "bordergate-bench-")
	if err != nil {
		return nil, err
	}
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		_ = os.RemoveAll(dir)
	}
	fx, err := startServers(dir, &closers)
	if err != nil {
		closeAll()
		return nil, err
	}
	fx.close = closeAll
	return fx, nil
}

func startServers(dir string, closers *[]func()) (*sendFixture, error) {
	ca, err := certs.NewCA("bordergate benchmark CA", 24*time.Hour)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"hs2.bench", "127.0.0.1"}, 24*time.Hour)
	if err != nil {
		return nil, err
	}
	hs := &homeserverStub{}
	hsServer := httptest.NewServer(hs)
	*closers = append(*closers, hsServer.Close)

	var gatewayURLs []string
	for _, sync := range []string{"always", "none"} {
		gatewayDir := filepath.Join(dir, sync)
		if err := os.Mkdir(gatewayDir, 0o700); err != nil {
			return nil, err
		}
		if err := writeGatewayFiles(gatewayDir, certPEM, keyPEM, hsServer.URL, sync); err != nil {
			return nil, err
		}
		url, err := startGateway(gatewayDir, closers)
		if err != nil {
			return nil, err
		}
		gatewayURLs = append(gatewayURLs, url)
	}
	proxyURL, err := startPlainProxy(certPEM, keyPEM, hsServer.URL, closers)
	if err != nil {
		return nil, err
	}

	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	return &sendFixture{
		hs:          hs,
		gatewayURL:  gatewayURLs[0],
		noSyncURL:   gatewayURLs[1],
		proxyURL:    proxyURL,
		gatewayHTTP: newClient(pool),
		proxyHTTP:   newClient(pool),
	}, nil
}

// newClient returns an HTTP/1.1 client with keep-alive connections, as
// federation senders use. Both targets are measured with the same kind of
// client, so HTTP/2 on one side cannot skew the comparison.
func newClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, ServerName: "hs2.bench"},
		MaxIdleConnsPerHost: 4,
	}}
}

// writeGatewayFiles writes the gateway's certificate, allow-list, rooms
// seed file and configuration into dir, with decision_log.sync set to sync.
func writeGatewayFiles(dir string, certPEM, keyPEM []byte, homeserverURL, sync string) error {
	rego, err := filepath.Abs("../../rego")
	if err != nil {
		return err
	}
	files := map[string]string{
		"cert.pem": string(certPEM),
		"key.pem":  string(keyPEM),
		"allowlist.yaml": fmt.Sprintf("servers:\n  - server_name: %q\n    administration: Benchmark\n"+
			"    pinned_keys: {%q: %q}\n    endpoints: [\"*\"]\n",
			remoteName, remoteKeyID, base64.RawStdEncoding.EncodeToString(remotePublic())),
		"rooms.yaml": fmt.Sprintf("- room_id: %q\n  room_version: %q\n", benchRoomID, roomVersion),
		"bordergate.yaml": fmt.Sprintf(`server_names: [%q]
inbound:
  listen: 127.0.0.1:1
  tls: {cert_file: cert.pem, key_file: key.pem}
homeserver: {url: %q, timeout: 30s}
state_dir: state
allowlist: {file: allowlist.yaml}
rooms: {seed_file: rooms.yaml}
policy: {paths: [%q]}
decision_log: {file: decisions.jsonl, sync: %s}
log: {level: error}
`, localName, homeserverURL, rego, sync),
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// startGateway builds the gateway from the configuration in dir and serves
// it on a loopback port. It returns the gateway's base URL.
func startGateway(dir string, closers *[]func()) (string, error) {
	cfg, err := gateway.LoadConfig(filepath.Join(dir, "bordergate.yaml"))
	if err != nil {
		return "", fmt.Errorf("load gateway configuration: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	gw, err := gateway.New(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		return "", fmt.Errorf("build gateway: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		_ = gw.Close()
		return "", err
	}
	done := make(chan error, 1)
	go func() { done <- gw.ServeListener(ctx, ln) }()
	*closers = append(*closers, func() {
		cancel()
		<-done
		_ = gw.Close()
	})
	return "https://" + ln.Addr().String(), nil
}

// startPlainProxy serves an httputil.ReverseProxy to homeserverURL with
// TLS on a loopback port, the baseline of the /send benchmark. It returns
// the proxy's base URL.
func startPlainProxy(certPEM, keyPEM []byte, homeserverURL string, closers *[]func()) (string, error) {
	target, err := url.Parse(homeserverURL)
	if err != nil {
		return "", err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return "", err
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	server := &http.Server{
		Handler:           proxy,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{pair}},
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan error, 1)
	go func() { done <- server.ServeTLS(ln, "", "") }()
	*closers = append(*closers, func() {
		_ = server.Close()
		<-done
	})
	return "https://" + ln.Addr().String(), nil
}
