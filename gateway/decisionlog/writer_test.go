package decisionlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openTest opens a Writer on a new file in a temporary directory and closes
// it at the end of the test.
func openTest(t *testing.T, opts Options, opener *faultOpener) (*Writer, string) {
	t.Helper()
	if opts.Path == "" {
		opts.Path = filepath.Join(t.TempDir(), "decisions.jsonl")
	}
	open := openFunc(openLogFile)
	if opener != nil {
		open = opener.open
	}
	w, err := openWriter(opts, open)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w, opts.Path
}

// readRecords returns the records of the file at path, failing the test on
// a malformed line.
func readRecords(t *testing.T, path string) []Record {
	t.Helper()
	records, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// testRecord returns a record whose input contains a message body.
func testRecord(id string) *Record {
	rec := NewRecord("bordergate/pdu/decision")
	rec.DecisionID = id
	rec.Allow = true
	rec.Action = ActionForward
	rec.Input = map[string]any{
		"pdu": map[string]any{
			"type":    "m.room.message",
			"content": map[string]any{"body": "secret " + id, "msgtype": "m.text"},
		},
	}
	return rec
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Size()
}

func TestWriterConcurrentWrites(t *testing.T) {
	const goroutines, perGoroutine = 16, 100
	w, path := openTest(t, Options{Labels: map[string]string{"id": "gw-1", "version": "test"}}, nil)

	var wg sync.WaitGroup
	errs := make(chan error, goroutines*perGoroutine)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				if err := w.Write(t.Context(), testRecord(fmt.Sprintf("g%d-r%d", g, i))); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Write: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	records := readRecords(t, path)
	if len(records) != goroutines*perGoroutine {
		t.Errorf("file contains %d records, want %d", len(records), goroutines*perGoroutine)
	}
	seen := make(map[string]int)
	for _, rec := range records {
		seen[rec.DecisionID]++
		if rec.Labels["id"] != "gw-1" {
			t.Errorf("record %s label id = %q, want gw-1", rec.DecisionID, rec.Labels["id"])
		}
		if len(rec.Erased) != 1 || rec.Erased[0] != "/input/pdu/content/body" {
			t.Errorf("record %s erased = %q, want the body", rec.DecisionID, rec.Erased)
		}
	}
	for g := range goroutines {
		for i := range perGoroutine {
			id := fmt.Sprintf("g%d-r%d", g, i)
			if seen[id] != 1 {
				t.Errorf("record %s appears %d times, want 1", id, seen[id])
			}
		}
	}
}

func TestWriterMatchesGolden(t *testing.T) {
	unmasked, err := NewMasker(nil)
	if err != nil {
		t.Fatal(err)
	}
	w, path := openTest(t, Options{Masker: unmasked}, nil)
	rec := fullRecord(t)
	if err := w.Write(t.Context(), &rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// The golden record, with the chain member of the first record of a
	// chain in place of its closing brace.
	golden := goldenRecord(t)
	want := append(golden[:len(golden)-1:len(golden)-1],
		`,"chain":{"seq":1,"prev":"`+strings.Repeat("0", 64)+`","hash":"`...)
	sum := sha256.Sum256(want)
	want = append(want, hex.EncodeToString(sum[:])+`"}}`+"\n"...)
	if !bytes.Equal(got, want) {
		t.Errorf("file content:\n got %s\nwant %s", got, want)
	}
}

func TestWriterFillsCopyNotCaller(t *testing.T) {
	w, path := openTest(t, Options{Labels: map[string]string{"id": "gw-1", "version": "1.0"}}, nil)
	zone := time.FixedZone("UTC+2", 2*60*60)
	ownLabels := map[string]string{"version": "override", "team": "blue"}
	rec := &Record{
		Path:   "bordergate/request/decision",
		Labels: ownLabels,
		Input:  map[string]any{"pdu": map[string]any{"content": map[string]any{"body": "secret"}}},
	}
	local := &Record{Path: "bordergate/edu/decision", Timestamp: time.Date(2026, 5, 6, 12, 0, 0, 5, zone)}

	before := time.Now()
	if err := w.Write(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), local); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if rec.DecisionID != "" {
		t.Errorf("caller's decision ID = %q, want it left empty", rec.DecisionID)
	}
	if !rec.Timestamp.IsZero() {
		t.Errorf("caller's timestamp = %v, want it left zero", rec.Timestamp)
	}
	if rec.Erased != nil {
		t.Errorf("caller's erased = %q, want it left nil", rec.Erased)
	}
	if want := map[string]string{"version": "override", "team": "blue"}; !maps.Equal(ownLabels, want) {
		t.Errorf("caller's labels = %v, want %v unchanged", ownLabels, want)
	}
	if body := rec.Input.(map[string]any)["pdu"].(map[string]any)["content"].(map[string]any)["body"]; body != "secret" {
		t.Errorf("caller's body = %v, want secret", body)
	}

	records := readRecords(t, path)
	if len(records) != 2 {
		t.Fatalf("file contains %d records, want 2", len(records))
	}
	filled := records[0]
	if !uuidV4.MatchString(filled.DecisionID) {
		t.Errorf("filled decision ID = %q, want a version 4 UUID", filled.DecisionID)
	}
	if filled.Timestamp.Before(before.Add(-time.Second)) || filled.Timestamp.After(time.Now()) {
		t.Errorf("filled timestamp = %v, want about %v", filled.Timestamp, before)
	}
	wantLabels := map[string]string{"id": "gw-1", "version": "override", "team": "blue"}
	if !maps.Equal(filled.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", filled.Labels, wantLabels)
	}

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"timestamp":"2026-05-06T10:00:00.000000005Z"`) {
		t.Errorf("file does not contain the UTC timestamp of the second record:\n%s", raw)
	}
}

func TestWriterSyncAlwaysSyncsEachWrite(t *testing.T) {
	opener := &faultOpener{}
	w, path := openTest(t, Options{}, opener)
	file := opener.file(t, 0)

	for i := range 5 {
		if err := w.Write(t.Context(), testRecord(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
		if synced, size := file.synced(), fileSize(t, path); synced != size {
			t.Errorf("after write %d: synced %d bytes of %d", i, synced, size)
		}
		if writes, syncs := file.counts(); writes != i+1 || syncs != i+1 {
			t.Errorf("after write %d: %d writes and %d syncs, want %d of each", i, writes, syncs, i+1)
		}
	}
}

func TestWriterSyncAlwaysBatchesConcurrentWrites(t *testing.T) {
	const waiting = 7
	gate := newSyncGate()
	opener := &faultOpener{configure: func(f *faultFile) {
		f.beforeSync = func(call int) error {
			if call == 1 {
				gate.hold()
			}
			return nil
		}
	}}
	w, path := openTest(t, Options{}, opener)
	t.Cleanup(gate.release) // before Close, when the test fails early

	var wg sync.WaitGroup
	errs := make(chan error, waiting+1)
	wg.Go(func() { errs <- w.Write(t.Context(), testRecord("first")) })
	gate.waitReached(t)

	// While the first commit is in fsync, the others queue up and must
	// be committed together.
	for i := range waiting {
		wg.Go(func() { errs <- w.Write(t.Context(), testRecord(fmt.Sprintf("queued%d", i))) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(w.requests) < waiting {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued after 10s", len(w.requests), waiting)
		}
		time.Sleep(time.Millisecond)
	}
	gate.release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Write: %v", err)
		}
	}

	file := opener.file(t, 0)
	writes, syncs := file.counts()
	if writes != 2 {
		t.Errorf("%d write calls, want 2", writes)
	}
	if syncs != 2 {
		t.Errorf("%d sync calls, want 2", syncs)
	}
	if len(file.writes) == 2 {
		if lines := bytes.Count(file.writes[1], []byte("\n")); lines != waiting {
			t.Errorf("second write contains %d records, want %d", lines, waiting)
		}
	}
	if n := len(readRecords(t, path)); n != waiting+1 {
		t.Errorf("file contains %d records, want %d", n, waiting+1)
	}
}

func TestWriterSyncNoneSyncsOnlyOnClose(t *testing.T) {
	opener := &faultOpener{}
	w, path := openTest(t, Options{Sync: SyncNone}, opener)
	file := opener.file(t, 0)

	for i := range 5 {
		if err := w.Write(t.Context(), testRecord(fmt.Sprintf("r%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, syncs := file.counts(); syncs != 0 {
		t.Errorf("%d syncs before Close, want 0", syncs)
	}
	if n := len(readRecords(t, path)); n != 5 {
		t.Errorf("file contains %d records before Close, want 5", n)
	}

	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, syncs := file.counts(); syncs != 1 {
		t.Errorf("%d syncs after Close, want 1", syncs)
	}
}

func TestWriterCloseIsIdempotent(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	if err := w.Write(t.Context(), testRecord("before")); err != nil {
		t.Fatal(err)
	}

	if err := w.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := w.Write(t.Context(), testRecord("after")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Reopen(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reopen after Close = %v, want ErrClosed", err)
	}

	records := readRecords(t, path)
	if len(records) != 1 || records[0].DecisionID != "before" {
		t.Errorf("file contains %v, want only the record written before Close", records)
	}
}

func TestWriterCloseDuringWrites(t *testing.T) {
	w, path := openTest(t, Options{Sync: SyncNone}, nil)

	var mu sync.Mutex
	written := make(map[string]bool)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("g%d-r%d", g, i)
				err := w.Write(t.Context(), testRecord(id))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Write: %v", err)
					return
				}
				mu.Lock()
				written[id] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	records := readRecords(t, path)
	inFile := make(map[string]bool)
	for _, rec := range records {
		inFile[rec.DecisionID] = true
	}
	for id := range written {
		if !inFile[id] {
			t.Errorf("record %s was acknowledged but is not in the file", id)
		}
	}
	if len(written) == 0 {
		t.Error("no write finished before Close")
	}
}

func TestWriterCanceledContext(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	err := w.Write(ctx, testRecord("canceled"))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context = %v, want context.Canceled", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(readRecords(t, path)); n != 0 {
		t.Errorf("file contains %d records, want 0", n)
	}
}

func TestWriterEncodeErrorKeepsBatch(t *testing.T) {
	const goroutines = 8
	w, path := openTest(t, Options{}, nil)

	var wg sync.WaitGroup
	errs := make([]error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			rec := testRecord(fmt.Sprintf("r%d", g))
			if g == 3 {
				rec.Result = map[string]any{"bad": make(chan int)}
			}
			errs[g] = w.Write(t.Context(), rec)
		})
	}
	wg.Wait()

	for g, err := range errs {
		if g == 3 {
			if err == nil || !strings.Contains(err.Error(), "write decision record r3") {
				t.Errorf("Write of the unencodable record = %v, want an error naming r3", err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Write r%d: %v", g, err)
		}
	}
	if n := len(readRecords(t, path)); n != goroutines-1 {
		t.Errorf("file contains %d records, want %d", n, goroutines-1)
	}
}

func TestWriterRecordTooLarge(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	w.maxRecordBytes = 512

	rec := testRecord("large")
	rec.Result = map[string]any{"padding": strings.Repeat("x", 600)}
	err := w.Write(t.Context(), rec)
	if err == nil || !strings.Contains(err.Error(), "more than the maximum of 512") {
		t.Errorf("Write of a large record = %v, want a size error", err)
	}
	if err := w.Write(t.Context(), testRecord("small")); err != nil {
		t.Fatal(err)
	}
	if n := len(readRecords(t, path)); n != 1 {
		t.Errorf("file contains %d records, want 1", n)
	}
}

func TestWriterPartialWriteTruncated(t *testing.T) {
	opener := &faultOpener{configure: func(f *faultFile) {
		f.failWrite = func(call int) int {
			if call == 2 {
				return 10
			}
			return -1
		}
	}}
	w, path := openTest(t, Options{}, opener)

	if err := w.Write(t.Context(), testRecord("r1")); err != nil {
		t.Fatal(err)
	}
	sizeBefore := fileSize(t, path)
	err := w.Write(t.Context(), testRecord("r2"))
	if !errors.Is(err, errInjected) {
		t.Fatalf("Write during a failing write = %v, want the injected error", err)
	}
	if size := fileSize(t, path); size != sizeBefore {
		t.Errorf("file size after failed write = %d, want %d", size, sizeBefore)
	}
	if err := w.Write(t.Context(), testRecord("r3")); err != nil {
		t.Fatal(err)
	}

	records := readRecords(t, path)
	if len(records) != 2 || records[0].DecisionID != "r1" || records[1].DecisionID != "r3" {
		t.Errorf("file contains %v, want r1 and r3", records)
	}
}

func TestWriterPartialWriteNotTruncated(t *testing.T) {
	opener := &faultOpener{configure: func(f *faultFile) {
		f.failTruncate = true
		f.failWrite = func(call int) int {
			if call == 1 {
				return 10
			}
			return -1
		}
	}}
	w, path := openTest(t, Options{}, opener)

	if err := w.Write(t.Context(), testRecord("r1")); !errors.Is(err, errInjected) {
		t.Fatalf("Write during a failing write = %v, want the injected error", err)
	}
	if err := w.Write(t.Context(), testRecord("r2")); err != nil {
		t.Fatal(err)
	}

	// The partial line stays malformed, but the next record starts on a
	// line of its own.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("file has %d lines, want 2:\n%s", len(lines), raw)
	}
	if _, err := decodeRecord([]byte(lines[0])); err == nil {
		t.Errorf("partial line %q decodes, want an error", lines[0])
	}
	rec, err := decodeRecord([]byte(lines[1]))
	if err != nil {
		t.Fatalf("second line: %v", err)
	}
	if rec.DecisionID != "r2" {
		t.Errorf("second line decision ID = %q, want r2", rec.DecisionID)
	}
}

func TestWriterSyncErrorReturned(t *testing.T) {
	opener := &faultOpener{configure: func(f *faultFile) {
		f.beforeSync = func(call int) error {
			if call == 1 {
				return errInjected
			}
			return nil
		}
	}}
	w, _ := openTest(t, Options{}, opener)

	if err := w.Write(t.Context(), testRecord("r1")); !errors.Is(err, errInjected) {
		t.Errorf("Write during a failing sync = %v, want the injected error", err)
	}
	if err := w.Write(t.Context(), testRecord("r2")); err != nil {
		t.Errorf("Write after the sync recovered: %v", err)
	}
}

func TestWriterReopenAfterRename(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	if err := w.Write(t.Context(), testRecord("old")); err != nil {
		t.Fatal(err)
	}

	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("renamed")); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	oldRecords := readRecords(t, rotated)
	if len(oldRecords) != 2 || oldRecords[0].DecisionID != "old" || oldRecords[1].DecisionID != "renamed" {
		t.Errorf("rotated file contains %v, want old and renamed", oldRecords)
	}
	newRecords := readRecords(t, path)
	if len(newRecords) != 1 || newRecords[0].DecisionID != "new" {
		t.Errorf("new file contains %v, want only new", newRecords)
	}
}

func TestWriterReopenFailureKeepsFile(t *testing.T) {
	opener := &faultOpener{}
	w, path := openTest(t, Options{}, opener)
	rotated := path + ".1"
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}

	opener.setFailOpen(errInjected)
	if err := w.Reopen(); !errors.Is(err, errInjected) {
		t.Errorf("Reopen with a failing open = %v, want the injected error", err)
	}
	if err := w.Write(t.Context(), testRecord("kept")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	records := readRecords(t, rotated)
	if len(records) != 1 || records[0].DecisionID != "kept" {
		t.Errorf("previous file contains %v, want kept", records)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stat %s = %v, want not exist", path, err)
	}
}

func TestWriterReopenOrdersQueuedRecords(t *testing.T) {
	gate := newSyncGate()
	var opened atomic.Int32
	opener := &faultOpener{configure: func(f *faultFile) {
		first := opened.Add(1) == 1
		f.beforeSync = func(call int) error {
			if first && call == 1 {
				gate.hold()
			}
			return nil
		}
	}}
	w, path := openTest(t, Options{}, opener)
	t.Cleanup(gate.release) // before Close, when the test fails early
	rotated := path + ".1"

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Write(t.Context(), testRecord("first")); err != nil {
			t.Errorf("Write first: %v", err)
		}
	})
	gate.waitReached(t)
	wg.Go(func() {
		if err := w.Write(t.Context(), testRecord("before-reopen")); err != nil {
			t.Errorf("Write before-reopen: %v", err)
		}
	})
	waitQueued(t, w, 1)
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	reopened := make(chan error, 1)
	go func() { reopened <- w.Reopen() }()
	waitQueued(t, w, 2)
	wg.Go(func() {
		if err := w.Write(t.Context(), testRecord("after-reopen")); err != nil {
			t.Errorf("Write after-reopen: %v", err)
		}
	})
	waitQueued(t, w, 3)
	gate.release()
	wg.Wait()
	if err := <-reopened; err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	oldRecords := readRecords(t, rotated)
	if len(oldRecords) != 2 || oldRecords[1].DecisionID != "before-reopen" {
		t.Errorf("rotated file contains %v, want first and before-reopen", oldRecords)
	}
	newRecords := readRecords(t, path)
	if len(newRecords) != 1 || newRecords[0].DecisionID != "after-reopen" {
		t.Errorf("new file contains %v, want after-reopen", newRecords)
	}
}

// waitQueued waits until n requests are queued for the commit goroutine.
func waitQueued(t *testing.T, w *Writer, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.requests) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests queued after 10s", len(w.requests), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestOpenInvalidOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"missing path", Options{}, "open decision log: missing path"},
		{
			"invalid sync mode",
			Options{Path: filepath.Join(t.TempDir(), "d.jsonl"), Sync: "sometimes"},
			`open decision log: invalid sync mode "sometimes", use "always" or "none"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Open(tt.opts)
			if err == nil {
				_ = w.Close()
				t.Fatal("Open returned nil error")
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestOpenPathIsDirectory(t *testing.T) {
	dir := t.TempDir()
	w, err := Open(Options{Path: dir})
	if err == nil {
		_ = w.Close()
		t.Fatal("Open on a directory returned nil error")
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error = %q, want it to name %s", err, dir)
	}
}
