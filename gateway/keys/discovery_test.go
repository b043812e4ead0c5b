package keys

import (
	"context"
	"fmt"
	"github.com/bordergate/bordergate/gateway/internal/testdns"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// wellKnownServer serves .well-known/matrix/server documents by host name
// on one HTTPS server and counts requests per host.
type wellKnownServer struct {
	port int

	mu       sync.Mutex // guards handlers and hits
	handlers map[string]http.HandlerFunc
	hits     map[string]int
}

func newWellKnownServer(t *testing.T, ca *testCA, names ...string) *wellKnownServer {
	t.Helper()
	s := &wellKnownServer{handlers: map[string]http.HandlerFunc{}, hits: map[string]int{}}
	srv := startHTTPS(t, ca, s, names...)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	s.port, _ = strconv.Atoi(port)
	return s
}

func (s *wellKnownServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	s.mu.Lock()
	h := s.handlers[host]
	s.hits[host]++
	s.mu.Unlock()
	if h == nil || r.URL.Path != "/.well-known/matrix/server" {
		http.NotFound(w, r)
		return
	}
	h(w, r)
}

func (s *wellKnownServer) handle(host string, h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[host] = h
}

func (s *wellKnownServer) serveJSON(host, body string, header ...string) {
	s.handle(host, func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	})
}

func (s *wellKnownServer) hitCount(host string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[host]
}

func (s *wellKnownServer) url(host string) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(s.port)) + "/.well-known/matrix/server"
}

// discoveryFixture is a DNS server and a .well-known server on loopback
// with the names of every discovery branch.
type discoveryFixture struct {
	dns       *testdns.Server
	wellKnown *wellKnownServer
	ca        *testCA
}

func newDiscoveryFixture(t *testing.T) *discoveryFixture {
	t.Helper()
	ca := newTestCA(t)
	certNames := []string{
		"wk-ip.test", "wk-ipport.test", "wk-ipv6.test", "wk-hostport.test", "wk-fed.test",
		"wk-legacy.test", "wk-both.test", "wk-plain.test", "wk-redirect.test", "wk-loop.test",
		"wk-http.test", "wk-404.test", "wk-badjson.test", "wk-nomserver.test", "wk-badname.test",
		"wk-cache.test", "srv-dot.test",
	}
	f := &discoveryFixture{dns: testdns.Start(t), wellKnown: newWellKnownServer(t, ca, certNames...), ca: ca}
	for _, name := range append(certNames, "wk-certmismatch.test") {
		f.dns.Add(t, name+". 60 IN A 127.0.0.1")
	}

	wk := f.wellKnown
	wk.serveJSON("wk-ip.test", `{"m.server":"127.0.0.5"}`)
	wk.serveJSON("wk-ipport.test", `{"m.server":"127.0.0.5:9000"}`)
	wk.serveJSON("wk-ipv6.test", `{"m.server":"[::1]"}`)
	wk.serveJSON("wk-hostport.test", `{"m.server":"delegated.test:9001"}`)
	wk.serveJSON("wk-fed.test", `{"m.server":"delegated-fed.test"}`)
	f.dns.Add(t, "_matrix-fed._tcp.delegated-fed.test. 60 IN SRV 10 5 9002 target-fed.test.")
	wk.serveJSON("wk-legacy.test", `{"m.server":"delegated-legacy.test"}`)
	f.dns.Add(t, "delegated-legacy.test. 60 IN A 127.0.0.1")
	f.dns.Add(t, "_matrix._tcp.delegated-legacy.test. 60 IN SRV 10 5 9003 target-legacy.test.")
	wk.serveJSON("wk-both.test", `{"m.server":"delegated-both.test"}`)
	f.dns.Add(t, "_matrix-fed._tcp.delegated-both.test. 60 IN SRV 10 5 9004 target-fed.test.")
	f.dns.Add(t, "_matrix._tcp.delegated-both.test. 60 IN SRV 10 5 9005 target-legacy.test.")
	wk.serveJSON("wk-plain.test", `{"m.server":"delegated-plain.test"}`)
	wk.handle("wk-redirect.test", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, wk.url("wk-ip.test"), http.StatusFound)
	})
	wk.handle("wk-loop.test", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, wk.url("wk-loop.test"), http.StatusMovedPermanently)
	})
	wk.handle("wk-http.test", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://wk-ip.test/.well-known/matrix/server", http.StatusFound)
	})
	f.dns.Add(t, "_matrix-fed._tcp.wk-404.test. 60 IN SRV 10 5 9006 target-fed.test.")
	f.dns.Add(t, "_matrix-fed._tcp.wk-404.test. 60 IN SRV 20 5 9007 target-backup.test.")
	wk.serveJSON("wk-badjson.test", `{"m.server":`)
	f.dns.Add(t, "_matrix._tcp.wk-badjson.test. 60 IN SRV 10 5 9008 target-legacy.test.")
	wk.serveJSON("wk-nomserver.test", `{"m.other":"x"}`)
	wk.serveJSON("wk-badname.test", `{"m.server":"bad_name.test"}`)
	wk.serveJSON("wk-certmismatch.test", `{"m.server":"127.0.0.5"}`)
	f.dns.Add(t, "_matrix-fed._tcp.srv-dot.test. 60 IN SRV 0 0 0 .")
	f.dns.Fail("servfail.test")
	f.dns.Fail("_matrix-fed._tcp.servfail.test")
	return f
}

func (f *discoveryFixture) discovery(clock *fakeClock) *Discovery {
	resolver := f.dns.Resolver()
	d := NewDiscovery(DiscoveryConfig{
		Resolver: resolver,
		Dialer:   &Dialer{AllowPrivate: true, Resolver: resolver},
		RootCAs:  f.ca.pool,
		Timeout:  5 * time.Second,
		Now:      clock.Now,
	})
	d.wellKnownPort = f.wellKnown.port
	return d
}

func TestDiscoveryResolve(t *testing.T) {
	f := newDiscoveryFixture(t)
	d := f.discovery(newFakeClock())

	tests := []struct {
		name       string
		serverName string
		want       Target
	}{
		{"IPv4 literal", "127.0.0.1", Target{Addr: "127.0.0.1:8448", Host: "127.0.0.1"}},
		{"IPv4 literal with port", "127.0.0.1:8449", Target{Addr: "127.0.0.1:8449", Host: "127.0.0.1:8449"}},
		{"IPv6 literal", "[::1]", Target{Addr: "[::1]:8448", Host: "[::1]"}},
		{"IPv6 literal with port", "[::1]:8449", Target{Addr: "[::1]:8449", Host: "[::1]:8449"}},
		{"host with port", "hs.test:1234", Target{Addr: "hs.test:1234", Host: "hs.test:1234", TLSServerName: "hs.test"}},
		{"delegated IP", "wk-ip.test", Target{Addr: "127.0.0.5:8448", Host: "127.0.0.5"}},
		{"delegated IP with port", "wk-ipport.test", Target{Addr: "127.0.0.5:9000", Host: "127.0.0.5:9000"}},
		{"delegated IPv6", "wk-ipv6.test", Target{Addr: "[::1]:8448", Host: "[::1]"}},
		{"delegated host with port", "wk-hostport.test", Target{Addr: "delegated.test:9001", Host: "delegated.test:9001", TLSServerName: "delegated.test"}},
		{"delegated host with matrix-fed SRV", "wk-fed.test", Target{Addr: "target-fed.test:9002", Host: "delegated-fed.test", TLSServerName: "delegated-fed.test"}},
		{"delegated host with legacy SRV", "wk-legacy.test", Target{Addr: "target-legacy.test:9003", Host: "delegated-legacy.test", TLSServerName: "delegated-legacy.test"}},
		{"delegated matrix-fed SRV before legacy", "wk-both.test", Target{Addr: "target-fed.test:9004", Host: "delegated-both.test", TLSServerName: "delegated-both.test"}},
		{"delegated host without SRV", "wk-plain.test", Target{Addr: "delegated-plain.test:8448", Host: "delegated-plain.test", TLSServerName: "delegated-plain.test"}},
		{"well-known redirect followed", "wk-redirect.test", Target{Addr: "127.0.0.5:8448", Host: "127.0.0.5"}},
		{"well-known redirect loop", "wk-loop.test", Target{Addr: "wk-loop.test:8448", Host: "wk-loop.test", TLSServerName: "wk-loop.test"}},
		{"well-known redirect to http", "wk-http.test", Target{Addr: "wk-http.test:8448", Host: "wk-http.test", TLSServerName: "wk-http.test"}},
		{"well-known 404 then matrix-fed SRV", "wk-404.test", Target{Addr: "target-fed.test:9006", Host: "wk-404.test", TLSServerName: "wk-404.test"}},
		{"well-known bad JSON then legacy SRV", "wk-badjson.test", Target{Addr: "target-legacy.test:9008", Host: "wk-badjson.test", TLSServerName: "wk-badjson.test"}},
		{"well-known without m.server", "wk-nomserver.test", Target{Addr: "wk-nomserver.test:8448", Host: "wk-nomserver.test", TLSServerName: "wk-nomserver.test"}},
		{"well-known invalid m.server", "wk-badname.test", Target{Addr: "wk-badname.test:8448", Host: "wk-badname.test", TLSServerName: "wk-badname.test"}},
		{"well-known certificate for another name", "wk-certmismatch.test", Target{Addr: "wk-certmismatch.test:8448", Host: "wk-certmismatch.test", TLSServerName: "wk-certmismatch.test"}},
		{"no well-known server, no SRV", "unknown.test", Target{Addr: "unknown.test:8448", Host: "unknown.test", TLSServerName: "unknown.test"}},
		{"SRV target dot skipped", "srv-dot.test", Target{Addr: "srv-dot.test:8448", Host: "srv-dot.test", TLSServerName: "srv-dot.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := d.Resolve(ctx, tt.serverName)
			if err != nil {
				t.Fatalf("Resolve(%q): %v", tt.serverName, err)
			}
			if got != tt.want {
				t.Errorf("Resolve(%q) = %+v, want %+v", tt.serverName, got, tt.want)
			}
		})
	}
}

func TestDiscoveryResolveErrors(t *testing.T) {
	f := newDiscoveryFixture(t)
	d := f.discovery(newFakeClock())
	tests := []struct {
		name       string
		serverName string
		want       string
	}{
		{"empty", "", "invalid server name"},
		{"underscore", "bad_name.test", "invalid server name"},
		{"port zero", "hs.test:0", "port 0 out of range 1-65535"},
		{"port leading zero", "hs.test:08448", `port "08448" has a leading zero`},
		{"trailing dot", "hs.test.", "host ends with '.'"},
		{"empty label", "hs..test", "host contains an empty label"},
		{"numeric last label", "hs.123", `"hs.123" ends in a number but is not a dotted-quad IPv4 address`},
		{"ipv4 leading zero", "127.000.0.1", `octet "000" has a leading zero`},
		{"SRV lookup fails", "servfail.test", "look up SRV _matrix-fed._tcp.servfail.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := d.Resolve(ctx, tt.serverName)
			if err == nil {
				t.Fatalf("Resolve(%q) = %+v, want an error containing %q", tt.serverName, got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resolve(%q) error = %q, want it to contain %q", tt.serverName, err, tt.want)
			}
		})
	}
}

func TestDiscoveryWellKnownForbiddenAddress(t *testing.T) {
	f := newDiscoveryFixture(t)
	resolver := f.dns.Resolver()
	d := NewDiscovery(DiscoveryConfig{Resolver: resolver, RootCAs: f.ca.pool, Now: newFakeClock().Now})
	d.wellKnownPort = f.wellKnown.port

	got, err := d.Resolve(context.Background(), "wk-ip.test")
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	want := Target{Addr: "wk-ip.test:8448", Host: "wk-ip.test", TLSServerName: "wk-ip.test"}
	if got != want {
		t.Errorf("Resolve = %+v, want %+v", got, want)
	}
	if n := f.wellKnown.hitCount("wk-ip.test"); n != 0 {
		t.Errorf("well-known server got %d requests, want 0 from a dialer that rejects loopback", n)
	}
}

func TestDiscoveryWellKnownCache(t *testing.T) {
	tests := []struct {
		name         string
		cacheControl string
		stillCached  time.Duration
		refetched    time.Duration
	}{
		{"default lifetime", "", 23 * time.Hour, 24*time.Hour + time.Second},
		{"max-age", "public, max-age=600", 9 * time.Minute, 10*time.Minute + time.Second},
		{"max-age capped", "max-age=604800", 47 * time.Hour, 48*time.Hour + time.Second},
		{"short max-age raised", "max-age=10", 4 * time.Minute, 5*time.Minute + time.Second},
		{"no-store", "no-store", 4 * time.Minute, 5*time.Minute + time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newDiscoveryFixture(t)
			if tt.cacheControl == "" {
				f.wellKnown.serveJSON("wk-cache.test", `{"m.server":"127.0.0.5"}`)
			} else {
				f.wellKnown.serveJSON("wk-cache.test", `{"m.server":"127.0.0.5"}`, "Cache-Control", tt.cacheControl)
			}
			clock := newFakeClock()
			d := f.discovery(clock)
			resolve := func() {
				t.Helper()
				got, err := d.Resolve(context.Background(), "wk-cache.test")
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got.Addr != "127.0.0.5:8448" {
					t.Fatalf("Resolve Addr = %q, want 127.0.0.5:8448", got.Addr)
				}
			}

			resolve()
			resolve()
			if n := f.wellKnown.hitCount("wk-cache.test"); n != 1 {
				t.Fatalf("after two lookups: %d requests, want 1", n)
			}
			clock.Advance(tt.stillCached)
			resolve()
			if n := f.wellKnown.hitCount("wk-cache.test"); n != 1 {
				t.Errorf("after %v: %d requests, want 1", tt.stillCached, n)
			}
			clock.Advance(tt.refetched - tt.stillCached)
			resolve()
			if n := f.wellKnown.hitCount("wk-cache.test"); n != 2 {
				t.Errorf("after %v: %d requests, want 2", tt.refetched, n)
			}
		})
	}
}

func TestDiscoveryWellKnownErrorCache(t *testing.T) {
	f := newDiscoveryFixture(t)
	clock := newFakeClock()
	d := f.discovery(clock)
	want := Target{Addr: "target-fed.test:9006", Host: "wk-404.test", TLSServerName: "wk-404.test"}

	for _, step := range []struct {
		advance time.Duration
		hits    int
	}{{0, 1}, {0, 1}, {59 * time.Minute, 1}, {time.Minute + time.Second, 2}} {
		clock.Advance(step.advance)
		got, err := d.Resolve(context.Background(), "wk-404.test")
		if err != nil {
			t.Fatalf("Resolve: %v", err)
		}
		if got != want {
			t.Errorf("Resolve = %+v, want %+v", got, want)
		}
		if n := f.wellKnown.hitCount("wk-404.test"); n != step.hits {
			t.Errorf("after advancing %v: %d requests, want %d", step.advance, n, step.hits)
		}
	}
}

func TestParseWellKnown(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    string
		wantErr string // "" when body is valid
	}{
		{"name", `{"m.server":"hs.test"}`, "hs.test", ""},
		{"name with port", `{"m.server":"hs.test:8448"}`, "hs.test:8448", ""},
		{"ipv6 with port", `{"m.server":"[::1]:8448"}`, "[::1]:8448", ""},
		{"missing", `{}`, "", "m.server missing or not a string"},
		{"underscore", `{"m.server":"hs_1.test"}`, "", `m.server: invalid server name "hs_1.test": character '_' not allowed`},
		{"trailing dot", `{"m.server":"hs.test."}`, "", `m.server: invalid server name "hs.test.": host ends with '.'`},
		{"port leading zero", `{"m.server":"hs.test:08448"}`, "", `m.server: invalid server name "hs.test:08448": port "08448" has a leading zero`},
		{"numeric last label", `{"m.server":"hs.123"}`, "", `m.server: invalid server name "hs.123": "hs.123" ends in a number but is not a dotted-quad IPv4 address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWellKnown([]byte(tt.body))
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("parseWellKnown(%s) error = %q, want %q", tt.body, gotErr, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseWellKnown(%s) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestCacheLifetime(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   time.Duration
	}{
		{"none", nil, 24 * time.Hour},
		{"max-age", []string{"max-age=3600"}, time.Hour},
		{"quoted max-age", []string{`max-age="7200"`}, 2 * time.Hour},
		{"upper case", []string{"Max-Age=3600"}, time.Hour},
		{"among directives", []string{"public, max-age=1800, must-revalidate"}, 30 * time.Minute},
		{"second header", []string{"public", "max-age=1800"}, 30 * time.Minute},
		{"above maximum", []string{"max-age=999999999"}, 48 * time.Hour},
		{"below minimum", []string{"max-age=0"}, 5 * time.Minute},
		{"no-cache", []string{"no-cache"}, 5 * time.Minute},
		{"no-store wins over max-age", []string{"max-age=3600, no-store"}, 5 * time.Minute},
		{"invalid max-age", []string{"max-age=soon"}, 24 * time.Hour},
		{"negative max-age", []string{"max-age=-5"}, 24 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cacheLifetime(tt.values); got != tt.want {
				t.Errorf("cacheLifetime(%q) = %v, want %v", tt.values, got, tt.want)
			}
		})
	}
}
