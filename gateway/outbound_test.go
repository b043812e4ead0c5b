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
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

const peerName = "hs9.test"

// peerStub is a remote homeserver on loopback that records what reaches it.
type peerStub struct {
	mu       sync.Mutex
	requests []stubRequest
	paths    map[string]string
}

func (p *peerStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	p.mu.Lock()
	p.requests = append(p.requests, stubRequest{r.Method, r.RequestURI, r.Header.Get("Authorization"), body})
	answer, ok := p.paths[r.URL.Path]
	p.mu.Unlock()
	if !ok {
		answer = `{"pdus":{}}`
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, answer)
}

func (p *peerStub) received() []stubRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]stubRequest(nil), p.requests...)
}

// outboundSetup is a gateway with its outbound proxy, a remote peer on
// the allow-list, and the local homeserver's signing key.
type outboundSetup struct {
	tg       *testGateway
	peer     *peerStub
	localKey ed25519.PrivateKey
	client   *http.Client
}

func startOutbound(t *testing.T, extraAllowlist string) *outboundSetup {
	t.Helper()
	peer := &peerStub{paths: map[string]string{}}
	peerServer := httptest.NewUnstartedServer(peer)
	// The peer's certificate comes from the same test CA that the gateway
	// trusts as the federation CA; the harness creates that CA, so the
	// peer starts once it exists.
	s := &outboundSetup{peer: peer}
	_, localKey, _ := ed25519.GenerateKey(rand.Reader)
	s.localKey = localKey

	// The pinned address must be known before the gateway starts, so the
	// listener is opened first and the certificate set afterwards.
	peerServer.Listener.Close()
	ln, err := newLoopbackListener()
	if err != nil {
		t.Fatal(err)
	}
	peerServer.Listener = ln
	allowlist := fmt.Sprintf("  - server_name: %q\n    address: %q\n    endpoints: [\"*\"]\n%s", peerName, ln.Addr().String(), extraAllowlist)
	s.tg = startGateway(t, gatewayOptions{outbound: true, extraAllowlist: allowlist})
	s.tg.hs.paths = map[string]string{"/_matrix/key/v2/server": localKeyResponse(t, localKey)}

	certPEM, keyPEM, err := s.tg.ca.IssueServer([]string{peerName}, time.Hour)
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

	proxy, err := url.Parse(s.tg.proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.tg.interceptCA.Certificate())
	s.client = &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(proxy),
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}
	return s
}

// send makes a request of the local homeserver to serverName through the
// proxy, signed with the local key.
func (s *outboundSetup) send(t *testing.T, method, serverName, uri string, body []byte, origin string) (*http.Response, []byte) {
	t.Helper()
	var content *canonicaljson.Value
	if len(body) > 0 {
		v, err := canonicaljson.Parse(body)
		if err != nil {
			t.Fatal(err)
		}
		content = &v
	}
	req, err := http.NewRequest(method, "https://"+serverName+uri, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	header, err := xmatrix.FormatAuthorization(xmatrix.Sign(s.localKey, "ed25519:local", method, uri, origin, serverName, content))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", header)
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s through the proxy: %v", method, uri, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, data
}

// localEvent builds a PDU of the test room sent by a local user.
func (s *outboundSetup) localEvent(t *testing.T, eventType, content string, depth int) canonicaljson.Value {
	t.Helper()
	rv, _ := events.LookupRoomVersion("10")
	text := fmt.Sprintf(`{"room_id":%q,"sender":"@bob:%s","type":%q,"content":%s,"origin_server_ts":%d,"depth":%d,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"auth_events":[],"hashes":{},"signatures":{}}`,
		testRoomID, localName, eventType, content, 1700000000000+int64(depth), depth)
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := events.SignEvent(v, rv, localName, "ed25519:local", s.localKey)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func outboundTransaction(pdus ...canonicaljson.Value) []byte {
	parts := make([]string, len(pdus))
	for i, p := range pdus {
		parts[i] = string(canonicaljson.Encode(p))
	}
	return []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1700000000000,"pdus":[%s]}`, localName, strings.Join(parts, ",")))
}

func TestOutboundTransactionForwarded(t *testing.T) {
	s := startOutbound(t, "")
	body := outboundTransaction(s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3))
	uri := "/_matrix/federation/v1/send/out%2F1"
	s.peer.paths["/_matrix/federation/v1/send/out/1"] = `{"pdus":{"$peer":{}}}`
	resp, answer := s.send(t, http.MethodPut, peerName, uri, body, localName)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
	}
	got := s.peer.received()
	if len(got) != 1 {
		t.Fatalf("peer received %d requests, want 1", len(got))
	}
	if got[0].uri != uri || !bytes.Equal(got[0].body, body) {
		t.Errorf("peer received %s %q, want the homeserver's exact target and body", got[0].uri, got[0].body)
	}
	if !strings.Contains(got[0].auth, `origin="hs2.test:8448"`) {
		t.Errorf("peer received Authorization %q", got[0].auth)
	}
	if !strings.Contains(string(answer), "$peer") {
		t.Errorf("answer %s is not the peer's", answer)
	}
	for _, rec := range s.tg.records() {
		if rec.Matrix.Direction != "outbound" || !rec.Allow {
			t.Errorf("record %s: direction %q allow %v, want an allowed outbound record", rec.Path, rec.Matrix.Direction, rec.Allow)
		}
	}
}

func TestOutboundDeniedEventNeverLeaves(t *testing.T) {
	s := startOutbound(t, "")
	allowed := s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3)
	denied := s.localEvent(t, "com.example.forbidden", `{"secret":"s"}`, 4)
	resp, answer := s.send(t, http.MethodPut, peerName, "/_matrix/federation/v1/send/out2", outboundTransaction(allowed, denied), localName)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %s; the homeserver must get 200 so it does not retry", resp.StatusCode, answer)
	}
	if n := len(s.peer.received()); n != 0 {
		t.Fatalf("peer received %d requests, want none", n)
	}
	var results struct {
		PDUs map[string]struct {
			Error string `json:"error"`
		} `json:"pdus"`
	}
	if err := json.Unmarshal(answer, &results); err != nil {
		t.Fatal(err)
	}
	if msg := results.PDUs[eventID(t, denied)].Error; !strings.Contains(msg, "denied by policy") {
		t.Errorf("denied PDU error = %q", msg)
	}
}

func TestOutboundRefusals(t *testing.T) {
	s := startOutbound(t, "")
	pdu := s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3)
	tests := []struct {
		name, server, origin string
		status               int
		message              string
	}{
		{"destination not on allow-list", "unlisted.test", localName, 403, "destination not on allow-list"},
		{"origin not local", peerName, remoteName, 403, "is not this server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, answer := s.send(t, http.MethodPut, tc.server, "/_matrix/federation/v1/send/r", outboundTransaction(pdu), tc.origin)
			if resp.StatusCode != tc.status || !strings.Contains(string(answer), tc.message) {
				t.Errorf("status %d answer %s, want %d naming %q", resp.StatusCode, answer, tc.status, tc.message)
			}
			if !strings.Contains(string(answer), "decision_id") {
				t.Errorf("answer %s has no decision_id", answer)
			}
		})
	}
	if n := len(s.peer.received()); n != 0 {
		t.Errorf("peer received %d requests, want none", n)
	}
}

func TestOutboundKeyResponseChecked(t *testing.T) {
	s := startOutbound(t, "")
	_, peerKey, _ := ed25519.GenerateKey(rand.Reader)
	good := keyResponse(t, peerName, peerKey)
	s.peer.paths["/_matrix/key/v2/server"] = good
	resp, answer := s.send(t, http.MethodGet, peerName, "/_matrix/key/v2/server", nil, localName)
	if resp.StatusCode != http.StatusOK || string(answer) != good {
		t.Errorf("status %d, answer %s, want the peer's self-signed response", resp.StatusCode, answer)
	}

	s.peer.paths["/_matrix/key/v2/server"] = strings.ReplaceAll(good, peerName, "other.test")
	resp, answer = s.send(t, http.MethodGet, peerName, "/_matrix/key/v2/server", nil, localName)
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status %d, answer %s: a response for another server must be refused with 502", resp.StatusCode, answer)
	}
}

func newLoopbackListener() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

func TestOutboundTransparentListener(t *testing.T) {
	s := startOutbound(t, "")
	pool := x509.NewCertPool()
	pool.AddCert(s.tg.interceptCA.Certificate())
	// A homeserver that cannot use a proxy resolves the peer's name to the
	// transparent listener; the gateway reads the peer from SNI and Host.
	transparentAddr := s.tg.transparentAddr
	s.client = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, transparentAddr)
		},
	}}
	body := outboundTransaction(s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3))
	resp, answer := s.send(t, http.MethodPut, peerName, "/_matrix/federation/v1/send/t1", body, localName)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
	}
	if got := s.peer.received(); len(got) != 1 || !bytes.Equal(got[0].body, body) {
		t.Errorf("peer received %d requests, want the one transaction", len(got))
	}
}

func TestOutboundBackfillResponseFiltered(t *testing.T) {
	s := startOutbound(t, "")
	_, peerKey, _ := ed25519.GenerateKey(rand.Reader)
	s.peer.paths["/_matrix/key/v2/server"] = keyResponse(t, peerName, peerKey)
	rv, _ := events.LookupRoomVersion("10")
	peerEvent := func(eventType, content string, depth int) canonicaljson.Value {
		text := fmt.Sprintf(`{"room_id":%q,"sender":"@carol:%s","type":%q,"content":%s,"origin_server_ts":%d,"depth":%d,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"auth_events":[],"hashes":{},"signatures":{}}`,
			testRoomID, peerName, eventType, content, 1700000000000+int64(depth), depth)
		v, err := canonicaljson.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		signed, err := events.SignEvent(v, rv, peerName, "ed25519:local", peerKey)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	allowed := peerEvent("m.room.message", `{"body":"ok","msgtype":"m.text"}`, 3)
	forbidden := peerEvent("com.example.forbidden", `{"secret":"s"}`, 4)
	path := "/_matrix/federation/v1/backfill/" + testRoomID
	s.peer.paths[path] = fmt.Sprintf(`{"origin":%q,"origin_server_ts":1,"pdus":[%s,%s]}`, peerName,
		canonicaljson.Encode(allowed), canonicaljson.Encode(forbidden))

	resp, answer := s.send(t, http.MethodGet, peerName, path+"?v=%24x&limit=5", nil, localName)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
	}
	var got struct {
		PDUs []map[string]any `json:"pdus"`
	}
	if err := json.Unmarshal(answer, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.PDUs) != 2 {
		t.Fatalf("answer has %d PDUs, want 2: %s", len(got.PDUs), answer)
	}
	if content, _ := got.PDUs[1]["content"].(map[string]any); len(content) != 0 {
		t.Errorf("denied event content = %v, want it redacted", content)
	}
	if content, _ := got.PDUs[0]["content"].(map[string]any); content["body"] != "ok" {
		t.Errorf("allowed event content = %v, want it unchanged", content)
	}
	redacted := false
	for _, rec := range s.tg.records() {
		if rec.Matrix.EventID == eventID(t, forbidden) && rec.Action == actionRedacted && rec.Matrix.Direction == "inbound" {
			redacted = true
		}
	}
	if !redacted {
		t.Error("no inbound record with action redacted for the denied event")
	}
}

func TestOutboundMakeJoinTemplateChecked(t *testing.T) {
	s := startOutbound(t, "")
	user := "@bob:" + localName
	path := "/_matrix/federation/v1/make_join/" + testRoomID + "/" + user
	template := func(sender, membership string) string {
		return fmt.Sprintf(`{"room_version":"10","event":{"room_id":%q,"type":"m.room.member","sender":%q,"state_key":%q,"content":{"membership":%q},"origin_server_ts":1,"depth":5,"prev_events":[],"auth_events":[]}}`,
			testRoomID, sender, sender, membership)
	}
	tests := []struct {
		name, body string
		status     int
	}{
		{"valid template", template(user, "join"), 200},
		{"template for another user", template("@mallory:"+localName, "join"), 502},
		{"wrong membership", template(user, "leave"), 502},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.peer.mu.Lock()
			s.peer.paths[path] = tc.body
			s.peer.mu.Unlock()
			resp, answer := s.send(t, http.MethodGet, peerName, path+"?ver=10", nil, localName)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d; answer %s", resp.StatusCode, tc.status, answer)
			}
		})
	}
}

func TestOutboundResignedWithoutDeniedItems(t *testing.T) {
	s := startOutbound(t, "")
	s.tg.gw.resign = &signingKey{keyID: "ed25519:local", priv: s.localKey}
	allowed := s.localEvent(t, "m.room.message", `{"body":"hi","msgtype":"m.text"}`, 3)
	denied := s.localEvent(t, "com.example.forbidden", `{"secret":"s"}`, 4)
	s.peer.paths["/_matrix/federation/v1/send/rs1"] = fmt.Sprintf(`{"pdus":{%q:{}}}`, eventID(t, allowed))

	resp, answer := s.send(t, http.MethodPut, peerName, "/_matrix/federation/v1/send/rs1", outboundTransaction(allowed, denied), localName)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %s", resp.StatusCode, answer)
	}
	got := s.peer.received()
	if len(got) != 1 {
		t.Fatalf("peer received %d requests, want the re-signed transaction", len(got))
	}
	if !bytes.Contains(got[0].body, []byte(`"body":"hi"`)) || bytes.Contains(got[0].body, []byte("com.example.forbidden")) {
		t.Errorf("peer received %s, want only the allowed event", got[0].body)
	}
	// The peer's check of the new body: the gateway's signature verifies
	// with the homeserver's public key.
	creds, err := xmatrix.ParseAuthorization([]string{got[0].auth})
	if err != nil {
		t.Fatal(err)
	}
	v, err := canonicaljson.Parse(got[0].body)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.localKey.Public().(ed25519.PublicKey)
	if err := xmatrix.Verify(creds[0], http.MethodPut, "/_matrix/federation/v1/send/rs1", peerName, &v, pub); err != nil {
		t.Errorf("re-signed transaction does not verify: %v", err)
	}
	var results struct {
		PDUs map[string]map[string]string `json:"pdus"`
	}
	if err := json.Unmarshal(answer, &results); err != nil {
		t.Fatal(err)
	}
	if _, ok := results.PDUs[eventID(t, allowed)]; !ok || results.PDUs[eventID(t, allowed)]["error"] != "" {
		t.Errorf("allowed PDU result %v, want the peer's success", results.PDUs[eventID(t, allowed)])
	}
	if !strings.Contains(results.PDUs[eventID(t, denied)]["error"], "denied by policy") {
		t.Errorf("denied PDU result %v, want a policy error", results.PDUs[eventID(t, denied)])
	}
}

func TestLoadSigningKey(t *testing.T) {
	dir := t.TempDir()
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	synapse := "ed25519 a_bcd " + strings.TrimRight(base64StdEncode(seed), "=") + "\n"
	dendrite := "-----BEGIN MATRIX PRIVATE KEY-----\nKey-ID: ed25519:xyz\n\n" + base64StdEncode(seed) + "\n-----END MATRIX PRIVATE KEY-----\n"
	tests := []struct {
		name, content, keyID, err string
	}{
		{"synapse", synapse, "ed25519:a_bcd", ""},
		{"dendrite", dendrite, "ed25519:xyz", ""},
		{"garbage", "hello", "", "expected"},
		{"short seed", "ed25519 a AAAA", "", "not 32 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			writeFile(t, dir, tc.name, tc.content)
			key, err := loadSigningKey(dir + "/" + tc.name)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if key.keyID != tc.keyID || !bytes.Equal(key.priv.Seed(), seed) {
				t.Errorf("key %s, want %s with the file's seed", key.keyID, tc.keyID)
			}
		})
	}
}

func base64StdEncode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestOutboundAbsoluteURIRequest(t *testing.T) {
	s := startOutbound(t, "")
	_, peerKey, _ := ed25519.GenerateKey(rand.Reader)
	s.peer.paths["/_matrix/key/v2/server"] = keyResponse(t, peerName, peerKey)
	// A plain-HTTP request through the proxy uses the absolute form; the
	// gateway still connects to the peer over TLS.
	resp, err := s.client.Get("http://" + peerName + "/_matrix/key/v2/server")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want the peer's key response", resp.StatusCode)
	}
	if got := s.peer.received(); len(got) != 1 || got[0].uri != "/_matrix/key/v2/server" {
		t.Errorf("peer received %v, want one origin-form request", got)
	}
}

func TestRecordLimiter(t *testing.T) {
	suppressed := 0
	l := &recordLimiter{log: func(n int) { suppressed += n }}
	start := time.Unix(1000, 0)
	allowed := 0
	for i := 0; i < 3*maxHandshakeRecordsPerSecond; i++ {
		if l.allow(start) {
			allowed++
		}
	}
	if allowed != maxHandshakeRecordsPerSecond {
		t.Errorf("%d records allowed in one second, want %d", allowed, maxHandshakeRecordsPerSecond)
	}
	if !l.allow(start.Add(time.Second)) {
		t.Error("record refused in the next second")
	}
	if suppressed != 2*maxHandshakeRecordsPerSecond {
		t.Errorf("%d suppressed records logged, want %d", suppressed, 2*maxHandshakeRecordsPerSecond)
	}
}

func TestOutboundWellKnownAndDelegatedHost(t *testing.T) {
	s := startOutbound(t, "")
	peerAddr := ""
	if e, ok := s.tg.gw.store.Lookup(peerName); ok {
		peerAddr = e.Address
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.tg.ca.Certificate())
	// The web host of the peer's server name is the peer stub too; the
	// test dials it where port 443 would be.
	s.tg.gw.wellKnown = &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, peerAddr)
		},
	}}
	_, peerKey, _ := ed25519.GenerateKey(rand.Reader)
	s.peer.paths["/.well-known/matrix/server"] = `{"m.server":"fed.hs9.test:8448"}`
	s.peer.paths["/_matrix/key/v2/server"] = keyResponse(t, peerName, peerKey)

	resp, answer := s.send(t, http.MethodGet, peerName, "/.well-known/matrix/server", nil, localName)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), "fed.hs9.test") {
		t.Fatalf("well-known: status %d answer %s", resp.StatusCode, answer)
	}
	// After the delegation the homeserver addresses the delegated host.
	resp, answer = s.send(t, http.MethodGet, "fed.hs9.test:8448", "/_matrix/key/v2/server", nil, localName)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("key fetch by delegated host: status %d answer %s, want the peer's keys", resp.StatusCode, answer)
	}
}
