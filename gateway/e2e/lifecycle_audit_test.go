package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// logLine is one complete line of a decision log file, without its
// newline.
type logLine struct {
	file string
	// number is the line number in the file, from 1.
	number int
	text   string
}

// readLogLines returns the complete lines of the decision log files,
// gunzipping files whose name ends in .gz.
func readLogLines(t *testing.T, files []string) []logLine {
	t.Helper()
	var lines []logLine
	for _, file := range files {
		data := readLogFile(t, file)
		for i, text := range strings.SplitAfter(string(data), "\n") {
			if strings.HasSuffix(text, "\n") {
				lines = append(lines, logLine{file: file, number: i + 1, text: strings.TrimSuffix(text, "\n")})
			}
		}
	}
	return lines
}

// readLogFile returns the contents of a decision log file, gunzipped when
// its name ends in .gz.
func readLogFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return data
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return plain
}

// waitForShipping waits until the collector has received every record
// that the gateway has written so far, and returns those lines.
func (lc *lifecycle) waitForShipping(t *testing.T, ctx context.Context) []string {
	t.Helper()
	files, err := testfed.DecisionLogFiles(lc.fed.GatewayLog)
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	for _, line := range readLogLines(t, files) {
		written = append(written, line.text)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		received := map[string]bool{}
		for _, event := range lc.collector.Events() {
			received[string(event)] = true
		}
		missing := 0
		for _, line := range written {
			if !received[line] {
				missing++
			}
		}
		if missing == 0 {
			t.Logf("the collector has all %d records written so far, in %d uploads", len(written), lc.collector.Uploads())
			return written
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("the collector lacks %d of the %d records written so far", missing, len(written))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkSizeRotation has alice send messages until the gateway rotates its
// log by size, and checks that the rotated file is compressed and ends
// with a checkpoint.
func (lc *lifecycle) checkSizeRotation(t *testing.T, ctx context.Context) {
	dir := filepath.Dir(lc.fed.Gateway.DecisionLog)
	for i := 0; len(rotatedBySize(t, dir)) == 0; i++ {
		// Each message adds two records of about 2 to 4 KiB.
		if i == maxBurst {
			t.Fatalf("no rotation after %d messages", maxBurst)
		}
		lc.sendMessage(t, ctx, fmt.Sprintf("burst message %d", i))
	}

	deadline := time.Now().Add(10 * time.Second)
	var compressed string
	for compressed == "" {
		for _, name := range rotatedBySize(t, dir) {
			if strings.HasSuffix(name, ".gz") {
				compressed = filepath.Join(dir, name)
			}
		}
		if compressed == "" && time.Now().After(deadline) {
			t.Fatalf("rotated files %q, none compressed after 10s", rotatedBySize(t, dir))
		}
		time.Sleep(50 * time.Millisecond)
	}
	lines := readLogLines(t, []string{compressed})
	if len(lines) == 0 {
		t.Fatalf("%s holds no record", compressed)
	}
	if last, _ := decodeLine(lines[len(lines)-1].text); last.Path != decisionlog.CheckpointPath {
		t.Errorf("%s ends with a record of %s, want a checkpoint", filepath.Base(compressed), last.Path)
	}
}

// maxBurst bounds the messages that checkSizeRotation sends.
const maxBurst = 40

// rotatedNames matches the names of the files that the gateway rotated
// away from decisions.jsonl itself.
var rotatedNames = regexp.MustCompile(`^decisions-[0-9]{8}T[0-9]{6}Z(-[0-9]+)?\.jsonl(\.gz)?$`)

// rotatedBySize returns the names of the files in dir that the gateway
// rotated away itself.
func rotatedBySize(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, entry := range entries {
		if rotatedNames.MatchString(entry.Name()) {
			names = append(names, entry.Name())
		}
	}
	return names
}

// checkVerifyPasses runs bordergate audit verify with the audit public key
// on the log files of the stopped gateway.
func (lc *lifecycle) checkVerifyPasses(t *testing.T, ctx context.Context, files []string) {
	args := append([]string{"audit", "verify", "--require-genesis", "--public-key", lc.auditPublicKey}, files...)
	out := lc.run(t, ctx, args...)
	t.Logf("audit verify:\n%s", out)
	if !strings.Contains(out, "chain intact") {
		t.Errorf("audit verify printed no \"chain intact\":\n%s", out)
	}
	// A clean stop ends the log with a checkpoint that covers every record.
	if !strings.Contains(out, "all records are covered by the checkpoint") {
		t.Errorf("audit verify reports records without a signature after a clean stop:\n%s", out)
	}
	for _, file := range files {
		if !strings.Contains(out, "file "+file+": ") {
			t.Errorf("audit verify has no line for %s", file)
		}
	}
	rotatedByGateway := slices.ContainsFunc(files, func(f string) bool {
		return strings.HasSuffix(f, ".jsonl.gz")
	})
	if !rotatedByGateway {
		t.Errorf("no compressed file rotated by the gateway among %q", baseNames(files))
	}
}

// checkVerifyFindsAlteration copies the log files, turns the denied
// event's record into an allowed one in the copy, and checks that audit
// verify fails on exactly that line.
func (lc *lifecycle) checkVerifyFindsAlteration(t *testing.T, ctx context.Context, files []string, deniedID string) {
	if deniedID == "" {
		t.Skip("no denied event")
	}
	copyDir := t.TempDir()
	var copies []string
	var altered logLine
	var seq int64
	for _, file := range files {
		data := readLogFile(t, file)
		// The copy is plain, and audit verify reads plain and compressed
		// files alike.
		name := strings.TrimSuffix(filepath.Base(file), ".gz")
		lines := strings.SplitAfter(string(data), "\n")
		for i, text := range lines {
			rec, ok := decodeLine(text)
			if !ok || testfed.DecisionKind(rec) != "pdu" || rec.Matrix.EventID != deniedID || altered.file != "" {
				continue
			}
			changed := strings.Replace(text, `"allow":false`, `"allow":true`, 1)
			if changed == text {
				t.Fatalf("the record of %s has no \"allow\":false: %s", deniedID, text)
			}
			lines[i] = changed
			altered = logLine{file: filepath.Join(copyDir, name), number: i + 1}
			seq = rec.Chain.Seq
		}
		copied := filepath.Join(copyDir, name)
		writeTestFile(t, copied, strings.Join(lines, ""))
		copies = append(copies, copied)
	}
	if altered.file == "" {
		t.Fatalf("no PDU record of %s in the log files", deniedID)
	}

	args := append([]string{"audit", "verify", "--public-key", lc.auditPublicKey}, copies...)
	stdout, stderr, err := lc.runStatus(ctx, args...)
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
		t.Fatalf("audit verify of the altered copy: %v, want exit status 1\n%s%s", err, stdout, stderr)
	}
	want := fmt.Sprintf("FAIL %s line %d (seq %d): altered: ", altered.file, altered.number, seq)
	if !strings.Contains(stdout, want) {
		t.Errorf("audit verify output lacks %q:\n%s", want, stdout)
	}
	if n := strings.Count(stdout, "FAIL "); n != 1 {
		t.Errorf("audit verify reports %d problems, want 1:\n%s", n, stdout)
	}
}

// checkQuery runs bordergate audit query by room and event type, and
// checks that it prints exactly the records of the denied events, as
// they are in the files.
func (lc *lifecycle) checkQuery(t *testing.T, ctx context.Context, files []string, deniedID string) {
	if deniedID == "" {
		t.Skip("no denied event")
	}
	var want []string
	written := map[string]bool{}
	for _, line := range readLogLines(t, files) {
		written[line.text] = true
		rec, ok := decodeLine(line.text)
		if ok && rec.Matrix != nil && rec.Matrix.RoomID == lc.conv.RoomID && rec.Matrix.EventType == reloadedEventType {
			want = append(want, rec.DecisionID)
		}
	}

	args := append([]string{"audit", "query", "--room", lc.conv.RoomID, "--event-type", reloadedEventType,
		"--format", "jsonl"}, files...)
	out := lc.run(t, ctx, args...)
	var got []string
	for _, text := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if !written[text] {
			t.Errorf("audit query printed a line that is not in the files: %s", text)
		}
		rec, ok := decodeLine(text)
		if !ok {
			t.Fatalf("audit query printed a line that is not a record: %q", text)
		}
		got = append(got, rec.DecisionID)
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit query printed records %q, want %q", got, want)
	}
	if denied := findPDURecord(t, lc.fed, deniedID); !slices.Contains(got, denied.DecisionID) {
		t.Errorf("audit query did not print %s, the record of the denied event %s", denied.DecisionID, deniedID)
	}
}

// checkShipped checks what the collector received: only lines of the
// files, byte for byte, every line written before the gateway stopped,
// the records from before the restart included, and no refused upload.
func (lc *lifecycle) checkShipped(t *testing.T, files []string, shipped []string, deniedID string) {
	written := map[string]bool{}
	for _, line := range readLogLines(t, files) {
		written[line.text] = true
	}
	received := map[string]bool{}
	for _, event := range lc.collector.Events() {
		received[string(event)] = true
		if !written[string(event)] {
			t.Errorf("the collector received a record that is not in the files: %s", event)
		}
	}
	for _, line := range shipped {
		if !received[line] {
			t.Errorf("the collector lacks a record of the files: %s", line)
		}
	}
	if errs := lc.collector.Errors(); len(errs) > 0 {
		t.Errorf("the collector refused uploads: %q", errs)
	}
	if deniedID == "" {
		return
	}
	denied := findPDURecord(t, lc.fed, deniedID)
	found := slices.ContainsFunc(lc.collector.Events(), func(event json.RawMessage) bool {
		rec, ok := decodeLine(string(event))
		return ok && rec.DecisionID == denied.DecisionID
	})
	if !found {
		t.Errorf("the collector lacks record %s of the denied event", denied.DecisionID)
	}
}

// checkMasked checks that no body of the events sent through the gateway
// is in a record, in the files or at the collector, and that the records
// of messages list their body among the erased values.
func (lc *lifecycle) checkMasked(t *testing.T, files []string) {
	lines := readLogLines(t, files)
	for _, body := range lc.bodies {
		for _, line := range lines {
			if strings.Contains(line.text, body) {
				t.Errorf("%s line %d contains the body %q: %s", filepath.Base(line.file), line.number, body, line.text)
			}
		}
		for _, event := range lc.collector.Events() {
			if strings.Contains(string(event), body) {
				t.Errorf("the collector received the body %q: %s", body, event)
			}
		}
	}
	messages := 0
	for _, line := range lines {
		rec, ok := decodeLine(line.text)
		if !ok || testfed.DecisionKind(rec) != "pdu" || rec.Input == nil {
			continue
		}
		if rec.Matrix.EventType != "m.room.message" && rec.Matrix.EventType != reloadedEventType {
			continue
		}
		messages++
		if !slices.Contains(rec.Erased, "/input/pdu/content/body") {
			t.Errorf("record %s of %s: erased = %q, want /input/pdu/content/body", rec.DecisionID, rec.Matrix.EventID, rec.Erased)
		}
	}
	if messages == 0 {
		t.Error("no PDU record of a message with an input")
	}
}

// watchCreated records the names of the files created in dir, by the
// gateway or renamed there, until the test ends, and returns a function
// that lists them.
func watchCreated(t *testing.T, dir string) func() []string {
	t.Helper()
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	if err := watcher.Add(dir); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var names []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for event := range watcher.Events {
			if event.Has(fsnotify.Create) {
				mu.Lock()
				names = append(names, filepath.Base(event.Name))
				mu.Unlock()
			}
		}
	}()
	go func() {
		for err := range watcher.Errors {
			t.Errorf("watch %s: %v", dir, err)
		}
	}()
	t.Cleanup(func() {
		watcher.Close()
		<-done
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(names)
	}
}

// checkGlobShowsLogsOnly checks that every file created in the log's
// directory whose name matches decisions*, the glob that the audit
// commands are documented with, was a decision log file: the log, a file
// the gateway rotated, or the test's own rotation. A temporary file there
// would reach audit verify and audit query, which would report it as a
// damaged or duplicated log.
func checkGlobShowsLogsOnly(t *testing.T, created []string) {
	for _, name := range created {
		if matched, _ := filepath.Match("decisions*", name); !matched {
			continue
		}
		if name != "decisions.jsonl" && name != externalRotation && !rotatedNames.MatchString(name) {
			t.Errorf("the gateway created %s in the log's directory, which decisions* matches", name)
		}
	}
}

// decodeLine decodes one line of a decision log, reporting false for a
// line that is not a record with Matrix identifiers or a checkpoint.
func decodeLine(text string) (decisionlog.Record, bool) {
	var rec decisionlog.Record
	if err := json.Unmarshal([]byte(strings.TrimSuffix(text, "\n")), &rec); err != nil {
		return decisionlog.Record{}, false
	}
	return rec, rec.Matrix != nil || rec.Path == decisionlog.CheckpointPath
}

func baseNames(files []string) []string {
	names := make([]string, len(files))
	for i, file := range files {
		names[i] = filepath.Base(file)
	}
	return names
}

// testLogger returns a logger that writes to the test's output.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}
