package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// shadowOf returns result.shadow of a record, nil when it has none.
func shadowOf(rec decisionlog.Record) map[string]any {
	result, _ := rec.Result.(map[string]any)
	shadow, _ := result[policy.ShadowMember].(map[string]any)
	return shadow
}

// sendRecords sends a /send with one m.room.message and a typing EDU and
// returns its request, PDU and EDU records.
func (tg *testGateway) sendRecords(txnID string) (request, pdu, edu decisionlog.Record, forwarded bool) {
	tg.t.Helper()
	before := len(tg.hs.received())
	event := tg.event("m.room.message", `{"body":"hello","msgtype":"m.text"}`, 5)
	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/"+txnID, transactionBody([]canonicaljson.Value{event}, typingEDU))
	if resp.StatusCode != http.StatusOK {
		tg.t.Fatalf("send: status %d, answer %v", resp.StatusCode, answer)
	}
	for _, rec := range tg.records() {
		if rec.Matrix == nil || rec.Matrix.TxnID != txnID {
			continue
		}
		switch rec.Path {
		case "bordergate/request/decision":
			request = rec
		case "bordergate/pdu/decision":
			pdu = rec
		case "bordergate/edu/decision":
			edu = rec
		}
	}
	return request, pdu, edu, len(tg.hs.received()) > before
}

func startShadowGateway(t *testing.T, shadowConfig, shadowData string) *testGateway {
	t.Helper()
	return startGateway(t, gatewayOptions{
		policyData:   allowData,
		policyConfig: "policy:\n  paths: [" + regoDir(t) + "]\n  data_file: policy-data.json\n  shadow:\n" + shadowConfig,
		extraConfig:  "reload: {watch: false}\n",
		setup: func(dir, _ string) {
			copyRego(t, dir, "candidate")
			writeFile(t, dir, "candidate-data.json", shadowData)
		},
	})
}

func TestShadowGlobal(t *testing.T) {
	tg := startShadowGateway(t, "    paths: [candidate]\n    data_file: candidate-data.json\n", denyData)
	request, pdu, edu, forwarded := tg.sendRecords("s1")

	// The enforced policy allows the message, so the transaction crosses.
	if !forwarded || !pdu.Allow || pdu.Action != actionForward {
		t.Fatalf("forwarded = %v, PDU allow = %v action %q; want the enforced allow applied", forwarded, pdu.Allow, pdu.Action)
	}
	shadowRevision := tg.gw.currentPolicies().shadow.Revision()
	pduShadow := shadowOf(pdu)
	if pduShadow["outcome"] != shadowWouldDeny || pduShadow["allow"] != false || pduShadow["agrees"] != false {
		t.Errorf("PDU shadow = %v, want would deny, disagreeing", pduShadow)
	}
	if pduShadow["revision"] != shadowRevision || shadowRevision == policyRevision(pdu) {
		t.Errorf("PDU shadow revision = %v, want the candidate's %s, not the enforced %s", pduShadow["revision"], shadowRevision, policyRevision(pdu))
	}
	if reasons, _ := pduShadow["reasons"].([]any); len(reasons) != 1 || !strings.Contains(reasons[0].(string), "m.room.message") {
		t.Errorf("PDU shadow reasons = %v, want the denied event type", pduShadow["reasons"])
	}
	for name, rec := range map[string]decisionlog.Record{"request": request, "EDU": edu} {
		s := shadowOf(rec)
		if s["outcome"] != shadowWouldAllow || s["agrees"] != true {
			t.Errorf("%s shadow = %v, want would allow, agreeing", name, s)
		}
	}
	if got := tg.metric(`bordergate_shadow_disagreements_total{enforced="allow",kind="pdu"}`); got != "1" {
		t.Errorf("PDU disagreements = %s, want 1", got)
	}
	if got := tg.metric(`bordergate_shadow_decisions_total{kind="request",outcome="would_allow"}`); got != "1" {
		t.Errorf("request shadow decisions = %s, want 1", got)
	}
	if got := tg.metric(`bordergate_shadow_disagreements_total{enforced="allow",kind="request"}`); got != "0" {
		t.Errorf("request disagreements = %s, want 0", got)
	}
}

func TestShadowPerPackage(t *testing.T) {
	tg := startShadowGateway(t, "    packages: [bordergate.pdu]\n    paths: [candidate]\n    data_file: candidate-data.json\n", denyData)
	request, pdu, edu, forwarded := tg.sendRecords("p1")
	if !forwarded {
		t.Fatal("transaction not forwarded; the shadow policy must not change the outcome")
	}
	if s := shadowOf(pdu); s["outcome"] != shadowWouldDeny {
		t.Errorf("PDU shadow = %v, want would deny", s)
	}
	if s := shadowOf(request); s != nil {
		t.Errorf("request record has shadow %v; only bordergate.pdu is shadowed", s)
	}
	if s := shadowOf(edu); s != nil {
		t.Errorf("EDU record has shadow %v; only bordergate.pdu is shadowed", s)
	}
}

func TestShadowDeniesWhatEnforcedDenies(t *testing.T) {
	// The enforced policy denies the message and the candidate would allow
	// it: the denial stands.
	tg := startGateway(t, gatewayOptions{
		policyData:   denyData,
		policyConfig: "policy:\n  paths: [" + regoDir(t) + "]\n  data_file: policy-data.json\n  shadow: {paths: [candidate], data_file: candidate-data.json}",
		setup: func(dir, _ string) {
			copyRego(t, dir, "candidate")
			writeFile(t, dir, "candidate-data.json", allowData)
		},
	})
	_, pdu, _, forwarded := tg.sendRecords("d1")
	if forwarded || pdu.Allow || pdu.Action != actionDenied {
		t.Fatalf("forwarded = %v, PDU allow = %v action %q; want the enforced denial applied", forwarded, pdu.Allow, pdu.Action)
	}
	if s := shadowOf(pdu); s["outcome"] != shadowWouldAllow || s["agrees"] != false {
		t.Errorf("PDU shadow = %v, want would allow, disagreeing", s)
	}
	if got := tg.metric(`bordergate_shadow_disagreements_total{enforced="deny",kind="pdu"}`); got != "1" {
		t.Errorf("PDU disagreements = %s, want 1", got)
	}
}

func TestShadowErrorIsRecorded(t *testing.T) {
	tg := startShadowGateway(t, "    paths: [candidate]\n", "{}")
	// The candidate's PDU rule fails at evaluation: to_number of a
	// non-number is an error with strict built-in errors.
	writeFile(t, tg.dir+"/candidate", "pdu.rego", `package bordergate.pdu

decision := {"allow": true, "reasons": [sprintf("%d", [to_number(input.pdu.type)])]}
`)
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	request, pdu, _, forwarded := tg.sendRecords("e1")
	if !forwarded || !pdu.Allow {
		t.Fatalf("forwarded = %v, PDU allow = %v; a failing shadow policy must not change the outcome", forwarded, pdu.Allow)
	}
	s := shadowOf(pdu)
	if s["outcome"] != shadowError || !strings.Contains(fmt.Sprint(s["error"]), "to_number") {
		t.Errorf("PDU shadow = %v, want an error naming to_number", s)
	}
	if _, ok := s["agrees"]; ok {
		t.Errorf("PDU shadow = %v has agrees, want none after an error", s)
	}
	if s := shadowOf(request); s["outcome"] != shadowWouldAllow {
		t.Errorf("request shadow = %v, want would allow", s)
	}
	if got := tg.metric(`bordergate_shadow_decisions_total{kind="pdu",outcome="error"}`); got != "1" {
		t.Errorf("PDU shadow errors = %s, want 1", got)
	}
}

func TestShadowBrokenAtStart(t *testing.T) {
	// A candidate that does not compile does not stop the gateway.
	tg := startShadowGateway(t, "    paths: [candidate]\n", "{}")
	writeFile(t, tg.dir+"/candidate", "pdu.rego", "package bordergate.pdu\n\ndecision := {\n")
	cfg, err := LoadConfig(tg.dir + "/bordergate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg.StateDir = t.TempDir()
	g, err := New(context.Background(), cfg, tg.gw.log)
	if err != nil {
		t.Fatalf("New with a broken shadow policy: %v", err)
	}
	defer g.Close()
	if g.currentPolicies().shadow != nil {
		t.Error("a shadow policy is in force, want none while it does not load")
	}
}

func TestExchangeKeepsItsPolicySet(t *testing.T) {
	// The request policy calls a loopback server that holds the first call
	// until the test has reloaded the policy, so that the reload happens
	// in the middle of the exchange.
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	hold := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		first := false
		once.Do(func() { first = true })
		if first {
			close(arrived)
			<-release
		}
		_, _ = w.Write([]byte("{}"))
	}))
	defer hold.Close()
	tg := startGateway(t, gatewayOptions{
		policyConfig: "policy: {paths: [rego], data_file: policy-data.json}",
		policyData:   allowData,
		extraConfig:  "reload: {watch: false}\n",
		setup: func(dir, _ string) {
			copyRego(t, dir, "rego")
			src, err := os.ReadFile(filepath.Join(dir, "rego", "request.rego"))
			if err != nil {
				t.Fatal(err)
			}
			held := fmt.Sprintf("decision := lib.decide(reasons) if http.send({\"method\": \"get\", \"url\": %q})", hold.URL)
			writeFile(t, filepath.Join(dir, "rego"), "request.rego", strings.Replace(string(src), "decision := lib.decide(reasons)", held, 1))
		},
	})
	old := tg.gw.currentPolicies().enforced.Revision()

	type sent struct {
		pdu       decisionlog.Record
		request   decisionlog.Record
		forwarded bool
	}
	done := make(chan sent)
	go func() {
		request, pdu, _, forwarded := tg.sendRecords("held")
		done <- sent{pdu, request, forwarded}
	}()
	<-arrived
	writeFile(t, tg.dir, "policy-data.json", denyData)
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if tg.gw.currentPolicies().enforced.Revision() == old {
		t.Fatal("Reload did not change the policy")
	}
	close(release)
	held := <-done

	if !held.forwarded || !held.pdu.Allow {
		t.Errorf("held exchange: forwarded = %v, PDU allow = %v; want the policy it started with, which allows", held.forwarded, held.pdu.Allow)
	}
	for name, rec := range map[string]decisionlog.Record{"request": held.request, "PDU": held.pdu} {
		if policyRevision(rec) != old {
			t.Errorf("held exchange %s record revision = %s, want the starting %s", name, policyRevision(rec), old)
		}
	}
	_, pdu, _, forwarded := tg.sendRecords("after")
	if forwarded || pdu.Allow {
		t.Errorf("next exchange: forwarded = %v, PDU allow = %v; want the reloaded policy, which denies", forwarded, pdu.Allow)
	}
}

// slowShadowGateway starts a gateway whose candidate PDU rule waits for a
// loopback server that answers only after hold, and returns the number
// of calls that reached the server.
func slowShadowGateway(t *testing.T, shadowConfig string, hold time.Duration) (*testGateway, *atomic.Int64) {
	t.Helper()
	calls := &atomic.Int64{}
	released := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-time.After(hold):
		case <-released:
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte("{}"))
	}))
	t.Cleanup(func() {
		close(released)
		server.Close()
	})
	tg := startShadowGateway(t, "    paths: [candidate]\n"+shadowConfig, "{}")
	writeFile(t, tg.dir+"/candidate", "pdu.rego", fmt.Sprintf(`package bordergate.pdu

decision := {"allow": true, "reasons": []} if {
	http.send({"method": "get", "url": %q, "timeout": "60s"})
}
`, server.URL))
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	return tg, calls
}

func TestShadowSlowCandidateTimesOut(t *testing.T) {
	tg, _ := slowShadowGateway(t, "", 10*time.Second)
	start := time.Now()
	_, pdu, _, forwarded := tg.sendRecords("slow1")
	elapsed := time.Since(start)

	if !forwarded || !pdu.Allow {
		t.Fatalf("forwarded = %v, PDU allow = %v; a slow shadow policy must not change the outcome", forwarded, pdu.Allow)
	}
	if elapsed > 3*time.Second {
		t.Errorf("/send took %s with a candidate that waits 10s, want the default shadow time limit of %s to stop it",
			elapsed.Round(time.Millisecond), DefaultShadowTimeout)
	}
	s := shadowOf(pdu)
	if s["outcome"] != shadowError || !strings.Contains(fmt.Sprint(s["error"]), "policy.shadow.timeout") {
		t.Errorf("PDU shadow = %v, want an error naming policy.shadow.timeout", s)
	}
	if got := tg.metric(`bordergate_shadow_decisions_total{kind="pdu",outcome="error"}`); got != "1" {
		t.Errorf("PDU shadow errors = %s, want 1", got)
	}
}

func TestShadowTimeoutSkipsRestOfExchange(t *testing.T) {
	tg, calls := slowShadowGateway(t, "    timeout: 300ms\n", 10*time.Second)
	var pdus []canonicaljson.Value
	for i := range 4 {
		pdus = append(pdus, tg.event("m.room.message", fmt.Sprintf(`{"body":"m%d","msgtype":"m.text"}`, i), 5+i))
	}
	start := time.Now()
	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/slow2", transactionBody(pdus, typingEDU))
	elapsed := time.Since(start)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("send: status %d, answer %v", resp.StatusCode, answer)
	}
	// The PDUs may be decided at once, so each may start its wait, but
	// none waits after the first has used up the exchange's time.
	if elapsed > 2*time.Second {
		t.Errorf("/send of 4 PDUs took %s with a shadow time limit of 300ms, want the limit spent once per exchange", elapsed.Round(time.Millisecond))
	}
	if n := calls.Load(); n > 4 {
		t.Errorf("candidate evaluated %d times, want at most once per PDU", n)
	}
	for _, rec := range tg.records() {
		if rec.Path != "bordergate/pdu/decision" || rec.Matrix == nil || rec.Matrix.TxnID != "slow2" {
			continue
		}
		if s := shadowOf(rec); s["outcome"] != shadowError {
			t.Errorf("PDU %s shadow = %v, want an error", rec.Matrix.EventID, s)
		}
	}
}
