package egress

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/keys"
)

func TestDoPinnedAddress(t *testing.T) {
	f := newFixture(t)
	dnsPeer := startPeer(t, f.pki, peerOptions{names: []string{"pinned.test"}})
	ipPeer := startPeer(t, f.pki, peerOptions{names: []string{"127.0.0.1"}})

	tests := []struct {
		name       string
		serverName string
		peer       *peer
		wantHost   string
		wantSNI    string
	}{
		{"dns name", "pinned.test", dnsPeer, "pinned.test", "pinned.test"},
		{"dns name with port", "pinned.test:8448", dnsPeer, "pinned.test:8448", "pinned.test"},
		{"ip literal", "127.0.0.1:8448", ipPeer, "127.0.0.1:8448", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No DNS records exist, so only the pinned address can work.
			c := f.client(t, func(cfg *Config) {
				cfg.Pinned = pinnedTo(tt.serverName, tt.peer.addr(), false)
			})
			resp, body, err := get(t, c, tt.serverName, "/_matrix/federation/v1/version")
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			if body != "{}" {
				t.Errorf("body = %q, want {}", body)
			}
			got := tt.peer.last(t)
			if got.host != tt.wantHost {
				t.Errorf("Host = %q, want %q", got.host, tt.wantHost)
			}
			if got.sni != tt.wantSNI {
				t.Errorf("SNI = %q, want %q", got.sni, tt.wantSNI)
			}
		})
	}
}

func TestDoPinnedCertificateForServerName(t *testing.T) {
	// The certificate of a pinned server must be valid for the server
	// name's host, not for the host of the pinned address.
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{names: []string{"localhost", "127.0.0.1"}})
	c := f.client(t, func(cfg *Config) {
		cfg.Pinned = pinnedTo("pinned.test", "localhost:"+fmt.Sprint(p.port), false)
	})
	_, _, err := get(t, c, "pinned.test", "/")
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("Do error = %v, want ErrTLS", err)
	}
	if _, ok := errors.AsType[x509.HostnameError](err); !ok {
		t.Errorf("Do error = %v, want an x509.HostnameError", err)
	}
}

func TestDoDiscovery(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{names: []string{"hs.test", "srv.test", "legacy.test", "127.0.0.1"}})
	f.dns.Add(t, "hs.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, "target.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, fmt.Sprintf("_matrix-fed._tcp.srv.test. 60 IN SRV 10 5 %d target.test.", p.port))
	f.dns.Add(t, fmt.Sprintf("_matrix._tcp.legacy.test. 60 IN SRV 10 5 %d target.test.", p.port))

	tests := []struct {
		name       string
		serverName string
		wantHost   string
		wantSNI    string
	}{
		{"explicit port", p.withPort("hs.test"), p.withPort("hs.test"), "hs.test"},
		{"srv matrix-fed", "srv.test", "srv.test", "srv.test"},
		{"srv matrix deprecated", "legacy.test", "legacy.test", "legacy.test"},
		{"ip literal", p.withPort("127.0.0.1"), p.withPort("127.0.0.1"), ""},
	}
	c := f.client(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _, err := get(t, c, tt.serverName, "/_matrix/federation/v1/version")
			if err != nil {
				t.Fatalf("Do: %v", err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status = %d, want 200", resp.StatusCode)
			}
			got := p.last(t)
			if got.host != tt.wantHost {
				t.Errorf("Host = %q, want %q", got.host, tt.wantHost)
			}
			if got.sni != tt.wantSNI {
				t.Errorf("SNI = %q, want %q", got.sni, tt.wantSNI)
			}
		})
	}
}

func TestDoSRVCertificateForServerName(t *testing.T) {
	// With SRV delegation the certificate must name the server name, so a
	// certificate valid only for the SRV target is rejected.
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{names: []string{"target.test"}})
	f.dns.Add(t, "target.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, fmt.Sprintf("_matrix-fed._tcp.srv.test. 60 IN SRV 10 5 %d target.test.", p.port))

	_, _, err := get(t, f.client(t, nil), "srv.test", "/")
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("Do error = %v, want ErrTLS", err)
	}
	if _, ok := errors.AsType[x509.HostnameError](err); !ok {
		t.Errorf("Do error = %v, want an x509.HostnameError", err)
	}
}

// startWellKnown serves .well-known/matrix/server documents by host name
// over HTTPS on port 443 of a loopback address, and returns that address.
func startWellKnown(t *testing.T, pki *testPKI, documents map[string]string) string {
	t.Helper()
	names := make([]string, 0, len(documents))
	for name := range documents {
		names = append(names, name)
	}
	ln := listenLoopback443(t)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			doc, ok := documents[r.Host]
			if !ok || r.URL.Path != "/.well-known/matrix/server" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, doc)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.server(t, names...)}},
		ErrorLog:  discardLog(),
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).IP.String()
}

func TestDoWellKnownDelegation(t *testing.T) {
	f := newFixture(t)
	// The delegated certificate names only the delegated host: with
	// .well-known delegation the certificate must match it, not the
	// original server name.
	p := startPeer(t, f.pki, peerOptions{names: []string{"delegated.test", "delegated-srv.test"}})
	wrongCert := startPeer(t, f.pki, peerOptions{names: []string{"wk-wrong.test"}})

	wellKnownIP := startWellKnown(t, f.pki, map[string]string{
		"wk-port.test":  fmt.Sprintf(`{"m.server":"delegated.test:%d"}`, p.port),
		"wk-srv.test":   `{"m.server":"delegated-srv.test"}`,
		"wk-wrong.test": fmt.Sprintf(`{"m.server":"delegated-wrong.test:%d"}`, wrongCert.port),
	})
	for _, name := range []string{"wk-port.test", "wk-srv.test", "wk-wrong.test"} {
		f.dns.Add(t, name+". 60 IN A "+wellKnownIP)
	}
	f.dns.Add(t, "delegated.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, "delegated-wrong.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, "srv-target.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, fmt.Sprintf("_matrix-fed._tcp.delegated-srv.test. 60 IN SRV 10 5 %d srv-target.test.", p.port))

	c := f.client(t, nil)
	tests := []struct {
		name       string
		serverName string
		wantHost   string
		wantSNI    string
	}{
		{"delegated host and port", "wk-port.test", p.withPort("delegated.test"), "delegated.test"},
		{"delegated host with srv", "wk-srv.test", "delegated-srv.test", "delegated-srv.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := get(t, c, tt.serverName, "/_matrix/federation/v1/version"); err != nil {
				t.Fatalf("Do: %v", err)
			}
			got := p.last(t)
			if got.host != tt.wantHost {
				t.Errorf("Host = %q, want %q", got.host, tt.wantHost)
			}
			if got.sni != tt.wantSNI {
				t.Errorf("SNI = %q, want %q", got.sni, tt.wantSNI)
			}
		})
	}

	t.Run("certificate for original name", func(t *testing.T) {
		_, _, err := get(t, c, "wk-wrong.test", "/")
		if !errors.Is(err, ErrTLS) {
			t.Fatalf("Do error = %v, want ErrTLS", err)
		}
		if wrongCert.requestCount() != 0 {
			t.Errorf("peer received %d requests, want 0", wrongCert.requestCount())
		}
	})
}

func TestDoCertificateRejected(t *testing.T) {
	f := newFixture(t)
	other := newTestPKI(t)
	mismatch := startPeer(t, f.pki, peerOptions{names: []string{"hs.test"}})
	otherCA := startPeer(t, other, peerOptions{names: []string{"other-ca.test"}})
	f.dns.Add(t, "other.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, "other-ca.test. 60 IN A 127.0.0.1")

	tests := []struct {
		name       string
		serverName string
		peer       *peer
		check      func(error) bool
	}{
		{"name mismatch", mismatch.withPort("other.test"), mismatch, func(err error) bool {
			_, ok := errors.AsType[x509.HostnameError](err)
			return ok
		}},
		{"unknown CA", otherCA.withPort("other-ca.test"), otherCA, func(err error) bool {
			_, ok := errors.AsType[x509.UnknownAuthorityError](err)
			return ok
		}},
		{"ip literal without ip SAN", mismatch.withPort("127.0.0.1"), mismatch, func(err error) bool {
			_, ok := errors.AsType[x509.HostnameError](err)
			return ok
		}},
	}
	c := f.client(t, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := get(t, c, tt.serverName, "/")
			if !errors.Is(err, ErrTLS) {
				t.Fatalf("Do error = %v, want ErrTLS", err)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("Do error = %v, also wraps ErrUnreachable", err)
			}
			if !tt.check(err) {
				t.Errorf("Do error = %v, want the x509 error of the case", err)
			}
			if tt.peer.requestCount() != 0 {
				t.Errorf("peer received %d requests, want 0", tt.peer.requestCount())
			}
		})
	}
}

func TestDoPrivateAddress(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{names: []string{"hs.test", "127.0.0.1"}})
	f.dns.Add(t, "hs.test. 60 IN A 127.0.0.1")
	resolver := f.dns.Resolver()

	tests := []struct {
		name       string
		serverName string
		pinned     bool
		wantErr    error
	}{
		{"discovered name", p.withPort("hs.test"), false, ErrForbiddenAddress},
		{"ip literal", p.withPort("127.0.0.1"), false, ErrForbiddenAddress},
		{"pinned name", p.withPort("hs.test"), true, nil},
		{"pinned ip literal", p.withPort("127.0.0.1"), true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t, func(cfg *Config) {
				// The dialer of a deployment: private ranges rejected.
				cfg.Dialer = &keys.Dialer{Resolver: resolver}
				if tt.pinned {
					cfg.Pinned = pinnedTo(tt.serverName, p.addr(), false)
				}
			})
			before := p.connCount()
			_, _, err := get(t, c, tt.serverName, "/")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Do error = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrUnreachable) {
				t.Errorf("Do error = %v, also wraps ErrUnreachable", err)
			}
			if got := p.connCount() - before; got != 0 {
				t.Errorf("peer accepted %d connections, want 0", got)
			}
		})
	}
}

func TestDoMutualTLS(t *testing.T) {
	f := newFixture(t)
	clientCert := f.pki.client(t, "gateway.test")
	for _, version := range []struct {
		name string
		max  uint16
	}{{"tls1.2", tls.VersionTLS12}, {"tls1.3", tls.VersionTLS13}} {
		required := startPeer(t, f.pki, peerOptions{
			clientAuth: tls.RequireAndVerifyClientCert,
			clientCAs:  f.pki.pool,
			maxVersion: version.max,
		})
		optional := startPeer(t, f.pki, peerOptions{
			clientAuth: tls.VerifyClientCertIfGiven,
			clientCAs:  f.pki.pool,
			maxVersion: version.max,
		})

		tests := []struct {
			name          string
			peer          *peer
			requireMTLS   bool
			alwaysPresent bool
			noCert        bool
			wantErr       error
			wantCN        string
		}{
			{"required and presented", required, true, false, false, nil, "gateway.test"},
			{"required but not known", required, false, false, false, ErrTLS, ""},
			{"required without certificate", required, true, false, true, ErrTLS, ""},
			{"optional not presented", optional, false, false, false, nil, ""},
			{"optional always presented", optional, false, true, false, nil, "gateway.test"},
		}
		for _, tt := range tests {
			t.Run(version.name+"/"+tt.name, func(t *testing.T) {
				c := f.client(t, func(cfg *Config) {
					cfg.Pinned = pinnedTo("hs.test", tt.peer.addr(), tt.requireMTLS)
					cfg.AlwaysPresentClientCert = tt.alwaysPresent
					if !tt.noCert {
						cfg.ClientCertificate = func() (*tls.Certificate, error) { return &clientCert, nil }
					}
				})
				requests, conns := tt.peer.requestCount(), tt.peer.connCount()
				_, _, err := get(t, c, "hs.test", "/_matrix/federation/v1/version")
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Do error = %v, want %v", err, tt.wantErr)
					}
					if got := tt.peer.requestCount() - requests; got != 0 {
						t.Errorf("peer received %d requests, want 0", got)
					}
					// Without a certificate to present, no connection is tried.
					if got := tt.peer.connCount() - conns; tt.noCert && got != 0 {
						t.Errorf("peer accepted %d connections, want 0", got)
					}
					return
				}
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if got := tt.peer.last(t).clientCN; got != tt.wantCN {
					t.Errorf("client certificate CN = %q, want %q", got, tt.wantCN)
				}
			})
		}
	}
}

func TestDoClientCertificateError(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{clientAuth: tls.RequireAndVerifyClientCert, clientCAs: f.pki.pool})
	c := f.client(t, func(cfg *Config) {
		cfg.Pinned = pinnedTo("hs.test", p.addr(), true)
		cfg.ClientCertificate = func() (*tls.Certificate, error) { return nil, errors.New("key file unreadable") }
	})
	_, _, err := get(t, c, "hs.test", "/")
	if !errors.Is(err, ErrTLS) {
		t.Fatalf("Do error = %v, want ErrTLS", err)
	}
	if !strings.Contains(err.Error(), "key file unreadable") {
		t.Errorf("Do error = %v, want the certificate loader's error in it", err)
	}
}

func TestDoReusesConnection(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name      string
		http2     bool
		wantProto int
	}{{"http1", false, 1}, {"http2", true, 2}} {
		t.Run(tt.name, func(t *testing.T) {
			p := startPeer(t, f.pki, peerOptions{http2: tt.http2})
			c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })
			for i := range 3 {
				resp, _, err := get(t, c, "hs.test", "/_matrix/federation/v1/version")
				if err != nil {
					t.Fatalf("Do %d: %v", i, err)
				}
				if resp.ProtoMajor != tt.wantProto {
					t.Errorf("request %d protocol = HTTP/%d, want HTTP/%d", i, resp.ProtoMajor, tt.wantProto)
				}
			}
			if got := p.connCount(); got != 1 {
				t.Errorf("peer accepted %d connections, want 1", got)
			}
		})
	}
}

func TestDoNoReuseAcrossServerNames(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		name  string
		http2 bool
	}{{"http1", false}, {"http2", true}} {
		t.Run(tt.name, func(t *testing.T) {
			// One server with a certificate for both names, and SRV records
			// that give both names the same dial address, so that only the
			// client's keying keeps the connections apart.
			a, b := tt.name+"-a.test", tt.name+"-b.test"
			p := startPeer(t, f.pki, peerOptions{names: []string{a, b}, http2: tt.http2})
			f.dns.Add(t, "shared.test. 60 IN A 127.0.0.1")
			for _, name := range []string{a, b} {
				f.dns.Add(t, fmt.Sprintf("_matrix-fed._tcp.%s. 60 IN SRV 10 5 %d shared.test.", name, p.port))
			}
			c := f.client(t, nil)

			for _, serverName := range []string{a, b, a} {
				if _, _, err := get(t, c, serverName, "/"); err != nil {
					t.Fatalf("Do %s: %v", serverName, err)
				}
				got := p.last(t)
				if got.host != serverName {
					t.Errorf("Host = %q, want %q", got.host, serverName)
				}
				if got.sni != serverName {
					t.Errorf("SNI = %q, want %q", got.sni, serverName)
				}
			}
			if got := p.connCount(); got != 2 {
				t.Errorf("peer accepted %d connections, want 2", got)
			}
		})
	}
}

func TestDoNoReuseBetweenPinnedAndDiscovered(t *testing.T) {
	// The same server name and address, once pinned and once discovered,
	// goes through two dialers with different address checks.
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{})
	f.dns.Add(t, "hs.test. 60 IN A 127.0.0.1")
	serverName := p.withPort("hs.test")
	pinned := true
	c := f.client(t, func(cfg *Config) {
		cfg.Pinned = func(name string) (string, bool, bool) {
			if !pinned {
				return "", false, false
			}
			// The address discovery finds for the name as well.
			return serverName, false, true
		}
	})
	for _, pin := range []bool{true, false} {
		pinned = pin
		if _, _, err := get(t, c, serverName, "/"); err != nil {
			t.Fatalf("Do with pinned %t: %v", pin, err)
		}
	}
	if got := p.connCount(); got != 2 {
		t.Errorf("peer accepted %d connections, want 2", got)
	}
}

func TestDoRawTarget(t *testing.T) {
	f := newFixture(t)
	targets := []string{
		"/_matrix/federation/v1/event/$a%2Fb",
		"/_matrix/federation/v1/event/$ä",
		"/_matrix/federation/v1/state/!room:hs.test?event_id=$x%2By+z",
		"/_matrix/federation/v1/query/profile?user_id=@ü:hs.test&field=displayname",
		"/_matrix/federation/v1/publicRooms?",
		"/_matrix/media/v3/download/hs.test/a%20b%25c",
	}
	forms := []struct {
		name  string
		build func(t *testing.T, target string) *http.Request
	}{
		{"received request", func(t *testing.T, target string) *http.Request {
			raw := "GET " + target + " HTTP/1.1\r\nHost: gateway.test\r\n\r\n"
			req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatalf("read request: %v", err)
			}
			return req
		}},
		{"url opaque", func(t *testing.T, target string) *http.Request {
			req, err := http.NewRequest(http.MethodGet, "https://placeholder.invalid/", nil)
			if err != nil {
				t.Fatalf("build request: %v", err)
			}
			path, query, hasQuery := strings.Cut(target, "?")
			req.URL.Path = ""
			req.URL.Opaque = path
			req.URL.RawQuery = query
			req.URL.ForceQuery = hasQuery && query == ""
			return req
		}},
	}
	for _, http2 := range []bool{false, true} {
		p := startPeer(t, f.pki, peerOptions{http2: http2})
		c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })
		for _, form := range forms {
			for _, target := range targets {
				t.Run(fmt.Sprintf("http2=%t/%s/%s", http2, form.name, target), func(t *testing.T) {
					req := form.build(t, target)
					if _, _, err := send(t, c, "hs.test", req); err != nil {
						t.Fatalf("Do: %v", err)
					}
					if got := p.last(t).requestURI; got != target {
						t.Errorf("request target = %q, want %q", got, target)
					}
				})
			}
		}
	}
}

func TestDoAbsoluteFormTarget(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{})
	c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })
	raw := "GET https://hs.test:8448/_matrix/federation/v1/event/$ä%2F HTTP/1.1\r\nHost: hs.test:8448\r\n\r\n"
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		t.Fatalf("read request: %v", err)
	}
	if _, _, err := send(t, c, "hs.test", req); err != nil {
		t.Fatalf("Do: %v", err)
	}
	got := p.last(t)
	if want := "/_matrix/federation/v1/event/$ä%2F"; got.requestURI != want {
		t.Errorf("request target = %q, want %q", got.requestURI, want)
	}
	if got.host != "hs.test" {
		t.Errorf("Host = %q, want hs.test", got.host)
	}
}

func TestDoInvalidTarget(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{})
	c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })
	for _, target := range []string{"//hs.test/x", "*", "relative/path", "/a b", "/a\tb", "/a\x7f"} {
		t.Run(target, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "https://placeholder.invalid/", nil)
			if err != nil {
				t.Fatalf("build request: %v", err)
			}
			req.URL.Opaque = target
			_, err = c.Do(context.Background(), "hs.test", req)
			if err == nil || !strings.Contains(err.Error(), "invalid request target") {
				t.Fatalf("Do error = %v, want an invalid request target error", err)
			}
		})
	}
	if got := p.connCount(); got != 0 {
		t.Errorf("peer accepted %d connections, want 0", got)
	}
}

func TestDoForwardsRequest(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{})
	c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })

	const body = `{"pdus":[],"edus":[]}`
	const auth = `X-Matrix origin="gateway.test",destination="hs.test",key="ed25519:a",sig="c2ln"`
	req, err := http.NewRequest(http.MethodPut, "https://placeholder.invalid/_matrix/federation/v1/send/1", strings.NewReader(body))
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	urlBefore := req.URL.String()

	if _, _, err := send(t, c, "hs.test", req); err != nil {
		t.Fatalf("Do: %v", err)
	}
	got := p.last(t)
	if got.body != body {
		t.Errorf("body = %q, want %q", got.body, body)
	}
	if v := got.header.Get("Authorization"); v != auth {
		t.Errorf("Authorization = %q, want %q", v, auth)
	}
	if v := got.header.Get("Accept-Encoding"); v != "" {
		t.Errorf("Accept-Encoding = %q, want none added", v)
	}
	if req.URL.String() != urlBefore {
		t.Errorf("request URL changed to %q, want %q", req.URL.String(), urlBefore)
	}
	if req.Host != "placeholder.invalid" {
		t.Errorf("request Host changed to %q", req.Host)
	}
}

func TestDoNoRedirects(t *testing.T) {
	f := newFixture(t)
	p := startPeer(t, f.pki, peerOptions{handler: func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://elsewhere.test/", http.StatusFound)
	}})
	c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })
	resp, _, err := get(t, c, "hs.test", "/_matrix/federation/v1/version")
	if err != nil {
		t.Fatalf("Do: %v", err)
	}
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status = %d, want 302", resp.StatusCode)
	}
	if got := resp.Header.Get("Location"); got != "https://elsewhere.test/" {
		t.Errorf("Location = %q, want https://elsewhere.test/", got)
	}
	if got := p.requestCount(); got != 1 {
		t.Errorf("peer received %d requests, want 1", got)
	}
}

func TestDoUnreachable(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	f.dns.Add(t, "refused.test. 60 IN A 127.0.0.1")
	f.dns.Fail("_matrix-fed._tcp.servfail.test")
	f.dns.Fail("servfail.test")

	_, closedPort, _ := net.SplitHostPort(closedAddr)
	tests := []struct {
		name       string
		serverName string
		pinned     string
	}{
		{"connection refused pinned", "hs.test", closedAddr},
		{"connection refused discovered", "refused.test:" + closedPort, ""},
		{"no such host", "missing.test:8448", ""},
		{"srv lookup failure", "servfail.test", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t, func(cfg *Config) {
				if tt.pinned != "" {
					cfg.Pinned = pinnedTo(tt.serverName, tt.pinned, false)
				}
			})
			_, _, err := get(t, c, tt.serverName, "/")
			if !errors.Is(err, ErrUnreachable) {
				t.Fatalf("Do error = %v, want ErrUnreachable", err)
			}
			if errors.Is(err, ErrTLS) || errors.Is(err, ErrTimeout) {
				t.Errorf("Do error = %v, wraps another class too", err)
			}
			if !strings.Contains(err.Error(), tt.serverName) {
				t.Errorf("Do error = %v, want the server name in it", err)
			}
		})
	}
}

// startStalled accepts TCP connections on 127.0.0.1 and never sends a
// byte, so a TLS handshake with it never ends.
func startStalled(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan struct{})
	go func() {
		var conns []net.Conn
		defer func() {
			for _, conn := range conns {
				conn.Close()
			}
		}()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
			select {
			case <-done:
				return
			default:
			}
		}
	}()
	t.Cleanup(func() {
		close(done)
		ln.Close()
	})
	return ln.Addr().String()
}

func TestDoTimeouts(t *testing.T) {
	f := newFixture(t)
	const timeout = 300 * time.Millisecond
	slowHeaders := startPeer(t, f.pki, peerOptions{handler: func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * timeout):
		case <-r.Context().Done():
		}
	}})
	slowBody := startPeer(t, f.pki, peerOptions{handler: func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first ")
		w.(http.Flusher).Flush()
		time.Sleep(2 * timeout)
		io.WriteString(w, "second")
	}})
	stalled := startStalled(t)

	tests := []struct {
		name            string
		addr            string
		wantErr         bool
		wantUnreachable bool
	}{
		{"tls handshake stalls", stalled, true, true},
		{"response headers late", slowHeaders.addr(), true, false},
		{"response body after timeout", slowBody.addr(), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t, func(cfg *Config) {
				cfg.Timeout = timeout
				cfg.Pinned = pinnedTo("hs.test", tt.addr, false)
			})
			start := time.Now()
			_, body, err := get(t, c, "hs.test", "/")
			elapsed := time.Since(start)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Do: %v", err)
				}
				if body != "first second" {
					t.Errorf("body = %q, want %q", body, "first second")
				}
				return
			}
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("Do error = %v, want ErrTimeout", err)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Do error = %v, want context.DeadlineExceeded", err)
			}
			if got := errors.Is(err, ErrUnreachable); got != tt.wantUnreachable {
				t.Errorf("errors.Is(%v, ErrUnreachable) = %t, want %t", err, got, tt.wantUnreachable)
			}
			if elapsed > 2*timeout {
				t.Errorf("Do returned after %s, want about %s", elapsed, timeout)
			}
		})
	}
}

func TestDoContextCanceled(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", startStalled(t), false) })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequest(http.MethodGet, "https://placeholder.invalid/", nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	_, err = c.Do(ctx, "hs.test", req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do error = %v, want context.DeadlineExceeded", err)
	}
	for _, class := range []error{ErrTimeout, ErrUnreachable, ErrTLS} {
		if errors.Is(err, class) {
			t.Errorf("Do error = %v, wraps %v, want no class for the caller's deadline", err, class)
		}
	}
}

func TestDoInvalidServerName(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, nil)
	for _, name := range []string{"", "a_b.test", "hs.test:99999", ":8448"} {
		t.Run(name, func(t *testing.T) {
			_, _, err := get(t, c, name, "/")
			if err == nil || !strings.Contains(err.Error(), "invalid server name") {
				t.Fatalf("Do error = %v, want an invalid server name error", err)
			}
		})
	}
}

func TestDoInvalidPinnedAddress(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", "127.0.0.1", false) })
	_, _, err := get(t, c, "hs.test", "/")
	if err == nil || !strings.Contains(err.Error(), `invalid allow-list address "127.0.0.1"`) {
		t.Fatalf("Do error = %v, want an invalid allow-list address error", err)
	}
}

func TestNewInvalidConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative timeout", Config{Timeout: -1}, "invalid egress timeout -1ns"},
		{"negative idle timeout", Config{IdleConnTimeout: -1}, "invalid egress idle connection timeout -1ns"},
		{"negative idle connections", Config{MaxIdleConnsPerHost: -1}, "invalid egress max idle connections per host -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want %q in it", err, tt.want)
			}
		})
	}
}

func TestNewZeroConfig(t *testing.T) {
	c, err := New(Config{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.timeout != DefaultTimeout {
		t.Errorf("timeout = %s, want %s", c.timeout, DefaultTimeout)
	}
	if c.idleTimeout != DefaultIdleConnTimeout {
		t.Errorf("idle timeout = %s, want %s", c.idleTimeout, DefaultIdleConnTimeout)
	}
	if c.maxIdle != DefaultMaxIdleConnsPerHost {
		t.Errorf("max idle = %d, want %d", c.maxIdle, DefaultMaxIdleConnsPerHost)
	}
	if c.dialer.AllowPrivate {
		t.Error("default dialer allows private addresses")
	}
	if !c.pinnedDialer.AllowPrivate {
		t.Error("pinned dialer rejects private addresses")
	}
	// The zero config rejects loopback without any network lookup.
	req, err := http.NewRequest(http.MethodGet, "https://placeholder.invalid/", nil)
	if err != nil {
		t.Fatalf("build request: %v", err)
	}
	if _, err := c.Do(context.Background(), "127.0.0.1:1", req); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("Do error = %v, want ErrForbiddenAddress", err)
	}
}

func TestTransportCacheEvicts(t *testing.T) {
	tc := newTransportCache(2)
	created := 0
	newTransport := func(route) *http.Transport {
		created++
		return &http.Transport{}
	}
	a := route{serverName: "a.test"}
	b := route{serverName: "b.test"}
	d := route{serverName: "d.test"}

	first := tc.get(a, newTransport)
	tc.get(b, newTransport)
	if tc.get(a, newTransport) != first {
		t.Error("second get of a returned a new transport")
	}
	tc.get(d, newTransport) // evicts b, the least recently used
	if _, ok := tc.entries[b]; ok {
		t.Error("b still cached after eviction")
	}
	if tc.get(a, newTransport) != first {
		t.Error("a was evicted instead of b")
	}
	if created != 3 {
		t.Errorf("created %d transports, want 3", created)
	}
	if tc.order.Len() != 2 || len(tc.entries) != 2 {
		t.Errorf("cache holds %d ordered and %d mapped entries, want 2 and 2", tc.order.Len(), len(tc.entries))
	}
}

func BenchmarkDoReusedConnection(b *testing.B) {
	f := newFixture(b)
	p := startPeer(b, f.pki, peerOptions{})
	c := f.client(b, func(cfg *Config) { cfg.Pinned = pinnedTo("hs.test", p.addr(), false) })
	req, err := http.NewRequest(http.MethodGet, "https://placeholder.invalid/_matrix/federation/v1/version", nil)
	if err != nil {
		b.Fatalf("build request: %v", err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(ctx, "hs.test", req)
		if err != nil {
			b.Fatalf("Do: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
