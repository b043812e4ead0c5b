package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
	"github.com/bordergate/bordergate/policy/policycmd"
)

// replayFixture is decision records of every sort that replay meets: first
// goes to a plain log, second to a rotated gzip-compressed one.
type replayFixture struct {
	first, second []decisionlog.Record
}

// testRecord returns a record of kind with the given input and result.
func testRecord(id string, kind string, second int, input map[string]any, result map[string]any) decisionlog.Record {
	rec := decisionlog.Record{
		DecisionID: id,
		Timestamp:  time.Date(2026, 3, 1, 12, 0, second, 0, time.UTC),
		Path:       "bordergate/" + kind + "/decision",
		Bundles:    decisionlog.PolicyBundles("recorded-revision"),
		Matrix:     &decisionlog.Matrix{Direction: "inbound", Origin: "hs1.example", Endpoint: "send"},
		Input:      input,
	}
	if input == nil {
		// A nil map in the interface would encode as null, not be left out.
		rec.Input = nil
	}
	if result != nil {
		rec.Result = result
		rec.Allow, _ = result["allow"].(bool)
	}
	return rec
}

// pduInput returns the PDU input of testdata with another event type.
func pduInput(t *testing.T, eventType string) map[string]any {
	t.Helper()
	input := readInputDocument(t, "pdu")
	input["pdu"].(map[string]any)["type"] = eventType
	return input
}

func decisionResult(allow bool, reasons ...string) map[string]any {
	list := []any{}
	for _, reason := range reasons {
		list = append(list, reason)
	}
	return map[string]any{"allow": allow, "reasons": list}
}

func newReplayFixture(t *testing.T) replayFixture {
	allowed := testRecord("pdu-message", "pdu", 2, pduInput(t, "m.room.message"), decisionResult(true))
	allowed.Erased = []string{"/input/pdu/content/body"}
	delete(allowed.Input.(map[string]any)["pdu"].(map[string]any)["content"].(map[string]any), "body")

	noInput := testRecord("pdu-unverified", "pdu", 5, nil, decisionResult(false, "event verification failed: bad signature"))
	noInput.Error = "event verification failed: bad signature"
	noInput.Action = decisionlog.ActionRejected

	evalFailed := testRecord("request-error", "request", 6, readInputDocument(t, "request"), decisionResult(false, "policy evaluation failed"))
	evalFailed.Error = "policy evaluation failed (500 M_UNKNOWN): decide request: evaluate: boom"

	unlisted := pduInput(t, "m.room.message")
	unlisted["pdu"].(map[string]any)["sender_server"] = "evil.example"
	unlisted["sender_entry"] = nil

	resultMasked := testRecord("pdu-result-masked", "pdu", 8, pduInput(t, "m.room.message"), map[string]any{"allow": true})
	resultMasked.Erased = []string{"/result/reasons"}

	return replayFixture{
		first: []decisionlog.Record{
			testRecord("request-allowed", "request", 1, readInputDocument(t, "request"), decisionResult(true)),
			allowed,
			testRecord("pdu-forbidden", "pdu", 3, pduInput(t, "com.example.forbidden"), decisionResult(false, "event type com.example.forbidden denied")),
			testRecord("edu-typing", "edu", 4, readInputDocument(t, "edu"), decisionResult(true)),
		},
		second: []decisionlog.Record{
			noInput,
			evalFailed,
			testRecord("unknown-path", "other", 7, readInputDocument(t, "edu"), decisionResult(true)),
			resultMasked,
			testRecord("pdu-reasons", "pdu", 9, unlisted, decisionResult(false, "sender server evil.example not on allow-list")),
		},
	}
}

// encodeRecords returns records as JSON Lines.
func encodeRecords(t *testing.T, records []decisionlog.Record) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, rec := range records {
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	writer := gzip.NewWriter(&b)
	if _, err := writer.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := writer.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// writeReplayLogs writes the fixture as a plain log, with a malformed line,
// and a rotated gzip-compressed log, and returns their paths.
func writeReplayLogs(t *testing.T, fixture replayFixture) (plain, compressed string) {
	t.Helper()
	dir := t.TempDir()
	plain = filepath.Join(dir, "decisions.jsonl")
	compressed = filepath.Join(dir, "decisions-2026-03-01.jsonl.gz")
	data := append(encodeRecords(t, fixture.first), "this is not a record\n"...)
	if err := os.WriteFile(plain, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(compressed, gzipped(t, encodeRecords(t, fixture.second)), 0o600); err != nil {
		t.Fatal(err)
	}
	return plain, compressed
}

// recordedData writes the data file of the policy that made the records.
func recordedData(t *testing.T) string {
	t.Helper()
	return filepath.Join(writePolicyFiles(t, map[string]string{"data.json": `{"denied_event_types": ["com.example.forbidden"]}`}), "data.json")
}

// candidateData writes a data file that denies m.room.message instead of
// com.example.forbidden.
func candidateData(t *testing.T) string {
	t.Helper()
	return filepath.Join(writePolicyFiles(t, map[string]string{"data.json": `{"denied_event_types": ["m.room.message"]}`}), "data.json")
}

func runReplayJSON(t *testing.T, args ...string) (*policycmd.ReplayReport, error) {
	t.Helper()
	out, err := runCommand(t, "", append([]string{"policy", "replay", "--format", "json"}, args...)...)
	var report policycmd.ReplayReport
	if jsonErr := json.Unmarshal([]byte(out), &report); jsonErr != nil {
		t.Fatalf("output is not a JSON report: %v (command error %v)\n%s", jsonErr, err, out)
	}
	return &report, err
}

func exampleIDs(examples []policycmd.Example) []string {
	ids := make([]string, len(examples))
	for i, example := range examples {
		ids[i] = example.DecisionID
	}
	return ids
}

func TestPolicyReplayReport(t *testing.T) {
	plain, compressed := writeReplayLogs(t, newReplayFixture(t))
	report, err := runReplayJSON(t, "--policy", defaultRego(t), "--data", candidateData(t), "--decisions", plain, compressed)
	checkExit(t, err, policycmd.ExitCodeFailed)
	if want := "2 decisions would change: 1 from allow to deny, 1 from deny to allow"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %s", err, want)
	}

	if report.Records != 9 {
		t.Errorf("records = %d, want 9", report.Records)
	}
	wantKinds := map[policy.Kind]policycmd.KindCounts{
		policy.KindRequest: {Replayed: 1, Unchanged: 1, Skipped: 1},
		policy.KindPDU:     {Replayed: 3, AllowToDeny: 1, DenyToAllow: 1, ReasonsChanged: 1, Skipped: 2},
		policy.KindEDU:     {Replayed: 1, Unchanged: 1},
	}
	for kind, want := range wantKinds {
		if got := report.Kinds[kind]; got == nil || *got != want {
			t.Errorf("counts of %s = %+v, want %+v", kind, got, want)
		}
	}
	wantTotals := policycmd.KindCounts{Replayed: 5, Unchanged: 2, AllowToDeny: 1, DenyToAllow: 1, ReasonsChanged: 1, Skipped: 4}
	if report.Totals != wantTotals {
		t.Errorf("totals = %+v, want %+v", report.Totals, wantTotals)
	}

	if ids := exampleIDs(report.AllowToDeny.Examples); !reflect.DeepEqual(ids, []string{"pdu-message"}) {
		t.Errorf("allow to deny examples = %v, want [pdu-message]", ids)
	}
	if ids := exampleIDs(report.DenyToAllow.Examples); !reflect.DeepEqual(ids, []string{"pdu-forbidden"}) {
		t.Errorf("deny to allow examples = %v, want [pdu-forbidden]", ids)
	}
	flip := report.AllowToDeny.Examples[0]
	if flip.File != plain || flip.Line != 2 || flip.Recorded == nil || !flip.Recorded.Allow || flip.Replayed == nil ||
		!reflect.DeepEqual(flip.Replayed.Reasons, []string{"event type m.room.message denied"}) {
		t.Errorf("allow to deny example = %+v, want line 2 of %s with the new reason", flip, plain)
	}

	added := map[string][]string{}
	for _, group := range report.ReasonsAdded {
		added[group.Reason] = exampleIDs(group.Examples)
	}
	if want := map[string][]string{"event type m.room.message denied": {"pdu-message", "pdu-reasons"}}; !reflect.DeepEqual(added, want) {
		t.Errorf("reasons added = %v, want %v", added, want)
	}
	removed := map[string][]string{}
	for _, group := range report.ReasonsRemoved {
		removed[group.Reason] = exampleIDs(group.Examples)
	}
	wantRemoved := map[string][]string{"event type com.example.forbidden denied": {"pdu-forbidden"}}
	if !reflect.DeepEqual(removed, wantRemoved) {
		t.Errorf("reasons removed = %v, want %v", removed, wantRemoved)
	}

	skipped := map[policycmd.SkipReason][]string{}
	for _, group := range report.Skipped.Reasons {
		skipped[group.Reason] = exampleIDs(group.Examples)
	}
	wantSkipped := map[policycmd.SkipReason][]string{
		policycmd.SkipNoInput:       {"pdu-unverified"},
		policycmd.SkipGatewayResult: {"request-error"},
		policycmd.SkipUnknownPath:   {"unknown-path"},
		policycmd.SkipResultMasked:  {"pdu-result-masked"},
	}
	if !reflect.DeepEqual(skipped, wantSkipped) || report.Skipped.Count != 4 {
		t.Errorf("skipped = %v (count %d), want %v", skipped, report.Skipped.Count, wantSkipped)
	}

	wantMalformed := []policycmd.MalformedLine{{File: plain, Line: 5, Error: "line does not start with {, expected a JSON object"}}
	if !reflect.DeepEqual(report.Malformed.Lines, wantMalformed) || report.Malformed.Count != 1 {
		t.Errorf("malformed = %+v, want %+v", report.Malformed, wantMalformed)
	}
	wantFiles := []policycmd.FileCount{{File: plain, Records: 4, Malformed: 1}, {File: compressed, Records: 5}}
	if !reflect.DeepEqual(report.Files, wantFiles) {
		t.Errorf("files = %+v, want %+v", report.Files, wantFiles)
	}
	if want := []policycmd.RevisionCount{{Revision: "recorded-revision", Count: 9}}; !reflect.DeepEqual(report.RecordedRevisions, want) {
		t.Errorf("recorded revisions = %+v, want %+v", report.RecordedRevisions, want)
	}
	if len(report.Policy.Revision) != 64 || report.Policy.DataFile == "" {
		t.Errorf("policy = %+v, want the candidate's revision and data file", report.Policy)
	}
}

func TestPolicyReplayFileOrder(t *testing.T) {
	plain, compressed := writeReplayLogs(t, newReplayFixture(t))
	data := candidateData(t)
	forward, _ := runReplayJSON(t, "--policy", defaultRego(t), "--data", data, "--decisions", plain, "--decisions", compressed, "--examples", "1")
	backward, _ := runReplayJSON(t, "--policy", defaultRego(t), "--data", data, "--decisions", compressed, "--decisions", plain, "--examples", "1")
	forward.Files, backward.Files = nil, nil
	if !reflect.DeepEqual(forward, backward) {
		t.Errorf("reports differ with the order of the files:\n%+v\n%+v", forward, backward)
	}
	for _, group := range forward.ReasonsAdded {
		if len(group.Examples) != 1 {
			t.Errorf("reason %q has %d examples, want 1 with --examples 1", group.Reason, len(group.Examples))
		}
	}
	if ids := exampleIDs(forward.ReasonsAdded[0].Examples); !reflect.DeepEqual(ids, []string{"pdu-message"}) {
		t.Errorf("kept example = %v, want the earliest, pdu-message", ids)
	}
}

func TestPolicyReplayPretty(t *testing.T) {
	plain, compressed := writeReplayLogs(t, newReplayFixture(t))
	out, err := runCommand(t, "", "policy", "replay", "--policy", defaultRego(t), "--data", candidateData(t), "--decisions", plain, compressed)
	checkExit(t, err, policycmd.ExitCodeFailed)
	for _, want := range []string{
		"Replayed 5 of 9 decision records against the policy in " + defaultRego(t),
		"Recorded with policy revisions recorded-rev (9).",
		"   kind  replayed  unchanged  allow->deny  deny->allow  reasons changed  errors  masked  skipped",
		"    pdu         3          0            1            1                1       0       0        2",
		"  total         5          2            1            1                1       0       0        4",
		"Allow -> deny: 1\n      pdu pdu-message " + plain + ":2 origin=hs1.example endpoint=send: was allow, now deny (event type m.room.message denied)",
		"Deny -> allow: 1\n      pdu pdu-forbidden " + plain + ":3 origin=hs1.example endpoint=send: was deny (event type com.example.forbidden denied), now allow",
		"Reasons added:\n  2  event type m.room.message denied (pdu 2)",
		"  1  no_input: no input: the gateway refused the item before asking the policy",
		"Malformed lines: 1\n  " + plain + ":5: line does not start with {, expected a JSON object",
		"Evaluation errors (the gateway denies on them): none",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not contain %q:\n%s", want, out)
		}
	}
}

func TestPolicyReplayUnchanged(t *testing.T) {
	plain, compressed := writeReplayLogs(t, newReplayFixture(t))
	report, err := runReplayJSON(t, "--policy", defaultRego(t), "--data", recordedData(t), "--decisions", plain, compressed)
	if err != nil {
		t.Fatalf("replay against the recorded policy: %v", err)
	}
	want := policycmd.KindCounts{Replayed: 5, Unchanged: 5, Skipped: 4}
	if report.Totals != want {
		t.Errorf("totals = %+v, want %+v", report.Totals, want)
	}
}

func TestPolicyReplayMaskedInput(t *testing.T) {
	plain, compressed := writeReplayLogs(t, newReplayFixture(t))
	reader := writePolicyFiles(t, map[string]string{
		"request.rego": "package bordergate.request\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"edu.rego":     "package bordergate.edu\n\ndecision := {\"allow\": true, \"reasons\": []}\n",
		"pdu.rego": `package bordergate.pdu

default secret := false

decision := {"allow": secret == false, "reasons": []}

secret if contains(input.pdu.content.body, "secret")
`,
	})
	report, err := runReplayJSON(t, "--policy", reader, "--decisions", plain, compressed)
	checkExit(t, err, policycmd.ExitCodeFailed)
	if report.Masked.Count != 1 || report.Kinds[policy.KindPDU].Masked != 1 {
		t.Fatalf("masked = %+v, pdu counts %+v, want one masked PDU record", report.Masked, report.Kinds[policy.KindPDU])
	}
	group := report.Masked.Pointers[0]
	want := policycmd.PointerGroup{
		Pointer: "/input/pdu/content/body", Read: "input.pdu.content.body", Location: filepath.Join(reader, "pdu.rego") + ":7:20",
	}
	if group.Pointer != want.Pointer || group.Read != want.Read || group.Location != want.Location || group.Count != 1 {
		t.Errorf("masked pointer = %+v, want %+v", group, want)
	}
	if ids := exampleIDs(group.Examples); !reflect.DeepEqual(ids, []string{"pdu-message"}) {
		t.Errorf("masked examples = %v, want [pdu-message]", ids)
	}
	// pdu-forbidden and pdu-reasons were denied and are now allowed. The
	// masked pdu-message is not counted as a change.
	if report.Totals.DenyToAllow != 2 || report.Totals.AllowToDeny != 0 {
		t.Errorf("totals = %+v, want 2 deny to allow and no allow to deny", report.Totals)
	}
}

func TestPolicyReplayEvaluationError(t *testing.T) {
	input := pduInput(t, "m.room.message")
	input["now"] = "yesterday"
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	records := []decisionlog.Record{testRecord("bad-now", "pdu", 1, input, decisionResult(true))}
	if err := os.WriteFile(path, encodeRecords(t, records), 0o600); err != nil {
		t.Fatal(err)
	}
	report, err := runReplayJSON(t, "--policy", writePolicyFiles(t, clockPolicy), "--decisions", path)
	checkExit(t, err, policycmd.ExitCodeFailed)
	if report.Totals.Errors != 1 || report.Totals.AllowToDeny != 1 {
		t.Errorf("totals = %+v, want one error counted as allow to deny", report.Totals)
	}
	if len(report.Errors.Examples) != 1 || !strings.Contains(report.Errors.Examples[0].Error, `parsing time "yesterday"`) {
		t.Errorf("error examples = %+v, want the parse error", report.Errors.Examples)
	}
}

func TestPolicyReplayStrict(t *testing.T) {
	plain, compressed := writeReplayLogs(t, newReplayFixture(t))
	_, err := runCommand(t, "", "policy", "replay", "--policy", defaultRego(t), "--strict", "--decisions", compressed, plain)
	want := "decision log " + plain + ": line 5: line does not start with {, expected a JSON object (remove --strict to skip malformed lines)"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
	checkExit(t, err, policycmd.ExitCodeError)
}

func TestPolicyReplayTruncatedGzip(t *testing.T) {
	fixture := newReplayFixture(t)
	data := gzipped(t, encodeRecords(t, append(fixture.first, fixture.second...)))
	path := filepath.Join(t.TempDir(), "decisions.jsonl.1.gz")
	if err := os.WriteFile(path, data[:len(data)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	report, err := runReplayJSON(t, "--policy", defaultRego(t), "--data", recordedData(t), "--decisions", path)
	checkExit(t, err, 0)
	if report.Malformed.Count != 1 || len(report.Malformed.Lines) != 1 || report.Malformed.Lines[0].Error != "unexpected EOF" {
		t.Errorf("malformed = %+v, want the cut gzip stream", report.Malformed)
	}
	if report.Records == 0 {
		t.Error("no records read before the cut")
	}

	_, err = runCommand(t, "", "policy", "replay", "--policy", defaultRego(t), "--strict", "--decisions", path)
	if err == nil || !strings.HasPrefix(err.Error(), "decision log "+path+": line ") || !strings.HasSuffix(err.Error(), ": unexpected EOF") {
		t.Errorf("error = %v, want the cut gzip stream", err)
	}
	checkExit(t, err, policycmd.ExitCodeError)
}

func TestPolicyReplayErrors(t *testing.T) {
	dir := t.TempDir()
	rego := defaultRego(t)
	missing := filepath.Join(dir, "missing.jsonl")
	badGzip := filepath.Join(dir, "bad.gz")
	if err := os.WriteFile(badGzip, []byte{0x1f, 0x8b, 0, 0}, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.jsonl")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing log", []string{"--policy", rego, "--decisions", missing}, "decision log " + missing + " does not exist"},
		{"directory", []string{"--policy", rego, "--decisions", dir}, "decision log " + dir + " is a directory: name the files, such as " + dir + "/*.jsonl*"},
		{"no logs", []string{"--policy", rego}, "no decision logs to replay: name them with --decisions"},
		{"no policy", []string{"--decisions", empty}, "no policy: pass --policy DIR or --config FILE"},
		{"negative examples", []string{"--policy", rego, "--decisions", empty, "--examples", "-1"}, "invalid --examples -1: must be 0 or more"},
		{"invalid gzip header", []string{"--policy", rego, "--decisions", badGzip}, "decision log " + badGzip + ": unexpected EOF"},
		{"missing policy", []string{"--policy", filepath.Join(dir, "rego"), "--decisions", empty},
			"read policy path: stat " + filepath.Join(dir, "rego") + ": no such file or directory"},
		{"missing config", []string{"--config", filepath.Join(dir, "bordergate.yaml"), "--decisions", empty},
			"read config: open " + filepath.Join(dir, "bordergate.yaml") + ": no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCommand(t, "", append([]string{"policy", "replay"}, tt.args...)...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant %s", err, tt.want)
			}
			checkExit(t, err, policycmd.ExitCodeError)
		})
	}
}
