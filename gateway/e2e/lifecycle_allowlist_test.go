package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// checkDenyEntry adds a deny entry for hs1 with bordergate allowlist add,
// kills the gateway as a crash would, and starts it again while the
// candidate's bundle server is down. Then it edits the allow-list file. The deny entry must stay in force
// through both: the next transaction of hs1 is refused, its record gives
// the reason, and bob does not receive alice's message. It returns that message's
// event ID.
func (lc *lifecycle) checkDenyEntry(t *testing.T, ctx context.Context, first decisionlog.Record) string {
	gw := lc.fed.Gateway
	out := lc.run(t, ctx, "allowlist", "add", testfed.HS1ServerName, "--deny", "--note", denyNote,
		"--admin-url", gw.AdminURL, "--token-file", lc.tokenFile)
	wantLine := fmt.Sprintf("deny entry for %s in source api, changed by %s\n", testfed.HS1ServerName, operatorName)
	if !strings.HasPrefix(out, wantLine) {
		t.Errorf("allowlist add printed %q, want it to start with %q", out, wantLine)
	}
	revision := printedRevision(t, out)
	if revision == allowlistRevision(first) {
		t.Errorf("the allow-list revision did not change with the deny entry: %s", revision)
	}
	checkDenyListed(t, ctx, gw, lc.tokenFile, revision)

	// Records committed just before a crash may miss the shipping buffer
	// (a limit that decision-records.md states), so the crash comes once
	// all are shipped. The gateway then starts on the candidate bundle it kept,
	// because the bundle server cannot serve it.
	lc.waitForShipping(t, ctx)
	lc.bundles.SetFailure(http.StatusServiceUnavailable)
	if err := gw.Kill(); err != nil {
		t.Fatal(err)
	}
	restartedAt := time.Now()
	if err := gw.Start(ctx); err != nil {
		t.Fatalf("restart the gateway: %v", err)
	}
	lc.bundles.SetFailure(0)
	checkReady(t, ctx, gw)
	checkDenyListed(t, ctx, gw, lc.tokenFile, revision)
	table := lc.run(t, ctx, "allowlist", "list", "--source", "api", "--admin-url", gw.AdminURL, "--token-file", lc.tokenFile)
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(testfed.HS1ServerName) + ` +deny +api +in force `).MatchString(table) {
		t.Errorf("allowlist list shows no api deny entry in force for %s:\n%s", testfed.HS1ServerName, table)
	}

	// Reloading the file replaces the file source only.
	revision = lc.editAllowlistFile(t, ctx)
	checkDenyListed(t, ctx, gw, lc.tokenFile, revision)

	body := "message while hs1 is denied"
	lc.bodies = append(lc.bodies, body)
	eventID, err := lc.conv.Alice.SendText(ctx, lc.conv.RoomID, body)
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rec, err := lc.fed.WaitForDecision(waitCtx, func(rec decisionlog.Record) bool {
		return testfed.DecisionKind(rec) == "request" && rec.Matrix != nil && rec.Matrix.Endpoint == "send" &&
			rec.Matrix.Origin == testfed.HS1ServerName && !rec.Timestamp.Before(restartedAt)
	})
	if err != nil {
		t.Fatalf("no record of a transaction from hs1 after the crash: %v", err)
	}
	if rec.Allow || rec.Action != decisionlog.ActionDenied || rec.Status != http.StatusForbidden {
		t.Errorf("record %s: allow = %t, action = %q, status = %d; want false, %q, 403",
			rec.DecisionID, rec.Allow, rec.Action, rec.Status, decisionlog.ActionDenied)
	}
	wantReason := fmt.Sprintf("origin %s denied by allow-list entry %s: %s", testfed.HS1ServerName, testfed.HS1ServerName, denyNote)
	if !slices.Contains(testfed.DecisionReasons(rec), wantReason) {
		t.Errorf("record %s: reasons = %q, want %q", rec.DecisionID, testfed.DecisionReasons(rec), wantReason)
	}
	if got := allowlistRevision(rec); got != revision {
		t.Errorf("record %s: allow-list revision = %s, want %s", rec.DecisionID, got, revision)
	}
	if got, _ := shadowResult(t, rec)["revision"].(string); !strings.HasPrefix(got, "v1@sha256:") {
		t.Errorf("record %s: result.shadow.revision = %q, want the kept v1@sha256:...", rec.DecisionID, got)
	}

	records, err := lc.fed.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	if matches := pduRecords(records, eventID); len(matches) > 0 {
		t.Errorf("%s has PDU records while hs1 is denied: %s", eventID, testfed.FormatDecision(matches[0]))
	}
	_, err = lc.conv.Bob.Event(ctx, lc.conv.RoomID, eventID)
	var matrixErr *testfed.MatrixError
	if !errors.As(err, &matrixErr) || matrixErr.Status != http.StatusNotFound {
		t.Errorf("bob's request for %s while hs1 is denied: %v, want 404", eventID, err)
	}
	return eventID
}

// checkReady checks that the admin listener's /readyz reports every
// check passed.
func checkReady(t *testing.T, ctx context.Context, gw *testfed.Gateway) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.AdminURL+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Ready  bool              `json:"ready"`
		Checks map[string]string `json:"checks"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	if resp.StatusCode != http.StatusOK || !body.Ready || len(body.Checks) == 0 {
		t.Errorf("GET /readyz: status %d, ready %t, checks %v; want 200, true and passed checks", resp.StatusCode, body.Ready, body.Checks)
	}
	for name, result := range body.Checks {
		if result != "ok" {
			t.Errorf("GET /readyz: check %s = %q, want ok", name, result)
		}
	}
}

// editAllowlistFile renames hs1's administration in the allow-list file,
// waits until the gateway has reloaded it, and returns the new allow-list
// revision.
func (lc *lifecycle) editAllowlistFile(t *testing.T, ctx context.Context) string {
	t.Helper()
	gw := lc.fed.Gateway
	before := listAllowlist(t, ctx, gw, lc.tokenFile).Revision
	const reloads = `bordergate_reloads_total{source="allowlist_file"}`
	count, err := gw.Metric(ctx, reloads)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(gw.AllowlistFile)
	if err != nil {
		t.Fatal(err)
	}
	const administration = "Test administration one"
	if !strings.Contains(string(data), administration) {
		t.Fatalf("%s does not name %q:\n%s", gw.AllowlistFile, administration, data)
	}
	saveLikeEditor(t, gw.AllowlistFile, strings.Replace(string(data), administration, administration+", agreement renewed", 1))
	waitForMetric(t, ctx, gw, reloads, count+1)

	listing := listAllowlist(t, ctx, gw, lc.tokenFile)
	if listing.Revision == before {
		t.Errorf("allow-list revision %s did not change with the file", before)
	}
	return listing.Revision
}

// checkDenyListed checks, through the admin API, that the api source has
// the deny entry for hs1 and that the allow-list revision is revision.
func checkDenyListed(t *testing.T, ctx context.Context, gw *testfed.Gateway, tokenFile, revision string) {
	t.Helper()
	listing := listAllowlist(t, ctx, gw, tokenFile)
	if listing.Revision != revision {
		t.Errorf("GET /v1/allowlist: revision = %s, want %s", listing.Revision, revision)
	}
	for _, entry := range listing.Entries {
		if entry.ServerName != testfed.HS1ServerName || entry.Source != "api" {
			continue
		}
		if !entry.Deny || entry.Note != denyNote || entry.ChangedBy != operatorName || entry.ShadowedBy != "" {
			t.Errorf("api entry for %s: deny %t, note %q, changed_by %q, shadowed_by %q; want true, %q, %q, none",
				entry.ServerName, entry.Deny, entry.Note, entry.ChangedBy, entry.ShadowedBy, denyNote, operatorName)
		}
		return
	}
	t.Errorf("GET /v1/allowlist has no api entry for %s: %+v", testfed.HS1ServerName, listing.Entries)
}

// checkDenyRemoved removes the deny entry with bordergate allowlist
// remove and checks that the next message from alice reaches bob. hs1
// retries the transaction that the gateway refused, so the message sent
// while hs1 was denied arrives as well.
func (lc *lifecycle) checkDenyRemoved(t *testing.T, ctx context.Context, refused string) {
	if refused == "" {
		t.Skip("the deny entry was not checked")
	}
	gw := lc.fed.Gateway
	out := lc.run(t, ctx, "allowlist", "remove", testfed.HS1ServerName, "--admin-url", gw.AdminURL, "--token-file", lc.tokenFile)
	wantLine := fmt.Sprintf("removed deny entry for %s from source api\n", testfed.HS1ServerName)
	if !strings.HasPrefix(out, wantLine) {
		t.Errorf("allowlist remove printed %q, want it to start with %q", out, wantLine)
	}
	revision := printedRevision(t, out)

	messageID := lc.sendMessage(t, ctx, "message after the deny entry is removed")
	rec := findPDURecord(t, lc.fed, messageID)
	if !rec.Allow || rec.Action != decisionlog.ActionForward {
		t.Errorf("record %s: allow = %t, action = %q; want true, %q", rec.DecisionID, rec.Allow, rec.Action, decisionlog.ActionForward)
	}
	if got := allowlistRevision(rec); got != revision {
		t.Errorf("record %s: allow-list revision = %s, want %s, the one allowlist remove printed", rec.DecisionID, got, revision)
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, err := lc.conv.Bob.WaitForEventID(waitCtx, lc.conv.RoomID, refused); err != nil {
		t.Errorf("bob waits for %s, refused while hs1 was denied and sent again by hs1: %v", refused, err)
	}
}

// listAllowlist returns GET /v1/allowlist of the admin API.
func listAllowlist(t *testing.T, ctx context.Context, gw *testfed.Gateway, tokenFile string) admin.ListResponse {
	t.Helper()
	token, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.AdminURL+"/v1/allowlist", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var listing admin.ListResponse
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/allowlist: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&listing); err != nil {
		t.Fatalf("GET /v1/allowlist: %v", err)
	}
	return listing
}

var revisionLine = regexp.MustCompile(`(?m)^revision: ([0-9a-f]{64})$`)

// printedRevision returns the allow-list revision that an allowlist
// command printed.
func printedRevision(t *testing.T, out string) string {
	t.Helper()
	m := revisionLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no line \"revision: HEX\" in %q", out)
	}
	return m[1]
}
