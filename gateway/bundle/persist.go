package bundle

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bordergate/bordergate/gateway/internal/durable"
)

// Save writes the archive raw to path so that a crash leaves either the
// previous file or the new one: it writes a temporary file beside path,
// syncs it, renames it over path and syncs the directory. The directory
// is created with mode 0750 when missing.
func Save(path string, raw []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("save bundle: %w", err)
	}
	if err := durable.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("save bundle: %w", err)
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
