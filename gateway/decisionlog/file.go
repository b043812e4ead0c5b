package decisionlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bordergate/bordergate/gateway/internal/durable"
)

// Modes of the files and directories that Open creates. Existing ones keep
// their mode.
const (
	fileMode = 0o640
	dirMode  = 0o750
)

// logFile is the part of *os.File that the commit goroutine uses. Tests
// wrap a real *os.File to count calls and inject faults.
type logFile interface {
	io.Writer
	io.ReaderAt
	Sync() error
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Close() error
}

// openFunc opens path for appending. When syncDirs is true it also syncs
// each directory in which it created an entry.
type openFunc func(path string, syncDirs bool) (logFile, error)

// openLogFile opens path for appending, creating it and its missing parent
// directories.
func openLogFile(path string, syncDirs bool) (logFile, error) {
	dir := filepath.Dir(path)
	createdDirs, err := makeDirs(dir)
	if err != nil {
		return nil, err
	}

	file, created, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	if !syncDirs {
		return file, nil
	}

	// A new directory entry survives a crash only once its parent
	// directory has been synced.
	var toSync []string
	for _, d := range createdDirs {
		toSync = append(toSync, filepath.Dir(d))
	}
	if created {
		toSync = append(toSync, dir)
	}
	for _, d := range toSync {
		if err := durable.SyncDir(d); err != nil {
			_ = file.Close()
			return nil, err
		}
	}
	return file, nil
}

// makeDirs creates dir and its missing parents and returns the directories
// that were missing, outermost first.
func makeDirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("check directory %s: %w", d, err)
		}
		missing = append([]string{d}, missing...)
		if filepath.Dir(d) == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil, nil
	}

	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("create directory: %w", err)
	}
	return missing, nil
}

// openAppend opens path for appending and reports whether it created the
// file. It rejects anything but a regular file, because the commit goroutine
// syncs and truncates the file. The file is also open for reading, so that
// endsMidLine can read its last byte.
func openAppend(path string) (*os.File, bool, error) {
	file, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, fileMode)
	if err == nil {
		return file, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("create file: %w", err)
	}

	// Check before opening, because opening a FIFO for writing blocks
	// until a reader opens it.
	info, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("open file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, false, fmt.Errorf("open file %s: not a regular file (mode %s)", path, info.Mode().Type())
	}

	file, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, false, fmt.Errorf("open file: %w", err)
	}
	return file, false, nil
}

// endsMidLine reports whether file is not empty and does not end with a
// newline, which is the state a crash in the middle of a write can leave.
func endsMidLine(file logFile) (bool, error) {
	info, err := file.Stat()
	if err != nil {
		return false, fmt.Errorf("check end of file: %w", err)
	}
	if info.Size() == 0 {
		return false, nil
	}

	var last [1]byte
	if _, err := file.ReadAt(last[:], info.Size()-1); err != nil {
		return false, fmt.Errorf("check end of file: %w", err)
	}
	return last[0] != '\n', nil
}

// syncAndClose syncs and closes file, returning the first error.
func syncAndClose(file logFile) error {
	syncErr := file.Sync()
	closeErr := file.Close()
	if syncErr != nil {
		return fmt.Errorf("sync: %w", syncErr)
	}
	if closeErr != nil {
		return fmt.Errorf("close: %w", closeErr)
	}
	return nil
}
