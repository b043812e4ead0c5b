//go:build unix

package decisionlog

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// setUmask sets the process umask for one test, which must not run in
// parallel with others.
func setUmask(t *testing.T, mask int) {
	t.Helper()
	previous := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(previous) })
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return info.Mode().Perm()
}

func TestOpenCreatesDirsAndFile(t *testing.T) {
	setUmask(t, 0o022)
	root := t.TempDir()
	path := filepath.Join(root, "var", "log", "decisions.jsonl")

	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	for _, dir := range []string{filepath.Join(root, "var"), filepath.Join(root, "var", "log")} {
		if got := mode(t, dir); got != 0o750 {
			t.Errorf("mode of %s = %o, want 750", dir, got)
		}
	}
	if got := mode(t, path); got != 0o640 {
		t.Errorf("mode of %s = %o, want 640", path, got)
	}
}

func TestOpenAppendsToExistingFile(t *testing.T) {
	setUmask(t, 0o022)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(path, []byte(validLine1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("appended")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	if got := mode(t, path); got != 0o600 {
		t.Errorf("mode of existing file = %o, want 600 unchanged", got)
	}
	records := readRecords(t, path)
	if len(records) != 2 || records[0].DecisionID != "a" || records[1].DecisionID != "appended" {
		t.Errorf("file contains %v, want a and appended", records)
	}
}

func TestOpenRejectsFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}

	w, err := Open(Options{Path: path})
	if err == nil {
		_ = w.Close()
		t.Fatal("Open on a FIFO returned nil error")
	}
	want := "open decision log: open file " + path + ": not a regular file (mode p---------)"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}
