package testfed

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDecisionLogFiles(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{
		"decisions.jsonl",
		"decisions-20260101T000000Z.jsonl",
		// Being compressed: the plain file is still there.
		"decisions-20260102T000000Z.jsonl",
		"decisions-20260102T000000Z.jsonl.gz",
		"decisions-20260103T000000Z-2.jsonl.gz",
		"decisions-external.jsonl",
		"decisions-20260104T000000Z.jsonl.gz.tmp",
		"decisions.jsonl.bak",
		"decisions-old.txt",
		"other.jsonl",
		"other-1.jsonl",
	} {
		writeFile(t, filepath.Join(dir, name), "")
	}
	if err := os.Mkdir(filepath.Join(dir, "decisions-dir.jsonl"), 0o755); err != nil {
		t.Fatal(err)
	}

	files, err := DecisionLogFiles(filepath.Join(dir, "decisions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"decisions-20260101T000000Z.jsonl",
		"decisions-20260102T000000Z.jsonl",
		"decisions-20260103T000000Z-2.jsonl.gz",
		"decisions-external.jsonl",
		"decisions.jsonl",
	}
	var got []string
	for _, file := range files {
		if filepath.Dir(file) != dir {
			t.Errorf("file %s is not in %s", file, dir)
		}
		got = append(got, filepath.Base(file))
	}
	if !slices.Equal(got, want) {
		t.Errorf("DecisionLogFiles = %q\nwant %q", got, want)
	}

	if _, err := DecisionLogFiles(filepath.Join(dir, "missing", "decisions.jsonl")); err == nil ||
		!strings.HasPrefix(err.Error(), "list decision log files: open ") {
		t.Errorf("DecisionLogFiles of a missing directory: %v, want a list error", err)
	}
}

func TestReadDecisionsRotated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	// Names sort in another order than the chain, and the current file
	// ends in a line that is still being written.
	writeFile(t, filepath.Join(dir, "decisions-b.jsonl"), recordLines(1, 2))
	writeGzip(t, filepath.Join(dir, "decisions-a.jsonl.gz"), recordLines(3, 4))
	writeFile(t, filepath.Join(dir, "decisions-c.jsonl"), "")
	writeFile(t, path, recordLines(5, 6)+`{"decision_id":"r7","chain":`)

	records, err := readDecisions(path)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, rec := range records {
		ids = append(ids, rec.DecisionID)
	}
	if want := []string{"r1", "r2", "r3", "r4", "r5", "r6"}; !slices.Equal(ids, want) {
		t.Errorf("decision IDs = %q, want %q", ids, want)
	}

	writeFile(t, filepath.Join(dir, "decisions-d.jsonl"), "not json\n")
	if _, err := readDecisions(path); err == nil || !strings.Contains(err.Error(), "decisions-d.jsonl") {
		t.Errorf("readDecisions with a malformed file: %v, want an error naming it", err)
	}

	empty := filepath.Join(t.TempDir(), "decisions.jsonl")
	if records, err := readDecisions(empty); err != nil || len(records) != 0 {
		t.Errorf("readDecisions without a log = %d records, %v; want none, nil", len(records), err)
	}
}

// recordLines returns decision records with the chain sequence numbers
// from first to last, each named r and its number.
func recordLines(first, last int) string {
	var b strings.Builder
	for seq := first; seq <= last; seq++ {
		fmt.Fprintf(&b, `{"decision_id":"r%d","timestamp":"2026-01-01T00:00:00Z","path":"bordergate/pdu/decision","allow":true,"chain":{"seq":%d,"prev":"p","hash":"h"}}`+"\n", seq, seq)
	}
	return b.String()
}

func writeGzip(t *testing.T, path, content string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, buf.String())
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
