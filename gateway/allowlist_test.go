package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"

	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/signedlist"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

// thirdName is a remote server that the allow-list file does not list.
const (
	thirdName  = "hs3.test:8483"
	thirdKeyID = "ed25519:third"
	profileURI = "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test%3A8448"
)

// thirdServer is a remote server with its own signing key.
type thirdServer struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newThirdServer(t *testing.T) thirdServer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return thirdServer{pub: pub, priv: priv}
}

// entryJSON is the allow-list entry of the third server, pinning its key.
func (s thirdServer) entryJSON() string {
	return fmt.Sprintf(`{"server_name": %q, "pinned_keys": {%q: %q}, "endpoints": ["*"]}`,
		thirdName, thirdKeyID, base64.RawStdEncoding.EncodeToString(s.pub))
}

// request sends a request signed by the third server.
func (s thirdServer) request(tg *testGateway, method, uri string) (*http.Response, map[string]any) {
	tg.t.Helper()
	creds := xmatrix.Sign(s.priv, thirdKeyID, method, uri, thirdName, localName, nil)
	header, err := xmatrix.FormatAuthorization(creds)
	if err != nil {
		tg.t.Fatal(err)
	}
	return tg.raw(method, uri, nil, map[string]string{"Authorization": header})
}

// adminClient returns a client of the gateway's admin API with the
// harness token.
func (tg *testGateway) adminClient() *admin.Client {
	tg.t.Helper()
	tokenFile := filepath.Join(tg.dir, "client.token")
	writeFile(tg.t, tg.dir, "client.token", adminToken+"\n")
	client, err := admin.NewClient(admin.ClientOptions{URL: tg.adminURL, TokenFile: tokenFile})
	if err != nil {
		tg.t.Fatal(err)
	}
	return client
}

func TestAdminAPIChangesNextDecision(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	tg.hs.body = `{}`
	client := tg.adminClient()
	ctx := t.Context()
	third := newThirdServer(t)

	resp, answer := third.request(tg, "GET", profileURI)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("before the entry: status %d, answer %v, want 403", resp.StatusCode, answer)
	}

	added, err := client.Add(ctx, json.RawMessage(third.entryJSON()), thirdName, false)
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if added.Entry.ChangedBy != "alice" || added.Revision != tg.gw.store.Revision() {
		t.Errorf("add = %+v, want changed by alice with the store's revision", added)
	}
	if resp, answer := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the entry was added: status %d, answer %v, want 200", resp.StatusCode, answer)
	}

	if _, err := client.Remove(ctx, thirdName); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if resp, _ := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after the entry was removed: status %d, want 403", resp.StatusCode)
	}

	// A deny entry wins over the file's allow entry for hs1, and the
	// default policy gives the reason.
	deny := `{"server_name": "hs1.test", "deny": true, "note": "agreement suspended"}`
	if _, err := client.Add(ctx, json.RawMessage(deny), "hs1.test", false); err != nil {
		t.Fatalf("add deny entry: %v", err)
	}
	resp, answer = tg.request("GET", profileURI, nil)
	wantReason := "origin hs1.test:8481 denied by allow-list entry hs1.test: agreement suspended"
	if msg, _ := answer["error"].(string); resp.StatusCode != http.StatusForbidden || !strings.Contains(msg, wantReason) {
		t.Fatalf("with the deny entry: status %d, answer %v, want 403 naming the deny entry", resp.StatusCode, answer)
	}
	rec := tg.record(resp.Header.Get("X-Bordergate-Decision-Id"))
	if got, want := rec.Bundles[allowlistBundleName].Revision, tg.gw.store.Revision(); got != want {
		t.Errorf("record's allow-list revision = %s, want the store's %s after the API change", got, want)
	}
	encoded, _ := json.Marshal(rec.Input)
	if !strings.Contains(string(encoded), `"note":"agreement suspended","pinned_keys":null,"require_mtls":false,"revoked_keys":null,"server_name":"hs1.test","source":"api"`) {
		t.Errorf("decision record input lacks the deny entry: %s", encoded)
	}

	if _, err := client.Remove(ctx, "hs1.test"); err != nil {
		t.Fatalf("remove deny entry: %v", err)
	}
	if resp, answer := tg.request("GET", profileURI, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("after the deny entry was removed: status %d, answer %v, want 200", resp.StatusCode, answer)
	}

	_, err = client.Remove(ctx, "hs1.test")
	var apiErr *admin.Error
	if !asAdminError(err, &apiErr) || apiErr.Status != 404 || apiErr.Errcode != "M_NOT_FOUND" {
		t.Errorf("second remove = %v, want 404 M_NOT_FOUND", err)
	}
}

func asAdminError(err error, target **admin.Error) bool {
	e, ok := err.(*admin.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestAdminChangesSurviveRestartAndReload(t *testing.T) {
	stateDir := t.TempDir()
	third := newThirdServer(t)
	tg := startGateway(t, gatewayOptions{stateDir: stateDir})
	tg.hs.body = `{}`
	if _, err := tg.adminClient().Add(t.Context(), json.RawMessage(third.entryJSON()), thirdName, false); err != nil {
		t.Fatal(err)
	}
	// A reload of the file keeps the API's entry.
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if resp, _ := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Errorf("after a reload: status %d, want 200", resp.StatusCode)
	}

	// A second gateway on a copy of the state directory starts with it.
	restarted := startGateway(t, gatewayOptions{stateDir: copyState(t, stateDir)})
	restarted.hs.body = `{}`
	if resp, _ := third.request(restarted, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Errorf("after a restart: status %d, want 200", resp.StatusCode)
	}
	if _, ok := restarted.gw.store.Lookup(thirdName); !ok {
		t.Errorf("entry lost across the restart")
	}
	// The restarted gateway's file pins another key for hs1, so only the
	// API source can be compared.
	before, _ := tg.gw.store.SourceEntries(store.SourceNameAPI)
	after, _ := restarted.gw.store.SourceEntries(store.SourceNameAPI)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("API source after the restart = %+v, want %+v", after, before)
	}
}

func TestAdminReadinessAndMetrics(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	for path, want := range map[string]string{
		"/healthz": `"status": "ok"`,
		"/readyz":  `"ready": true`,
		"/metrics": "# HELP",
	} {
		resp, err := http.Get(tg.adminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s = %d %s, want 200 containing %q", path, resp.StatusCode, body, want)
		}
	}
	resp, err := http.Get(tg.adminURL + "/v1/allowlist")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v1/allowlist without a token = %d, want 401", resp.StatusCode)
	}
}

// listServer serves a signed list over TLS on loopback, and lets the test
// change what it serves.
type listServer struct {
	mu     sync.Mutex
	body   []byte
	status int
	url    string
	caFile string
}

func (s *listServer) serve(body []byte, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.status = body, status
}

func startListServer(t *testing.T, tg0dir string) *listServer {
	t.Helper()
	s := &listServer{status: http.StatusServiceUnavailable}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		body, status := s.body, s.status
		s.mu.Unlock()
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/federation.jws"
	s.caFile = filepath.Join(tg0dir, "list-ca.pem")
	pem := certificatePEM(srv.Certificate().Raw)
	if err := os.WriteFile(s.caFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// listKey is a signing key of a signed list.
type listKey struct {
	kid, alg string
	private  any
	public   any
}

func newListKeys(t *testing.T) (listKey, listKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return listKey{"2026-a", "EdDSA", priv, pub}, listKey{"2026-b", "ES256", ec, &ec.PublicKey}
}

func writeJWKS(t *testing.T, path string, keys ...listKey) {
	t.Helper()
	set := jwk.NewSet()
	for _, k := range keys {
		key, err := jwk.Import(k.public)
		if err != nil {
			t.Fatal(err)
		}
		_ = key.Set(jwk.KeyIDKey, k.kid)
		_ = set.AddKey(key)
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signList signs a list allowing the third server, issued at issued and
// valid for an hour around it.
func signList(t *testing.T, key listKey, third thirdServer, issued time.Time) []byte {
	t.Helper()
	var entry map[string]any
	_ = json.Unmarshal([]byte(third.entryJSON()), &entry)
	payload, _ := json.Marshal(map[string]any{
		"issuer": "authority.test", "issued": issued.UTC().Format(time.RFC3339),
		"not_before": issued.Add(-time.Hour).UTC().Format(time.RFC3339),
		"expires":    issued.Add(time.Hour).UTC().Format(time.RFC3339),
		"servers":    []any{entry},
	})
	signed, err := signedlist.Sign(payload, key.kid, key.alg, key.private)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// signedListSetup starts a list server serving a list signed with key A,
// and a gateway that fetches it, with the given expiry mode.
func signedListSetup(t *testing.T, mode, stateDir string) (*testGateway, *listServer, thirdServer, listKey, listKey, *testClock) {
	t.Helper()
	dir := t.TempDir()
	keyA, keyB := newListKeys(t)
	writeJWKS(t, filepath.Join(dir, "list-keys.json"), keyA, keyB)
	third := newThirdServer(t)
	lists := startListServer(t, dir)
	lists.serve(signList(t, keyA, third, time.Now().Add(-time.Minute)), http.StatusOK)
	clock := newTestClock()
	config := fmt.Sprintf(`, signed_lists: [{name: federation, url: %q, ca_file: %q, keys_file: %q, refresh_interval: 1h, on_expiry: %s}]`,
		lists.url, lists.caFile, filepath.Join(dir, "list-keys.json"), mode)
	tg := startGateway(t, gatewayOptions{allowlistExtra: config, clock: clock, stateDir: stateDir})
	tg.hs.body = `{}`
	return tg, lists, third, keyA, keyB, clock
}

// listStatus returns the state of the gateway's signed list.
func (tg *testGateway) listStatus() signedListStatus {
	tg.t.Helper()
	return tg.gw.signedLists[0].status()
}

func (tg *testGateway) refreshList() {
	tg.gw.signedLists[0].refresh(context.Background())
}

func (tg *testGateway) metricsText() string {
	tg.t.Helper()
	resp, err := http.Get(tg.adminURL + "/metrics")
	if err != nil {
		tg.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func TestSignedListRotationAndRefusals(t *testing.T) {
	tg, lists, third, keyA, keyB, _ := signedListSetup(t, OnExpiryFailStatic, "")
	if resp, answer := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Fatalf("with the signed list: status %d, answer %v, want 200", resp.StatusCode, answer)
	}
	if s := tg.listStatus(); s.State != listStateInForce || s.KeyID != keyA.kid {
		t.Fatalf("status = %+v, want in force, signed by %s", s, keyA.kid)
	}

	// Key rotation: a newer list signed with key B replaces it.
	lists.serve(signList(t, keyB, third, time.Now()), http.StatusOK)
	tg.refreshList()
	if s := tg.listStatus(); s.KeyID != keyB.kid || s.LastError != "" {
		t.Fatalf("after rotation: status = %+v, want signed by %s", s, keyB.kid)
	}
	inForce := tg.gw.store.Revision()

	refusals := []struct {
		name string
		body []byte
		want string
	}{
		{"bad signature", forgeList(t, keyB, third), `signature not valid: kid "2026-b": `},
		{"unknown key", signList(t, listKey{"2025-old", "EdDSA", keyA.private, nil}, third, time.Now().Add(time.Minute)),
			`signature not valid: unknown kid "2025-old" (expected one of 2026-a, 2026-b)`},
		{"rollback", signList(t, keyA, third, time.Now().Add(-time.Minute)), "issued "},
		{"expired", signList(t, keyA, third, time.Now().Add(-2*time.Hour)), "outside validity window: expired at "},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			lists.serve(r.body, http.StatusOK)
			tg.refreshList()
			s := tg.listStatus()
			if !strings.HasPrefix(s.LastError, r.want) || s.KeyID != keyB.kid || s.State != listStateInForce {
				t.Errorf("status = %+v, want the previous list in force and last_error starting %q", s, r.want)
			}
			if tg.gw.store.Revision() != inForce {
				t.Errorf("a refused list changed the allow-list")
			}
			if resp, _ := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
				t.Errorf("after a refused list: status %d, want 200 from the list in force", resp.StatusCode)
			}
		})
	}
	metrics := tg.metricsText()
	for _, reason := range []string{"signature", "rollback", "window"} {
		if !strings.Contains(metrics, `bordergate_allowlist_signed_list_refresh_failures_total{list="federation",reason="`+reason+`"}`) {
			t.Errorf("metrics lack the refresh failures of reason %s", reason)
		}
	}
}

// forgeList returns a list signed by a key that claims kid of key.
func forgeList(t *testing.T, key listKey, third thirdServer) []byte {
	t.Helper()
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signList(t, listKey{key.kid, key.alg, other, nil}, third, time.Now().Add(time.Minute))
}

func TestSignedListFailStatic(t *testing.T) {
	tg, lists, third, _, _, clock := signedListSetup(t, OnExpiryFailStatic, "")
	lists.serve(nil, http.StatusServiceUnavailable)
	clock.Advance(2 * time.Hour)
	tg.refreshList()
	if s := tg.listStatus(); s.State != listStateStale || !strings.Contains(s.LastError, "status 503") {
		t.Fatalf("status = %+v, want expired_in_force after a failed fetch", s)
	}
	if resp, _ := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Errorf("expired list in fail_static: status %d, want 200", resp.StatusCode)
	}
	metrics := tg.metricsText()
	for _, want := range []string{
		`bordergate_allowlist_signed_list_expired{list="federation"} 1`,
		`bordergate_allowlist_signed_list_stale_alerts_total{list="federation"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The alert repeats at most once per alertEvery.
	tg.refreshList()
	if !strings.Contains(tg.metricsText(), `bordergate_allowlist_signed_list_stale_alerts_total{list="federation"} 1`) {
		t.Errorf("a second alert was raised within the alert interval")
	}
	clock.Advance(signedListAlertInterval)
	tg.refreshList()
	if !strings.Contains(tg.metricsText(), `bordergate_allowlist_signed_list_stale_alerts_total{list="federation"} 2`) {
		t.Errorf("no second alert after the alert interval")
	}
}

func TestSignedListFailClosed(t *testing.T) {
	stateDir := t.TempDir()
	tg, lists, third, keyA, _, clock := signedListSetup(t, OnExpiryFailClosed, stateDir)
	lists.serve(nil, http.StatusServiceUnavailable)

	// A restart while the list server is down starts on the kept copy.
	restarted := startGateway(t, gatewayOptions{allowlistExtra: signedListConfig(tg), stateDir: copyState(t, stateDir)})
	restarted.hs.body = `{}`
	if resp, _ := third.request(restarted, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Errorf("restarted on the kept copy: status %d, want 200", resp.StatusCode)
	}

	clock.Advance(2 * time.Hour)
	tg.refreshList()
	if s := tg.listStatus(); s.State != listStateWithdrawn || s.EntryCount != 0 {
		t.Fatalf("status = %+v, want withdrawn", s)
	}
	resp, answer := third.request(tg, "GET", profileURI)
	if msg, _ := answer["error"].(string); resp.StatusCode != http.StatusForbidden || !strings.Contains(msg, "origin not on allow-list") {
		t.Errorf("withdrawn list: status %d, answer %v, want 403 origin not on allow-list", resp.StatusCode, answer)
	}

	lists.serve(signList(t, keyA, third, clock.Now()), http.StatusOK)
	tg.refreshList()
	if s := tg.listStatus(); s.State != listStateInForce {
		t.Fatalf("after a fresh list: status = %+v, want in force", s)
	}
	if resp, _ := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Errorf("after a fresh list: status %d, want 200", resp.StatusCode)
	}
}

// signedListConfig returns the allowlist configuration of tg's signed list.
func signedListConfig(tg *testGateway) string {
	cfg := tg.gw.cfg.Allowlist.SignedLists[0]
	return fmt.Sprintf(`, signed_lists: [{name: %s, url: %q, ca_file: %q, keys_file: %q, refresh_interval: 1h, on_expiry: %s}]`,
		cfg.Name, cfg.URL, cfg.CAFile, cfg.KeysFile, cfg.OnExpiry)
}

func certificatePEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// signedListFileSetup starts a gateway whose signed list "local" is a
// file, signed with key A, the only key of its keys_file. It returns the
// file's path too.
func signedListFileSetup(t *testing.T) (*testGateway, thirdServer, listKey, listKey, string) {
	t.Helper()
	dir := t.TempDir()
	keyA, keyB := newListKeys(t)
	writeJWKS(t, filepath.Join(dir, "keys.json"), keyA)
	third := newThirdServer(t)
	listFile := filepath.Join(dir, "federation.jws")
	if err := os.WriteFile(listFile, signList(t, keyA, third, time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	config := fmt.Sprintf(`, signed_lists: [{name: local, file: %q, keys_file: %q, refresh_interval: 1h}]`,
		listFile, filepath.Join(dir, "keys.json"))
	tg := startGateway(t, gatewayOptions{allowlistExtra: config})
	tg.hs.body = `{}`
	return tg, third, keyA, keyB, listFile
}

func TestSignedListFromFile(t *testing.T) {
	tg, third, keyA, keyB, listFile := signedListFileSetup(t)
	if resp, _ := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusOK {
		t.Fatalf("list from a file: status %d, want 200", resp.StatusCode)
	}

	// A list signed with a key the configuration does not have is refused.
	if err := os.WriteFile(listFile, signList(t, keyB, third, time.Now().Add(time.Minute)), 0o600); err != nil {
		t.Fatal(err)
	}
	tg.refreshList()
	if s := tg.listStatus(); s.KeyID != keyA.kid || !strings.HasPrefix(s.LastError, `signature not valid: unknown kid "2026-b"`) {
		t.Errorf("status = %+v, want the list of key A in force and the new one refused", s)
	}
}

// copyState copies the allow-list state of a gateway's state directory
// into a new one, as a restart finds it. Two gateways may not share a state
// directory, and the decision log's chain state there belongs to the first
// gateway's log.
func copyState(t *testing.T, stateDir string) string {
	t.Helper()
	copied := t.TempDir()
	if err := os.CopyFS(copied, os.DirFS(stateDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(copied, "decisionlog.chain.json")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return copied
}

// SIGHUP rereads keys_file: a key added there verifies the next list, and a
// key removed from it no longer vouches for the list in force, which then
// leaves the allow-list as it would at a restart.
func TestSignedListKeysReloadOnHangup(t *testing.T) {
	tg, lists, third, keyA, keyB, _ := signedListSetup(t, OnExpiryFailStatic, "")
	keysFile := tg.gw.cfg.Allowlist.SignedLists[0].KeysFile

	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keyC := listKey{"2026-c", "EdDSA", priv, pub}
	writeJWKS(t, keysFile, keyA, keyB, keyC)
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	lists.serve(signList(t, keyC, third, time.Now()), http.StatusOK)
	tg.refreshList()
	if s := tg.listStatus(); s.KeyID != keyC.kid || s.LastError != "" {
		t.Fatalf("after adding key C and SIGHUP: status = %+v, want the list signed by %s in force", s, keyC.kid)
	}

	writeJWKS(t, keysFile, keyA, keyB)
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := tg.listStatus(); s.State != listStateNotLoaded || s.EntryCount != 0 {
		t.Errorf("after removing key C and SIGHUP: status = %+v, want not_loaded without entries", s)
	}
	if resp, answer := third.request(tg, "GET", profileURI); resp.StatusCode != http.StatusForbidden {
		t.Errorf("after removing the key of the list in force: status %d, answer %v, want 403", resp.StatusCode, answer)
	}

	writeFile(t, filepath.Dir(keysFile), filepath.Base(keysFile), "not a JWK Set")
	if err := tg.gw.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "keys_file") {
		t.Errorf("Reload with an invalid keys_file: error = %v, want one naming keys_file", err)
	}
	lists.serve(signList(t, keyB, third, time.Now().Add(time.Minute)), http.StatusOK)
	tg.refreshList()
	if s := tg.listStatus(); s.KeyID != keyB.kid || s.State != listStateInForce {
		t.Errorf("after an invalid keys_file: status = %+v, want the keys in force to stay and verify key B", s)
	}
}

// A list file or response larger than signedlist.MaxBytes is rejected
// after reading one byte more than the limit, whatever its size. A list
// path that names a device or a runaway file then cannot exhaust memory.
func TestSignedListFileTooLarge(t *testing.T) {
	tg, _, keyA, _, listFile := signedListFileSetup(t)
	if err := os.Remove(listFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", listFile); err != nil {
		t.Fatal(err)
	}
	tg.refreshList()
	s := tg.listStatus()
	want := fmt.Sprintf("read %s: larger than %d bytes", listFile, signedlist.MaxBytes)
	if s.LastError != want || s.KeyID != keyA.kid {
		t.Errorf("status = %+v, want the list in force and last_error %q", s, want)
	}
	if !strings.Contains(tg.metricsText(), `bordergate_allowlist_signed_list_refresh_failures_total{list="local",reason="fetch"} 1`) {
		t.Errorf("metrics lack one refresh failure of reason fetch")
	}
}

// An authority that signs the list in force again, with a new key or
// with ECDSA, whose signatures differ each time, publishes the same
// content under the same issued time. That is no rollback: the list is
// taken, with the new signature.
func TestSignedListResignedSameContent(t *testing.T) {
	tg, lists, third, keyA, keyB, _ := signedListSetup(t, OnExpiryFailStatic, "")
	issued := time.Now().Add(time.Minute)
	lists.serve(signList(t, keyB, third, issued), http.StatusOK)
	tg.refreshList()
	lists.serve(signList(t, keyB, third, issued), http.StatusOK)
	tg.refreshList()
	if s := tg.listStatus(); s.KeyID != keyB.kid || s.LastError != "" {
		t.Errorf("after the same list signed again with ECDSA: status = %+v, want it taken without error", s)
	}
	lists.serve(signList(t, keyA, third, issued), http.StatusOK)
	tg.refreshList()
	if s := tg.listStatus(); s.KeyID != keyA.kid || s.LastError != "" {
		t.Errorf("after the same list signed with another key: status = %+v, want it taken without error", s)
	}
}
