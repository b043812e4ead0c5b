package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/servername"
)

// testClock is a settable clock for [InterceptorOptions.Now] and
// [ReloadOptions.Now].
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

// newTestClock starts at the current time rounded down to a second, because
// certificates store times with second precision.
func newTestClock() *testClock {
	return &testClock{now: time.Now().Truncate(time.Second)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func mustCertificateFor(t *testing.T, ic *Interceptor, host string) *tls.Certificate {
	t.Helper()
	cert, err := ic.CertificateFor(host)
	if err != nil {
		t.Fatalf("CertificateFor(%q): %v", host, err)
	}
	return cert
}

func TestInterceptorCertificateFor(t *testing.T) {
	ca := newTestCA(t)
	clock := newTestClock()
	ic := NewInterceptor(ca, InterceptorOptions{Now: clock.Now})

	tests := []struct {
		host    string
		wantCN  string
		wantDNS []string
		wantIPs []net.IP
	}{
		{"hs9.example", "hs9.example", []string{"hs9.example"}, nil},
		{"HS9.Example", "hs9.example", []string{"hs9.example"}, nil},
		{"localhost", "localhost", []string{"localhost"}, nil},
		{"127.0.0.1", "127.0.0.1", nil, []net.IP{net.ParseIP("127.0.0.1")}},
		{"::1", "::1", nil, []net.IP{net.ParseIP("::1")}},
		{"[::1]", "::1", nil, []net.IP{net.ParseIP("::1")}},
		{"[2001:DB8::0:1]", "2001:db8::1", nil, []net.IP{net.ParseIP("2001:db8::1")}},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			cert := mustCertificateFor(t, ic, tt.host)
			if len(cert.Certificate) != 1 {
				t.Fatalf("chain has %d certificates, want 1 (the leaf only)", len(cert.Certificate))
			}
			leaf, err := x509.ParseCertificate(cert.Certificate[0])
			if err != nil {
				t.Fatalf("parse leaf: %v", err)
			}
			if !leaf.Equal(cert.Leaf) {
				t.Error("Leaf differs from the DER certificate in the chain")
			}
			if leaf.Subject.CommonName != tt.wantCN {
				t.Errorf("CommonName = %q, want %q", leaf.Subject.CommonName, tt.wantCN)
			}
			if !slices.Equal(leaf.DNSNames, tt.wantDNS) {
				t.Errorf("DNSNames = %q, want %q", leaf.DNSNames, tt.wantDNS)
			}
			if !slices.EqualFunc(leaf.IPAddresses, tt.wantIPs, net.IP.Equal) {
				t.Errorf("IPAddresses = %v, want %v", leaf.IPAddresses, tt.wantIPs)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
				t.Errorf("ExtKeyUsage = %v, want [ServerAuth]", leaf.ExtKeyUsage)
			}
			if leaf.IsCA {
				t.Error("leaf has IsCA = true")
			}
			if got, want := leaf.NotBefore, clock.Now().Add(-clockSkew); !got.Equal(want) {
				t.Errorf("NotBefore = %s, want %s", got, want)
			}
			if got, want := leaf.NotAfter, clock.Now().Add(DefaultLeafValidity); !got.Equal(want) {
				t.Errorf("NotAfter = %s, want %s", got, want)
			}
			key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
			if !ok || key.Curve.Params().Name != "P-256" {
				t.Fatalf("private key = %T, want an ECDSA P-256 key", cert.PrivateKey)
			}
			if !key.PublicKey.Equal(leaf.PublicKey) {
				t.Error("private key does not match the leaf")
			}
			verifyLeafFor(t, ca, leaf, tt.wantCN, clock.Now())
		})
	}
}

// verifyLeafFor checks that leaf chains to ca and is valid for host at now.
func verifyLeafFor(t *testing.T, ca *CA, leaf *x509.Certificate, host string, now time.Time) {
	t.Helper()
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	_, err := leaf.Verify(x509.VerifyOptions{
		DNSName:     host,
		Roots:       roots,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Errorf("leaf does not verify for %s against the CA: %v", host, err)
	}
}

func TestInterceptorInvalidHost(t *testing.T) {
	ic := NewInterceptor(newTestCA(t), InterceptorOptions{})
	const prefix = "mint interception certificate: host is not a valid DNS name or IP literal: "
	tests := []struct {
		name string
		host string
		want string
	}{
		{"empty", "", "empty host"},
		{"DNS name with port", "hs9.example:8448", `"hs9.example:8448" contains a port, pass the host part only`},
		{"IPv4 with port", "127.0.0.1:8448", `"127.0.0.1:8448" contains a port, pass the host part only`},
		{"IPv6 with port", "[::1]:8448", `"[::1]:8448" contains a port, pass the host part only`},
		{"underscore", "hs_9.example", `invalid server name "hs_9.example": character '_' not allowed`},
		{"wildcard", "*.example", `invalid server name "*.example": character '*' not allowed`},
		{"trailing dot", "hs9.example.", `invalid server name "hs9.example.": host ends with '.'`},
		{"space", "hs9 .example", `invalid server name "hs9 .example": byte 0x20 not allowed`},
		{"IPv6 zone", "fe80::1%eth0", `"fe80::1%eth0" has an IPv6 zone`},
		{"bracketed IPv4", "[127.0.0.1]", `"[127.0.0.1]" puts brackets around an IPv4 address`},
		{"bracketed DNS name", "[hs9.example]", `"[hs9.example]" is not an IPv6 address in brackets`},
		{"unclosed bracket", "[::1", `invalid server name "[::1": missing ']' after IPv6 address`},
		{"IPv4 leading zero", "010.0.0.1",
			`invalid server name "010.0.0.1": IPv4 address "010.0.0.1": octet "010" has a leading zero`},
		{"numeric last label", "1.2.3",
			`invalid server name "1.2.3": "1.2.3" ends in a number but is not a dotted-quad IPv4 address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ic.CertificateFor(tt.host)
			if err == nil || err.Error() != prefix+tt.want {
				t.Errorf("CertificateFor(%q) error = %v\nwant %q", tt.host, err, prefix+tt.want)
			}
			if !errors.Is(err, ErrInvalidHost) {
				t.Errorf("errors.Is(err, ErrInvalidHost) = false for %v", err)
			}
		})
	}
	if n := len(ic.entries); n != 0 {
		t.Errorf("cache holds %d entries after invalid hosts, want 0", n)
	}
}

func TestInterceptorGetCertificate(t *testing.T) {
	ic := NewInterceptor(newTestCA(t), InterceptorOptions{})
	want := mustCertificateFor(t, ic, "hs9.example")

	got, err := ic.GetCertificate(&tls.ClientHelloInfo{ServerName: "HS9.example"})
	if err != nil {
		t.Fatalf("GetCertificate: %v", err)
	}
	if got != want {
		t.Error("GetCertificate with SNI HS9.example returned another certificate than CertificateFor(hs9.example)")
	}

	_, err = ic.GetCertificate(&tls.ClientHelloInfo{})
	wantErr := "mint interception certificate: ClientHello has no SNI server name"
	if err == nil || err.Error() != wantErr {
		t.Errorf("GetCertificate without SNI error = %v, want %q", err, wantErr)
	}

	withDefault := ic.GetCertificateWithDefault("127.0.0.1")
	got, err = withDefault(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatalf("GetCertificateWithDefault without SNI: %v", err)
	}
	if !slices.EqualFunc(got.Leaf.IPAddresses, []net.IP{net.ParseIP("127.0.0.1")}, net.IP.Equal) {
		t.Errorf("default leaf IPAddresses = %v, want [127.0.0.1]", got.Leaf.IPAddresses)
	}
	got, err = withDefault(&tls.ClientHelloInfo{ServerName: "hs9.example"})
	if err != nil {
		t.Fatalf("GetCertificateWithDefault with SNI: %v", err)
	}
	if got != want {
		t.Error("GetCertificateWithDefault with SNI hs9.example did not return the leaf for hs9.example")
	}
}

func TestInterceptorCacheHit(t *testing.T) {
	ic := NewInterceptor(newTestCA(t), InterceptorOptions{})
	first := mustCertificateFor(t, ic, "hs9.example")

	tests := []struct {
		host string
		same bool
	}{
		{"hs9.example", true},
		{"Hs9.Example", true},
		{"hs8.example", false},
	}
	for _, tt := range tests {
		got := mustCertificateFor(t, ic, tt.host)
		if same := got == first; same != tt.same {
			t.Errorf("CertificateFor(%q) is the first hs9.example leaf: %v, want %v", tt.host, same, tt.same)
		}
	}

	ipv6 := mustCertificateFor(t, ic, "::1")
	for _, host := range []string{"[::1]", "0:0:0:0:0:0:0:1"} {
		if got := mustCertificateFor(t, ic, host); got != ipv6 {
			t.Errorf("CertificateFor(%q) is not the cached leaf of ::1", host)
		}
	}
}

func TestInterceptorRenewal(t *testing.T) {
	tests := []struct {
		name      string
		validity  time.Duration
		renewFrom time.Duration // age at which a new leaf is minted
	}{
		{"default validity", 0, 23 * time.Hour},
		{"30 minutes", 30 * time.Minute, 15 * time.Minute},
		{"2 hours", 2 * time.Hour, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			start := clock.Now()
			// The CA outlives every leaf, so that no leaf is cut short.
			ca, err := NewCA("renewal test CA", 30*24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			ic := NewInterceptor(ca, InterceptorOptions{LeafValidity: tt.validity, Now: clock.Now})
			first := mustCertificateFor(t, ic, "hs9.example")

			clock.Set(start.Add(tt.renewFrom - time.Second))
			if got := mustCertificateFor(t, ic, "hs9.example"); got != first {
				t.Fatalf("leaf replaced %s before the renewal time", time.Second)
			}

			clock.Set(start.Add(tt.renewFrom))
			renewed := mustCertificateFor(t, ic, "hs9.example")
			if renewed == first {
				t.Fatal("leaf not replaced at the renewal time")
			}
			validity := tt.validity
			if validity == 0 {
				validity = DefaultLeafValidity
			}
			if got, want := renewed.Leaf.NotAfter, clock.Now().Add(validity); !got.Equal(want) {
				t.Errorf("renewed NotAfter = %s, want %s", got, want)
			}

			clock.Advance(time.Minute)
			if got := mustCertificateFor(t, ic, "hs9.example"); got != renewed {
				t.Error("renewed leaf not served from the cache a minute later")
			}
		})
	}
}

func TestInterceptorLeafCappedAtCA(t *testing.T) {
	ca, err := NewCA("short-lived CA", 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caNotAfter := ca.Certificate().NotAfter
	clock := newTestClock()
	ic := NewInterceptor(ca, InterceptorOptions{Now: clock.Now})

	first := mustCertificateFor(t, ic, "hs9.example")
	if !first.Leaf.NotAfter.Equal(caNotAfter) {
		t.Errorf("NotAfter = %s, want the CA's NotAfter %s", first.Leaf.NotAfter, caNotAfter)
	}

	// Within the renewal margin a new leaf could not last longer, so the
	// cached one stays.
	clock.Set(caNotAfter.Add(-30 * time.Minute))
	if got := mustCertificateFor(t, ic, "hs9.example"); got != first {
		t.Error("leaf capped at the CA's NotAfter was replaced before it expired")
	}

	clock.Set(caNotAfter)
	_, err = ic.CertificateFor("hs9.example")
	want := "mint interception certificate for hs9.example: CA certificate expired at " +
		caNotAfter.Format(time.RFC3339)
	if err == nil || err.Error() != want {
		t.Errorf("CertificateFor after CA expiry error = %v\nwant %q", err, want)
	}
	if n := len(ic.entries); n != 0 {
		t.Errorf("cache holds %d entries after a failed mint, want 0", n)
	}
}

func TestInterceptorEviction(t *testing.T) {
	ic := NewInterceptor(newTestCA(t), InterceptorOptions{CacheSize: 2})
	a := mustCertificateFor(t, ic, "a.example")
	b := mustCertificateFor(t, ic, "b.example")
	mustCertificateFor(t, ic, "a.example") // a is now the most recently used
	mustCertificateFor(t, ic, "c.example") // evicts b

	if got := mustCertificateFor(t, ic, "a.example"); got != a {
		t.Error("a.example was evicted, want b.example evicted as least recently used")
	}
	if got := mustCertificateFor(t, ic, "b.example"); got == b {
		t.Error("b.example still cached after eviction")
	}
	if n := len(ic.entries); n != 2 {
		t.Errorf("cache holds %d entries, want 2", n)
	}
	if n := ic.recency.Len(); n != 2 {
		t.Errorf("recency list holds %d entries, want 2", n)
	}
}

func TestInterceptorConcurrent(t *testing.T) {
	ic := NewInterceptor(newTestCA(t), InterceptorOptions{})
	const perHost = 16
	hosts := []string{"a.example", "b.example", "c.example", "127.0.0.1"}

	results := make([][]*tls.Certificate, len(hosts))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, host := range hosts {
		results[i] = make([]*tls.Certificate, perHost)
		for j := range perHost {
			wg.Go(func() {
				<-start
				hello := &tls.ClientHelloInfo{ServerName: host}
				cert, err := ic.GetCertificate(hello)
				if err != nil {
					t.Errorf("GetCertificate(%s): %v", host, err)
				}
				results[i][j] = cert
			})
		}
	}
	close(start)
	wg.Wait()

	for i, host := range hosts {
		for j, cert := range results[i] {
			if cert != results[i][0] {
				t.Errorf("%s: request %d got another leaf than request 0, want one mint per host", host, j)
			}
		}
	}
}

func TestInterceptorWaitCanceled(t *testing.T) {
	ic := NewInterceptor(newTestCA(t), InterceptorOptions{})

	// Stand in for a mint that another goroutine has started.
	entry := &leafEntry{host: "hs9.example", done: make(chan struct{})}
	ic.mu.Lock()
	ic.entries[entry.host] = ic.recency.PushFront(entry)
	ic.mu.Unlock()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := ic.certificate(ctx, "hs9.example")
	if !errors.Is(err, context.Canceled) {
		t.Errorf("certificate with a canceled context error = %v, want context.Canceled", err)
	}

	type result struct {
		cert *tls.Certificate
		err  error
	}
	waiter := make(chan result, 1)
	go func() {
		cert, err := ic.certificate(context.Background(), "hs9.example")
		waiter <- result{cert, err}
	}()
	entry.cert = mustCertificateFor(t, NewInterceptor(newTestCA(t), InterceptorOptions{}), "hs9.example")
	close(entry.done)

	got := <-waiter
	if got.err != nil {
		t.Fatalf("certificate after the mint finished: %v", got.err)
	}
	if got.cert != entry.cert {
		t.Error("waiting request did not receive the result of the mint in progress")
	}
}

func TestInterceptorHandshake(t *testing.T) {
	ca := newTestCA(t)
	ic := NewInterceptor(ca, InterceptorOptions{})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())

	tests := []struct {
		name       string
		serverName string
		roots      *x509.CertPool
		wantErr    bool
	}{
		{"DNS name", "hs9.example", roots, false},
		{"IP address without SNI", "127.0.0.1", roots, false},
		{"client without the CA", "hs9.example", x509.NewCertPool(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := &tls.Config{GetCertificate: ic.GetCertificateWithDefault("127.0.0.1")}
			addr, serverResult := serveOnce(t, server)
			client := &tls.Config{RootCAs: tt.roots, ServerName: tt.serverName}
			state, err := dialTLS(addr, client)
			<-serverResult

			if tt.wantErr {
				var unknown x509.UnknownAuthorityError
				if !errors.As(err, &unknown) {
					t.Errorf("handshake error = %v, want x509.UnknownAuthorityError", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			if n := len(state.PeerCertificates); n != 1 {
				t.Errorf("server sent %d certificates, want 1", n)
			}
			if !MatchesServerName(state.PeerCertificates[0], tt.serverName) {
				t.Errorf("leaf names %q, want %s", PeerNames(state.PeerCertificates[0]), tt.serverName)
			}
			if len(state.VerifiedChains) != 1 || len(state.VerifiedChains[0]) != 2 {
				t.Fatalf("verified chains = %d, want one chain of leaf and CA", len(state.VerifiedChains))
			}
			if !state.VerifiedChains[0][1].Equal(ca.Certificate()) {
				t.Error("verified chain does not end at the interception CA")
			}
		})
	}
}

// dialTLS completes a TLS handshake with addr and returns the client's view.
func dialTLS(addr string, config *tls.Config) (tls.ConnectionState, error) {
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: config}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState(), nil
}

func TestNewInterceptorNilCA(t *testing.T) {
	defer func() {
		want := "certs: NewInterceptor called with a nil CA"
		if got := recover(); got != want {
			t.Errorf("panic = %v, want %q", got, want)
		}
	}()
	NewInterceptor(nil, InterceptorOptions{})
}

func FuzzNormalizeHost(f *testing.F) {
	for _, seed := range []string{
		"hs9.example", "HS9.example", "127.0.0.1", "::1", "[::1]", "[::ffff:127.0.0.1]",
		"fe80::1%eth0", "hs9.example:8448", "[127.0.0.1]", "0x7f.1", "a..b", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, host string) {
		key, ip, err := normalizeHost(host)
		if err != nil {
			if !errors.Is(err, ErrInvalidHost) {
				t.Fatalf("normalizeHost(%q) error %v does not wrap ErrInvalidHost", host, err)
			}
			return
		}
		again, againIP, err := normalizeHost(key)
		if err != nil || again != key || againIP != ip {
			t.Fatalf("normalizeHost(%q) = %q, but normalizeHost(%q) = %q, %v", host, key, key, again, err)
		}
		if !ip.IsValid() {
			if err := servername.Validate(key); err != nil {
				t.Fatalf("DNS key %q is not a valid server name: %v", key, err)
			}
		}
	})
}

func BenchmarkInterceptorCacheHit(b *testing.B) {
	ic := NewInterceptor(mustNewCA(b), InterceptorOptions{})
	hello := &tls.ClientHelloInfo{ServerName: "hs9.example"}
	if _, err := ic.GetCertificate(hello); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ic.GetCertificate(hello); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkInterceptorMint(b *testing.B) {
	ic := NewInterceptor(mustNewCA(b), InterceptorOptions{CacheSize: 1})
	i := 0
	for b.Loop() {
		i++
		if _, err := ic.CertificateFor(fmt.Sprintf("hs%d.example", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func mustNewCA(tb testing.TB) *CA {
	tb.Helper()
	ca, err := NewCA("bordergate benchmark CA", 24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return ca
}
