// Package durable writes files so that they survive a crash of the process
// or of the operating system, as far as the storage device honours fsync.
package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir syncs the directory dir, which makes the entries created, renamed
// or removed in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory for sync: %w", err)
	}
	syncErr := d.Sync()
	closeErr := d.Close()
	if syncErr != nil {
		return fmt.Errorf("sync directory %s: %w", dir, syncErr)
	}
	if closeErr != nil {
		return fmt.Errorf("close directory %s: %w", dir, closeErr)
	}
	return nil
}

// WriteFile replaces the file at path with data so that a crash leaves
// either the previous file or the new one. It writes a temporary file with
// mode perm beside path, syncs it, renames it over path and syncs the
// directory. The temporary file is removed when a step fails.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("create temporary file: %w", err)
	}
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		if removeErr := os.Remove(tmp.Name()); removeErr != nil && !errors.Is(removeErr, os.ErrNotExist) {
			err = errors.Join(err, removeErr)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(dir)
}
