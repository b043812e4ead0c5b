package decisionlog

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRotatedName(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	at := time.Date(2026, 3, 14, 9, 26, 53, 0, time.FixedZone("CET", 3600))

	name, err := rotatedName(path, at, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "decisions-20260314T082653Z.jsonl"); name != want {
		t.Errorf("rotated name = %s, want %s", name, want)
	}
	if err := os.WriteFile(name+".gz", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	name, err = rotatedName(path, at, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "decisions-20260314T082653Z-2.jsonl"); name != want {
		t.Errorf("rotated name beside a compressed one = %s, want %s", name, want)
	}
	if !rotatedPattern(path).MatchString(filepath.Base(name)) {
		t.Errorf("pattern does not match %s", name)
	}
}

func TestCompressTempNameHidden(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions-20260314T082653Z.jsonl")
	tmp := compressTempName(path)
	if filepath.Dir(tmp) != dir {
		t.Errorf("temporary file %s is not beside %s, so the rename into place could cross file systems", tmp, path)
	}
	if want := ".decisions-20260314T082653Z.jsonl.gz.tmp"; filepath.Base(tmp) != want {
		t.Errorf("temporary file = %s, want %s", filepath.Base(tmp), want)
	}
	// A shell leaves a name that starts with a dot out of a pattern that
	// does not, and filepath.Match does not know this rule.
	for _, glob := range []string{"decisions*", "decisions-*", "decisions-*.jsonl*"} {
		if matched, err := filepath.Match(glob, filepath.Base(tmp)); err != nil || matched {
			t.Errorf("glob %s matches the temporary file %s (err %v)", glob, filepath.Base(tmp), err)
		}
	}
}

func TestWriterRotatesByAge(t *testing.T) {
	dir := t.TempDir()
	w, path := openTest(t, Options{Path: filepath.Join(dir, "decisions.jsonl"), Rotation: Rotation{MaxAge: 30 * time.Millisecond}}, nil)
	if err := w.Write(t.Context(), testRecord("old")); err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rotation by age after 10s: %v", entries)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := w.Write(t.Context(), testRecord("new")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	records := readRecords(t, path)
	if len(records) != 1 || records[0].DecisionID != "new" || records[0].Chain.Seq != 2 {
		t.Errorf("current file = %+v, want only new with seq 2", records)
	}
}

func TestWriterCompressesLeftoverRotations(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, "decisions-20260314T082653Z.jsonl")
	if err := os.WriteFile(leftover, []byte(validLine1+"\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	// A crash during a compression leaves its temporary file, hidden, or
	// unhidden from versions before the hidden name.
	stale := compressTempName(leftover)
	staleUnhidden := leftover + ".gz.tmp"
	for _, path := range []string{stale, staleUnhidden} {
		if err := os.WriteFile(path, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	unrelated := filepath.Join(dir, "notes.jsonl")
	if err := os.WriteFile(unrelated, nil, 0o640); err != nil {
		t.Fatal(err)
	}

	w, _ := openTest(t, Options{Path: filepath.Join(dir, "decisions.jsonl"), Rotation: Rotation{MaxBytes: 1 << 20, Compress: true}}, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	for _, removed := range []string{leftover, stale, staleUnhidden} {
		if _, err := os.Stat(removed); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", removed, err)
		}
	}
	if _, err := os.Stat(unrelated); err != nil {
		t.Errorf("unrelated file: %v", err)
	}
	file, err := os.Open(leftover + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	zr, err := gzip.NewReader(file)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSuffix(string(data), "\n"); got != validLine1 {
		t.Errorf("compressed content = %q, want the leftover file", got)
	}
}

func TestWriterRotationRetriesAfterFailedOpen(t *testing.T) {
	opener := &faultOpener{}
	dir := t.TempDir()
	w, path := openTest(t, Options{Path: filepath.Join(dir, "decisions.jsonl"), Rotation: Rotation{MaxBytes: 100}}, opener)
	opener.setFailOpen(errInjected)
	if err := w.Write(t.Context(), testRecord("r1")); err != nil {
		t.Fatal(err)
	}
	// The file was renamed, but its successor could not be opened: the
	// renamed file keeps receiving records.
	if err := w.Write(t.Context(), testRecord("r2")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("stat %s = %v, want it renamed away", path, err)
	}
	rotated, err := filepath.Glob(filepath.Join(dir, "decisions-*.jsonl"))
	if err != nil || len(rotated) != 1 {
		t.Fatalf("rotated files = %v (%v), want one", rotated, err)
	}
	if n := len(links(t, rotated[0])); n != 2 {
		t.Errorf("renamed file has %d records, want 2", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}
