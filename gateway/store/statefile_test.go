package store

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// serverNames returns the server names of the API source, in order.
func apiNames(s *Store) []string {
	entries, _ := s.SourceEntries(SourceNameAPI)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.ServerName)
	}
	return names
}

func openStateStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := New(Options{StateDir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStateStore(t, dir)
	if _, err := s.AddEntry(allowEntry("hs2.example.org"), "alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSource("import:bans", []Entry{denyEntry("*.evil.org", "spam")}, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSource("import:gone", []Entry{denyEntry("gone.org", "")}, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSource("import:gone", "bob"); err != nil {
		t.Fatal(err)
	}
	before := s.List()
	_ = s.Close()

	reopened := openStateStore(t, dir)
	after := reopened.List()
	if !reflect.DeepEqual(before, after) {
		t.Errorf("after restart:\n got %+v\nwant %+v", after, before)
	}
	e, ok := reopened.Lookup("hs2.example.org")
	if !ok || e.ChangedBy != "alice" || e.ChangedAt == nil || e.Source != SourceNameAPI {
		t.Errorf("Lookup(hs2) = %+v, %t, want the API entry changed by alice", e, ok)
	}
	if m := reopened.Match("x.evil.org"); m.Deny == nil || m.Deny.Note != "spam" || m.Deny.ChangedBy != "bob" {
		t.Errorf("Match(x.evil.org) = %+v, want the imported deny entry", m)
	}
	if _, ok := reopened.SourceEntries("import:gone"); ok {
		t.Errorf("deleted source import:gone came back after restart")
	}
}

func TestStateFileInvalid(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
		want    string
	}{
		{
			"truncated JSON", "api.json", `{"format":"bordergate-allowlist-source","version":1,"source":"api","entries":[`,
			"api.json: invalid state file: unexpected EOF (fix the file, or remove it and lose its entries)",
		},
		{
			"invalid entry", "api.json",
			`{"format":"bordergate-allowlist-source","version":1,"source":"api","updated_at":"2026-01-01T00:00:00Z","entries":[{"server_name":"a.org"}]}`,
			`api.json: servers[0] (server_name "a.org"): endpoints: missing (expected ["*"] to permit every endpoint, or a list of endpoint IDs such as ["send", "make_join"]) (fix the file, or remove it and lose its entries)`,
		},
		{
			"source of another file", "api.json",
			`{"format":"bordergate-allowlist-source","version":1,"source":"import:x","updated_at":"2026-01-01T00:00:00Z","entries":[]}`,
			`api.json: holds source "import:x", whose file is import.x.json (rename or remove the file)`,
		},
		{
			"file source", "file.json",
			`{"format":"bordergate-allowlist-source","version":1,"source":"file","updated_at":"2026-01-01T00:00:00Z","entries":[]}`,
			`file.json: source "file" is not one that the state directory keeps (expected api or import:NAME) (fix the file, or remove it and lose its entries)`,
		},
		{
			"other format", "api.json", `{"format":"x","version":2,"source":"api","entries":[]}`,
			`api.json: format "x" version 2 not supported (expected "bordergate-allowlist-source" version 1) (fix the file, or remove it and lose its entries)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, stateSubdir), 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, stateSubdir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{StateDir: dir})
			want := filepath.Join(dir, stateSubdir) + "/" + tt.want
			if err == nil || err.Error() != want {
				t.Errorf("New() error:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// faultFS is the operating system's file system with one operation made
// to fail.
type faultFS struct {
	osStateFS
	fail string // operation that fails: create, write, sync, close, rename, syncdir, remove
}

var errInjected = errors.New("injected fault")

func (f faultFS) CreateTemp(dir, pattern string) (stateFile, error) {
	if f.fail == "create" {
		return nil, errInjected
	}
	file, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fail: f.fail}, nil
}

func (f faultFS) Rename(oldPath, newPath string) error {
	if f.fail == "rename" {
		return errInjected
	}
	return os.Rename(oldPath, newPath)
}

func (f faultFS) SyncDir(dir string) error {
	if f.fail == "syncdir" {
		return errInjected
	}
	return osStateFS{}.SyncDir(dir)
}

func (f faultFS) Remove(path string) error {
	if f.fail == "remove" && !strings.HasSuffix(path, ".tmp") {
		return errInjected
	}
	return os.Remove(path)
}

type faultFile struct {
	*os.File
	fail string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fail == "write" {
		return 0, errInjected
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if f.fail == "sync" {
		return errInjected
	}
	return f.File.Sync()
}

func (f *faultFile) Close() error {
	err := f.File.Close()
	if f.fail == "close" {
		return errInjected
	}
	return err
}

func TestStateWriteFaults(t *testing.T) {
	for _, fail := range []string{"create", "write", "sync", "close", "rename", "syncdir"} {
		t.Run(fail, func(t *testing.T) {
			dir := t.TempDir()
			seed := openStateStore(t, dir)
			if _, err := seed.AddEntry(allowEntry("hs1.example.org"), "alice"); err != nil {
				t.Fatal(err)
			}
			_ = seed.Close()

			s, err := newStore(Options{StateDir: dir}, faultFS{fail: fail}, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := s.Revision()
			_, err = s.AddEntry(allowEntry("hs2.example.org"), "alice")
			if !errors.Is(err, errInjected) {
				t.Fatalf("AddEntry error = %v, want the injected fault", err)
			}
			if got := apiNames(s); !reflect.DeepEqual(got, []string{"hs1.example.org"}) {
				t.Errorf("entries in memory after the fault = %v, want only hs1", got)
			}
			if s.Revision() != before {
				t.Errorf("revision changed by a failed change")
			}
			_ = s.Close()
			assertNoTempFiles(t, dir)

			// A failed directory sync leaves the renamed file, which the
			// next start reads: the change was reported as failed, but is
			// not lost either.
			reopened := openStateStore(t, dir)
			want := []string{"hs1.example.org"}
			if fail == "syncdir" {
				want = []string{"hs1.example.org", "hs2.example.org"}
			}
			if got := apiNames(reopened); !reflect.DeepEqual(got, want) {
				t.Errorf("entries after restart = %v, want %v", got, want)
			}
		})
	}
}

func TestStateRemoveFault(t *testing.T) {
	dir := t.TempDir()
	s, err := newStore(Options{StateDir: dir}, faultFS{fail: "remove"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ImportSource("import:bans", []Entry{denyEntry("evil.org", "")}, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSource("import:bans", "bob"); !errors.Is(err, errInjected) {
		t.Fatalf("DeleteSource error = %v, want the injected fault", err)
	}
	if m := s.Match("evil.org"); m.Deny == nil {
		t.Errorf("deny entry withdrawn although its source could not be deleted")
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, stateSubdir, "*.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) > 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

// Environment of the crash child: the state directory, and the step at
// which the child kills itself.
const (
	crashDirEnv  = "STORE_CRASH_DIR"
	crashStepEnv = "STORE_CRASH_STEP"
	crashOpEnv   = "STORE_CRASH_OP"
)

// TestCrashChild runs only in the child process of TestStateCrashAtEachStep:
// it makes one change and kills itself with SIGKILL at the named step.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestStateCrashAtEachStep")
	}
	target := os.Getenv(crashStepEnv)
	s, err := newStore(Options{StateDir: dir}, osStateFS{}, func(step string) {
		if step == target {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	switch os.Getenv(crashOpEnv) {
	case "put":
		_, _, err = s.PutEntry(allowEntry("hs2.example.org"), "alice")
	case "delete":
		err = s.DeleteSource("import:bans", "alice")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Fatalf("step %q never reached", target)
}

// TestStateCrashAtEachStep kills a process that changes a source at each
// step of the write, and checks that the next start sees either the whole
// old source or the whole new one: the new one once the rename is done.
func TestStateCrashAtEachStep(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process per step")
	}
	type crash struct {
		op, step string
		changed  bool
	}
	var crashes []crash
	for _, step := range []string{"temp_created", "written", "file_synced", "closed"} {
		crashes = append(crashes, crash{"put", step, false})
	}
	for _, step := range []string{"renamed", "dir_synced", "committed"} {
		crashes = append(crashes, crash{"put", step, true})
	}
	crashes = append(crashes, crash{"delete", "removed", true}, crash{"delete", "dir_synced", true}, crash{"delete", "committed", true})

	for _, c := range crashes {
		t.Run(c.op+"_"+c.step, func(t *testing.T) {
			dir := t.TempDir()
			seed := openStateStore(t, dir)
			if _, err := seed.AddEntry(allowEntry("hs1.example.org"), "alice"); err != nil {
				t.Fatal(err)
			}
			if err := seed.ImportSource("import:bans", []Entry{denyEntry("evil.org", "")}, "alice"); err != nil {
				t.Fatal(err)
			}
			_ = seed.Close()

			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashStepEnv+"="+c.step, crashOpEnv+"="+c.op)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("child did not die by SIGKILL at %s: %v\n%s", c.step, err, out)
			}

			s := openStateStore(t, dir)
			assertNoTempFiles(t, dir)
			switch c.op {
			case "put":
				want := []string{"hs1.example.org"}
				if c.changed {
					want = append(want, "hs2.example.org")
				}
				if got := apiNames(s); !reflect.DeepEqual(got, want) {
					t.Errorf("API entries after a crash at %s = %v, want %v", c.step, got, want)
				}
			case "delete":
				if _, ok := s.SourceEntries("import:bans"); ok == c.changed {
					t.Errorf("source import:bans present = %t after a crash at %s, want %t", ok, c.step, !c.changed)
				}
			}
		})
	}
}

// An entry with event_types [] permits no event type, and one without the
// field permits every type. The state file, the revision and a change that
// only switches between the two must keep them apart, or a restart or an
// identical-looking change widens what the entry permits.
func TestStateKeepsEmptyEventTypes(t *testing.T) {
	dir := t.TempDir()
	s := openStateStore(t, dir)
	none := allowEntry("hs2.example.org")
	none.EventTypes = []string{}
	if _, err := s.AddEntry(none, "alice"); err != nil {
		t.Fatal(err)
	}
	noLimit := s.Revision()
	_ = s.Close()

	reopened := openStateStore(t, dir)
	e, ok := reopened.Lookup("hs2.example.org")
	if !ok || e.EventTypes == nil || len(e.EventTypes) != 0 {
		t.Fatalf("after restart, Lookup(hs2).EventTypes = %#v, want []string{} (no event type permitted)", e.EventTypes)
	}

	unlimited := allowEntry("hs2.example.org")
	stored, created, err := reopened.PutEntry(unlimited, "alice")
	if err != nil || created || stored.EventTypes != nil {
		t.Fatalf("PutEntry without event_types = %#v, %t, %v, want the entry replaced with no limit", stored.EventTypes, created, err)
	}
	if reopened.Revision() == noLimit {
		t.Errorf("revision %s did not change when event_types [] was dropped", noLimit)
	}
}
