package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/internal/replaytest"
	"github.com/bordergate/bordergate/policy"
	"github.com/bordergate/bordergate/policy/policycmd"
)

// recordReplayTraffic sends traffic of every kind through tg: allowed and
// denied PDUs, EDUs, an unauthenticated request and one refused before
// policy.
func recordReplayTraffic(t *testing.T, tg *testGateway) {
	t.Helper()
	send := func(txnID string, pdus []canonicaljson.Value, edus string) {
		t.Helper()
		resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/"+txnID, transactionBody(pdus, edus))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("send %s: status %d, answer %v", txnID, resp.StatusCode, answer)
		}
	}
	send("replay1", []canonicaljson.Value{
		tg.event("m.room.message", `{"body":"first","msgtype":"m.text"}`, 5),
		tg.event("m.room.message", `{"body":"second","msgtype":"m.text"}`, 6),
	}, typingEDU)
	send("replay2", []canonicaljson.Value{
		tg.event("m.room.topic", `{"topic":"plans"}`, 7),
		tg.event("com.example.forbidden", `{"secret":"no"}`, 8),
	}, "")
	send("replay3", []canonicaljson.Value{
		tg.event("m.room.message", `{"body":"third","msgtype":"m.text"}`, 9),
		tg.event("m.room.name", `{"name":"Room"}`, 10),
	}, typingEDU)

	// A request without a signature reaches the policy, which denies it. A
	// malformed Authorization header is refused before policy.
	tg.raw(http.MethodGet, "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test", nil, nil)
	tg.raw(http.MethodGet, "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test", nil,
		map[string]string{"Authorization": "X-Matrix garbage"})
}

// splitLog writes the first half of the decision log, gzip-compressed, and
// the second half, plain, as a rotated log would be, and returns them in
// reverse order.
func splitLog(t *testing.T, logPath string) []string {
	t.Helper()
	data, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	half := len(lines) / 2
	dir := t.TempDir()
	var compressed bytes.Buffer
	writer := gzip.NewWriter(&compressed)
	if _, err := writer.Write(bytes.Join(lines[:half], nil)); err != nil {
		t.Fatal(err)
	}
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "decisions.jsonl.1.gz", compressed.String())
	writeFile(t, dir, "decisions.jsonl", string(bytes.Join(lines[half:], nil)))
	return []string{filepath.Join(dir, "decisions.jsonl"), filepath.Join(dir, "decisions.jsonl.1.gz")}
}

func TestReplayRecordedRunFlipsChangedRule(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	recordReplayTraffic(t, tg)
	records := tg.records()

	// The harness's data file denies com.example.forbidden; the changed
	// rule denies m.room.message instead.
	candidate := replaytest.CopyPolicy(t, regoDir(t), replaytest.MessagesDenied)
	toDeny, toAllow := replaytest.MessageFlips(records, []string{"com.example.forbidden"})
	t.Logf("%d records; the changed rule flips %d to deny and %d to allow", len(records), len(toDeny), len(toAllow))
	if len(toDeny) < 3 || len(toAllow) != 1 {
		t.Fatalf("the run should flip at least 3 decisions to deny and 1 to allow, got %v and %v", toDeny, toAllow)
	}

	for name, files := range map[string][]string{
		"one file":        {tg.logPath},
		"rotated gzipped": splitLog(t, tg.logPath),
	} {
		t.Run(name, func(t *testing.T) {
			report, err := policycmd.ReplayFiles(context.Background(), policycmd.ReplayConfig{
				DecisionFiles: files,
				Policy:        policy.Config{Paths: []string{candidate}, DataFile: filepath.Join(tg.dir, "policy-data.json")},
				Examples:      len(records),
			})
			if err != nil {
				t.Fatalf("ReplayFiles() error = %v", err)
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
			for _, kind := range []policy.Kind{policy.KindRequest, policy.KindEDU} {
				counts := report.Kinds[kind]
				if counts.Replayed == 0 || counts.Unchanged != counts.Replayed {
					t.Errorf("%s counts = %+v, want every replayed record unchanged", kind, counts)
				}
			}
			if report.Records != len(records) || report.Malformed.Count != 0 {
				t.Errorf("records = %d, malformed %d, want %d and 0", report.Records, report.Malformed.Count, len(records))
			}
			if report.Masked.Count != 0 {
				t.Errorf("masked = %+v, want none: the changed rule does not read message bodies", report.Masked)
			}
			noInput := 0
			for _, group := range report.Skipped.Reasons {
				if group.Reason == policycmd.SkipNoInput {
					noInput = group.Count
				}
			}
			if noInput == 0 {
				t.Errorf("skipped = %+v, want the request refused before policy", report.Skipped)
			}
		})
	}

	t.Run("unchanged policy", func(t *testing.T) {
		err := policycmd.Replay(context.Background(), policycmd.ReplayConfig{
			DecisionFiles: []string{tg.logPath},
			Policy:        policy.Config{Paths: []string{regoDir(t)}, DataFile: filepath.Join(tg.dir, "policy-data.json")},
			Format:        policycmd.FormatJSON,
		}, &bytes.Buffer{})
		if err != nil {
			t.Errorf("Replay() against the recorded policy = %v, want no change", err)
		}
	})

	t.Run("rule reading masked bodies", func(t *testing.T) {
		reader := replaytest.CopyPolicy(t, regoDir(t), `contains(input.pdu.content.body, "third")`)
		report, err := policycmd.ReplayFiles(context.Background(), policycmd.ReplayConfig{
			DecisionFiles: []string{tg.logPath},
			Policy:        policy.Config{Paths: []string{reader}, DataFile: filepath.Join(tg.dir, "policy-data.json")},
			Examples:      len(records),
		})
		if err != nil {
			t.Fatalf("ReplayFiles() error = %v", err)
		}
		var masked []string
		for _, rec := range records {
			if slices.Contains(rec.Erased, "/input/pdu/content/body") && rec.Error == "" {
				masked = append(masked, rec.DecisionID)
			}
		}
		slices.Sort(masked)
		if len(report.Masked.Pointers) != 1 || report.Masked.Pointers[0].Pointer != "/input/pdu/content/body" {
			t.Fatalf("masked = %+v, want the message body", report.Masked)
		}
		if got := replaytest.DecisionIDs(report.Masked.Pointers[0].Examples); len(masked) == 0 || !slices.Equal(got, masked) {
			t.Errorf("masked records = %v\nwant %v", got, masked)
		}
		if report.AllowToDeny.Count != 0 {
			t.Errorf("allow to deny = %+v, want none: every message record is masked", report.AllowToDeny)
		}
	})
}
