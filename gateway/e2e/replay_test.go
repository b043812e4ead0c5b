package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
	"github.com/bordergate/bordergate/gateway/internal/replaytest"
	"github.com/bordergate/bordergate/policy/policycmd"
)

// checkReplayFlips runs bin policy replay on the gateway's decision log so
// far. The candidate is a copy of the default policy that denies
// m.room.message instead of the harness's denied type. The report must name
// exactly the decisions that this change flips, as computed from the
// records.
func checkReplayFlips(t *testing.T, ctx context.Context, bin, repoRoot string, fed *testfed.Federation) {
	t.Helper()
	snapshot := snapshotDecisions(t, fed.GatewayLog)
	records, err := decisionlog.ReadFile(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	toDeny, toAllow := replaytest.MessageFlips(records, []string{testfed.ForbiddenEventType})
	if len(toDeny) == 0 || len(toAllow) == 0 {
		t.Fatalf("the scenario should give messages to deny and the forbidden event to allow, got %v and %v", toDeny, toAllow)
	}
	t.Logf("%d records; the changed rule flips %d to deny and %d to allow", len(records), len(toDeny), len(toAllow))

	candidate := replaytest.CopyPolicy(t, filepath.Join(repoRoot, "rego"), replaytest.MessagesDenied)
	cmd := exec.CommandContext(ctx, bin, "policy", "replay", "--config", fed.Gateway.ConfigFile, "--policy", candidate,
		"--decisions", snapshot, "--format", "json", "--examples", strconv.Itoa(len(records)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != policycmd.ExitCodeFailed {
		t.Fatalf("policy replay: %v, want exit status %d; stderr:\n%s", err, policycmd.ExitCodeFailed, stderr.Bytes())
	}

	var report policycmd.ReplayReport
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("policy replay output is not a JSON report: %v\n%s", err, out)
	}
	if got := replaytest.DecisionIDs(report.AllowToDeny.Examples); !slices.Equal(got, toDeny) {
		t.Errorf("allow to deny = %v\nwant %v", got, toDeny)
	}
	if got := replaytest.DecisionIDs(report.DenyToAllow.Examples); !slices.Equal(got, toAllow) {
		t.Errorf("deny to allow = %v\nwant %v", got, toAllow)
	}
	if report.AllowToDeny.Count != len(toDeny) || report.DenyToAllow.Count != len(toAllow) {
		t.Errorf("counts = %d and %d, want %d and %d", report.AllowToDeny.Count, report.DenyToAllow.Count, len(toDeny), len(toAllow))
	}
	if report.Records != len(records) || report.Malformed.Count != 0 || report.Masked.Count != 0 {
		t.Errorf("records %d, malformed %d, masked %d, want %d, 0 and 0",
			report.Records, report.Malformed.Count, report.Masked.Count, len(records))
	}
}

// snapshotDecisions copies the complete lines of the decision log, which
// the running gateway may still append to, so that the test and the
// command read the same records.
func snapshotDecisions(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	snapshot := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(snapshot, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return snapshot
}
