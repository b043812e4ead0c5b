package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// pebbleVersion is the Pebble ACME test server that the tests install with
// go install and run as a separate process.
const pebbleVersion = "v2.10.3"

// testDomain is the name the tests obtain certificates for. The tests' DNS
// server resolves it to 127.0.0.1, so Pebble validates challenges for real
// against listeners on loopback.
const testDomain = "hs2.test"

// lockedBuffer is an io.Writer that goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pebbleBinary returns the path of the Pebble binary in the user cache
// directory ($XDG_CACHE_HOME or ~/.cache on Linux), installing it there with
// go install when it is missing. The test is skipped when go install fails,
// which happens when the Go module proxy cannot be reached.
func pebbleBinary(t *testing.T) string {
	t.Helper()
	cacheDir, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("find user cache directory for the Pebble binary: %v", err)
	}
	binDir := filepath.Join(cacheDir, "bordergate", "pebble-"+pebbleVersion, "bin")
	binary := filepath.Join(binDir, "pebble")
	if _, err := os.Stat(binary); err == nil {
		return binary
	}

	install := exec.Command("go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion)
	install.Env = append(os.Environ(), "GOBIN="+binDir)
	if output, err := install.CombinedOutput(); err != nil {
		t.Skipf("skipping: Pebble %s is not in %s and go install failed "+
			"(is the Go module proxy reachable?): %v\n%s", pebbleVersion, binDir, err, output)
	}
	return binary
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer listener.Close()
	return listener.Addr().(*net.TCPAddr).Port
}

func loopbackAddr(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// startTestDNS serves A records over TCP on 127.0.0.1: testDomain resolves
// to 127.0.0.1 and every other name to NXDOMAIN. Pebble's validation
// authority sends its queries over TCP when given -dnsserver.
func startTestDNS(t *testing.T) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, request *dns.Msg) {
		response := new(dns.Msg)
		response.SetReply(request)
		response.Authoritative = true
		for _, question := range request.Question {
			if !strings.EqualFold(question.Name, dns.Fqdn(testDomain)) {
				response.Rcode = dns.RcodeNameError
				continue
			}
			if question.Qtype == dns.TypeA {
				response.Answer = append(response.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(response)
	})
	server := &dns.Server{Listener: listener, Handler: handler}
	go server.ActivateAndServe()
	t.Cleanup(func() { server.Shutdown() })
	return listener.Addr().String()
}

// pebbleOptions are the settings that differ between the tests' Pebble
// servers.
type pebbleOptions struct {
	httpPort int           // port of HTTP-01 validation requests
	tlsPort  int           // port of TLS-ALPN-01 validation connections
	validity time.Duration // lifetime of issued certificates, whole seconds
}

// pebbleServer is a running Pebble process.
type pebbleServer struct {
	directoryURL string
	// listenerCAFile is the PEM file of the CA that issued the certificate
	// of Pebble's own HTTPS listeners.
	listenerCAFile string
	// issuingRoots contains Pebble's root, which is generated at start.
	issuingRoots *x509.CertPool
	output       *lockedBuffer
	stop         func()
}

// startPebble writes a Pebble configuration into a temporary directory,
// starts Pebble with the tests' DNS server and waits until its directory and
// management interface respond. The process is killed at the end of the test.
func startPebble(t *testing.T, opts pebbleOptions) *pebbleServer {
	t.Helper()
	binary := pebbleBinary(t)
	dir := t.TempDir()

	ca := newTestCA(t)
	listenerCAFile := filepath.Join(dir, "listener-ca.pem")
	if err := os.WriteFile(listenerCAFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, "listener.pem")
	keyFile := filepath.Join(dir, "listener-key.pem")
	writeServerPair(t, ca, certFile, keyFile, "127.0.0.1", "localhost")

	listenAddr := loopbackAddr(freePort(t))
	managementAddr := loopbackAddr(freePort(t))
	config := map[string]any{
		"pebble": map[string]any{
			"listenAddress":           listenAddr,
			"managementListenAddress": managementAddr,
			"certificate":             certFile,
			"privateKey":              keyFile,
			"httpPort":                opts.httpPort,
			"tlsPort":                 opts.tlsPort,
			"ocspResponderURL":        "",
			"keyAlgorithm":            "ecdsa",
			// Zero leaves out the Retry-After header, so the client polls
			// without waiting seconds between polls.
			"retryAfter": map[string]int{"authz": 0, "order": 0},
			"profiles": map[string]any{
				"default": map[string]any{
					"description":    "bordergate tests",
					"validityPeriod": int(opts.validity / time.Second),
				},
			},
		},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "pebble-config.json")
	if err := os.WriteFile(configFile, configJSON, 0o644); err != nil {
		t.Fatal(err)
	}

	output := &lockedBuffer{}
	cmd := exec.Command(binary, "-config", configFile, "-dnsserver", startTestDNS(t))
	// PEBBLE_VA_NOSLEEP removes the random wait of up to 5 seconds before
	// each validation. PEBBLE_AUTHZREUSE=0 makes every order validate again,
	// so that a renewal runs a challenge too.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0")
	cmd.Stdout = output
	cmd.Stderr = output
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Pebble: %v", err)
	}
	var stopOnce sync.Once
	stop := func() {
		stopOnce.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("Pebble output:\n%s", output)
		}
	})

	server := &pebbleServer{
		directoryURL:   "https://" + listenAddr + "/dir",
		listenerCAFile: listenerCAFile,
		output:         output,
		stop:           stop,
	}
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: poolOf(ca.Certificate())}},
	}
	waitForHTTP(t, client, server.directoryURL, output)
	rootPEM := waitForHTTP(t, client, "https://"+managementAddr+"/roots/0", output)
	server.issuingRoots = x509.NewCertPool()
	if !server.issuingRoots.AppendCertsFromPEM(rootPEM) {
		t.Fatalf("Pebble root from /roots/0 is not a PEM certificate:\n%s", rootPEM)
	}
	return server
}

func poolOf(certs ...*x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool
}

// waitForHTTP fetches url until it returns 200, for up to 10 seconds, and
// returns the body.
func waitForHTTP(t *testing.T, client *http.Client, url string, pebbleOutput *lockedBuffer) []byte {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		response, err := client.Get(url)
		if err == nil {
			body, readErr := io.ReadAll(response.Body)
			response.Body.Close()
			if readErr == nil && response.StatusCode == http.StatusOK {
				return body
			}
			err = fmt.Errorf("status %d, read error %v", response.StatusCode, readErr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pebble did not respond to GET %s within 10s: %v\nPebble output:\n%s", url, err, pebbleOutput)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// inboundServer is a TLS listener built once from a TLS configuration. It
// completes a handshake on every connection and counts the handshakes that
// negotiated "acme-tls/1", which only Pebble's TLS-ALPN-01 validation offers.
type inboundServer struct {
	addr           string
	acmeHandshakes atomic.Int32
}

func startInbound(t *testing.T, addr string, config *tls.Config) *inboundServer {
	t.Helper()
	listener, err := tls.Listen("tcp", addr, config)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	server := &inboundServer{addr: listener.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		listener.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				tlsConn := conn.(*tls.Conn)
				tlsConn.SetDeadline(time.Now().Add(5 * time.Second))
				if tlsConn.Handshake() != nil {
					return
				}
				if tlsConn.ConnectionState().NegotiatedProtocol == "acme-tls/1" {
					server.acmeHandshakes.Add(1)
				}
			})
		}
	})
	return server
}

// fetchLeaf completes a TLS handshake with addr for serverName, verifying the
// chain against roots, and returns the server's leaf certificate.
func fetchLeaf(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	dialer := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config:    &tls.Config{RootCAs: roots, ServerName: serverName},
	}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// fetchLeafWithoutSNI completes a TLS handshake with addr without a server
// name, so the client sends no SNI extension, and returns the server's leaf
// certificate unverified.
func fetchLeafWithoutSNI(addr string) (*x509.Certificate, error) {
	dialer := &tls.Dialer{
		NetDialer: &net.Dialer{Timeout: 5 * time.Second},
		Config:    &tls.Config{InsecureSkipVerify: true},
	}
	conn, err := dialer.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// newTestACMEConfig returns a configuration for testDomain against pebble,
// with no challenge enabled yet.
func newTestACMEConfig(t *testing.T, pebble *pebbleServer, logs io.Writer) ACMEConfig {
	t.Helper()
	return ACMEConfig{
		CAURL:      pebble.directoryURL,
		CARootFile: pebble.listenerCAFile,
		Email:      "ops@hs2.test",
		Domains:    []string{testDomain},
		StorageDir: filepath.Join(t.TempDir(), "acme"),
		Logger:     slogJSONLogger(logs),
	}
}

func newTestACMEManager(t *testing.T, cfg ACMEConfig) *ACMEManager {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	manager, err := NewACMEManager(ctx, cfg)
	if err != nil {
		t.Fatalf("NewACMEManager: %v", err)
	}
	t.Cleanup(manager.Close)
	return manager
}

func TestACMEManagerObtainsWithHTTPChallenge(t *testing.T) {
	httpPort := freePort(t)
	pebble := startPebble(t, pebbleOptions{httpPort: httpPort, tlsPort: freePort(t), validity: 24 * time.Hour})
	logs := &lockedBuffer{}
	cfg := newTestACMEConfig(t, pebble, logs)
	cfg.HTTPChallengeAddr = loopbackAddr(httpPort)

	start := time.Now()
	manager := newTestACMEManager(t, cfg)
	t.Logf("obtained the certificate in %s", time.Since(start).Round(time.Millisecond))

	config := manager.TLSConfig()
	if config.NextProtos != nil {
		t.Errorf("NextProtos = %q, want nil without TLS-ALPN on the inbound listener", config.NextProtos)
	}
	if config.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %#x, want TLS 1.2 (%#x)", config.MinVersion, tls.VersionTLS12)
	}
	inbound := startInbound(t, "127.0.0.1:0", config)
	leaf, err := fetchLeaf(inbound.addr, testDomain, pebble.issuingRoots)
	if err != nil {
		t.Fatalf("handshake for %s with Pebble's root: %v", testDomain, err)
	}
	if !slices.Equal(leaf.DNSNames, []string{testDomain}) {
		t.Errorf("leaf DNSNames = %q, want [%s]", leaf.DNSNames, testDomain)
	}
	if _, err := fetchLeaf(inbound.addr, "other.test", pebble.issuingRoots); err == nil {
		t.Error("handshake for other.test succeeded, want an error: no certificate is managed for it")
	}
	withoutSNI, err := fetchLeafWithoutSNI(inbound.addr)
	if err != nil {
		t.Fatalf("handshake without SNI: %v", err)
	}
	if withoutSNI.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("serial without SNI = %x, want the %s certificate's %x", withoutSNI.SerialNumber, testDomain, leaf.SerialNumber)
	}

	wantRequest := fmt.Sprintf("Attempting to validate w/ HTTP: http://%s:%d/.well-known/acme-challenge/", testDomain, httpPort)
	if !strings.Contains(pebble.output.String(), wantRequest) {
		t.Errorf("Pebble output does not contain %q: the HTTP-01 challenge was not validated", wantRequest)
	}
	checkLogRecord(t, logs, "certificate obtained successfully", "obtain", testDomain)

	// A restart with the same storage loads the stored certificate and does
	// not contact the CA, which is stopped now.
	pebble.stop()
	manager.Close()
	restarted := newTestACMEManager(t, cfg)
	restartedInbound := startInbound(t, "127.0.0.1:0", restarted.TLSConfig())
	reloaded, err := fetchLeaf(restartedInbound.addr, testDomain, pebble.issuingRoots)
	if err != nil {
		t.Fatalf("handshake after restart: %v", err)
	}
	if reloaded.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
		t.Errorf("serial after restart = %x, want the stored certificate's %x", reloaded.SerialNumber, leaf.SerialNumber)
	}
}

func TestACMEManagerRenewsThroughInboundListener(t *testing.T) {
	// Pebble connects to the inbound port for TLS-ALPN-01. certmagic solves
	// the first challenge on its own listener there, and the inbound
	// listener solves the renewal's challenge.
	inboundPort := freePort(t)
	const validity = 15 * time.Second
	pebble := startPebble(t, pebbleOptions{httpPort: freePort(t), tlsPort: inboundPort, validity: validity})
	logs := &lockedBuffer{}
	cfg := newTestACMEConfig(t, pebble, logs)
	cfg.TLSALPNChallengeAddr = loopbackAddr(inboundPort)
	cfg.TLSALPNOnInbound = true
	cfg.RenewCheckInterval = time.Second

	manager := newTestACMEManager(t, cfg)
	config := manager.TLSConfig()
	if !slices.Equal(config.NextProtos, []string{"acme-tls/1"}) {
		t.Errorf("NextProtos = %q, want [acme-tls/1]", config.NextProtos)
	}
	inbound := startInbound(t, loopbackAddr(inboundPort), config)
	first, err := fetchLeaf(inbound.addr, testDomain, pebble.issuingRoots)
	if err != nil {
		t.Fatalf("handshake for %s with Pebble's root: %v", testDomain, err)
	}
	// NotAfter is inclusive (RFC 5280), so Pebble sets it one second short
	// of the validity period.
	if got := first.NotAfter.Sub(first.NotBefore).Round(time.Second) + time.Second; got != validity {
		t.Fatalf("certificate lifetime = %s, want Pebble's configured %s", got, validity)
	}

	start := time.Now()
	deadline := first.NotAfter.Add(10 * time.Second)
	var renewed *x509.Certificate
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		leaf, err := fetchLeaf(inbound.addr, testDomain, pebble.issuingRoots)
		if err != nil {
			t.Fatalf("handshake while waiting for renewal: %v", err)
		}
		if leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			renewed = leaf
			break
		}
	}
	if renewed == nil {
		t.Fatalf("the listener still served serial %x at %s, 10s after it expired: no renewal", first.SerialNumber, deadline.Format(time.RFC3339))
	}
	t.Logf("renewed certificate served %s after the first handshake", time.Since(start).Round(time.Millisecond))

	if !slices.Equal(renewed.DNSNames, []string{testDomain}) {
		t.Errorf("renewed leaf DNSNames = %q, want [%s]", renewed.DNSNames, testDomain)
	}
	if renewed.NotBefore.Before(first.NotBefore) {
		t.Errorf("renewed NotBefore %s is before the first certificate's %s", renewed.NotBefore, first.NotBefore)
	}
	if got := inbound.acmeHandshakes.Load(); got == 0 {
		t.Error("the inbound listener completed no acme-tls/1 handshake: the renewal's TLS-ALPN-01 challenge did not reach it")
	}
	checkLogRecord(t, logs, "certificate renewed successfully", "renew", testDomain)
}

func TestACMEManagerUnreachableCA(t *testing.T) {
	caURL := "https://" + loopbackAddr(freePort(t)) + "/dir"
	cfg := ACMEConfig{
		CAURL:             caURL,
		Email:             "ops@hs2.test",
		Domains:           []string{testDomain},
		StorageDir:        t.TempDir(),
		HTTPChallengeAddr: loopbackAddr(freePort(t)),
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	manager, err := NewACMEManager(ctx, cfg)
	if err == nil {
		manager.Close()
		t.Fatal("NewACMEManager succeeded without a CA listening")
	}
	wantPrefix := "ACME: obtain certificate from " + caURL + ": "
	if !strings.HasPrefix(err.Error(), wantPrefix) {
		t.Errorf("error = %q, want prefix %q", err, wantPrefix)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q, want it to name the refused connection", err)
	}
}

func TestNewACMEManagerConfigErrors(t *testing.T) {
	missingRootFile := filepath.Join(t.TempDir(), "missing-root.pem")
	notPEMRootFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(notPEMRootFile, []byte("not PEM\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	valid := ACMEConfig{
		CAURL:             "https://127.0.0.1:14000/dir",
		Email:             "ops@hs2.test",
		Domains:           []string{testDomain},
		StorageDir:        t.TempDir(),
		HTTPChallengeAddr: "127.0.0.1:5002",
	}
	tests := []struct {
		name    string
		modify  func(*ACMEConfig)
		wantErr string
	}{
		{
			"missing CA URL", func(c *ACMEConfig) { c.CAURL = "" },
			"ACME config: CA URL is missing: set the ACME directory URL of the CA",
		},
		{
			"http CA URL", func(c *ACMEConfig) { c.CAURL = "http://127.0.0.1:14000/dir" },
			`ACME config: CA URL "http://127.0.0.1:14000/dir" is invalid: expected an https URL of an ACME directory`,
		},
		{
			"CA URL without host", func(c *ACMEConfig) { c.CAURL = "https:///dir" },
			`ACME config: CA URL "https:///dir" is invalid: expected an https URL of an ACME directory`,
		},
		{
			"missing email", func(c *ACMEConfig) { c.Email = "" },
			"ACME config: email is missing: set the contact address of the ACME account",
		},
		{
			"no domains", func(c *ACMEConfig) { c.Domains = nil },
			"ACME config: no domains given: set at least one DNS name for the certificate",
		},
		{
			"empty domain", func(c *ACMEConfig) { c.Domains = []string{testDomain, ""} },
			"ACME config: empty domain",
		},
		{
			"wildcard domain", func(c *ACMEConfig) { c.Domains = []string{"*.hs2.test"} },
			`ACME config: domain "*.hs2.test" is a wildcard: wildcards need the DNS-01 challenge, which is not supported`,
		},
		{
			"domain with port", func(c *ACMEConfig) { c.Domains = []string{"hs2.test:8448"} },
			`ACME config: domain "hs2.test:8448" is not a DNS name: pass the host name only, without port`,
		},
		{
			"missing storage directory", func(c *ACMEConfig) { c.StorageDir = "" },
			"ACME config: storage directory is missing",
		},
		{
			"negative renewal check interval", func(c *ACMEConfig) { c.RenewCheckInterval = -time.Second },
			"ACME config: renewal check interval -1s is negative",
		},
		{
			"no challenge", func(c *ACMEConfig) { c.HTTPChallengeAddr = "" },
			"ACME config: no challenge enabled: set the HTTP challenge address, the TLS-ALPN challenge address or both",
		},
		{
			"TLS-ALPN on inbound without address", func(c *ACMEConfig) { c.TLSALPNOnInbound = true },
			"ACME config: TLS-ALPN challenge on the inbound listener needs the TLS-ALPN challenge address",
		},
		{
			"HTTP challenge address without port", func(c *ACMEConfig) { c.HTTPChallengeAddr = "127.0.0.1" },
			`ACME config: HTTP challenge address: "127.0.0.1" is not a host:port address: address 127.0.0.1: missing port in address`,
		},
		{
			"TLS-ALPN challenge port out of range", func(c *ACMEConfig) { c.TLSALPNChallengeAddr = "127.0.0.1:65536" },
			`ACME config: TLS-ALPN challenge address: "127.0.0.1:65536" has an invalid port: expected a number from 1 to 65535`,
		},
		{
			"named challenge port", func(c *ACMEConfig) { c.HTTPChallengeAddr = "127.0.0.1:http" },
			`ACME config: HTTP challenge address: "127.0.0.1:http" has an invalid port: expected a number from 1 to 65535`,
		},
		{
			"challenge hosts differ", func(c *ACMEConfig) { c.TLSALPNChallengeAddr = "127.0.0.2:5001" },
			`ACME config: HTTP challenge host "127.0.0.1" and TLS-ALPN challenge host "127.0.0.2" differ: certmagic listens on one host for both`,
		},
		{
			"unreadable CA root file", func(c *ACMEConfig) { c.CARootFile = missingRootFile },
			"ACME config: CA root file: read certificate file: open " + missingRootFile + ": no such file or directory",
		},
		{
			"CA root file without certificate", func(c *ACMEConfig) { c.CARootFile = notPEMRootFile },
			"ACME config: CA root file: certificate file " + notPEMRootFile + ": no PEM CERTIFICATE block found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.modify(&cfg)
			manager, err := NewACMEManager(t.Context(), cfg)
			if err == nil {
				manager.Close()
				t.Fatalf("NewACMEManager succeeded, want error %q", tt.wantErr)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("NewACMEManager error = %q, want %q", err, tt.wantErr)
			}
		})
	}
}

// checkLogRecord fails the test unless the JSON log in logs contains a record
// with message msg, logger name logger and identifier identifier, which shows
// that certmagic's zap entries reach the slog handler with their fields.
func checkLogRecord(t *testing.T, logs *lockedBuffer, msg, logger, identifier string) {
	t.Helper()
	for line := range strings.Lines(logs.String()) {
		var record map[string]any
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		if record["msg"] == msg && record["logger"] == logger && record["identifier"] == identifier {
			return
		}
	}
	t.Errorf("no log record with msg %q, logger %q and identifier %q in:\n%s", msg, logger, identifier, logs)
}

// TestACMESlogCoreFields checks the zap to slog bridge without a CA: levels,
// the logger name, fields added with With and the renamed error field.
func TestACMESlogCoreFields(t *testing.T) {
	logs := &lockedBuffer{}
	core := &slogCore{handler: slogJSONLogger(logs).Handler()}
	if core.Enabled(zapcore.DebugLevel) {
		t.Error("Enabled(debug) = true, want false for a handler at info level")
	}
	zapLogger := zap.New(core).Named("maintenance").With(zap.String("cache", "c1"))
	zapLogger.Debug("dropped")
	zapLogger.Warn("renewing", zap.String("identifier", testDomain), zap.Error(fs.ErrNotExist))

	lines := slices.Collect(strings.Lines(logs.String()))
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1 (the debug entry is below the handler level):\n%s", len(lines), logs)
	}
	var record map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &record); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"level":      "WARN",
		"msg":        "renewing",
		"logger":     "maintenance",
		"cache":      "c1",
		"identifier": testDomain,
		"err":        "file does not exist",
	}
	for key, value := range want {
		if record[key] != value {
			t.Errorf("record[%q] = %v, want %v", key, record[key], value)
		}
	}
}

// slogJSONLogger returns a logger that writes JSON records at info level and
// above to w.
func slogJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}
