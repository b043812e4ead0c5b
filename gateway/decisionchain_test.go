package gateway

import (
	"crypto/ed25519"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/audit"
	"github.com/bordergate/bordergate/gateway/decisionlog"
)

func TestReloadContinuesDecisionChain(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	uri := "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test%3A8448"
	tg.hs.body = `{}`
	if resp, answer := tg.request("GET", uri, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %v", resp.StatusCode, answer)
	}
	rotated := filepath.Join(tg.dir, "decisions.jsonl.1")
	if err := os.Rename(tg.logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if resp, answer := tg.request("GET", uri, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d after reload, answer %v", resp.StatusCode, answer)
	}
	if err := tg.gw.Close(); err != nil {
		t.Fatal(err)
	}

	pubPEM, err := os.ReadFile(filepath.Join(tg.dir, "audit.pub"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := decisionlog.ParseVerifyKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	report, err := audit.Verify([]string{tg.logPath, rotated}, audit.VerifyOptions{Keys: []ed25519.PublicKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if !report.OK() || report.Uncovered != 0 || report.Checkpoints != 2 {
		var text strings.Builder
		_ = report.WriteText(&text)
		t.Errorf("want an intact chain, both files ended by a checkpoint:\n%s", text.String())
	}
	if _, err := os.Stat(filepath.Join(tg.dir, "state", chainStateFile)); err != nil {
		t.Errorf("chain state file: %v", err)
	}
}
