package gateway

// Attacks on the outbound half: the local homeserver's requests through the
// forward proxy and the transparent listener, and the filtering of the
// peers' responses. Each subtest asserts the secure outcome, so a failing
// subtest is a weakness of the gateway.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

// leakMarker is the content of every denied event in these tests. A
// response or a request that contains it has let the denied content through.
const leakMarker = "leaked-secret"

var deniedContent = fmt.Sprintf(`{"secret":%q}`, leakMarker)

// peerRequest is one request that the scripted peer received.
type peerRequest struct {
	method, uri string
	header      http.Header
	body        []byte
}

// scriptedPeer is a remote homeserver on loopback whose responses each
// test sets per path. Paths without a handler get 200 {"pdus":{}}.
type scriptedPeer struct {
	mu       sync.Mutex
	requests []peerRequest
	handlers map[string]http.HandlerFunc
}

func (p *scriptedPeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.requests = append(p.requests, peerRequest{r.Method, r.RequestURI, r.Header.Clone(), body})
	handler := p.handlers[r.URL.Path]
	p.mu.Unlock()
	if handler == nil {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"pdus":{}}`)
		return
	}
	handler(w, r)
}

func (p *scriptedPeer) handle(path string, handler http.HandlerFunc) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.handlers[path] = handler
}

// respond makes the peer respond to requests for path with status and a
// JSON body.
func (p *scriptedPeer) respond(path string, status int, body string) {
	p.handle(path, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	})
}

// received returns the requests the peer received for path.
func (p *scriptedPeer) received(path string) []peerRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []peerRequest
	for _, r := range p.requests {
		if u, err := url.ParseRequestURI(r.uri); err == nil && u.Path == path {
			out = append(out, r)
		}
	}
	return out
}

// hostileSetup is a gateway with its outbound listeners, the scripted peer
// peerName on the allow-list at a pinned loopback address, and the signing
// keys of the local homeserver and of the peer.
type hostileSetup struct {
	*outboundSetup
	remote   *scriptedPeer
	peerKey  ed25519.PrivateKey
	peerAddr string
}

type hostileOptions struct {
	// extraAllowlist is appended to the allow-list after the peer's entry.
	extraAllowlist string
	// maxConcurrent is inbound.max_concurrent_requests, and zero keeps the
	// default.
	maxConcurrent int
}

func startHostileOutbound(t *testing.T, opts hostileOptions) *hostileSetup {
	t.Helper()
	remote := &scriptedPeer{handlers: map[string]http.HandlerFunc{}}
	peerServer := httptest.NewUnstartedServer(remote)
	peerServer.Listener.Close()
	ln, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	peerServer.Listener = ln
	allowlist := fmt.Sprintf("  - server_name: %q\n    address: %q\n    endpoints: [\"*\"]\n%s",
		peerName, ln.Addr().String(), opts.extraAllowlist)
	tg := startGateway(t, gatewayOptions{outbound: true, extraAllowlist: allowlist, maxConcurrent: opts.maxConcurrent})
	_, localKey, _ := ed25519.GenerateKey(rand.Reader)
	tg.hs.paths = map[string]string{"/_matrix/key/v2/server": localKeyResponse(t, localKey)}

	certPEM, keyPEM, err := tg.ca.IssueServer([]string{peerName}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	peerServer.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	peerServer.StartTLS()
	t.Cleanup(peerServer.Close)

	_, peerKey, _ := ed25519.GenerateKey(rand.Reader)
	remote.respond("/_matrix/key/v2/server", http.StatusOK, keyResponse(t, peerName, peerKey))

	proxy, err := url.Parse(tg.proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: interceptPool(tg)},
	}}
	return &hostileSetup{
		outboundSetup: &outboundSetup{tg: tg, localKey: localKey, client: client},
		remote:        remote,
		peerKey:       peerKey,
		peerAddr:      ln.Addr().String(),
	}
}

func interceptPool(tg *testGateway) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(tg.interceptCA.Certificate())
	return pool
}

// do sends a request through the proxy with the given headers and returns
// the response, or the error of a request that got none.
func (s *hostileSetup) do(t *testing.T, method, serverName, uri string, body []byte, header http.Header) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequest(method, "https://"+serverName+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		for _, v := range values {
			req.Header.Add(name, v)
		}
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, data, err
}

// authorization returns an X-Matrix header of the local server signed with
// key for destination.
func authorization(t *testing.T, key ed25519.PrivateKey, keyID, method, uri, destination string, body []byte) string {
	t.Helper()
	var content *canonicaljson.Value
	if len(body) > 0 {
		v, err := canonicaljson.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		content = &v
	}
	header, err := xmatrix.FormatAuthorization(xmatrix.Sign(key, keyID, method, uri, localName, destination, content))
	if err != nil {
		t.Fatal(err)
	}
	return header
}

// hostileEventText returns a room version 10 event of the test room as JSON
// text. An empty stateKey makes a message-like event without state_key.
func hostileEventText(sender, eventType, stateKey, content string, depth int) string {
	stateField := ""
	if stateKey != "" {
		stateField = fmt.Sprintf(`"state_key":%q,`, stateKey)
	}
	return fmt.Sprintf(`{"room_id":%q,"sender":%q,"type":%q,%s"content":%s,"origin_server_ts":%d,"depth":%d,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"auth_events":[],"hashes":{},"signatures":{}}`,
		testRoomID, sender, eventType, stateField, content, 1700000000000+int64(depth), depth)
}

// signHostileEvent signs a room version 10 event as server with key ID
// ed25519:local.
func signHostileEvent(t *testing.T, text, server string, key ed25519.PrivateKey) canonicaljson.Value {
	t.Helper()
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	rv, _ := events.LookupRoomVersion("10")
	signed, err := events.SignEvent(v, rv, server, "ed25519:local", key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// peerEvent returns an event of carol on the peer, signed with the key the
// peer publishes.
func (s *hostileSetup) peerEvent(t *testing.T, eventType, stateKey, content string, depth int) canonicaljson.Value {
	t.Helper()
	return signHostileEvent(t, hostileEventText("@carol:"+peerName, eventType, stateKey, content, depth), peerName, s.peerKey)
}

// localMember returns a membership event of bob on the local server, signed
// with the local key.
func (s *hostileSetup) localMember(t *testing.T, stateKey, membership string, depth int) canonicaljson.Value {
	t.Helper()
	content := fmt.Sprintf(`{"membership":%q}`, membership)
	return signHostileEvent(t, hostileEventText("@bob:"+localName, "m.room.member", stateKey, content, depth), localName, s.localKey)
}

func parseJSON(t *testing.T, text string) canonicaljson.Value {
	t.Helper()
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// backfillResponse encodes a backfill response of the peer that contains
// pdus.
func backfillResponse(pdus ...canonicaljson.Value) string {
	parts := make([]string, len(pdus))
	for i, p := range pdus {
		parts[i] = string(canonicaljson.Encode(p))
	}
	return fmt.Sprintf(`{"origin":%q,"origin_server_ts":1,"pdus":[%s]}`, peerName, strings.Join(parts, ","))
}

func encodeAll(pdus ...canonicaljson.Value) string {
	parts := make([]string, len(pdus))
	for i, p := range pdus {
		parts[i] = string(canonicaljson.Encode(p))
	}
	return strings.Join(parts, ",")
}

// expectNoLeak fails when text contains a marker of content that must not
// have crossed.
func expectNoLeak(t *testing.T, what string, text []byte, marker string) {
	t.Helper()
	if bytes.Contains(text, []byte(marker)) {
		t.Errorf("%s contains %q: %.300s", what, marker, text)
	}
}

func expectNotSuccess(t *testing.T, resp *http.Response, answer []byte) {
	t.Helper()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		t.Errorf("status %d, want an error status; response %.300s", resp.StatusCode, answer)
	}
}

// connect opens a CONNECT tunnel to target through the proxy and returns
// the raw connection once the proxy has accepted it.
func (s *hostileSetup) connect(t *testing.T, target string) net.Conn {
	t.Helper()
	proxy, err := url.Parse(s.tg.proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", proxy.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target); err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatalf("CONNECT %s: %v", target, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT %s: status %d", target, resp.StatusCode)
	}
	return &bufferedConn{Conn: conn, r: reader}
}

// tunnel opens a CONNECT tunnel to target and starts TLS in it with
// serverName as SNI. An IP address as serverName sends no SNI.
func (s *hostileSetup) tunnel(t *testing.T, target, serverName string) *tls.Conn {
	t.Helper()
	conn := tls.Client(s.connect(t, target), &tls.Config{RootCAs: interceptPool(s.tg), ServerName: serverName})
	if err := conn.Handshake(); err != nil {
		t.Fatalf("TLS in the tunnel to %s: %v", target, err)
	}
	return conn
}

// tunnelRoundTrip writes one raw HTTP request on conn and reads the
// response.
func tunnelRoundTrip(t *testing.T, conn net.Conn, request string) (*http.Response, []byte) {
	t.Helper()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// rawSignedRequest returns the text of an HTTP/1.1 request with the given
// Host header and Authorization header.
func rawSignedRequest(method, uri, host, auth string, body []byte) string {
	return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		method, uri, host, auth, len(body), body)
}

// countingListener accepts and closes connections on loopback, counting
// them, so that a test can tell whether the gateway connected.
type countingListener struct {
	ln       net.Listener
	accepted atomic.Int32
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	c := &countingListener{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			conn.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return c
}

// keyObject returns a key object of serverName that lists listed under
// keyID and is signed by signer under the same key ID.
func keyObject(t *testing.T, serverName, keyID string, listed ed25519.PublicKey, signer ed25519.PrivateKey) string {
	t.Helper()
	unsigned := fmt.Sprintf(`{"server_name":%q,"valid_until_ts":%d,"verify_keys":{%q:{"key":%q}}}`,
		serverName, time.Now().Add(time.Hour).UnixMilli(), keyID, base64.RawStdEncoding.EncodeToString(listed))
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(signer, canonicaljson.Encode(parseJSON(t, unsigned))))
	return strings.TrimSuffix(unsigned, "}") + fmt.Sprintf(`,"signatures":{%q:{%q:%q}}}`, serverName, keyID, sig)
}

// notaryServerNames returns the server_name of every object in a notary
// response.
func notaryServerNames(t *testing.T, answer []byte) []string {
	t.Helper()
	var decoded struct {
		ServerKeys []struct {
			ServerName string                       `json:"server_name"`
			VerifyKeys map[string]map[string]string `json:"verify_keys"`
		} `json:"server_keys"`
	}
	if err := json.Unmarshal(answer, &decoded); err != nil {
		t.Fatalf("notary response %s: %v", answer, err)
	}
	names := make([]string, 0, len(decoded.ServerKeys))
	for _, k := range decoded.ServerKeys {
		names = append(names, k.ServerName)
	}
	return names
}

func findRecord(records []decisionlog.Record, match func(decisionlog.Record) bool) (decisionlog.Record, bool) {
	for _, rec := range records {
		if rec.Matrix != nil && match(rec) {
			return rec, true
		}
	}
	return decisionlog.Record{}, false
}

func TestHostileOutboundRequests(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{})
	message := s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3)
	body := outboundTransaction(message)

	t.Run("unsigned transaction", func(t *testing.T) {
		uri := "/_matrix/federation/v1/send/u1"
		resp, answer, err := s.do(t, http.MethodPut, peerName, uri, body, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401; answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(uri)); n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("key the homeserver does not publish", func(t *testing.T) {
		uri := "/_matrix/federation/v1/send/u2"
		_, stranger, _ := ed25519.GenerateKey(rand.Reader)
		header := http.Header{"Authorization": {authorization(t, stranger, "ed25519:local", http.MethodPut, uri, peerName, body)}}
		resp, answer, err := s.do(t, http.MethodPut, peerName, uri, body, header)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401; answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(uri)); n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("signed for another destination", func(t *testing.T) {
		uri := "/_matrix/federation/v1/send/u3"
		content := parseJSON(t, string(body))
		creds := xmatrix.Sign(s.localKey, "ed25519:local", http.MethodPut, uri, localName, "other.test", &content)
		creds.Destination = peerName
		value, err := xmatrix.FormatAuthorization(creds)
		if err != nil {
			t.Fatal(err)
		}
		resp, answer, err := s.do(t, http.MethodPut, peerName, uri, body, http.Header{"Authorization": {value}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401; answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(uri)); n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("tunnel host differs from destination", func(t *testing.T) {
		// The tunnel and the Host header name an unlisted server, but the
		// signature names the peer. The request may only go to the server
		// that was checked, and its record must name that server.
		uri := "/_matrix/federation/v1/send/u4"
		conn := s.tunnel(t, "unlisted.test:443", "unlisted.test")
		auth := authorization(t, s.localKey, "ed25519:local", http.MethodPut, uri, peerName, body)
		resp, answer := tunnelRoundTrip(t, conn, rawSignedRequest(http.MethodPut, uri, "unlisted.test", auth, body))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(uri)); n != 1 {
			t.Errorf("peer received %d requests, want the one that was checked for it", n)
		}
		rec := s.tg.record(resp.Header.Get(headerDecisionID))
		if rec.Matrix.Destination != peerName {
			t.Errorf("record destination %q, want %q, the server the request went to", rec.Matrix.Destination, peerName)
		}
	})

	t.Run("unlisted destination in a peer tunnel", func(t *testing.T) {
		uri := "/_matrix/federation/v1/send/u5"
		conn := s.tunnel(t, peerName+":443", peerName)
		auth := authorization(t, s.localKey, "ed25519:local", http.MethodPut, uri, "unlisted.test", body)
		resp, answer := tunnelRoundTrip(t, conn, rawSignedRequest(http.MethodPut, uri, peerName, auth, body))
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403; answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(uri)); n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("headers naming two destinations", func(t *testing.T) {
		uri := "/_matrix/federation/v1/send/u6"
		header := http.Header{"Authorization": {
			authorization(t, s.localKey, "ed25519:local", http.MethodPut, uri, peerName, body),
			authorization(t, s.localKey, "ed25519:local", http.MethodPut, uri, "unlisted.test", body),
		}}
		resp, answer, err := s.do(t, http.MethodPut, peerName, uri, body, header)
		if err != nil {
			t.Fatal(err)
		}
		expectNotSuccess(t, resp, answer)
		if n := len(s.remote.received(uri)); n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("unverifiable second header is dropped", func(t *testing.T) {
		uri := "/_matrix/federation/v1/send/u7"
		_, stranger, _ := ed25519.GenerateKey(rand.Reader)
		good := authorization(t, s.localKey, "ed25519:local", http.MethodPut, uri, peerName, body)
		header := http.Header{"Authorization": {good, authorization(t, stranger, "ed25519:unknown", http.MethodPut, uri, peerName, body)}}
		resp, answer, err := s.do(t, http.MethodPut, peerName, uri, body, header)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		got := s.remote.received(uri)
		if len(got) != 1 {
			t.Fatalf("peer received %d requests, want 1", len(got))
		}
		if values := got[0].header.Values("Authorization"); len(values) != 1 || strings.Contains(values[0], "ed25519:unknown") {
			t.Errorf("peer received Authorization %q, want only the verified header", values)
		}
	})

	t.Run("tunnel to peer loopback address", func(t *testing.T) {
		path := "/_matrix/federation/v1/version"
		before := len(s.remote.received(path))
		host, _, _ := net.SplitHostPort(s.peerAddr)
		conn := s.tunnel(t, s.peerAddr, host)
		resp, answer := tunnelRoundTrip(t, conn, "GET "+path+" HTTP/1.1\r\nHost: "+s.peerAddr+"\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403; answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(path)) - before; n != 0 {
			t.Errorf("the loopback address received %d requests, want none", n)
		}
	})

	t.Run("tunnel request without Host", func(t *testing.T) {
		path := "/_matrix/federation/v1/version"
		before := len(s.remote.received(path))
		conn := s.tunnel(t, "unlisted.test:443", "unlisted.test")
		resp, answer := tunnelRoundTrip(t, conn, "GET "+path+" HTTP/1.0\r\n\r\n")
		expectNotSuccess(t, resp, answer)
		if n := len(s.remote.received(path)) - before; n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("transparent request without Host", func(t *testing.T) {
		path := "/_matrix/federation/v1/version"
		before := len(s.remote.received(path))
		conn, err := tls.Dial("tcp", s.tg.transparentAddr, &tls.Config{RootCAs: interceptPool(s.tg), ServerName: peerName})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, answer := tunnelRoundTrip(t, conn, "GET "+path+" HTTP/1.0\r\n\r\n")
		expectNotSuccess(t, resp, answer)
		if n := len(s.remote.received(path)) - before; n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("transparent peer SNI, unlisted Host", func(t *testing.T) {
		path := "/_matrix/federation/v1/version"
		before := len(s.remote.received(path))
		conn, err := tls.Dial("tcp", s.tg.transparentAddr, &tls.Config{RootCAs: interceptPool(s.tg), ServerName: peerName})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, answer := tunnelRoundTrip(t, conn, "GET "+path+" HTTP/1.1\r\nHost: unlisted.test\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("status %d, want 403; answer %s", resp.StatusCode, answer)
		}
		if n := len(s.remote.received(path)) - before; n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("3pid onbind sent outbound", func(t *testing.T) {
		// Identity servers call this endpoint and a homeserver never does.
		// Anyone who reaches the proxy could send it unsigned, and a peer
		// that requires mutual TLS would see the gateway's client certificate.
		path := "/_matrix/federation/v1/3pid/onbind"
		onbind := []byte(`{"medium":"email","address":"dave@example.test","mxid":"@dave:hs9.test","invites":[]}`)
		resp, answer, err := s.do(t, http.MethodPut, peerName, path, onbind, nil)
		if err != nil {
			t.Fatal(err)
		}
		expectNotSuccess(t, resp, answer)
		if n := len(s.remote.received(path)); n != 0 {
			t.Errorf("peer received %d unsigned onbind requests, want none", n)
		}
	})

	t.Run("header named in Connection", func(t *testing.T) {
		// RFC 9110 section 7.6.1: a proxy removes the headers that the
		// Connection header names.
		path := "/_matrix/federation/v1/version"
		header := http.Header{"Connection": {"X-Internal-Token"}, "X-Internal-Token": {"internal-value"}}
		resp, answer, err := s.do(t, http.MethodGet, peerName, path, nil, header)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		got := s.remote.received(path)
		if len(got) == 0 {
			t.Fatal("peer received no version request")
		}
		if v := got[len(got)-1].header.Get("X-Internal-Token"); v != "" {
			t.Errorf("peer received X-Internal-Token %q, a header the Connection header made hop-by-hop", v)
		}
	})

	t.Run("denied event in invite room state", func(t *testing.T) {
		invitee := "@dave:" + peerName
		invite := s.localMember(t, invitee, "invite", 6)
		// A full state event with an empty state_key, as the room state of
		// an invite carries it.
		stateText := strings.Replace(hostileEventText("@bob:"+localName, "com.example.forbidden", "", deniedContent, 5),
			`"content":`, `"state_key":"","content":`, 1)
		deniedState := signHostileEvent(t, stateText, localName, s.localKey)
		path := "/_matrix/federation/v2/invite/" + testRoomID + "/" + eventID(t, invite)
		inviteBody := []byte(fmt.Sprintf(`{"room_version":"10","event":%s,"invite_room_state":[%s]}`, canonicaljson.Encode(invite), canonicaljson.Encode(deniedState)))
		resp, answer := s.send(t, http.MethodPut, peerName, path, inviteBody, localName)
		expectNotSuccess(t, resp, answer)
		for _, r := range s.remote.received(path) {
			expectNoLeak(t, "invite sent to the peer", r.body, leakMarker)
		}
	})
}

func TestHostileOutboundPrivateAddresses(t *testing.T) {
	literal := newCountingListener(t)
	named := newCountingListener(t)
	literalName := literal.ln.Addr().String()
	_, port, _ := net.SplitHostPort(named.ln.Addr().String())
	localhostName := "localhost:" + port
	// Both servers are on the allow-list without an address, so the
	// gateway must resolve them and refuse the loopback addresses found.
	extra := fmt.Sprintf("  - server_name: %q\n    endpoints: [\"*\"]\n  - server_name: %q\n    endpoints: [\"*\"]\n", literalName, localhostName)
	s := startHostileOutbound(t, hostileOptions{extraAllowlist: extra})
	body := outboundTransaction(s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3))
	tests := []struct {
		name, server string
		listener     *countingListener
	}{
		{"listed loopback IP literal", literalName, literal},
		{"listed name resolving to loopback", localhostName, named},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, answer := s.send(t, http.MethodPut, tc.server, "/_matrix/federation/v1/send/p1", body, localName)
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d, want 502; answer %s", resp.StatusCode, answer)
			}
			if n := tc.listener.accepted.Load(); n != 0 {
				t.Errorf("the loopback listener accepted %d connections, want none", n)
			}
		})
	}
}

func TestHostileOutboundTunnels(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{})
	versionRequest := "GET /_matrix/federation/v1/version HTTP/1.1\r\nHost: " + peerName + "\r\n\r\n"

	t.Run("closed tunnels release goroutines", func(t *testing.T) {
		warm := s.tunnel(t, peerName+":443", peerName)
		tunnelRoundTrip(t, warm, versionRequest)
		warm.Close()
		time.Sleep(200 * time.Millisecond)
		baseline := runtime.NumGoroutine()
		for i := 0; i < 30; i++ {
			conn := s.tunnel(t, peerName+":443", peerName)
			tunnelRoundTrip(t, conn, versionRequest)
			conn.Close()
		}
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > baseline+5 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > baseline+5 {
			t.Errorf("%d goroutines after 30 closed tunnels, %d before", n, baseline)
		}
	})

	t.Run("host without a certificate", func(t *testing.T) {
		raw := s.connect(t, "bad_host.test:443")
		conn := tls.Client(raw, &tls.Config{RootCAs: interceptPool(s.tg), ServerName: "bad_host.test"})
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if err := conn.Handshake(); err == nil {
			t.Error("TLS handshake for an invalid host name succeeded")
		}
		resp, answer, err := s.do(t, http.MethodGet, peerName, "/_matrix/federation/v1/version", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d after the failed tunnel, want 200; answer %s", resp.StatusCode, answer)
		}
	})

	t.Run("plain HTTP inside a tunnel", func(t *testing.T) {
		path := "/_matrix/federation/v1/version"
		before := len(s.remote.received(path))
		conn := s.connect(t, peerName+":443")
		if _, err := io.WriteString(conn, versionRequest); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		_, _ = io.Copy(io.Discard, conn)
		if n := len(s.remote.received(path)) - before; n != 0 {
			t.Errorf("peer received %d requests, want none", n)
		}
	})

	t.Run("silent tunnel is closed", func(t *testing.T) {
		// The tunnel's server applies inbound.read_header_timeout (10s by
		// default) to the TLS handshake too.
		conn := s.connect(t, peerName+":443")
		start := time.Now()
		_ = conn.SetReadDeadline(start.Add(DefaultReadHeaderTimeout + 5*time.Second))
		_, err := conn.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("tunnel without a TLS handshake still open after %s", time.Since(start).Round(time.Second))
		}
	})
}

func TestHostileOutboundSlots(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{maxConcurrent: 2})
	path := "/_matrix/federation/v1/version"

	t.Run("truncated responses release slots", func(t *testing.T) {
		// The peer announces 1000 bytes, sends 10 and closes. The relayed
		// response ends early, which must not keep a request slot.
		s.remote.handle(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `{"server":`)
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
		})
		for i := 0; i < 3; i++ {
			_, _, _ = s.do(t, http.MethodGet, peerName, path, nil, nil)
		}
		s.remote.respond(path, http.StatusOK, `{"server":{"name":"scripted","version":"1"}}`)
		resp, answer, err := s.do(t, http.MethodGet, peerName, path, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d after 3 truncated responses with 2 slots, want 200; answer %s", resp.StatusCode, answer)
		}
	})
}

func TestHostileOutboundResponses(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{})
	allowed := s.peerEvent(t, "m.room.message", "", `{"body":"ok","msgtype":"m.text"}`, 3)
	denied := s.peerEvent(t, "com.example.forbidden", "", deniedContent, 4)
	path := "/_matrix/federation/v1/backfill/" + testRoomID
	uri := path + "?v=%24x&limit=5"

	t.Run("backfill returned with 203", func(t *testing.T) {
		s.remote.respond(path, http.StatusNonAuthoritativeInfo, backfillResponse(allowed, denied))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
	})

	t.Run("redirect to an unfiltered endpoint", func(t *testing.T) {
		// A homeserver whose client follows redirects (Go's net/http does
		// for GET) fetches the target through the proxy as a media
		// download, whose response the gateway does not filter.
		media := "/_matrix/media/v3/download/" + peerName + "/leak"
		s.remote.handle(path, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://"+peerName+media, http.StatusTemporaryRedirect)
		})
		s.remote.respond(media, http.StatusOK, backfillResponse(allowed, denied))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response after the redirect", answer, leakMarker)
	})

	t.Run("duplicate pdus member", func(t *testing.T) {
		body := fmt.Sprintf(`{"origin":%q,"origin_server_ts":1,"pdus":[%s],"pdus":[%s]}`, peerName, encodeAll(allowed), encodeAll(denied))
		s.remote.respond(path, http.StatusOK, body)
		resp, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
	})

	t.Run("array form on an object endpoint", func(t *testing.T) {
		s.remote.respond(path, http.StatusOK, "[200,"+backfillResponse(denied)+"]")
		resp, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
	})

	t.Run("second JSON document", func(t *testing.T) {
		s.remote.respond(path, http.StatusOK, backfillResponse(allowed)+backfillResponse(denied))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
	})

	t.Run("gzip-encoded response", func(t *testing.T) {
		s.remote.handle(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, backfillResponse(allowed, denied))
			_ = zw.Close()
		})
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "decompressed response", answer, leakMarker)
	})

	t.Run("text content type", func(t *testing.T) {
		s.remote.handle(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, backfillResponse(allowed, denied))
		})
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
	})

	t.Run("chunked response", func(t *testing.T) {
		s.remote.handle(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			text := backfillResponse(allowed, denied)
			for i := 0; i < len(text); i += 100 {
				_, _ = io.WriteString(w, text[i:min(i+100, len(text))])
				w.(http.Flusher).Flush()
			}
		})
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
	})

	t.Run("oversized response", func(t *testing.T) {
		s.remote.handle(path, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"pdus":[`+encodeAll(denied)+`],"padding":"`)
			chunk := bytes.Repeat([]byte("a"), 1<<20)
			for i := 0; i < (maxResponseBytes>>20)+2; i++ {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
			_, _ = io.WriteString(w, `"}`)
		})
		resp, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502", resp.StatusCode)
		}
	})

	t.Run("wrong content hash", func(t *testing.T) {
		// The signature covers only the content hash, so changed content
		// keeps the signature and event ID valid.
		tampered := allowed.With("content", parseJSON(t, `{"body":"tampered-content","msgtype":"m.text"}`))
		s.remote.respond(path, http.StatusOK, backfillResponse(tampered))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, "tampered-content")
	})

	t.Run("denied event nested in unsigned", func(t *testing.T) {
		// Synapse keeps unsigned.invite_room_state of the membership events
		// it receives, and no signature covers unsigned.
		member := s.peerEvent(t, "m.room.member", "@carol:"+peerName, `{"membership":"join"}`, 5)
		member = member.With("unsigned", parseJSON(t, `{"invite_room_state":[`+encodeAll(denied)+`]}`))
		s.remote.respond(path, http.StatusOK, backfillResponse(member))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, leakMarker)
	})

	t.Run("forged signature", func(t *testing.T) {
		_, forger, _ := ed25519.GenerateKey(rand.Reader)
		forged := signHostileEvent(t, hostileEventText("@carol:"+peerName, "m.room.message", "", `{"body":"forged-body","msgtype":"m.text"}`, 6), peerName, forger)
		s.remote.respond(path, http.StatusOK, backfillResponse(allowed, forged))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, "forged-body")
	})

	t.Run("sender outside the allow-list", func(t *testing.T) {
		_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
		stranger := signHostileEvent(t, hostileEventText("@eve:stranger.test", "m.room.message", "", `{"body":"stranger-body","msgtype":"m.text"}`, 7), "stranger.test", strangerKey)
		s.remote.respond(path, http.StatusOK, backfillResponse(allowed, stranger))
		_, answer := s.send(t, http.MethodGet, peerName, uri, nil, localName)
		expectNoLeak(t, "response", answer, "stranger-body")
	})

	endpoints := []struct {
		name, method, path, uri, body, answer string
	}{
		{"state", http.MethodGet, "/_matrix/federation/v1/state/" + testRoomID, "?event_id=%24x", "",
			`{"auth_chain":[` + encodeAll(denied) + `],"pdus":[` + encodeAll(allowed) + `]}`},
		{"event_auth", http.MethodGet, "/_matrix/federation/v1/event_auth/" + testRoomID + "/$x", "", "",
			`{"auth_chain":[` + encodeAll(denied) + `]}`},
		{"get_missing_events", http.MethodPost, "/_matrix/federation/v1/get_missing_events/" + testRoomID, "",
			`{"earliest_events":[],"latest_events":["$x"],"limit":10}`, `{"events":[` + encodeAll(denied) + `]}`},
		{"event", http.MethodGet, "/_matrix/federation/v1/event/$x", "", "", backfillResponse(denied)},
	}
	for _, e := range endpoints {
		t.Run("denied event in "+e.name+" response", func(t *testing.T) {
			s.remote.respond(e.path, http.StatusOK, e.answer)
			resp, answer := s.send(t, e.method, peerName, e.path+e.uri, []byte(e.body), localName)
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status %d, want 200 with the event redacted; response %.300s", resp.StatusCode, answer)
			}
			expectNoLeak(t, "response", answer, leakMarker)
		})
	}

	t.Run("denied event in v1 send_join array", func(t *testing.T) {
		join := s.localMember(t, "@bob:"+localName, "join", 8)
		joinPath := "/_matrix/federation/v1/send_join/" + testRoomID + "/" + eventID(t, join)
		s.remote.respond(joinPath, http.StatusOK, `[200,{"auth_chain":[],"state":[`+encodeAll(denied, allowed)+`]}]`)
		resp, answer := s.send(t, http.MethodPut, peerName, joinPath, canonicaljson.Encode(join), localName)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		expectNoLeak(t, "response", answer, leakMarker)
		if !bytes.HasPrefix(answer, []byte("[200,")) {
			t.Errorf("response %.100s is no longer the [200, {...}] form", answer)
		}
	})

	t.Run("denied event in knock room state", func(t *testing.T) {
		knock := s.localMember(t, "@bob:"+localName, "knock", 9)
		knockPath := "/_matrix/federation/v1/send_knock/" + testRoomID + "/" + eventID(t, knock)
		s.remote.respond(knockPath, http.StatusOK, `{"knock_room_state":[`+encodeAll(denied)+`]}`)
		_, answer := s.send(t, http.MethodPut, peerName, knockPath, canonicaljson.Encode(knock), localName)
		expectNoLeak(t, "response", answer, leakMarker)
	})
}

func TestHostileOutboundKeyResponses(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{})
	forgedPub, forgedKey, _ := ed25519.GenerateKey(rand.Reader)
	forgedText := base64.RawStdEncoding.EncodeToString(forgedPub)

	t.Run("key ID form naming another server", func(t *testing.T) {
		path := "/_matrix/key/v2/server/ed25519:local"
		s.remote.respond(path, http.StatusOK, keyResponse(t, "other.test", forgedKey))
		resp, answer := s.send(t, http.MethodGet, peerName, path, nil, localName)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502; answer %s", resp.StatusCode, answer)
		}
	})

	t.Run("key server returned with 203", func(t *testing.T) {
		path := "/_matrix/key/v2/server/ed25519:local"
		s.remote.respond(path, http.StatusNonAuthoritativeInfo, keyResponse(t, "other.test", forgedKey))
		resp, answer := s.send(t, http.MethodGet, peerName, path, nil, localName)
		expectNotSuccess(t, resp, answer)
	})

	t.Run("notary object, server not asked", func(t *testing.T) {
		path := "/_matrix/key/v2/query/" + remoteName
		s.remote.respond(path, http.StatusOK, `{"server_keys":[`+keyResponse(t, "other.test", forgedKey)+`]}`)
		resp, answer := s.send(t, http.MethodGet, peerName, path, nil, localName)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		for _, name := range notaryServerNames(t, answer) {
			if name != remoteName {
				t.Errorf("notary response passed on a key object of %s, which the request did not ask for", name)
			}
		}
	})

	t.Run("notary object contradicting a pinned key", func(t *testing.T) {
		path := "/_matrix/key/v2/query/" + remoteName
		s.remote.respond(path, http.StatusOK, `{"server_keys":[`+keyObject(t, remoteName, remoteKeyID, forgedPub, forgedKey)+`]}`)
		resp, answer := s.send(t, http.MethodGet, peerName, path, nil, localName)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		expectNoLeak(t, "notary response", answer, forgedText)
	})

	t.Run("notary object with a bad self-signature", func(t *testing.T) {
		path := "/_matrix/key/v2/query/" + remoteName
		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
		s.remote.respond(path, http.StatusOK, `{"server_keys":[`+keyObject(t, remoteName, "ed25519:new", forgedPub, otherKey)+`]}`)
		resp, answer := s.send(t, http.MethodGet, peerName, path, nil, localName)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		expectNoLeak(t, "notary response", answer, forgedText)
	})

	t.Run("notary key ID form", func(t *testing.T) {
		path := "/_matrix/key/v2/query/" + remoteName + "/ed25519:new"
		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
		s.remote.respond(path, http.StatusOK, `{"server_keys":[`+keyObject(t, remoteName, "ed25519:new", forgedPub, otherKey)+`]}`)
		resp, answer := s.send(t, http.MethodGet, peerName, path, nil, localName)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		expectNoLeak(t, "notary response", answer, forgedText)
	})

	t.Run("batch notary, server not asked", func(t *testing.T) {
		path := "/_matrix/key/v2/query"
		s.remote.respond(path, http.StatusOK, `{"server_keys":[`+keyResponse(t, "other.test", forgedKey)+`]}`)
		query := []byte(fmt.Sprintf(`{"server_keys":{%q:{}}}`, remoteName))
		resp, answer := s.send(t, http.MethodPost, peerName, path, query, localName)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
		}
		for _, name := range notaryServerNames(t, answer) {
			if name != remoteName {
				t.Errorf("notary response passed on a key object of %s, which the request did not ask for", name)
			}
		}
	})
}

func TestHostileOutboundTemplates(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{})
	user := "@bob:" + localName
	template := func(roomID, version, sender string) string {
		return fmt.Sprintf(`{"room_version":%q,"event":{"room_id":%q,"type":"m.room.member","sender":%q,"state_key":%q,"content":{"membership":"join"},"origin_server_ts":1,"depth":5,"prev_events":[],"auth_events":[]}}`,
			version, roomID, sender, sender)
	}

	t.Run("template returned with 201", func(t *testing.T) {
		path := "/_matrix/federation/v1/make_join/" + testRoomID + "/" + user
		s.remote.respond(path, http.StatusCreated, template(testRoomID, "10", "@mallory:"+localName))
		resp, answer := s.send(t, http.MethodGet, peerName, path+"?ver=10", nil, localName)
		expectNotSuccess(t, resp, answer)
	})

	t.Run("rejected template teaches no version", func(t *testing.T) {
		room := "!fresh:" + peerName
		path := "/_matrix/federation/v1/make_join/" + room + "/" + user
		s.remote.respond(path, http.StatusOK, template(room, "1", "@mallory:"+localName))
		resp, answer := s.send(t, http.MethodGet, peerName, path+"?ver=1", nil, localName)
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status %d, want 502; answer %s", resp.StatusCode, answer)
		}
		if known, ok := s.tg.gw.store.RoomVersion(room); ok {
			t.Errorf("room %s learned as version %q from a template the gateway refused", room, known.Version)
		}
	})
}

func TestHostileOutboundRecords(t *testing.T) {
	s := startHostileOutbound(t, hostileOptions{})
	denied := s.peerEvent(t, "com.example.forbidden", "", deniedContent, 4)
	_, forger, _ := ed25519.GenerateKey(rand.Reader)
	forged := signHostileEvent(t, hostileEventText("@carol:"+peerName, "m.room.message", "", `{"body":"forged","msgtype":"m.text"}`, 5), peerName, forger)
	path := "/_matrix/federation/v1/backfill/" + testRoomID
	s.remote.respond(path, http.StatusOK, backfillResponse(denied, forged))
	resp, answer := s.send(t, http.MethodGet, peerName, path+"?v=%24x&limit=5", nil, localName)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
	}
	records := s.tg.records()

	t.Run("response event names peer origin", func(t *testing.T) {
		id := eventID(t, denied)
		rec, ok := findRecord(records, func(r decisionlog.Record) bool { return r.Matrix.EventID == id })
		if !ok {
			t.Fatalf("no record of event %s", id)
		}
		if rec.Matrix.Direction != "inbound" || rec.Matrix.Origin != peerName || rec.Matrix.Destination != localName {
			t.Errorf("record direction %q origin %q destination %q, want inbound from %s to %s",
				rec.Matrix.Direction, rec.Matrix.Origin, rec.Matrix.Destination, peerName, localName)
		}
		if rec.Action != actionRedacted {
			t.Errorf("record action %q, want %q", rec.Action, actionRedacted)
		}
	})

	t.Run("removed event is recorded", func(t *testing.T) {
		id := eventID(t, forged)
		rec, ok := findRecord(records, func(r decisionlog.Record) bool { return r.Matrix.EventID == id })
		if !ok {
			t.Fatalf("no record of the forged event %s", id)
		}
		if rec.Action != actionRemoved || rec.Allow {
			t.Errorf("record action %q allow %v, want %q and false", rec.Action, rec.Allow, actionRemoved)
		}
	})

	t.Run("request names the local origin", func(t *testing.T) {
		rec := s.tg.record(resp.Header.Get(headerDecisionID))
		if rec.Matrix.Direction != "outbound" || rec.Matrix.Origin != localName || rec.Matrix.Destination != peerName {
			t.Errorf("record direction %q origin %q destination %q, want outbound from %s to %s",
				rec.Matrix.Direction, rec.Matrix.Origin, rec.Matrix.Destination, localName, peerName)
		}
		if rec.Matrix.Endpoint != "backfill" {
			t.Errorf("record endpoint %q, want backfill", rec.Matrix.Endpoint)
		}
	})

	t.Run("rejected destination is recorded", func(t *testing.T) {
		body := outboundTransaction(s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3))
		resp, answer := s.send(t, http.MethodPut, "unlisted.test", "/_matrix/federation/v1/send/r1", body, localName)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d, want 403; answer %s", resp.StatusCode, answer)
		}
		rec := s.tg.record(resp.Header.Get(headerDecisionID))
		if rec.Allow || rec.Matrix.Direction != "outbound" || rec.Matrix.Origin != localName || rec.Matrix.Destination != "unlisted.test" {
			t.Errorf("record allow %v direction %q origin %q destination %q, want a refused outbound record to unlisted.test",
				rec.Allow, rec.Matrix.Direction, rec.Matrix.Origin, rec.Matrix.Destination)
		}
	})
}
