package admin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/store"
)

const (
	aliceToken = "alice-secret-token"
	bobToken   = "bob-secret-token"
)

// adminServer is an admin handler on a loopback server, with its store.
type adminServer struct {
	t     *testing.T
	url   string
	store *store.Store
	http  *http.Client
}

func newStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.New(store.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.ReplaceAllowlist([]store.Entry{{ServerName: "hs1.example.org", Endpoints: []string{"*"}}}); err != nil {
		t.Fatal(err)
	}
	return s
}

func testTokens() []Token {
	return []Token{{Name: "alice", SHA256: HashToken(aliceToken)}, {Name: "bob", SHA256: HashToken(bobToken)}}
}

// startAdmin serves the admin handler over plain HTTP with the test tokens.
func startAdmin(t *testing.T, tokens []Token, checks map[string]Check) *adminServer {
	t.Helper()
	st := newStore(t)
	auth, err := NewAuthenticator(tokens, false)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(Options{Allowlist: st, Auth: auth, Checks: checks,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "metric 1\n") })})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &adminServer{t: t, url: srv.URL, store: st, http: srv.Client()}
}

// call sends a request with token (none when empty) and returns the status
// and the decoded body. A request with a body has the JSON content type, as
// the client sends it.
func (s *adminServer) call(method, path, token, body string) (int, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var decoded map[string]any
	data, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(data, &decoded); err != nil && !strings.HasPrefix(path, "/metrics") {
		s.t.Fatalf("%s %s: response is not JSON: %q", method, path, data)
	}
	return resp.StatusCode, decoded
}

// wantError checks a Matrix error response.
func wantError(t *testing.T, status int, body map[string]any, wantStatus int, errcode, message string) {
	t.Helper()
	if status != wantStatus || body["errcode"] != errcode || body["error"] != message {
		t.Errorf("response %d %v,\nwant %d {errcode: %s, error: %s}", status, body, wantStatus, errcode, message)
	}
}

func TestAuthentication(t *testing.T) {
	s := startAdmin(t, testTokens(), nil)
	tests := []struct {
		name, header  string
		status        int
		errcode, text string
	}{
		{"no token", "", 401, "M_MISSING_TOKEN", "authentication required: send Authorization: Bearer TOKEN, or a client certificate from the admin CA"},
		{"bad token", "Bearer wrong", 401, "M_UNKNOWN_TOKEN", "unknown or revoked admin token"},
		{"basic scheme", "Basic YWxpY2U6eA==", 401, "M_MISSING_TOKEN", "Authorization header is not a bearer token (expected Authorization: Bearer TOKEN)"},
		{"empty bearer", "Bearer ", 401, "M_MISSING_TOKEN", "Authorization header is not a bearer token (expected Authorization: Bearer TOKEN)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.url+"/v1/allowlist", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			resp, err := s.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			wantError(t, resp.StatusCode, body, tt.status, tt.errcode, tt.text)
		})
	}
	if status, body := s.call("GET", "/v1/allowlist", bobToken, ""); status != 200 || body["revision"] != s.store.Revision() {
		t.Errorf("GET /v1/allowlist with bob's token = %d %v, want 200 with the revision", status, body)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, _ := s.call("GET", path, "", ""); status != 200 {
			t.Errorf("GET %s without a token = %d, want 200", path, status)
		}
	}
}

func TestAuthenticationNotConfigured(t *testing.T) {
	s := startAdmin(t, nil, nil)
	status, body := s.call("POST", "/v1/allowlist/entries", "", `{"server_name":"a.org","endpoints":["*"]}`)
	wantError(t, status, body, 403, "M_FORBIDDEN",
		"the admin API needs authentication, and none is configured: set admin.token_file or admin.tls.client_ca_file")
}

func TestTokenRotation(t *testing.T) {
	auth, _ := NewAuthenticator(testTokens(), false)
	if err := auth.SetTokens([]Token{{Name: "carol", SHA256: HashToken("carol-token")}}); err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	if _, err := auth.Authenticate(req); !errors.Is(err, errUnknownToken) {
		t.Errorf("alice's token after rotation: %v, want unknown token", err)
	}
	req.Header.Set("Authorization", "Bearer carol-token")
	if name, err := auth.Authenticate(req); err != nil || name != "carol" {
		t.Errorf("carol's token = %q, %v, want carol", name, err)
	}
}

func TestLoadTokensErrors(t *testing.T) {
	hash := HashToken("x")
	tests := []struct {
		name, content, want string
	}{
		{"empty list", "tokens: []\n", "no tokens (expected tokens: followed by a list of name and sha256)"},
		{"bad hash", "tokens: [{name: alice, sha256: abc}]\n", `tokens[0] (alice): invalid sha256 "abc" (expected 64 hexadecimal digits, the output of sha256sum on the token)`},
		{"bad name", "tokens: [{name: 'a b', sha256: " + hash + "}]\n", `tokens[0]: invalid name "a b" (expected 1 to 64 characters of letters, digits, '.', '_', '@' and '-')`},
		{"duplicate name", "tokens: [{name: a, sha256: " + hash + "}, {name: a, sha256: " + HashToken("y") + "}]\n", `tokens[1]: duplicate name "a" (expected each name once)`},
		{"same token twice", "tokens: [{name: a, sha256: " + hash + "}, {name: b, sha256: " + hash + "}]\n", "tokens[1] (b): same token as a (expected a distinct token per name)"},
		{"plain token field", "tokens: [{name: a, token: secret}]\n", "invalid token file (expected tokens: followed by a list of name and sha256): yaml: unmarshal errors:\n  line 1: field token not found in type admin.Token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tokens.yaml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadTokens(path)
			if want := path + ": " + tt.want; err == nil || err.Error() != want {
				t.Errorf("LoadTokens() error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

func TestEntryRoutes(t *testing.T) {
	s := startAdmin(t, testTokens(), nil)
	const entry = `{"server_name": "hs2.example.org", "endpoints": ["send"], "note": "pilot"}`

	status, body := s.call("POST", "/v1/allowlist/entries", aliceToken, entry)
	stored, _ := body["entry"].(map[string]any)
	if status != 201 || stored["changed_by"] != "alice" || stored["source"] != "api" || stored["changed_at"] == nil {
		t.Fatalf("add = %d %v, want 201 with the entry changed by alice in source api", status, body)
	}
	if body["revision"] != s.store.Revision() {
		t.Errorf("revision in the response = %v, want %s", body["revision"], s.store.Revision())
	}
	if status, _ := s.call("POST", "/v1/allowlist/entries", bobToken, entry); status != 200 {
		t.Errorf("add of the same entry = %d, want 200", status)
	}

	errorCases := []struct {
		name, method, path, body string
		status                   int
		errcode, message         string
	}{
		{"add with other fields", "POST", "/v1/allowlist/entries", `{"server_name": "HS2.example.org", "endpoints": ["*"]}`,
			409, "M_UNKNOWN", "HS2.example.org: entry exists in source api with other fields (replace it, or remove it first)"},
		{"malformed entry", "POST", "/v1/allowlist/entries", `{"server_name": "hs3.example.org", "endpoints": ["send", "sned"]}`,
			400, "M_INVALID_PARAM", `entry (server_name "hs3.example.org"): endpoints[1]: unknown endpoint ID "sned" (expected "*" or one of ` + strings.Join(store.KnownEndpoints, ", ") + ")"},
		{"bare date", "POST", "/v1/allowlist/entries", `{"server_name": "hs3.example.org", "endpoints": ["*"], "expires": "2027-12-31"}`,
			400, "M_INVALID_PARAM", `entry (server_name "hs3.example.org"): expires: invalid value "2027-12-31" (expected an RFC 3339 timestamp such as "2027-12-31T00:00:00Z")`},
		{"deny with endpoints", "POST", "/v1/allowlist/entries", `{"server_name": "evil.org", "deny": true, "endpoints": ["*"]}`,
			400, "M_INVALID_PARAM", `entry (server_name "evil.org"): endpoints: not allowed on a deny entry (expected a deny entry with only server_name, deny, administration, note, expires and labels)`},
		{"changed_by from the client", "POST", "/v1/allowlist/entries", `{"server_name": "hs3.example.org", "endpoints": ["*"], "changed_by": "mallory"}`,
			400, "M_INVALID_PARAM", `entry (server_name "hs3.example.org"): changed_by: field is set by the gateway (expected no changed_by field in the file)`},
		{"duplicate key", "POST", "/v1/allowlist/entries", `{"server_name": "hs3.example.org", "deny": false, "deny": true}`,
			400, "M_INVALID_PARAM", ""},
		{"not JSON", "POST", "/v1/allowlist/entries", `server_name: x`,
			400, "M_NOT_JSON", "request body is not valid JSON (expected one allow-list entry as a JSON object)"},
		{"put with another name", "PUT", "/v1/allowlist/entries/hs4.example.org", entry,
			400, "M_INVALID_PARAM", `server_name "hs2.example.org" in the body differs from "hs4.example.org" in the path (expected the same name)`},
		{"remove missing", "DELETE", "/v1/allowlist/entries/hs9.example.org", "",
			404, "M_NOT_FOUND", "hs9.example.org: entry not found in the allow-list"},
		{"remove file entry", "DELETE", "/v1/allowlist/entries/hs1.example.org", "",
			404, "M_NOT_FOUND", "hs1.example.org: entry not found in source api; the entries for it come from file, which the admin API does not change (edit that source, or add a deny entry)"},
		{"unknown path", "GET", "/v1/nothing", "", 404, "M_UNRECOGNIZED", "unknown admin path /v1/nothing"},
		{"wrong method", "PATCH", "/v1/allowlist/entries/hs2.example.org", "", 405, "M_UNRECOGNIZED", "method PATCH not allowed on /v1/allowlist/entries/hs2.example.org"},
		{"body too large", "POST", "/v1/allowlist/entries", `{"note": "` + strings.Repeat("x", maxEntryBytes) + `"}`,
			413, "M_TOO_LARGE", "request body is larger than 65536 bytes"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			before := s.store.Revision()
			status, body := s.call(tt.method, tt.path, aliceToken, tt.body)
			if tt.message == "" {
				if status != tt.status || body["errcode"] != tt.errcode {
					t.Errorf("response %d %v, want %d %s", status, body, tt.status, tt.errcode)
				}
			} else {
				wantError(t, status, body, tt.status, tt.errcode, tt.message)
			}
			if s.store.Revision() != before {
				t.Errorf("a refused request changed the allow-list")
			}
		})
	}

	status, body = s.call("PUT", "/v1/allowlist/entries/HS2.example.org", bobToken, `{"server_name": "hs2.example.org", "endpoints": ["*"]}`)
	if stored, _ := body["entry"].(map[string]any); status != 200 || stored["changed_by"] != "bob" {
		t.Errorf("put over an entry = %d %v, want 200 changed by bob", status, body)
	}
	if status, _ := s.call("PUT", "/v1/allowlist/entries/*.evil.org", bobToken, `{"server_name": "*.evil.org", "deny": true, "note": "spam"}`); status != 201 {
		t.Errorf("put of a new deny entry = %d, want 201", status)
	}
	if m := s.store.Match("x.evil.org"); m.Deny == nil || m.Deny.ChangedBy != "bob" {
		t.Errorf("Match(x.evil.org) = %+v, want bob's deny entry", m)
	}
	status, body = s.call("DELETE", "/v1/allowlist/entries/hs2.example.org", aliceToken, "")
	if removed, _ := body["entry"].(map[string]any); status != 200 || removed["server_name"] != "hs2.example.org" {
		t.Errorf("remove = %d %v, want 200 with the removed entry", status, body)
	}
	if _, ok := s.store.Lookup("hs2.example.org"); ok {
		t.Errorf("hs2.example.org still allowed after its removal")
	}
}

func TestImportRoutes(t *testing.T) {
	s := startAdmin(t, testTokens(), nil)
	policyList := `[
	  {"type": "m.policy.rule.server", "state_key": "a", "event_id": "$a", "content": {"entity": "*.evil.org", "recommendation": "m.ban", "reason": "spam"}},
	  {"type": "m.policy.rule.server", "state_key": "b", "event_id": "$b", "content": {"entity": "watch.org", "recommendation": "org.example.watch"}}
	]`
	status, body := s.call("PUT", "/v1/allowlist/imports/bans?format=moderation&dry_run=true", aliceToken, policyList)
	if status != 200 || body["dry_run"] != true || body["entry_count"] != 1.0 {
		t.Fatalf("dry run = %d %v, want 200 with one entry", status, body)
	}
	if m := s.store.Match("x.evil.org"); m.Deny != nil {
		t.Fatalf("dry run changed the allow-list")
	}

	status, body = s.call("PUT", "/v1/allowlist/imports/bans?format=moderation", aliceToken, policyList)
	skipped, _ := body["skipped"].([]any)
	if status != 200 || body["source"] != "import:bans" || len(skipped) != 1 {
		t.Fatalf("import = %d %v, want 200 with one skipped rule", status, body)
	}
	if first, _ := skipped[0].(map[string]any); first["problem"] != `recommendation "org.example.watch" is not supported (expected m.ban, the only one the Matrix specification defines)` {
		t.Errorf("skipped[0] = %v", first)
	}
	if m := s.store.Match("x.evil.org"); m.Deny == nil || m.Deny.Note != "spam" || m.Deny.ChangedBy != "alice" {
		t.Errorf("Match(x.evil.org) = %+v, want the imported deny entry", m)
	}

	allowlistFile := "servers:\n  - server_name: \"*.partner.org\"\n    endpoints: [\"*\"]\n"
	if status, body := s.call("PUT", "/v1/allowlist/imports/partners?format=allowlist", bobToken, allowlistFile); status != 200 || body["entry_count"] != 1.0 {
		t.Errorf("allowlist import = %d %v, want 200 with one entry", status, body)
	}

	errorCases := []struct {
		name, method, path, body string
		status                   int
		errcode, message         string
	}{
		{"unknown format", "PUT", "/v1/allowlist/imports/x?format=csv", "a", 400, "M_INVALID_PARAM",
			`unknown import format "csv" (expected format=moderation or format=allowlist)`},
		{"invalid name", "PUT", "/v1/allowlist/imports/Bad?format=moderation", "[]", 400, "M_INVALID_PARAM",
			`invalid source name "import:Bad" (expected a kind such as import, a colon and a name of 1 to 64 characters of a-z, 0-9, '.', '_' and '-', such as "import:bans")`},
		{"not a policy list", "PUT", "/v1/allowlist/imports/x?format=moderation", `"x"`, 400, "M_INVALID_PARAM",
			"invalid policy list (expected a JSON array of state events, or an object with a pdus array)"},
		{"invalid allowlist", "PUT", "/v1/allowlist/imports/x?format=allowlist", "servers:\n  - server_name: a.org\n", 400, "M_INVALID_PARAM",
			`request body:2: servers[0] (server_name "a.org"): endpoints: missing (expected ["*"] to permit every endpoint, or a list of endpoint IDs such as ["send", "make_join"])`},
		{"delete missing import", "DELETE", "/v1/allowlist/imports/none", "", 404, "M_NOT_FOUND", "import:none: source not found"},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			status, body := s.call(tt.method, tt.path, aliceToken, tt.body)
			wantError(t, status, body, tt.status, tt.errcode, tt.message)
		})
	}

	if status, body := s.call("DELETE", "/v1/allowlist/imports/bans", aliceToken, ""); status != 200 || body["source"] != "import:bans" {
		t.Errorf("delete import = %d %v, want 200", status, body)
	}
	if m := s.store.Match("x.evil.org"); m.Deny != nil {
		t.Errorf("deny entry still in force after its list was removed")
	}
}

func TestReadiness(t *testing.T) {
	checks := map[string]Check{
		"policy":    func(context.Context) error { return nil },
		"allowlist": func(context.Context) error { return errors.New("allow-list file not loaded") },
	}
	s := startAdmin(t, testTokens(), checks)
	status, body := s.call("GET", "/readyz", "", "")
	results, _ := body["checks"].(map[string]any)
	if status != 503 || body["ready"] != false || results["policy"] != "ok" || results["allowlist"] != "allow-list file not loaded" {
		t.Errorf("readyz = %d %v, want 503 naming the failed check", status, body)
	}
	if status, body := s.call("GET", "/healthz", "", ""); status != 200 || body["status"] != "ok" {
		t.Errorf("healthz = %d %v, want 200 ok", status, body)
	}
	status, _ = s.call("GET", "/metrics", "", "")
	if status != 200 {
		t.Errorf("metrics = %d, want 200", status)
	}
}

// tlsAdmin serves the admin handler with mutual TLS against adminCA.
func tlsAdmin(t *testing.T, adminCA *certs.CA) (string, *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	serverCA, err := certs.NewCA("admin server CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := serverCA.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{"cert.pem": certPEM, "key.pem": keyPEM, "client-ca.pem": adminCA.CertPEM()} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config, err := certs.ServerTLSConfig(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), filepath.Join(dir, "client-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	auth, err := NewAuthenticator(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(NewHandler(Options{Allowlist: newStore(t), Auth: auth}))
	srv.TLS = config
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(serverCA.Certificate())
	return srv.URL, pool
}

func clientWithCert(t *testing.T, ca *certs.CA, name string, roots *x509.CertPool) *http.Client {
	t.Helper()
	certPEM, keyPEM, err := ca.IssueClient(name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
}

func TestMutualTLS(t *testing.T) {
	adminCA, err := certs.NewCA("admin CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	otherCA, err := certs.NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	url, roots := tlsAdmin(t, adminCA)

	trusted := clientWithCert(t, adminCA, "alice.admin.test", roots)
	resp, err := trusted.Post(url+"/v1/allowlist/entries", "application/json", strings.NewReader(`{"server_name": "hs5.example.org", "endpoints": ["*"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if stored, _ := body["entry"].(map[string]any); resp.StatusCode != 201 || stored["changed_by"] != "CN=alice.admin.test" {
		t.Errorf("add with a client certificate = %d %v, want 201 changed by CN=alice.admin.test", resp.StatusCode, body)
	}

	// crypto/tls does not send a certificate that the server's list of
	// acceptable CAs does not name, so the request arrives without one.
	untrusted := clientWithCert(t, otherCA, "mallory.test", roots)
	resp, err = untrusted.Get(url + "/v1/allowlist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET with a certificate from another CA = %d, want 401", resp.StatusCode)
	}
	// Sent anyway, the certificate fails the handshake.
	forced := untrusted.Transport.(*http.Transport).TLSClientConfig
	pair := forced.Certificates[0]
	forced.Certificates = nil
	forced.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	if resp, err := untrusted.Get(url + "/v1/allowlist"); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate from another CA, sent anyway, got a response: %d", resp.StatusCode)
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error = %v, want a TLS certificate error", err)
	}

	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err = anonymous.Get(url + "/v1/allowlist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("GET /v1/allowlist without a certificate = %d, want 401", resp.StatusCode)
	}
	resp, err = anonymous.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /healthz without a certificate = %d, want 200", resp.StatusCode)
	}
}

// TestDeployExampleTokens checks that the example token file of deploy/
// loads.
func TestDeployExampleTokens(t *testing.T) {
	tokens, err := LoadTokens("../../deploy/admin-tokens.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(tokens) != 2 || tokens[0].Name != "alice" {
		t.Errorf("tokens = %+v, want alice and ci-pipeline", tokens)
	}
}

// A dry run asked for in a spelling other than true must not import: a
// script that sends dry_run=1 means to change nothing.
func TestImportDryRunSpellings(t *testing.T) {
	s := startAdmin(t, testTokens(), nil)
	policyList := `[{"type": "m.policy.rule.server", "state_key": "a", "event_id": "$a", "content": {"entity": "*.evil.org", "recommendation": "m.ban"}}]`
	for _, value := range []string{"1", "True", "yes", "", "on"} {
		t.Run(value, func(t *testing.T) {
			status, body := s.call("PUT", "/v1/allowlist/imports/bans?format=moderation&dry_run="+value, aliceToken, policyList)
			wantError(t, status, body, 400, "M_INVALID_PARAM",
				fmt.Sprintf("invalid dry_run %q (expected dry_run=true to check the list without importing it, or no dry_run)", value))
			if m := s.store.Match("x.evil.org"); m.Deny != nil {
				t.Errorf("dry_run=%s imported the list", value)
			}
		})
	}
	if status, body := s.call("PUT", "/v1/allowlist/imports/bans?format=moderation&dry_run=false", aliceToken, policyList); status != 200 || body["dry_run"] != false {
		t.Errorf("dry_run=false = %d %v, want 200 and the list imported", status, body)
	}
	status, body := s.call("PUT", "/v1/allowlist/imports/bans?format=moderation&dry_run=true&dry_run=false", aliceToken, policyList)
	wantError(t, status, body, 400, "M_INVALID_PARAM", `query parameter "dry_run" given 2 times (expected it once)`)
	status, body = s.call("PUT", "/v1/allowlist/imports/bans?format=moderation&dryrun=true", aliceToken, policyList)
	wantError(t, status, body, 400, "M_INVALID_PARAM",
		`unknown query parameter "dryrun" on /v1/allowlist/imports/bans (expected only format and dry_run)`)
}

// Routes that take no query parameters refuse them, so that a dry run
// asked of a removal does not remove.
func TestQuerylessRoutes(t *testing.T) {
	s := startAdmin(t, testTokens(), nil)
	if status, body := s.call("POST", "/v1/allowlist/entries", aliceToken, `{"server_name": "hs2.example.org", "endpoints": ["*"]}`); status != 201 {
		t.Fatalf("add = %d %v, want 201", status, body)
	}
	tests := []struct{ method, path, body string }{
		{"GET", "/v1/allowlist?source=api", ""},
		{"POST", "/v1/allowlist/entries?dry_run=true", `{"server_name": "hs3.example.org", "endpoints": ["*"]}`},
		{"PUT", "/v1/allowlist/entries/hs2.example.org?dry_run=true", `{"server_name": "hs2.example.org", "endpoints": ["send"]}`},
		{"DELETE", "/v1/allowlist/entries/hs2.example.org?dry_run=true", ""},
		{"DELETE", "/v1/allowlist/imports/bans?dry_run=true", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body := s.call(tt.method, tt.path, aliceToken, tt.body)
			path, query, _ := strings.Cut(tt.path, "?")
			name, _, _ := strings.Cut(query, "=")
			wantError(t, status, body, 400, "M_INVALID_PARAM",
				fmt.Sprintf("unknown query parameter %q on %s (expected no query parameters)", name, path))
		})
	}
	entries, _ := s.store.SourceEntries(store.SourceNameAPI)
	if len(entries) != 1 || entries[0].ServerName != "hs2.example.org" || entries[0].Endpoints[0] != "*" {
		t.Errorf("api entries after refused requests = %+v, want hs2.example.org unchanged", entries)
	}
}

// A token file that any local user may write lets any local user add a
// token of their own, so the gateway refuses it.
func TestLoadTokensWritableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte("tokens: [{name: alice, sha256: "+HashToken(aliceToken)+"}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o666, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTokens(path)
		want := fmt.Sprintf("%s: mode %04o lets every local user add a token (run chmod o-w %s)", path, mode, path)
		if err == nil || err.Error() != want {
			t.Errorf("LoadTokens() with mode %04o error:\n got %v\nwant %s", mode, err, want)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o644, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTokens(path); err != nil {
			t.Errorf("LoadTokens() with mode %04o error = %v, want none", mode, err)
		}
	}
}

// An imported moderation list cannot ban the gateway's own server names.
func TestImportSkipsOwnServerName(t *testing.T) {
	st := newStore(t)
	auth, err := NewAuthenticator(testTokens(), false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(Options{Allowlist: st, Auth: auth, LocalServerNames: []string{"hs.local.example"}}))
	t.Cleanup(srv.Close)
	s := &adminServer{t: t, url: srv.URL, store: st, http: srv.Client()}

	policyList := `[{"type": "m.policy.rule.server", "state_key": "a", "event_id": "$a", "content": {"entity": "*.local.example", "recommendation": "m.ban"}}]`
	status, body := s.call("PUT", "/v1/allowlist/imports/bans?format=moderation", aliceToken, policyList)
	skipped, _ := body["skipped"].([]any)
	if status != 200 || body["entry_count"] != 0.0 || len(skipped) != 1 {
		t.Fatalf("import = %d %v, want 200 with the rule skipped", status, body)
	}
	if first, _ := skipped[0].(map[string]any); first["problem"] != `entity "*.local.example" matches the gateway's own server name hs.local.example (expected a rule for other servers)` {
		t.Errorf("skipped[0] = %v", first)
	}
}

// On a listener that is not on loopback, /readyz serves probes without
// authentication, but keeps the reasons of failed checks, which name
// internal URLs and files, for authenticated clients.
func TestReadinessDetailsNeedAuthOffLoopback(t *testing.T) {
	st := newStore(t)
	auth, err := NewAuthenticator(testTokens(), false)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]Check{
		"policy":            func(context.Context) error { return nil },
		"signed:federation": func(context.Context) error { return errors.New("GET https://lists.internal:8443/f.jws: status 503") },
	}
	srv := httptest.NewServer(NewHandler(Options{Allowlist: st, Auth: auth, Checks: checks, MetricsNeedAuth: true}))
	t.Cleanup(srv.Close)
	s := &adminServer{t: t, url: srv.URL, store: st, http: srv.Client()}

	status, body := s.call("GET", "/readyz", "", "")
	results, _ := body["checks"].(map[string]any)
	if status != 503 || results["policy"] != "ok" || results["signed:federation"] != "failed" {
		t.Errorf("readyz without a token = %d %v, want 503 with the failed check named, without its reason", status, body)
	}
	status, body = s.call("GET", "/readyz", aliceToken, "")
	results, _ = body["checks"].(map[string]any)
	if status != 503 || results["signed:federation"] != "GET https://lists.internal:8443/f.jws: status 503" {
		t.Errorf("readyz with a token = %d %v, want the reason of the failed check", status, body)
	}
}

// A browser that holds an admin client certificate presents it to any page
// that posts to the admin listener. A form or a script of another site can
// send a POST with a text/plain body without asking the listener first, so
// a change needs the JSON media type, which such a request cannot set.
func TestChangeNeedsJSONMediaType(t *testing.T) {
	adminCA, err := certs.NewCA("admin CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	url, roots := tlsAdmin(t, adminCA)
	client := clientWithCert(t, adminCA, "alice", roots)
	entry := `{"server_name": "hs9.example.org", "endpoints": ["*"]}`

	for _, contentType := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
		req, _ := http.NewRequest(http.MethodPost, url+"/v1/allowlist/entries", strings.NewReader(entry))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		want := fmt.Sprintf("Content-Type %q is not JSON (expected Content-Type: application/json)", contentType)
		wantError(t, resp.StatusCode, body, http.StatusUnsupportedMediaType, "M_NOT_JSON", want)
	}

	req, _ := http.NewRequest(http.MethodPost, url+"/v1/allowlist/entries", strings.NewReader(entry))
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("POST with application/json = %d, want 201", resp.StatusCode)
	}
}
