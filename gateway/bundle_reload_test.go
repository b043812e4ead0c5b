package gateway

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/internal/testbundle"
)

func TestReloadSignedBundle(t *testing.T) {
	bf := newBundleFixture(t)
	var remoteKey string
	tg := startGateway(t, gatewayOptions{
		policyConfig:    bf.config("policy-a", "policy-b"),
		allowlistConfig: "allowlist: {from_bundle: true}",
		setup: func(dir, key string) {
			remoteKey = key
			bf.writeFiles(dir)
			bf.bundles.publish(bf.build("v1", bf.keyA, allowData, key, nil))
		},
	})
	rec, forwarded := tg.sendMessage("b1")
	assertAllowed(t, rec, forwarded, true)
	v1 := policyRevision(rec)
	if !regexp.MustCompile(`^v1@sha256:[0-9a-f]{64}$`).MatchString(v1) {
		t.Errorf("policy revision = %q, want v1@sha256: and the content hash", v1)
	}
	if got := rec.Bundles[allowlistBundleName].Revision; len(got) != 64 {
		t.Errorf("allow-list revision = %q, want 64 hex digits", got)
	}

	// v2 is signed with key B, which the gateway also trusts, and denies
	// messages. The poller picks it up within its 1s interval.
	bf.bundles.publish(bf.build("v2", bf.keyB, denyData, remoteKey, nil))
	v2 := tg.waitForRevision(v1)
	if !strings.HasPrefix(v2, "v2@sha256:") {
		t.Errorf("revision = %q, want v2", v2)
	}
	rec, forwarded = tg.sendMessage("b2")
	assertAllowed(t, rec, forwarded, false)
	if policyRevision(rec) != v2 {
		t.Errorf("record revision = %s, want %s", policyRevision(rec), v2)
	}

	keyC, err := testbundle.NewEd25519Signer("policy-c")
	if err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name    string
		bundle  []byte
		reason  string
		message string
	}{
		{
			"bad signature", bf.build("v3", bf.keyA, allowData, remoteKey, func(s *testbundle.Spec) { s.TamperModule = "bordergate/pdu.rego" }),
			"signature", "reload policy bundle: read bundle: bordergate/pdu.rego: digest mismatch",
		},
		{
			"unsigned", bf.build("v3", nil, allowData, remoteKey, nil),
			"unsigned", "reload policy bundle: read bundle: the bundle carries no signature and signing is configured",
		},
		{
			"unknown key", bf.build("v3", keyC, allowData, remoteKey, nil),
			"signature", "reload policy bundle: read bundle: verification key corresponding to ID policy-c not found",
		},
		{
			"uncompilable policy", bf.build("v3", bf.keyA, allowData, remoteKey, func(s *testbundle.Spec) {
				s.Modules = map[string]string{"bordergate/request.rego": "package bordergate.request\n\ndecision := {\"allow\": nowhere}\n"}
			}),
			"compile", "reload policy bundle: compile policy: 1 error occurred: bordergate/request.rego:3:",
		},
		{
			"missing decision rule", bf.build("v3", bf.keyA, allowData, remoteKey, func(s *testbundle.Spec) {
				delete(s.Modules, "bordergate/edu.rego")
			}),
			"decision_rule", "reload policy bundle: policy defines no data.bordergate.edu.decision rule",
		},
		{
			"bad allow-list", bf.build("v3", bf.keyA, allowData, remoteKey, func(s *testbundle.Spec) {
				s.Data["bordergate"].(map[string]any)["allowlist"] = map[string]any{"servers": []any{map[string]any{"server_name": "bad name!", "endpoints": []any{"*"}}}}
			}),
			"allowlist", `reload policy bundle: bundle data bordergate/allowlist: servers[0] (server_name "bad name!"): server_name: `,
		},
		{
			"no allow-list", bf.build("v3", bf.keyA, allowData, remoteKey, func(s *testbundle.Spec) {
				delete(s.Data["bordergate"].(map[string]any), "allowlist")
			}),
			"allowlist", "reload policy bundle: the bundle has no allow-list under bordergate/allowlist, and allowlist.from_bundle is set",
		},
	}
	for i, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			bf.bundles.publish(tc.bundle)
			err := tg.gw.Reload(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Errorf("Reload error = %v, want it to contain %q", err, tc.message)
			}
			series := `bordergate_reload_failures_total{reason="` + tc.reason + `",source="policy_bundle"}`
			if got := tg.metric(series); got == "0" {
				t.Errorf("%s = 0, want the rejection counted", series)
			}
			if rev := tg.gw.currentPolicies().enforced.Revision(); rev != v2 {
				t.Errorf("revision after a rejected bundle = %s, want %s still", rev, v2)
			}
			rec, forwarded := tg.sendMessage("bad" + string(rune('a'+i)))
			assertAllowed(t, rec, forwarded, false)
		})
	}

	// A restart while the bundle server is down starts on the saved v2.
	saved, err := os.ReadFile(filepath.Join(tg.dir, "state", "bundles", "policy.tar.gz"))
	if err != nil {
		t.Fatalf("saved bundle: %v", err)
	}
	bf.server.Close()
	restarted := restartWithBundle(t, tg, bf, saved, "policy-a", "policy-b")
	if err != nil {
		t.Fatal(err)
	}
	if rev := restarted.currentPolicies().enforced.Revision(); rev != v2 {
		t.Errorf("restarted on revision %s, want the saved %s", rev, v2)
	}
	restarted.Close()
}

// restartWithBundle starts a second gateway with the configuration of tg
// in a new directory whose state holds saved (nil for none), with the
// signing keys named. It returns the gateway, or fails the test.
func restartWithBundle(t *testing.T, tg *testGateway, bf *bundleFixture, saved []byte, keys ...string) *Gateway {
	t.Helper()
	g, err := startWithBundle(t, tg, bf, saved, keys...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return g
}

func startWithBundle(t *testing.T, tg *testGateway, bf *bundleFixture, saved []byte, keys ...string) (*Gateway, error) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"cert.pem", "key.pem", "ca.pem", "rooms.yaml", "admin-tokens.yaml", "bundle-ca.pem", "policy-a.pem", "policy-b.pem", "audit.key"} {
		data, err := os.ReadFile(filepath.Join(tg.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, name, string(data))
	}
	if saved != nil {
		if err := os.MkdirAll(filepath.Join(dir, "state", "bundles"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "state", "bundles"), "policy.tar.gz", string(saved))
	}
	config, err := os.ReadFile(filepath.Join(tg.dir, "bordergate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	policySection := regexp.MustCompile(`(?s)policy:\n  bundle:\n.*?(\n[a-z])`)
	text := policySection.ReplaceAllString(string(config), strings.TrimSuffix(bf.config(keys...), "\n")+"$1")
	writeFile(t, dir, "bordergate.yaml", text)
	cfg, err := LoadConfig(filepath.Join(dir, "bordergate.yaml"))
	if err != nil {
		t.Fatalf("LoadConfig: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestBundleKeyRotation(t *testing.T) {
	bf := newBundleFixture(t)
	tg := startGateway(t, gatewayOptions{
		policyConfig:    bf.config("policy-a", "policy-b"),
		allowlistConfig: "allowlist: {from_bundle: true}",
		setup: func(dir, key string) {
			bf.writeFiles(dir)
			bf.bundles.publish(bf.build("rotated", bf.keyB, allowData, key, nil))
		},
	})
	if rev := tg.gw.currentPolicies().enforced.Revision(); !strings.HasPrefix(rev, "rotated@") {
		t.Errorf("with keys A and B: revision %q, want the bundle signed with B", rev)
	}

	// Only key A: the bundle signed with B is rejected, and with no saved
	// bundle the gateway does not start.
	_, err := startWithBundle(t, tg, bf, nil, "policy-a")
	want := "load policy bundle: read bundle: verification key corresponding to ID policy-b not found; no saved bundle to start on: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New with only key A: error = %v, want prefix %q", err, want)
	}
	// A saved bundle is verified again at start, so a bundle signed with a
	// key that was removed is not started on either.
	saved, err := os.ReadFile(filepath.Join(tg.dir, "state", "bundles", "policy.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	bf.server.Close()
	_, err = startWithBundle(t, tg, bf, saved, "policy-a")
	if err == nil || !strings.Contains(err.Error(), "; saved bundle ") || !strings.HasSuffix(err.Error(), "verification key corresponding to ID policy-b not found") {
		t.Errorf("New with only key A and a saved bundle signed with B: error = %v, want both rejections", err)
	}
}

// startOnBundleV1 starts a gateway whose bundle server serves v1, an
// allowing bundle signed with key A, and returns the gateway, v1 and the
// remote server's key.
func startOnBundleV1(t *testing.T, bf *bundleFixture) (*testGateway, []byte, string) {
	t.Helper()
	var v1 []byte
	var remoteKey string
	tg := startGateway(t, gatewayOptions{
		policyConfig:    bf.config("policy-a"),
		allowlistConfig: "allowlist: {from_bundle: true}",
		setup: func(dir, key string) {
			remoteKey = key
			bf.writeFiles(dir)
			v1 = bf.build("v1", bf.keyA, allowData, key, nil)
			bf.bundles.publish(v1)
		},
	})
	return tg, v1, remoteKey
}

func TestBundleRollbackToOlderSignedBundle(t *testing.T) {
	t.Skip("fault left: the gateway puts in force an older bundle signed with a trusted key when the bundle server serves it again, because OPA bundles carry no ordered revision or issue time that opa build sets")
	bf := newBundleFixture(t)
	tg, v1Bundle, remoteKey := startOnBundleV1(t, bf)
	v1 := tg.gw.currentPolicies().enforced.Revision()
	bf.bundles.publish(bf.build("v2", bf.keyA, denyData, remoteKey, nil))
	v2 := tg.waitForRevision(v1)

	// A compromised or stale bundle server serves v1 again.
	bf.bundles.publish(v1Bundle)
	if err := tg.gw.Reload(t.Context()); err == nil {
		t.Error("Reload of the older v1 bundle succeeded, want it rejected")
	}
	if rev := tg.gw.currentPolicies().enforced.Revision(); rev != v2 {
		t.Errorf("revision = %s after the server served v1 again, want %s still", rev, v2)
	}
}

func TestBundleRejectedAtStartIsNotFetchedAgain(t *testing.T) {
	bf := newBundleFixture(t)
	tg, _, remoteKey := startOnBundleV1(t, bf)
	saved, err := os.ReadFile(filepath.Join(tg.dir, "state", "bundles", "policy.tar.gz"))
	if err != nil {
		t.Fatalf("saved bundle: %v", err)
	}
	bf.bundles.publish(bf.build("v2", bf.keyA, allowData, remoteKey, func(s *testbundle.Spec) { s.TamperModule = "bordergate/pdu.rego" }))

	// The bundle server's v2 is rejected at start, so the gateway starts
	// on the saved v1 and must not fetch and reject v2 again at each poll.
	restarted := restartWithBundle(t, tg, bf, saved, "policy-a")
	defer restarted.Close()
	if rev := restarted.currentPolicies().enforced.Revision(); !strings.HasPrefix(rev, "v1@") {
		t.Fatalf("started on revision %s, want the saved v1", rev)
	}
	if err := restarted.Reload(t.Context()); err != nil {
		t.Errorf("Reload after starting on the saved bundle = %v, want the rejected v2 skipped as not modified", err)
	}
}
