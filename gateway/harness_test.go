package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

// Names used by the in-process tests.
const (
	localName   = "hs2.test:8448"
	remoteName  = "hs1.test:8481"
	remoteKeyID = "ed25519:test1"
	testRoomID  = "!room:hs1.test:8481"
)

// homeserverStub is the local homeserver's stand-in: it records what the
// gateway forwards and answers with a configurable status.
type homeserverStub struct {
	mu       sync.Mutex
	requests []stubRequest
	status   int
	body     string
	delay    time.Duration
	// paths maps exact request paths to the bodies they respond with.
	paths map[string]string
}

type stubRequest struct {
	method, uri, auth string
	body              []byte
}

func (h *homeserverStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.requests = append(h.requests, stubRequest{r.Method, r.RequestURI, r.Header.Get("Authorization"), body})
	status, answer, delay := h.status, h.body, h.delay
	if body, ok := h.paths[r.URL.Path]; ok {
		status, answer = http.StatusOK, body
	}
	h.mu.Unlock()
	if delay > 0 {
		time.Sleep(delay)
	}
	if status == 0 {
		status = http.StatusOK
	}
	if answer == "" {
		answer = `{"pdus":{}}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, answer)
}

func (h *homeserverStub) received() []stubRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]stubRequest(nil), h.requests...)
}

// testGateway is a running gateway on loopback with a signing remote.
type testGateway struct {
	t       *testing.T
	gw      *Gateway
	url     string
	client  *http.Client
	hs      *homeserverStub
	hsURL   string
	logPath string
	key     ed25519.PrivateKey
	dir     string
	ca      *certs.CA
	// proxyURL is the outbound forward proxy, when started.
	proxyURL string
	// interceptCA issued the certificates the proxy presents.
	interceptCA *certs.CA
	// transparentAddr is the transparent outbound listener, when started.
	transparentAddr string
	// adminURL is the admin listener, whose token file accepts
	// adminToken as "alice".
	adminURL string
}

// adminToken is the admin bearer token of the in-process gateways.
const adminToken = "harness-admin-token"

type gatewayOptions struct {
	// extraAllowlist is appended to the allow-list file, with REMOTE_KEY
	// replaced by the remote server's public key.
	extraAllowlist string
	// policyData is the policy data file.
	policyData string
	// homeserverURL replaces the stub's address.
	homeserverURL string
	timeout       time.Duration
	rooms         string
	// maxConcurrent is inbound.max_concurrent_requests; zero keeps the
	// default.
	maxConcurrent int
	// outbound starts the outbound forward proxy, with peers' certificates
	// verified against the test CA.
	outbound bool
	// requireClientCert sets inbound.tls.require_client_certificate.
	requireClientCert bool
	// altServerName, when set, is a second local server name.
	altServerName string
	// policyConfig, when set, replaces the policy line of the
	// configuration; allowlistConfig replaces the allow-list line.
	policyConfig    string
	allowlistConfig string
	// extraConfig is appended to the configuration.
	extraConfig string
	// decisionLogConfig, when set, replaces the decision_log line of the
	// configuration.
	decisionLogConfig string
	// setup runs in the gateway's directory before the gateway starts,
	// with the remote server's public key in unpadded base64.
	setup func(dir, remoteKey string)
	// allowlistExtra is added inside the allowlist section of the
	// configuration, such as signed_lists.
	allowlistExtra string
	// stateDir, when set, is the state directory instead of a new one.
	stateDir string
	// clock, when set, is the gateway's clock.
	clock *testClock
}

// testClock is a clock that tests move forward.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Now()}
}

// Now returns the clock's time.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func startGateway(t *testing.T, opts gatewayOptions) *testGateway {
	t.Helper()
	dir := t.TempDir()
	ca, err := certs.NewCA("bordergate test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"hs2.test", "127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "cert.pem", string(certPEM))
	writeFile(t, dir, "key.pem", string(keyPEM))
	writeFile(t, dir, "ca.pem", string(ca.CertPEM()))

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "allowlist.yaml", fmt.Sprintf(`servers:
  - server_name: %q
    administration: Ministry One
    pinned_keys: {%q: %q}
    endpoints: ["*"]
%s`, remoteName, remoteKeyID, base64.RawStdEncoding.EncodeToString(pub),
		strings.ReplaceAll(opts.extraAllowlist, "REMOTE_KEY", base64.RawStdEncoding.EncodeToString(pub))))
	data := opts.policyData
	if data == "" {
		data = `{"denied_event_types": ["com.example.forbidden"]}`
	}
	writeFile(t, dir, "policy-data.json", data)
	rooms := opts.rooms
	if rooms == "" {
		rooms = fmt.Sprintf("- room_id: %q\n  room_version: \"10\"\n", testRoomID)
	}
	writeFile(t, dir, "rooms.yaml", rooms)
	writeFile(t, dir, "admin-tokens.yaml", fmt.Sprintf("tokens:\n  - name: alice\n    sha256: %s\n", admin.HashToken(adminToken)))
	stateDir := opts.stateDir
	if stateDir == "" {
		stateDir = "state"
	}
	outboundConfig := ""
	var interceptCA *certs.CA
	if opts.outbound {
		if interceptCA, err = certs.NewCA("bordergate test interception CA", time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := interceptCA.WriteFiles(filepath.Join(dir, "intercept.pem"), filepath.Join(dir, "intercept-key.pem")); err != nil {
			t.Fatal(err)
		}
		outboundConfig = "outbound:\n  proxy_listen: 127.0.0.1:1\n  transparent_listen: 127.0.0.1:1\n" +
			"  intercept_ca: {cert_file: intercept.pem, key_file: intercept-key.pem}\n  federation_ca_file: ca.pem\n" +
			"keys: {ca_file: ca.pem}\n"
	}

	hs := &homeserverStub{}
	hsServer := httptest.NewServer(hs)
	t.Cleanup(hsServer.Close)
	hsURL := hsServer.URL
	if opts.homeserverURL != "" {
		hsURL = opts.homeserverURL
	}
	timeout := opts.timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	serverNames := fmt.Sprintf("%q", localName)
	if opts.altServerName != "" {
		serverNames += fmt.Sprintf(", %q", opts.altServerName)
	}
	if _, err := decisionlog.WriteAuditKeyFiles(filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.pub"), false); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`server_names: [%s]
inbound:
  listen: 127.0.0.1:1
  tls: {cert_file: cert.pem, key_file: key.pem, client_ca_file: ca.pem, require_client_certificate: %t}
  max_concurrent_requests: %d
homeserver: {url: %q, timeout: %s}
state_dir: %q
allowlist: {file: allowlist.yaml%s}
admin: {token_file: admin-tokens.yaml}
rooms: {seed_file: rooms.yaml}
policy: {paths: [%q], data_file: policy-data.json}
decision_log: {file: decisions.jsonl, signing_key_file: audit.key}
%s`, serverNames, opts.requireClientCert, opts.maxConcurrent, hsURL, timeout, stateDir, opts.allowlistExtra, regoDir(t), outboundConfig)
	config += opts.extraConfig
	if opts.policyConfig != "" {
		config = strings.Replace(config, fmt.Sprintf("policy: {paths: [%q], data_file: policy-data.json}\n", regoDir(t)), opts.policyConfig+"\n", 1)
	}
	if opts.allowlistConfig != "" {
		config = strings.Replace(config, "allowlist: {file: allowlist.yaml"+opts.allowlistExtra+"}\n", opts.allowlistConfig+"\n", 1)
	}
	if opts.decisionLogConfig != "" {
		config = strings.Replace(config, "decision_log: {file: decisions.jsonl, signing_key_file: audit.key}\n", opts.decisionLogConfig+"\n", 1)
	}
	if opts.setup != nil {
		opts.setup(dir, base64.RawStdEncoding.EncodeToString(pub))
	}
	writeFile(t, dir, "bordergate.yaml", config)
	cfg, err := LoadConfig(filepath.Join(dir, "bordergate.yaml"))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	now := time.Now
	if opts.clock != nil {
		now = opts.clock.Now
	}
	gw, err := newWithClock(ctx, cfg, log, now)
	if err != nil {
		cancel()
		t.Fatalf("New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 4)
	transparentAddr := ""
	go func() { done <- gw.ServeListener(ctx, ln) }()
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- gw.ServeAdmin(ctx, aln) }()
	proxyURL := ""
	if opts.outbound {
		pln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		proxyURL = "http://" + pln.Addr().String()
		go func() { done <- gw.ServeProxy(ctx, pln) }()
		tln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		transparentAddr = tln.Addr().String()
		go func() { done <- gw.ServeTransparent(ctx, tln) }()
	} else {
		done <- nil
		done <- nil
	}
	t.Cleanup(func() {
		cancel()
		for range cap(done) {
			<-done
		}
		gw.Close()
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "hs2.test"}}}
	return &testGateway{
		t: t, gw: gw, url: "https://" + ln.Addr().String(), client: client, hs: hs, hsURL: hsURL,
		logPath: filepath.Join(dir, "decisions.jsonl"), key: priv, dir: dir, ca: ca,
		proxyURL: proxyURL, interceptCA: interceptCA, transparentAddr: transparentAddr,
		adminURL: "http://" + aln.Addr().String(),
	}
}

func regoDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../rego")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// withClientCertificate returns a copy of tg whose client presents a
// certificate naming serverName, issued by the test CA.
func (tg *testGateway) withClientCertificate(serverName string) *testGateway {
	tg.t.Helper()
	certPEM, keyPEM, err := tg.ca.IssueClient(serverName, time.Hour)
	if err != nil {
		tg.t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		tg.t.Fatal(err)
	}
	base := tg.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	base.Certificates = []tls.Certificate{pair}
	out := *tg
	out.client = &http.Client{Transport: &http.Transport{TLSClientConfig: base}}
	return &out
}

// request sends a request signed by the remote server's pinned key.
func (tg *testGateway) request(method, uri string, body []byte) (*http.Response, map[string]any) {
	tg.t.Helper()
	var content *canonicaljson.Value
	if len(body) > 0 {
		v, err := canonicaljson.Parse(body)
		if err != nil {
			tg.t.Fatalf("test body is not JSON: %v", err)
		}
		content = &v
	}
	creds := xmatrix.Sign(tg.key, remoteKeyID, method, uri, remoteName, localName, content)
	header, err := xmatrix.FormatAuthorization(creds)
	if err != nil {
		tg.t.Fatal(err)
	}
	return tg.raw(method, uri, body, map[string]string{"Authorization": header})
}

// raw sends a request with the given headers and decodes a JSON response.
func (tg *testGateway) raw(method, uri string, body []byte, headers map[string]string) (*http.Response, map[string]any) {
	tg.t.Helper()
	req, err := http.NewRequest(method, tg.url, bytes.NewReader(body))
	if err != nil {
		tg.t.Fatal(err)
	}
	req.URL.Opaque = uri
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := tg.client.Do(req)
	if err != nil {
		tg.t.Fatalf("%s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var decoded map[string]any
	_ = json.Unmarshal(data, &decoded)
	return resp, decoded
}

// records reads the decision log.
func (tg *testGateway) records() []decisionlog.Record {
	tg.t.Helper()
	f, err := os.Open(tg.logPath)
	if err != nil {
		tg.t.Fatal(err)
	}
	defer f.Close()
	var out []decisionlog.Record
	err = decisionlog.Scan(f, func(_ int, rec decisionlog.Record) error {
		out = append(out, rec)
		return nil
	})
	if err != nil {
		tg.t.Fatal(err)
	}
	return out
}

func (tg *testGateway) record(decisionID string) decisionlog.Record {
	tg.t.Helper()
	for _, rec := range tg.records() {
		if rec.DecisionID == decisionID {
			return rec
		}
	}
	tg.t.Fatalf("no decision record %q in the log", decisionID)
	return decisionlog.Record{}
}

// event builds a PDU of the test room, signed by the remote server.
func (tg *testGateway) event(eventType string, content string, depth int) canonicaljson.Value {
	tg.t.Helper()
	text := fmt.Sprintf(`{"room_id":%q,"sender":"@alice:%s","type":%q,"content":%s,"origin_server_ts":%d,"depth":%d,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"auth_events":["$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBE"],"hashes":{},"signatures":{}}`,
		testRoomID, remoteName, eventType, content, 1700000000000+int64(depth)*1000, depth)
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		tg.t.Fatal(err)
	}
	rv, _ := events.LookupRoomVersion("10")
	signed, err := events.SignEvent(v, rv, remoteName, remoteKeyID, tg.key)
	if err != nil {
		tg.t.Fatal(err)
	}
	return signed
}

func eventID(t *testing.T, v canonicaljson.Value) string {
	t.Helper()
	rv, _ := events.LookupRoomVersion("10")
	id, err := events.EventID(v, rv)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// transaction encodes a /send body.
func transactionBody(pdus []canonicaljson.Value, edus string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"origin":%q,"origin_server_ts":1700000000000,"pdus":[`, remoteName)
	for i, p := range pdus {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(canonicaljson.Encode(p))
	}
	b.WriteString("]")
	if edus != "" {
		b.WriteString(`,"edus":` + edus)
	}
	b.WriteString("}")
	return []byte(b.String())
}
