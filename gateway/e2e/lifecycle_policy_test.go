package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
	"github.com/bordergate/bordergate/gateway/internal/testbundle"
)

// checkShadowWouldDeny checks the record of alice's first message: the
// enforced policy allowed and forwarded it, and the candidate, which
// denies messages, would have denied it. It returns the record.
func (lc *lifecycle) checkShadowWouldDeny(t *testing.T, ctx context.Context) decisionlog.Record {
	rec := waitForPDURecord(t, ctx, lc.fed, lc.conv.AliceMessageID)
	if !rec.Allow || rec.Action != decisionlog.ActionForward {
		t.Errorf("record %s: allow = %t, action = %q; want true, %q", rec.DecisionID, rec.Allow, rec.Action, decisionlog.ActionForward)
	}
	shadow := shadowResult(t, rec)
	if shadow["outcome"] != "would deny" {
		t.Errorf("record %s: result.shadow.outcome = %v, want \"would deny\"", rec.DecisionID, shadow["outcome"])
	}
	if shadow["agrees"] != false {
		t.Errorf("record %s: result.shadow.agrees = %v, want false", rec.DecisionID, shadow["agrees"])
	}
	if revision, _ := shadow["revision"].(string); !strings.HasPrefix(revision, "v1@sha256:") {
		t.Errorf("record %s: result.shadow.revision = %q, want v1@sha256:...", rec.DecisionID, revision)
	}
	reasons, _ := shadow["reasons"].([]any)
	if !slices.Contains(reasons, any("event type m.room.message denied")) {
		t.Errorf("record %s: result.shadow.reasons = %v, want the candidate's reason", rec.DecisionID, reasons)
	}
	disagreements, err := lc.fed.Gateway.Metric(ctx, `bordergate_shadow_disagreements_total{enforced="allow",kind="pdu"}`)
	if err != nil {
		t.Fatal(err)
	}
	if disagreements < 1 {
		t.Errorf("bordergate_shadow_disagreements_total of allowed PDUs = %g, want at least 1", disagreements)
	}
	return rec
}

// checkDataFileEdit adds reloadedEventType to the policy data file,
// written in place as cp writes over a file, and checks that the gateway
// denies the next event of that type under a new policy revision. It
// returns the event ID.
func (lc *lifecycle) checkDataFileEdit(t *testing.T, ctx context.Context, first decisionlog.Record) string {
	gw := lc.fed.Gateway
	const reloads = `bordergate_reloads_total{source="policy_files"}`
	before, err := gw.Metric(ctx, reloads)
	if err != nil {
		t.Fatal(err)
	}
	data := fmt.Sprintf(`{"denied_event_types": [%q, %q]}`, testfed.ForbiddenEventType, reloadedEventType)
	writeTestFile(t, gw.PolicyDataFile, data)
	waitForMetric(t, ctx, gw, reloads, before+1)

	eventID, rec := lc.sendDenied(t, ctx, "first event of a type denied at run time")
	wantReason := "event type " + reloadedEventType + " denied"
	if !slices.Contains(testfed.DecisionReasons(rec), wantReason) {
		t.Errorf("record %s: reasons = %q, want %q", rec.DecisionID, testfed.DecisionReasons(rec), wantReason)
	}
	if policyRevision(rec) == policyRevision(first) {
		t.Errorf("record %s: policy revision %s, want a new one after the edit", rec.DecisionID, policyRevision(rec))
	}
	return eventID
}

// checkBrokenEdit adds a Rego file that does not parse, and checks that
// the gateway rejects it and keeps deciding with the policy in force.
func (lc *lifecycle) checkBrokenEdit(t *testing.T, ctx context.Context, deniedID string) {
	if deniedID == "" {
		t.Skip("the data file edit failed")
	}
	gw := lc.fed.Gateway
	denied := findPDURecord(t, lc.fed, deniedID)
	const failures = `bordergate_reload_failures_total{reason="parse",source="policy_files"}`
	before, err := gw.Metric(ctx, failures)
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(lc.regoDir, "broken.rego")
	saveLikeEditor(t, broken, "package bordergate.pdu\n\nreasons contains \"unfinished\" if {\n")
	waitForMetric(t, ctx, gw, failures, before+1)

	_, rec := lc.sendDenied(t, ctx, "second event of a type denied at run time")
	if policyRevision(rec) != policyRevision(denied) {
		t.Errorf("record %s: policy revision %s, want %s, the one in force before the broken edit",
			rec.DecisionID, policyRevision(rec), policyRevision(denied))
	}
	messageID := lc.sendMessage(t, ctx, "message after the broken edit")
	msg := findPDURecord(t, lc.fed, messageID)
	if !msg.Allow || msg.Action != decisionlog.ActionForward {
		t.Errorf("record %s: allow = %t, action = %q; want true, %q", msg.DecisionID, msg.Allow, msg.Action, decisionlog.ActionForward)
	}

	// bordergate check finds the same problem before any restart.
	_, stderr, err := lc.runStatus(ctx, "check", "--config", gw.ConfigFile)
	if err == nil || !strings.Contains(stderr, broken+":4: rego_parse_error") {
		t.Errorf("bordergate check with %s: %v, stderr %q; want a failure naming its parse error", broken, err, stderr)
	}

	// The fix: the file goes, and the policy reloads to the same revision.
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	if out := lc.run(t, ctx, "check", "--config", gw.ConfigFile); !strings.HasSuffix(out, ": configuration is valid\n") {
		t.Errorf("bordergate check printed %q, want the configuration valid", out)
	}
}

// checkMaskEdit adds a rule to the policy's mask.rego that replaces the
// msgtype of messages in records, and checks that the record of the next
// message is masked by it as well as by the rules before.
func (lc *lifecycle) checkMaskEdit(t *testing.T, ctx context.Context) {
	gw := lc.fed.Gateway
	const reloads = `bordergate_reloads_total{source="policy_files"}`
	before, err := gw.Metric(ctx, reloads)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(lc.regoDir, "mask.rego")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rule := `
mask contains {"op": "upsert", "path": "/input/pdu/content/msgtype", "value": "[masked]"} if {
	input.input.pdu.type == "m.room.message"
}
`
	saveLikeEditor(t, path, string(src)+rule)
	waitForMetric(t, ctx, gw, reloads, before+1)

	messageID := lc.sendMessage(t, ctx, "message after the mask edit")
	rec := findPDURecord(t, lc.fed, messageID)
	if !slices.Equal(rec.Masked, []string{"/input/pdu/content/msgtype"}) {
		t.Errorf("record %s: masked = %q, want [/input/pdu/content/msgtype]", rec.DecisionID, rec.Masked)
	}
	if !slices.Contains(rec.Erased, "/input/pdu/content/body") {
		t.Errorf("record %s: erased = %q, want /input/pdu/content/body among them", rec.DecisionID, rec.Erased)
	}
	input, _ := rec.Input.(map[string]any)
	pdu, _ := input["pdu"].(map[string]any)
	content, _ := pdu["content"].(map[string]any)
	if content["msgtype"] != "[masked]" {
		t.Errorf("record %s: input.pdu.content = %v, want msgtype \"[masked]\"", rec.DecisionID, content)
	}
}

// checkHangup rotates the decision log as logrotate does, publishes a
// second candidate and sends SIGHUP. The gateway must take the candidate
// and write to a new file. Then a tampered candidate must be rejected, and
// the second one stay.
func (lc *lifecycle) checkHangup(t *testing.T, ctx context.Context) {
	gw := lc.fed.Gateway
	lc.bundles.Publish(lc.candidateBundle(t, "v2", []string{testfed.ForbiddenEventType}, nil))
	const reloads = `bordergate_reloads_total{source="shadow_bundle"}`
	before, err := gw.Metric(ctx, reloads)
	if err != nil {
		t.Fatal(err)
	}
	// A message gives the file records to rotate away, also right after
	// a rotation by size.
	earlier := lc.sendMessage(t, ctx, "message before SIGHUP")
	rotated := filepath.Join(filepath.Dir(gw.DecisionLog), externalRotation)
	if err := os.Rename(gw.DecisionLog, rotated); err != nil {
		t.Fatal(err)
	}
	if err := gw.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForMetric(t, ctx, gw, reloads, before+1)

	messageID := lc.sendMessage(t, ctx, "message after SIGHUP")
	rec := findPDURecord(t, lc.fed, messageID)
	shadow := shadowResult(t, rec)
	v2, _ := shadow["revision"].(string)
	if shadow["outcome"] != "would allow" || !strings.HasPrefix(v2, "v2@sha256:") {
		t.Errorf("record %s: result.shadow outcome %v, revision %q; want \"would allow\", v2@sha256:...", rec.DecisionID, shadow["outcome"], v2)
	}
	current, err := decisionlog.ReadFile(gw.DecisionLog)
	if err != nil {
		t.Fatalf("the log reopened on SIGHUP: %v", err)
	}
	if !slices.ContainsFunc(current, func(r decisionlog.Record) bool { return r.DecisionID == rec.DecisionID }) {
		t.Errorf("record %s is not in the reopened %s", rec.DecisionID, gw.DecisionLog)
	}
	old, err := decisionlog.ReadFile(rotated)
	if err != nil {
		t.Fatal(err)
	}
	if len(old) == 0 || old[len(old)-1].Path != decisionlog.CheckpointPath {
		t.Errorf("%s does not end with a checkpoint (%d records)", externalRotation, len(old))
	}
	if !slices.ContainsFunc(old, func(r decisionlog.Record) bool { return r.Matrix != nil && r.Matrix.EventID == earlier }) {
		t.Errorf("%s lacks the records of %s, sent before it was renamed", externalRotation, earlier)
	}

	// A bundle changed after signing is rejected, and v2 stays.
	const rejected = `bordergate_reload_failures_total{reason="signature",source="shadow_bundle"}`
	before, err = gw.Metric(ctx, rejected)
	if err != nil {
		t.Fatal(err)
	}
	lc.bundles.Publish(lc.candidateBundle(t, "v3", []string{"m.room.message"}, func(s *testbundle.Spec) {
		s.TamperModule = "bordergate/pdu.rego"
	}))
	if err := gw.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForMetric(t, ctx, gw, rejected, before+1)
	messageID = lc.sendMessage(t, ctx, "message after a tampered candidate")
	rec = findPDURecord(t, lc.fed, messageID)
	shadow = shadowResult(t, rec)
	if shadow["revision"] != v2 || shadow["outcome"] != "would allow" {
		t.Errorf("record %s: result.shadow revision %v, outcome %v; want %s, \"would allow\"", rec.DecisionID, shadow["revision"], shadow["outcome"], v2)
	}
}

// checkTokenRevoked replaces the operator's admin token by an auditor's in
// the token file and sends SIGHUP: the operator's token must then be
// refused and the auditor's accepted.
func (lc *lifecycle) checkTokenRevoked(t *testing.T, ctx context.Context) {
	gw := lc.fed.Gateway
	auditorToken := filepath.Join(lc.dir, "auditor.token")
	item := lc.run(t, ctx, "admin", "token", "--name", "e2e-auditor", "--out", auditorToken)
	saveLikeEditor(t, lc.tokensFile(), "tokens:\n"+item)
	if err := gw.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}

	list := []string{"allowlist", "list", "--admin-url", gw.AdminURL, "--token-file"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, stderr, err := lc.runStatus(ctx, append(list, lc.tokenFile)...)
		if err != nil {
			if !strings.Contains(stderr, "401 M_UNKNOWN_TOKEN") {
				t.Errorf("allowlist list with the revoked token: %v, stderr %q; want 401 M_UNKNOWN_TOKEN", err, stderr)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked token is still accepted 10s after SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := lc.run(t, ctx, append(list, auditorToken)...); !revisionLine.MatchString(out) {
		t.Errorf("allowlist list with the new token printed no revision:\n%s", out)
	}
}
