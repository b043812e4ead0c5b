package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
	"github.com/bordergate/bordergate/gateway/internal/testbundle"
)

const (
	// reloadedEventType is the event type that the test adds to the policy
	// data file's denied_event_types while the federation runs.
	reloadedEventType = "com.example.reloaded"
	// candidateKeyID is the key ID of the key that signs the candidate
	// policy bundles.
	candidateKeyID = "candidate-2026"
	// operatorName is the principal of the admin token.
	operatorName = "e2e-operator"
	// denyNote is the note of the deny entry for hs1.
	denyNote = "e2e incident, hs1 suspended"
	// externalRotation is the name that the test gives the decision log
	// when it rotates the file as logrotate would.
	externalRotation = "decisions-external.jsonl"
)

// lifecycle is what the operator of TestPolicyLifecycle has set up around
// the gateway.
type lifecycle struct {
	bin string
	dir string
	// tokenFile holds the admin bearer token of operatorName.
	tokenFile string
	// auditKey and auditPublicKey are the key pair that signs the decision
	// log's checkpoints.
	auditKey, auditPublicKey string
	// regoDir is the enforced policy, a copy of the repository's rego.
	regoDir string
	// candidate signs the candidate bundles, whose modules are those of
	// the repository's rego.
	candidate        *testbundle.Signer
	candidateModules map[string]string
	bundles          *testfed.BundleServer
	collector        *testfed.Collector

	fed  *testfed.Federation
	conv *testfed.Conversation
	// bodies are the bodies of the events sent through the gateway, which
	// masking must keep out of every record.
	bodies []string
}

// TestPolicyLifecycle runs hs1 -> bordergate -> hs2 federation while an
// operator changes the running gateway with the bordergate commands, and
// then audits its decision log. The gateway enforces a policy from files
// that the test edits, shadows it with a candidate from a signed bundle
// server, ships its records to a collector, signs checkpoints and rotates
// its log. The steps run on one federation, in order.
func TestPolicyLifecycle(t *testing.T) {
	testfed.RequireNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	bin, repoRoot := bordergateBinary(t, ctx)
	lc := setUpLifecycle(t, ctx, bin, repoRoot)
	lc.fed = startFederation(t, ctx, testfed.Options{
		Gateway: true, BordergateBin: bin, RepoRoot: repoRoot, GatewayConfig: lc.gatewayConfig(),
	})
	t.Cleanup(func() {
		if t.Failed() {
			logDecisions(t, lc.fed)
			t.Logf("collector: %d uploads, %d events, refused requests %q",
				lc.collector.Uploads(), len(lc.collector.Events()), lc.collector.Errors())
		}
	})

	created := watchCreated(t, filepath.Dir(lc.fed.GatewayLog))

	start := time.Now()
	conv, err := testfed.StartConversation(ctx, lc.fed)
	if err != nil {
		t.Fatalf("conversation through the gateway: %v", err)
	}
	lc.conv = conv
	// StartConversation's bodies: only alice's message crosses the
	// gateway, but neither may be in a record.
	lc.bodies = append(lc.bodies, "hello bob, from hs1", "hello alice, from hs2")
	t.Logf("conversation took %s", time.Since(start).Round(time.Millisecond))

	var first decisionlog.Record
	t.Run("shadow candidate would deny messages", func(t *testing.T) {
		first = lc.checkShadowWouldDeny(t, ctx)
	})
	if first.DecisionID == "" {
		t.FailNow()
	}

	var deniedID string
	t.Run("data file edit denies the next event", func(t *testing.T) {
		deniedID = lc.checkDataFileEdit(t, ctx, first)
	})

	t.Run("broken policy edit keeps the policy in force", func(t *testing.T) {
		lc.checkBrokenEdit(t, ctx, deniedID)
	})

	t.Run("mask rule edit applies to the next record", func(t *testing.T) {
		lc.checkMaskEdit(t, ctx)
	})

	var refused string
	t.Run("deny entry refuses hs1 across a crash", func(t *testing.T) {
		refused = lc.checkDenyEntry(t, ctx, first)
	})

	t.Run("removed deny entry lets messages through", func(t *testing.T) {
		lc.checkDenyRemoved(t, ctx, refused)
	})

	t.Run("burst of messages rotates the log by size", func(t *testing.T) {
		lc.checkSizeRotation(t, ctx)
	})

	t.Run("SIGHUP rotates the log and takes a new candidate", func(t *testing.T) {
		lc.checkHangup(t, ctx)
	})

	t.Run("SIGHUP revokes an admin token", func(t *testing.T) {
		lc.checkTokenRevoked(t, ctx)
	})

	// The audit runs on the files of a stopped gateway, which no longer
	// writes to them, once the collector has every record.
	shipped := lc.waitForShipping(t, ctx)
	if err := lc.fed.Gateway.Stop(); err != nil {
		t.Fatalf("stop the gateway: %v", err)
	}
	// The audit commands get the files as the documentation's glob gives
	// them.
	files, err := filepath.Glob(filepath.Join(filepath.Dir(lc.fed.GatewayLog), "decisions*"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("decision log files: %q", baseNames(files))
	t.Run("log glob matches only decision logs", func(t *testing.T) {
		checkGlobShowsLogsOnly(t, created())
		logs, err := testfed.DecisionLogFiles(lc.fed.GatewayLog)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(files, logs) {
			t.Errorf("decisions* = %q, want the decision log files %q", baseNames(files), baseNames(logs))
		}
	})

	t.Run("audit verify passes", func(t *testing.T) {
		lc.checkVerifyPasses(t, ctx, files)
	})
	t.Run("audit verify finds an altered record", func(t *testing.T) {
		lc.checkVerifyFindsAlteration(t, ctx, files, deniedID)
	})
	t.Run("audit query finds the denied event", func(t *testing.T) {
		lc.checkQuery(t, ctx, files, deniedID)
	})
	t.Run("records reached the collector", func(t *testing.T) {
		lc.checkShipped(t, files, shipped, deniedID)
	})
	t.Run("message bodies masked", func(t *testing.T) {
		lc.checkMasked(t, files)
	})
}

// setUpLifecycle creates what the operator prepares before starting the
// gateway: an admin token and the audit key pair with the bordergate
// commands, a copy of the policy to edit, the candidate's signing key, a
// bundle server serving the first candidate, and a collector.
func setUpLifecycle(t *testing.T, ctx context.Context, bin, repoRoot string) *lifecycle {
	t.Helper()
	lc := &lifecycle{bin: bin, dir: t.TempDir()}
	lc.tokenFile = filepath.Join(lc.dir, "operator.token")
	item := lc.run(t, ctx, "admin", "token", "--name", operatorName, "--out", lc.tokenFile)
	writeTestFile(t, lc.tokensFile(), "tokens:\n"+item)

	lc.auditKey = filepath.Join(lc.dir, "audit.key")
	lc.auditPublicKey = filepath.Join(lc.dir, "audit.pub")
	lc.run(t, ctx, "audit", "keygen", "--key", lc.auditKey, "--public-key", lc.auditPublicKey)

	lc.regoDir = filepath.Join(lc.dir, "rego")
	if err := os.CopyFS(lc.regoDir, os.DirFS(filepath.Join(repoRoot, "rego"))); err != nil {
		t.Fatal(err)
	}

	var err error
	if lc.candidate, err = testbundle.NewEd25519Signer(candidateKeyID); err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(lc.dir, "candidate.pub"), string(lc.candidate.PublicPEM))
	if lc.candidateModules, err = testbundle.ReadModules(filepath.Join(repoRoot, "rego"), "bordergate/"); err != nil {
		t.Fatal(err)
	}

	log := testLogger(t)
	if lc.bundles, err = testfed.StartBundleServer("/bundles/candidate.tar.gz", log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.bundles.Close() })
	lc.bundles.Publish(lc.candidateBundle(t, "v1", []string{testfed.ForbiddenEventType, "m.room.message"}, nil))
	if lc.collector, err = testfed.StartCollector(log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lc.collector.Close() })
	return lc
}

// gatewayConfig returns the fields that the test adds to the harness's
// gateway configuration.
func (lc *lifecycle) gatewayConfig() map[string]any {
	return map[string]any{
		"admin":  map[string]any{"token_file": lc.tokensFile()},
		"reload": map[string]any{"debounce": "100ms"},
		"policy": map[string]any{
			"paths": []any{lc.regoDir},
			"shadow": map[string]any{
				"bundle": map[string]any{
					"url": lc.bundles.URL,
					// Only SIGHUP fetches a new candidate during the test.
					"poll_interval": "1h",
					"signing": map[string]any{"keys": []any{map[string]any{
						"key_id": candidateKeyID, "algorithm": "EdDSA",
						"public_key_file": filepath.Join(lc.dir, "candidate.pub"),
					}}},
				},
			},
		},
		"decision_log": map[string]any{
			"signing_key_file": lc.auditKey,
			"checkpoint":       map[string]any{"interval": "1s"},
			// The minimum size, so that the scenario's records fill more
			// than one file.
			"rotate": map[string]any{"max_bytes": 65536, "compress": true},
			"ship": map[string]any{
				"url": lc.collector.URL, "flush_interval": "200ms",
				"min_retry_delay": "100ms", "max_retry_delay": "1s",
			},
		},
	}
}

// tokensFile is the gateway's admin.token_file.
func (lc *lifecycle) tokensFile() string {
	return filepath.Join(lc.dir, "admin-tokens.yaml")
}

// candidateBundle builds a candidate bundle of the repository's policy
// whose data denies the given event types, signed with the candidate key.
// edit, when set, changes the spec before the bundle is built.
func (lc *lifecycle) candidateBundle(t *testing.T, revision string, denied []string, edit func(*testbundle.Spec)) []byte {
	t.Helper()
	spec := testbundle.Spec{
		Revision: revision,
		Modules:  lc.candidateModules,
		Data:     map[string]any{"bordergate": map[string]any{"config": map[string]any{"denied_event_types": denied}}},
		Signer:   lc.candidate,
	}
	if edit != nil {
		edit(&spec)
	}
	bundle, err := testbundle.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	return bundle
}

// sendMessage has alice send a text message, waits until bob has it, and
// returns its event ID.
func (lc *lifecycle) sendMessage(t *testing.T, ctx context.Context, body string) string {
	t.Helper()
	lc.bodies = append(lc.bodies, body)
	eventID, err := sendAndWait(ctx, lc.conv.Alice, lc.conv.Bob, lc.conv.RoomID, body)
	if err != nil {
		t.Fatal(err)
	}
	return eventID
}

// sendDenied has alice send an event of reloadedEventType, waits for the
// gateway's record of it, and checks that the policy denied it.
func (lc *lifecycle) sendDenied(t *testing.T, ctx context.Context, body string) (string, decisionlog.Record) {
	t.Helper()
	lc.bodies = append(lc.bodies, body)
	eventID, err := lc.conv.Alice.Send(ctx, lc.conv.RoomID, reloadedEventType, map[string]any{"body": body})
	if err != nil {
		t.Fatal(err)
	}
	rec := waitForPDURecord(t, ctx, lc.fed, eventID)
	if rec.Allow || rec.Action != decisionlog.ActionDenied {
		t.Errorf("record %s: allow = %t, action = %q; want false, %q", rec.DecisionID, rec.Allow, rec.Action, decisionlog.ActionDenied)
	}
	return eventID, rec
}

// run runs the bordergate binary with args and returns its standard
// output. A failure ends the test with the command's standard error.
func (lc *lifecycle) run(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	stdout, stderr, err := lc.runStatus(ctx, args...)
	if err != nil {
		t.Fatalf("bordergate %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// runStatus runs the bordergate binary with args and returns its standard
// output and error, and the error of a run that did not exit 0.
func (lc *lifecycle) runStatus(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, lc.bin, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// waitForPDURecord waits for the first PDU record of eventID.
func waitForPDURecord(t *testing.T, ctx context.Context, fed *testfed.Federation, eventID string) decisionlog.Record {
	t.Helper()
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rec, err := fed.WaitForDecision(waitCtx, func(rec decisionlog.Record) bool {
		return testfed.DecisionKind(rec) == "pdu" && rec.Matrix != nil && rec.Matrix.EventID == eventID
	})
	if err != nil {
		t.Fatalf("PDU record of %s: %v", eventID, err)
	}
	return rec
}

// findPDURecord returns the first PDU record of eventID, which must be
// in the log already.
func findPDURecord(t *testing.T, fed *testfed.Federation, eventID string) decisionlog.Record {
	t.Helper()
	return requirePDURecords(t, fed, eventID)[0]
}

func waitForMetric(t *testing.T, ctx context.Context, gw *testfed.Gateway, series string, minimum float64) {
	t.Helper()
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := gw.WaitForMetric(waitCtx, series, minimum); err != nil {
		t.Fatal(err)
	}
}

// shadowResult returns result.shadow of a record.
func shadowResult(t *testing.T, rec decisionlog.Record) map[string]any {
	t.Helper()
	result, _ := rec.Result.(map[string]any)
	shadow, ok := result["shadow"].(map[string]any)
	if !ok {
		t.Fatalf("record %s has no result.shadow: %s", rec.DecisionID, testfed.FormatDecision(rec))
	}
	return shadow
}

func policyRevision(rec decisionlog.Record) string {
	return rec.Bundles[decisionlog.BundleName].Revision
}

func allowlistRevision(rec decisionlog.Record) string {
	return rec.Bundles["allowlist"].Revision
}

// saveLikeEditor replaces the file at path with content as editors do:
// it writes a new file beside it and renames it over the old one.
func saveLikeEditor(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".swp"
	writeTestFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
