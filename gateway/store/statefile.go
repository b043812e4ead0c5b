package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// stateSubdir is the directory under the state directory that holds the
// persisted allow-list sources, one file each.
const stateSubdir = "allowlist"

// stateFormat names the format of a source state file.
const stateFormat = "bordergate-allowlist-source"

// sourceState is the content of a source state file.
type sourceState struct {
	Format    string    `json:"format"`
	Version   int       `json:"version"`
	Source    string    `json:"source"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	Entries   []Entry   `json:"entries"`
}

// stateFS is the file system operations that persisting a source needs.
// Tests replace it to inject faults.
type stateFS interface {
	MkdirAll(dir string) error
	ReadDir(dir string) ([]string, error)
	ReadFile(path string) ([]byte, error)
	CreateTemp(dir, pattern string) (stateFile, error)
	Rename(oldPath, newPath string) error
	Remove(path string) error
	// SyncDir makes the directory's entries durable: a rename or removal
	// inside it survives a crash once SyncDir returns.
	SyncDir(dir string) error
}

// stateFile is a temporary file being written.
type stateFile interface {
	io.Writer
	Name() string
	Sync() error
	Close() error
}

// osStateFS is the stateFS of the operating system.
type osStateFS struct{}

func (osStateFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o700) }

func (osStateFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, entry := range entries {
		names[i] = entry.Name()
	}
	return names, nil
}

func (osStateFS) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

func (osStateFS) CreateTemp(dir, pattern string) (stateFile, error) {
	return os.CreateTemp(dir, pattern)
}

func (osStateFS) Rename(oldPath, newPath string) error { return os.Rename(oldPath, newPath) }

func (osStateFS) Remove(path string) error { return os.Remove(path) }

func (osStateFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// stateDir writes and reads the source state files. A change writes the
// whole source to a temporary file, syncs it, renames it over the old file
// and syncs the directory, so that after a crash at any point the file
// holds either the old source or the new one.
type stateDir struct {
	dir string
	fs  stateFS
	// step, when not nil, is called after each step of a write with the
	// step's name. Tests use it to crash the process there.
	step func(name string)
}

// stateFileName returns the file name of source: its name with the colon
// replaced by a dot, and ".json".
func stateFileName(source string) string {
	return strings.Replace(source, ":", ".", 1) + ".json"
}

func (d *stateDir) path(source string) string {
	return filepath.Join(d.dir, stateFileName(source))
}

func (d *stateDir) reached(step string) {
	if d.step != nil {
		d.step(step)
	}
}

// write replaces the state file of source with state.
func (d *stateDir) write(state sourceState) (err error) {
	data, err := json.MarshalIndent(state, "", "  ")
	if err != nil {
		return fmt.Errorf("encode source %s: %w", state.Source, err)
	}
	data = append(data, '\n')
	final := d.path(state.Source)

	tmp, err := d.fs.CreateTemp(d.dir, stateFileName(state.Source)+".*.tmp")
	if err != nil {
		return fmt.Errorf("persist source %s: create temporary file: %w", state.Source, err)
	}
	d.reached("temp_created")
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = d.fs.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("persist source %s: write %s: %w", state.Source, tmp.Name(), err)
	}
	d.reached("written")
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("persist source %s: sync %s: %w", state.Source, tmp.Name(), err)
	}
	d.reached("file_synced")
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("persist source %s: close %s: %w", state.Source, tmp.Name(), err)
	}
	d.reached("closed")
	if err := d.fs.Rename(tmp.Name(), final); err != nil {
		return fmt.Errorf("persist source %s: rename to %s: %w", state.Source, final, err)
	}
	d.reached("renamed")
	if err := d.fs.SyncDir(d.dir); err != nil {
		// The rename may or may not survive a crash now, so the change
		// is reported as failed, and the caller keeps the old entries
		// in memory. NOTE: the new file stays in place until the next
		// change or restart, which then reads it.
		return fmt.Errorf("persist source %s: sync directory %s: %w", state.Source, d.dir, err)
	}
	d.reached("dir_synced")
	return nil
}

// remove deletes the state file of source.
func (d *stateDir) remove(source string) error {
	path := d.path(source)
	if err := d.fs.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove source %s: %w", source, err)
	}
	d.reached("removed")
	if err := d.fs.SyncDir(d.dir); err != nil {
		return fmt.Errorf("remove source %s: sync directory %s: %w", source, d.dir, err)
	}
	d.reached("dir_synced")
	return nil
}

// load reads every state file. It removes temporary files that a crash
// left behind, and fails on a state file that is not valid, naming it.
func (d *stateDir) load() ([]sourceState, error) {
	names, err := d.fs.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("read allow-list state directory: %w", err)
	}
	var states []sourceState
	for _, name := range names {
		path := filepath.Join(d.dir, name)
		switch {
		case strings.HasSuffix(name, ".tmp"):
			if err := d.fs.Remove(path); err != nil {
				return nil, fmt.Errorf("remove unfinished state file: %w", err)
			}
		case strings.HasSuffix(name, ".json"):
			state, err := d.read(path)
			if err != nil {
				return nil, fmt.Errorf("%s: %w (fix the file, or remove it and lose its entries)", path, err)
			}
			if stateFileName(state.Source) != name {
				return nil, fmt.Errorf("%s: holds source %q, whose file is %s (rename or remove the file)", path, state.Source, stateFileName(state.Source))
			}
			states = append(states, state)
		}
	}
	return states, nil
}

// read decodes and checks one state file.
func (d *stateDir) read(path string) (sourceState, error) {
	data, err := d.fs.ReadFile(path)
	if err != nil {
		return sourceState{}, err
	}
	var state sourceState
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&state); err != nil {
		return sourceState{}, fmt.Errorf("invalid state file: %w", err)
	}
	if state.Format != stateFormat || state.Version != 1 {
		return sourceState{}, fmt.Errorf("format %q version %d not supported (expected %q version 1)", state.Format, state.Version, stateFormat)
	}
	if err := CheckSourceName(state.Source); err != nil {
		return sourceState{}, err
	}
	if !persisted(state.Source) {
		return sourceState{}, fmt.Errorf("source %q is not one that the state directory keeps (expected api or import:NAME)", state.Source)
	}
	for i, entry := range state.Entries {
		if entry.Source != "" && entry.Source != state.Source {
			return sourceState{}, fmt.Errorf("entries[%d]: source %q differs from the file's source %q", i, entry.Source, state.Source)
		}
	}
	if err := ValidateEntries(state.Entries); err != nil {
		return sourceState{}, err
	}
	return state, nil
}

// openState loads the persisted sources of stateDir into the store.
func (s *Store) openState(root string, fs stateFS) error {
	dir := filepath.Join(root, stateSubdir)
	if err := fs.MkdirAll(dir); err != nil {
		return fmt.Errorf("create allow-list state directory: %w", err)
	}
	d := &stateDir{dir: dir, fs: fs}
	states, err := d.load()
	if err != nil {
		return err
	}
	for _, state := range states {
		info := SourceInfo{UpdatedBy: state.UpdatedBy, UpdatedAt: state.UpdatedAt}
		if err := s.commitSource(state.Source, state.Entries, info, nil); err != nil {
			return fmt.Errorf("load allow-list source %s: %w", state.Source, err)
		}
		s.log.Info("allowlist source loaded", "source", state.Source, "entry_count", len(state.Entries), "file", d.path(state.Source))
	}
	s.state = d
	return nil
}
