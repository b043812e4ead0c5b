// Package filewatch reports changes to configuration files and directory
// trees with fsnotify. It watches directories, not files, because editors
// and configuration tools replace a file instead of writing to it: vim
// renames the old file away and writes a new one, and a Kubernetes
// ConfigMap volume swaps a symbolic link named ..data. The bursts of
// events that one save causes are debounced into one report.
package filewatch

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher watches a set of paths and reports which of them changed.
type Watcher struct {
	fs    *fsnotify.Watcher
	paths []string
	// targets are the paths with symbolic links resolved at the last sync,
	// in the order of paths, so that changes behind a link are matched to
	// the path. Run's goroutine owns them after New.
	targets  []string
	debounce time.Duration
	log      *slog.Logger
}

// New watches paths, each a file or a directory tree. A file that does
// not exist yet is watched through its directory, which must exist.
// debounce is the quiet time after the last event before a change is
// reported.
func New(paths []string, debounce time.Duration, log *slog.Logger) (*Watcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("start file watcher: %w", err)
	}
	w := &Watcher{fs: fsw, paths: slices.Clone(paths), debounce: debounce, log: log}
	if err := w.sync(); err != nil {
		fsw.Close()
		return nil, err
	}
	return w, nil
}

// Run reports changes to onChange until ctx ends, then stops watching.
// onChange gets the watched paths whose files changed, in the order given
// to New, and runs on Run's goroutine.
func (w *Watcher) Run(ctx context.Context, onChange func(changed []string)) {
	defer w.fs.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	pending := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case event, ok := <-w.fs.Events:
			if !ok {
				return
			}
			if matched := w.match(event); len(matched) > 0 {
				for _, p := range matched {
					pending[p] = true
				}
				timer.Reset(w.debounce)
			}
		case err, ok := <-w.fs.Errors:
			if !ok {
				return
			}
			w.log.Warn("file watcher error; changes may be missed until the next reload", "err", err)
		case <-timer.C:
			// Directories may have been created or replaced since the last
			// report, so the watch list is brought up to date first.
			if err := w.sync(); err != nil {
				w.log.Warn("file watcher cannot watch every path", "err", err)
			}
			var changed []string
			for _, p := range w.paths {
				if pending[p] {
					changed = append(changed, p)
				}
			}
			clear(pending)
			onChange(changed)
		}
	}
}

// sync adds a watch on each directory that a path needs: the parent of a
// file, and a directory tree with its parent, so that a tree replaced by a
// rename is seen too. Behind a symbolic link, it watches the tree that the
// link points to, or the directory of the file that it points to, as the
// policy loader reads them. Watching a directory twice is a no-op in
// fsnotify.
func (w *Watcher) sync() error {
	var errs []error
	w.targets = w.targets[:0]
	for _, p := range w.paths {
		target := p
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			target = resolved
		}
		w.targets = append(w.targets, target)

		info, err := os.Stat(p)
		isDir := err == nil && info.IsDir()
		if isDir {
			errs = append(errs, w.addTree(target))
		}
		if err := w.fs.Add(filepath.Dir(p)); err != nil {
			errs = append(errs, fmt.Errorf("watch directory of %s: %w", p, err))
		}
		if !isDir && target != p {
			if err := w.fs.Add(filepath.Dir(target)); err != nil {
				errs = append(errs, fmt.Errorf("watch directory of %s, which %s links to: %w", target, p, err))
			}
		}
	}
	return errors.Join(errs...)
}

// addTree watches root and every directory below it whose name does not
// start with a dot. Hidden directories are skipped as the policy loader
// skips them, and the ..data link of a ConfigMap volume shows up as events
// in root itself.
func (w *Watcher) addTree(root string) error {
	return filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		if !entry.IsDir() {
			return nil
		}
		if path != root && strings.HasPrefix(entry.Name(), ".") {
			return filepath.SkipDir
		}
		if err := w.fs.Add(path); err != nil {
			return fmt.Errorf("watch %s: %w", path, err)
		}
		return nil
	})
}

// match returns the watched paths that event concerns. An event on a file
// path counts when it names the file or the file that it links to, or a
// name starting with "..", as the links of a ConfigMap volume do. An event
// inside a directory tree, or inside the tree that it links to, counts
// when it names a .rego file, a directory or a ".." name. An event in the
// parent of a tree counts when it names the tree.
func (w *Watcher) match(event fsnotify.Event) []string {
	if event.Op == fsnotify.Chmod {
		return nil
	}
	dir, name := filepath.Dir(event.Name), filepath.Base(event.Name)
	var matched []string
	for i, p := range w.paths {
		target := w.targets[i]
		switch {
		case event.Name == p || event.Name == target:
			matched = append(matched, p)
		case dir == filepath.Dir(p) && strings.HasPrefix(name, ".."):
			matched = append(matched, p)
		case (isWithin(p, event.Name) || isWithin(target, event.Name)) && relevantInTree(event.Name, name):
			matched = append(matched, p)
		}
	}
	return matched
}

func relevantInTree(path, name string) bool {
	if strings.HasSuffix(name, ".rego") || strings.HasPrefix(name, "..") {
		return true
	}
	info, err := os.Lstat(path)
	return err == nil && info.IsDir()
}

// isWithin reports whether path lies below root.
func isWithin(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
