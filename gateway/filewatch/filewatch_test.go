package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const debounce = 100 * time.Millisecond

// recorder collects the reports of a running watcher.
type recorder struct {
	reports chan []string
}

func startWatcher(t *testing.T, paths ...string) *recorder {
	t.Helper()
	w, err := New(paths, debounce, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{reports: make(chan []string, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(changed []string) { rec.reports <- changed })
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return rec
}

// expect waits for one report and checks it.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	select {
	case got := <-r.reports:
		if !slices.Equal(got, want) {
			t.Errorf("report = %q, want %q", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no report within 5s, want %q", want)
	}
}

// expectNone checks that no report comes within a few debounce periods.
func (r *recorder) expectNone(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.reports:
		t.Errorf("unexpected report %q", got)
	case <-time.After(5 * debounce):
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestWatchFileWrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "allowlist.yaml")
	write(t, file, "a")
	rec := startWatcher(t, file)

	write(t, file, "b")
	rec.expect(t, file)
	write(t, filepath.Join(dir, "other.yaml"), "x")
	rec.expectNone(t)
}

func TestWatchEditorSaveIsOneReport(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "policy.rego")
	write(t, file, "a")
	rec := startWatcher(t, file)

	// What vim does with backupcopy=no: move the file to a backup, write a
	// new file, remove the backup.
	backup := file + "~"
	if err := os.Rename(file, backup); err != nil {
		t.Fatal(err)
	}
	write(t, file, "b")
	if err := os.Remove(backup); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, file)
	rec.expectNone(t)
}

func TestWatchAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "data.json")
	write(t, file, "{}")
	rec := startWatcher(t, file)

	tmp := filepath.Join(dir, ".data.json.tmp")
	write(t, tmp, `{"a":1}`)
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, file)
}

func TestWatchTree(t *testing.T) {
	root := filepath.Join(t.TempDir(), "rego")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(root, "request.rego"), "a")
	data := filepath.Join(filepath.Dir(root), "data.json")
	write(t, data, "{}")
	rec := startWatcher(t, root, data)

	write(t, filepath.Join(root, "request.rego"), "b")
	rec.expect(t, root)

	write(t, filepath.Join(root, "notes.txt"), "not policy")
	rec.expectNone(t)

	sub := filepath.Join(root, "lib")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, root)
	// The new directory is watched once the report is out.
	write(t, filepath.Join(sub, "lib.rego"), "c")
	rec.expect(t, root)

	write(t, data, `{"a":1}`)
	rec.expect(t, data)
}

func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	// A ConfigMap volume: allowlist.yaml -> ..data/allowlist.yaml, and
	// ..data -> a timestamped directory that an update replaces.
	first := filepath.Join(dir, "..2026_01")
	if err := os.Mkdir(first, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(first, "allowlist.yaml"), "a")
	if err := os.Symlink("..2026_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "allowlist.yaml")
	if err := os.Symlink("..data/allowlist.yaml", file); err != nil {
		t.Fatal(err)
	}
	rec := startWatcher(t, file)

	second := filepath.Join(dir, "..2026_02")
	if err := os.Mkdir(second, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(second, "allowlist.yaml"), "b")
	if err := os.Symlink("..2026_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, file)
}

func TestNewMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "absent")
	_, err := New([]string{filepath.Join(dir, "allowlist.yaml")}, debounce, nil)
	want := "watch directory of " + filepath.Join(dir, "allowlist.yaml") + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("New error = %v, want %q", err, want)
	}
}

// A deployment that switches releases by replacing a symbolic link, such
// as rego -> releases/v1, edits the files behind the link.
func TestWatchTreeBehindSymlink(t *testing.T) {
	dir := t.TempDir()
	for _, release := range []string{"v1", "v2"} {
		if err := os.MkdirAll(filepath.Join(dir, "releases", release), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "releases", release, "request.rego"), release)
	}
	root := filepath.Join(dir, "rego")
	if err := os.Symlink(filepath.Join("releases", "v1"), root); err != nil {
		t.Fatal(err)
	}
	rec := startWatcher(t, root)

	write(t, filepath.Join(root, "request.rego"), "v1 edited")
	rec.expect(t, root)

	tmp := filepath.Join(dir, "rego.tmp")
	if err := os.Symlink(filepath.Join("releases", "v2"), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, root)
	// The new release is watched once the report is out.
	write(t, filepath.Join(dir, "releases", "v2", "request.rego"), "v2 edited")
	rec.expect(t, root)
}

func TestWatchFileBehindSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "shared", "policy-data.yaml")
	if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, target, "a: 1")
	etc := filepath.Join(dir, "etc")
	if err := os.Mkdir(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(etc, "policy-data.yaml")
	if err := os.Symlink(target, file); err != nil {
		t.Fatal(err)
	}
	rec := startWatcher(t, file)

	write(t, target, "a: 2")
	rec.expect(t, file)
	write(t, filepath.Join(filepath.Dir(target), "other.yaml"), "x")
	rec.expectNone(t)
}
