package bundle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Save writes the archive raw to path so that a crash leaves either the
// previous file or the new one: it writes a temporary file beside path,
// syncs it, renames it over path and syncs the directory. The directory
// is created with mode 0750 when missing.
func Save(path string, raw []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	_, err = tmp.Write(raw)
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
		return errors.Join(fmt.Errorf("save bundle %s: %w", path, err), removeIfPresent(tmp.Name()))
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("save bundle: sync directory: %w", err)
	}
	err = d.Sync()
	if closeErr := d.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("save bundle: sync directory %s: %w", dir, err)
	}
	return nil
}

// LoadSaved reads an archive written by Save. A missing file returns an
// error that matches os.ErrNotExist.
func LoadSaved(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read saved bundle: %w", err)
	}
	return raw, nil
}

func removeIfPresent(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
