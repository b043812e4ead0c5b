package gateway

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// pduBody returns the body of a decoded PDU input, and whether it is
// there.
func pduBody(input map[string]any) (any, bool) {
	pdu, _ := input["pdu"].(map[string]any)
	content, _ := pdu["content"].(map[string]any)
	body, ok := content["body"]
	return body, ok
}

func TestMaskRuleReload(t *testing.T) {
	tg := startGateway(t, gatewayOptions{
		policyConfig: "policy: {paths: [rego], data_file: policy-data.json}",
		policyData:   allowData,
		extraConfig:  "reload: {debounce: 50ms}\n",
		setup:        func(dir, _ string) { copyRego(t, dir, "rego") },
	})
	rec, _ := tg.sendMessage("mask1")
	if want := "/input/pdu/content/body"; !slices.Contains(rec.Erased, want) {
		t.Fatalf("erased = %q with the default mask policy, want %s in it", rec.Erased, want)
	}
	if body, ok := pduBody(asMap(t, rec.Input)); ok {
		t.Errorf("body %v written with the default mask policy", body)
	}
	old := policyRevision(rec)

	// The edited mask replaces the body instead of erasing it.
	writeFile(t, filepath.Join(tg.dir, "rego"), "mask.rego", `package system.log

mask contains {"op": "upsert", "path": "/input/pdu/content/body", "value": "[masked]"}
`)
	tg.waitForRevision(old)
	rec, _ = tg.sendMessage("mask2")
	if body, _ := pduBody(asMap(t, rec.Input)); body != "[masked]" {
		t.Errorf("body = %v after the mask reload, want [masked]", body)
	}
	if want := []string{"/input/pdu/content/body"}; !slices.Equal(rec.Masked, want) {
		t.Errorf("masked = %q, want %q", rec.Masked, want)
	}
	if slices.Contains(rec.Erased, "/input/pdu/content/body") {
		t.Errorf("erased = %q, want the body replaced, not erased", rec.Erased)
	}
}

func TestMaskRuleFailureFailsClosed(t *testing.T) {
	tg := startGateway(t, gatewayOptions{
		policyConfig: "policy: {paths: [rego], data_file: policy-data.json}",
		policyData:   allowData,
		extraConfig:  "reload: {watch: false}\n",
		setup: func(dir, _ string) {
			copyRego(t, dir, "rego")
			// Two values for one complete rule: an evaluation error on
			// PDU records only.
			writeFile(t, filepath.Join(dir, "rego"), "mask.rego", `package system.log

mask := {"/input/pdu/content/body"} if input.path == "bordergate/pdu/decision"

mask := {"/input/pdu"} if input.path == "bordergate/pdu/decision"

mask := set() if input.path != "bordergate/pdu/decision"
`)
		},
	})
	rec, forwarded := tg.sendMessage("fail1")
	if !forwarded {
		t.Error("transaction not forwarded: a mask failure must not change the decision")
	}
	if rec.Input != nil || rec.Result != nil {
		t.Errorf("record input = %v, result = %v after a mask failure, want both erased", rec.Input, rec.Result)
	}
	if want := []string{"/input", "/result"}; !slices.Equal(rec.Erased, want) {
		t.Errorf("erased = %q, want %q", rec.Erased, want)
	}
	if !strings.HasPrefix(rec.MaskError, "mask policy failed: ") {
		t.Errorf("mask_error = %q, want it to start with %q", rec.MaskError, "mask policy failed: ")
	}
	data, err := os.ReadFile(tg.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), `"body":"fail1"`) {
		t.Error("the decision log holds the message body")
	}
	deadline := time.Now().Add(5 * time.Second)
	for tg.metric("bordergate_decision_log_mask_failures_total") == "0" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := tg.metric("bordergate_decision_log_mask_failures_total"); got == "0" {
		t.Error("bordergate_decision_log_mask_failures_total = 0, want the failure counted")
	}
}

// asMap returns a decoded JSON object, or fails the test.
func asMap(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("value %v is %T, want a JSON object", v, v)
	}
	return m
}
