package gateway

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/internal/testbundle"
)

// allowData and denyData are policy data files of the default policy that
// allow and deny m.room.message events.
const (
	allowData = `{"denied_event_types": ["com.example.forbidden"]}`
	denyData  = `{"denied_event_types": ["com.example.forbidden", "m.room.message"]}`
)

// copyRego copies the default policy, without its tests, to dir/name.
func copyRego(t *testing.T, dir, name string) {
	t.Helper()
	modules, err := testbundle.ReadModules(regoDir(t), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
	for file, src := range modules {
		writeFile(t, filepath.Join(dir, name), file, src)
	}
}

// sendMessage sends a /send with one m.room.message and returns the
// record of its PDU, and whether the homeserver received the transaction.
func (tg *testGateway) sendMessage(txnID string) (decisionlog.Record, bool) {
	tg.t.Helper()
	before := len(tg.hs.received())
	pdu := tg.event("m.room.message", fmt.Sprintf(`{"body":"%s","msgtype":"m.text"}`, txnID), 5)
	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/"+txnID, transactionBody([]canonicaljson.Value{pdu}, typingEDU))
	if resp.StatusCode != http.StatusOK {
		tg.t.Fatalf("send %s: status %d, answer %v", txnID, resp.StatusCode, answer)
	}
	id := eventID(tg.t, pdu)
	for _, rec := range tg.records() {
		if rec.Matrix != nil && rec.Matrix.EventID == id && rec.Matrix.TxnID == txnID {
			return rec, len(tg.hs.received()) > before
		}
	}
	tg.t.Fatalf("no record of the PDU of transaction %s", txnID)
	return decisionlog.Record{}, false
}

// waitForRevision waits until the enforced policy's revision differs
// from old, and returns it.
func (tg *testGateway) waitForRevision(old string) string {
	tg.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if rev := tg.gw.currentPolicies().enforced.Revision(); rev != old {
			return rev
		}
		time.Sleep(20 * time.Millisecond)
	}
	tg.t.Fatalf("policy revision still %s after 10s", old)
	return ""
}

// metric returns the value of the counter line that starts with series,
// such as `bordergate_reloads_total{source="policy_files"}`, 0 when absent.
func (tg *testGateway) metric(series string) string {
	tg.t.Helper()
	rec := httptest.NewRecorder()
	tg.gw.metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scanner := bufio.NewScanner(rec.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), series+" "); ok {
			return value
		}
	}
	return "0"
}

func assertAllowed(t *testing.T, rec decisionlog.Record, forwarded, want bool) {
	t.Helper()
	if rec.Allow != want || forwarded != want {
		t.Errorf("PDU record allow = %v, forwarded = %v, want %v (action %q, result %v)", rec.Allow, forwarded, want, rec.Action, rec.Result)
	}
}

func policyRevision(rec decisionlog.Record) string {
	return rec.Bundles[decisionlog.BundleName].Revision
}

func TestReloadPolicyOnFileEdit(t *testing.T) {
	tg := startGateway(t, gatewayOptions{
		policyConfig: "policy: {paths: [rego], data_file: policy-data.json}",
		policyData:   allowData,
		extraConfig:  "reload: {debounce: 50ms}\n",
		setup:        func(dir, _ string) { copyRego(t, dir, "rego") },
	})
	rec, forwarded := tg.sendMessage("edit1")
	assertAllowed(t, rec, forwarded, true)
	old := policyRevision(rec)

	// An editor's save: write a temporary file and rename it over the old.
	writeFile(t, tg.dir, ".policy-data.json.swp", denyData)
	if err := os.Rename(filepath.Join(tg.dir, ".policy-data.json.swp"), filepath.Join(tg.dir, "policy-data.json")); err != nil {
		t.Fatal(err)
	}
	rev := tg.waitForRevision(old)
	rec, forwarded = tg.sendMessage("edit2")
	assertAllowed(t, rec, forwarded, false)
	if policyRevision(rec) != rev {
		t.Errorf("record revision = %s, want the new %s", policyRevision(rec), rev)
	}

	// A .rego file edited in place: the PDU policy now allows everything.
	pduRego := filepath.Join(tg.dir, "rego", "pdu.rego")
	src, err := os.ReadFile(pduRego)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "decision := lib.decide(reasons)", `decision := {"allow": true, "reasons": []}`, 1)
	if edited == string(src) {
		t.Fatal("pdu.rego has no decision := lib.decide(reasons) line to edit")
	}
	writeFile(t, filepath.Join(tg.dir, "rego"), "pdu.rego", edited)
	rev = tg.waitForRevision(rev)
	rec, forwarded = tg.sendMessage("edit3")
	assertAllowed(t, rec, forwarded, true)

	// A broken edit leaves the last good policy in force.
	writeFile(t, filepath.Join(tg.dir, "rego"), "pdu.rego", "package bordergate.pdu\n\ndecision := {\n")
	deadline := time.Now().Add(10 * time.Second)
	for tg.metric(`bordergate_reload_failures_total{reason="parse",source="policy_files"}`) != "1" {
		if time.Now().After(deadline) {
			t.Fatal("the broken policy file was not reported as a parse failure within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	rec, forwarded = tg.sendMessage("edit4")
	assertAllowed(t, rec, forwarded, true)
	if policyRevision(rec) != rev {
		t.Errorf("record revision after a broken edit = %s, want the last good %s", policyRevision(rec), rev)
	}
	if got := tg.metric(`bordergate_reloads_total{source="policy_files"}`); got != "3" {
		t.Errorf("policy_files reloads = %s, want 3 (start and two edits)", got)
	}
}

func TestReloadPolicyOnHangup(t *testing.T) {
	// SIGHUP would end the test binary unless something is notified of it.
	held := make(chan os.Signal, 16)
	signal.Notify(held, syscall.SIGHUP)
	defer signal.Stop(held)

	tg := startGateway(t, gatewayOptions{policyData: allowData, extraConfig: "reload: {watch: false}\n"})
	go tg.gw.ReloadOnHangup(t.Context())
	rec, forwarded := tg.sendMessage("hup1")
	assertAllowed(t, rec, forwarded, true)
	old := policyRevision(rec)

	writeFile(t, tg.dir, "policy-data.json", denyData)
	time.Sleep(200 * time.Millisecond)
	rec, forwarded = tg.sendMessage("hup2")
	assertAllowed(t, rec, forwarded, true) // not watched: no reload yet

	// ReloadOnHangup may not be notified yet when the first signal comes,
	// so signals are sent until the policy changes.
	deadline := time.Now().Add(10 * time.Second)
	for tg.gw.currentPolicies().enforced.Revision() == old {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the policy within 10s")
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	rec, forwarded = tg.sendMessage("hup3")
	assertAllowed(t, rec, forwarded, false)
}

func TestReloadAllowlistRevisionInRecords(t *testing.T) {
	tg := startGateway(t, gatewayOptions{extraConfig: "reload: {watch: false}\n"})
	rec, _ := tg.sendMessage("al1")
	first := rec.Bundles[allowlistBundleName].Revision
	if len(first) != 64 {
		t.Fatalf("allow-list revision = %q, want 64 hex digits", first)
	}
	// The same entries in another layout keep the revision.
	allowlist, err := os.ReadFile(filepath.Join(tg.dir, "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tg.dir, "allowlist.yaml", "# reformatted\n"+string(allowlist))
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, _ = tg.sendMessage("al2")
	if got := rec.Bundles[allowlistBundleName].Revision; got != first {
		t.Errorf("revision after a comment-only change = %s, want %s", got, first)
	}
	writeFile(t, tg.dir, "allowlist.yaml", string(allowlist)+"  - server_name: other.test\n    endpoints: [\"*\"]\n")
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, _ = tg.sendMessage("al3")
	if got := rec.Bundles[allowlistBundleName].Revision; got == first || len(got) != 64 {
		t.Errorf("revision after adding an entry = %s, want a new one", got)
	}
}

// bundleServer serves the archive last published, with its SHA-256 as
// entity tag.
type bundleServer struct {
	mu   sync.Mutex
	body []byte
}

func (s *bundleServer) publish(body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body := s.body
	s.mu.Unlock()
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	_, _ = w.Write(body)
}

// bundleFixture is a bundle server on loopback with TLS and two signing
// keys.
type bundleFixture struct {
	t       *testing.T
	server  *httptest.Server
	bundles *bundleServer
	keyA    *testbundle.Signer
	keyB    *testbundle.Signer
	modules map[string]string
}

func newBundleFixture(t *testing.T) *bundleFixture {
	t.Helper()
	bf := &bundleFixture{t: t, bundles: &bundleServer{}}
	var err error
	if bf.keyA, err = testbundle.NewEd25519Signer("policy-a"); err != nil {
		t.Fatal(err)
	}
	if bf.keyB, err = testbundle.NewEd25519Signer("policy-b"); err != nil {
		t.Fatal(err)
	}
	if bf.modules, err = testbundle.ReadModules(regoDir(t), "bordergate/"); err != nil {
		t.Fatal(err)
	}
	bf.server = httptest.NewTLSServer(bf.bundles)
	t.Cleanup(bf.server.Close)
	return bf
}

// writeFiles writes the server's CA and the public keys into dir.
func (bf *bundleFixture) writeFiles(dir string) {
	bf.t.Helper()
	cert := bf.server.Certificate()
	writeFile(bf.t, dir, "bundle-ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	writeFile(bf.t, dir, "policy-a.pem", string(bf.keyA.PublicPEM))
	writeFile(bf.t, dir, "policy-b.pem", string(bf.keyB.PublicPEM))
}

// config returns the policy section for the fixture's bundle, with the
// keys named.
func (bf *bundleFixture) config(keys ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "policy:\n  bundle:\n    url: %s/bundles/bordergate.tar.gz\n    ca_file: bundle-ca.pem\n    poll_interval: 1s\n    timeout: 5s\n", bf.server.URL)
	if len(keys) > 0 {
		b.WriteString("    signing:\n      keys:\n")
		for _, k := range keys {
			fmt.Fprintf(&b, "        - {key_id: %s, algorithm: EdDSA, public_key_file: %s.pem}\n", k, k)
		}
	}
	return b.String()
}

// build builds a bundle of the default policy with data and an
// allow-list that lists the remote server with its key.
func (bf *bundleFixture) build(revision string, signer *testbundle.Signer, data string, remoteKey string, change func(*testbundle.Spec)) []byte {
	bf.t.Helper()
	var config map[string]any
	if err := json.Unmarshal([]byte(data), &config); err != nil {
		bf.t.Fatal(err)
	}
	spec := testbundle.Spec{
		Revision: revision,
		Modules:  maps.Clone(bf.modules),
		Signer:   signer,
		Data: map[string]any{"bordergate": map[string]any{
			"config": config,
			"allowlist": map[string]any{"servers": []any{map[string]any{
				"server_name":    remoteName,
				"administration": "Ministry One",
				"pinned_keys":    map[string]any{remoteKeyID: remoteKey},
				"endpoints":      []any{"*"},
			}}},
		}},
	}
	if change != nil {
		change(&spec)
	}
	raw, err := testbundle.Build(spec)
	if err != nil {
		bf.t.Fatal(err)
	}
	return raw
}

// Adding event_types: [] to an entry permits no event type any more. The
// reload must not take the file for unchanged because [] and no field
// encode alike.
func TestReloadAllowlistEmptyEventTypes(t *testing.T) {
	tg := startGateway(t, gatewayOptions{extraConfig: "reload: {watch: false}\n"})
	rec, forwarded := tg.sendMessage("et1")
	assertAllowed(t, rec, forwarded, true)

	allowlist, err := os.ReadFile(filepath.Join(tg.dir, "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tightened := strings.Replace(string(allowlist), "    endpoints: [\"*\"]\n", "    endpoints: [\"*\"]\n    event_types: []\n", 1)
	writeFile(t, tg.dir, "allowlist.yaml", tightened)
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	rec, forwarded = tg.sendMessage("et2")
	assertAllowed(t, rec, forwarded, false)
}
