package decisionlog

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bordergate/bordergate/gateway/internal/durable"
)

// Rotation configures the Writer's built-in rotation. When the file is due,
// the Writer ends it with a checkpoint, if it has a Signer, and renames it
// to NAME-YYYYMMDDTHHMMSSZ.EXT. NAME.EXT is the configured file name and
// the time is the UTC time of the rotation. The chain continues in a new
// file under the configured name. A name already taken gets -2, -3 and so
// on after the time.
type Rotation struct {
	// MaxBytes rotates the file once it has reached this size. Zero turns
	// rotation by size off.
	MaxBytes int64

	// MaxAge rotates the file once its first record is this old. Zero
	// turns rotation by age off.
	MaxAge time.Duration

	// Compress gzips each rotated file to NAME-TIME.EXT.gz in the
	// background and removes the uncompressed file.
	Compress bool
}

// rotateRetryDelay is the time between two attempts to rotate after a
// failed one.
const rotateRetryDelay = 10 * time.Second

// rotatedTimeFormat is the time in the names of rotated files.
const rotatedTimeFormat = "20060102T150405Z"

// rotator is the rotation state of a Writer, owned by the commit
// goroutine except for the compression goroutine's own fields.
type rotator struct {
	config  Rotation
	size    int64     // size of the current file
	started time.Time // time of the first record of the current file, zero when empty
	retryAt time.Time // no rotation attempt before this time
	renamed string    // new name of the current file, when opening its successor failed

	compressWG sync.WaitGroup
	compress   chan string // rotated files to gzip, nil until the first one
}

// start records when the current file began and queues the rotated files
// that a previous run left uncompressed.
func (r *rotator) start(w *Writer) error {
	if r.size > 0 {
		r.started = w.now()
		if t, ok := firstTimestamp(w.file); ok {
			r.started = t
		}
	}
	if !r.config.Compress {
		return nil
	}
	leftovers, err := uncompressedRotations(w.path)
	if err != nil {
		return err
	}
	for _, path := range leftovers {
		r.queueCompress(w, path)
	}
	return nil
}

// opened resets the state for a file of the given size that now receives
// the records.
func (r *rotator) opened(w *Writer, size int64) {
	r.size = size
	r.started = time.Time{}
	if size > 0 {
		r.started = w.now()
	}
	r.renamed = ""
}

// deadline returns when the current file is due by age, or the zero time.
func (r *rotator) deadline() time.Time {
	if r.config.MaxAge <= 0 || r.started.IsZero() {
		return time.Time{}
	}
	due := r.started.Add(r.config.MaxAge)
	if due.Before(r.retryAt) {
		return r.retryAt
	}
	return due
}

// due reports whether the current file must be rotated at now.
func (r *rotator) due(now time.Time) bool {
	if now.Before(r.retryAt) {
		return false
	}
	if r.renamed != "" {
		return true
	}
	bySize := r.config.MaxBytes > 0 && r.size >= r.config.MaxBytes
	byAge := r.config.MaxAge > 0 && !r.started.IsZero() && !now.Before(r.started.Add(r.config.MaxAge))
	return bySize || byAge
}

// rotateIfDue rotates the file when it is due, and logs a failure.
func (w *Writer) rotateIfDue() {
	now := w.now()
	if !w.rot.due(now) {
		return
	}
	if err := w.rotate(now); err != nil {
		w.rot.retryAt = now.Add(rotateRetryDelay)
		w.logger.Error("decision log rotation failed, writing on to the current file",
			"path", w.path, "retry_in", rotateRetryDelay.String(), "err", err)
	}
}

// rotate ends the current file with a checkpoint, renames it and opens a
// new file under the configured name. When opening fails after the
// rename, the renamed file keeps receiving records until a retry succeeds.
func (w *Writer) rotate(now time.Time) error {
	target := w.rot.renamed
	if target == "" {
		w.closeWithCheckpoint()
		if err := w.file.Sync(); err != nil {
			return fmt.Errorf("sync before rotation: %w", err)
		}
		var err error
		if target, err = rotatedName(w.path, now, w.rot.config.Compress); err != nil {
			return err
		}
		if err := os.Rename(w.path, target); err != nil {
			return fmt.Errorf("rename for rotation: %w", err)
		}
		w.rot.renamed = target
	}

	previous, err := w.switchFile()
	if err != nil {
		return fmt.Errorf("open new file after renaming the old one to %s: %w", target, err)
	}
	if err := durable.SyncDir(filepath.Dir(w.path)); err != nil {
		w.logger.Error("decision log directory not synced after rotation", "path", w.path, "err", err)
	}
	if err := syncAndClose(previous); err != nil {
		w.logger.Error("decision log close of rotated file failed", "path", target, "err", err)
	}
	w.logger.Info("decision log rotated", "path", w.path, "rotated_to", target, "seq", w.chain.head.seq)
	if w.rot.config.Compress {
		w.rot.queueCompress(w, target)
	}
	return nil
}

// closeWithCheckpoint ends the current file with a checkpoint when records
// were written since the last one, and syncs the chain state, before the
// file is rotated away.
func (w *Writer) closeWithCheckpoint() {
	if w.chain.signer != nil && w.chain.sinceCheckpoint > 0 {
		if err := w.writeCheckpoint(); err != nil {
			w.logger.Error("decision log checkpoint before rotation not written", "path", w.path, "err", err)
		}
	}
	if err := w.syncState(); err != nil {
		w.logger.Error("decision log chain state not synced", "path", w.path, "err", err)
	}
}

// rotatedName returns a free name for the file at path rotated at now.
func rotatedName(path string, now time.Time, compress bool) (string, error) {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	stamp := now.UTC().Format(rotatedTimeFormat)
	for i := 1; i <= 1000; i++ {
		name := stem + "-" + stamp + ext
		if i > 1 {
			name = stem + "-" + stamp + "-" + strconv.Itoa(i) + ext
		}
		candidate := filepath.Join(dir, name)
		taken, err := exists(candidate)
		if err == nil && !taken && compress {
			taken, err = exists(candidate + ".gz")
		}
		if err != nil {
			return "", err
		}
		if !taken {
			return candidate, nil
		}
	}
	return "", fmt.Errorf("no free name for rotating %s at %s", path, stamp)
}

// rotatedPattern returns the pattern of the uncompressed rotated names of
// the file at path.
func rotatedPattern(path string) *regexp.Regexp {
	base := filepath.Base(path)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	return regexp.MustCompile(`^` + regexp.QuoteMeta(stem) + `-\d{8}T\d{6}Z(-\d+)?` + regexp.QuoteMeta(ext) + `$`)
}

// uncompressedRotations returns the rotated files beside path that are not
// compressed yet, and removes the temporary files of compressions that a
// crash interrupted: hidden ones, and the unhidden NAME.gz.tmp that
// earlier versions wrote.
func uncompressedRotations(path string) ([]string, error) {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list rotated files: %w", err)
	}
	pattern := rotatedPattern(path)
	var found []string
	for _, e := range entries {
		name := e.Name()
		if trimmed, ok := strings.CutSuffix(strings.TrimPrefix(name, "."), ".gz.tmp"); ok && pattern.MatchString(trimmed) {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		if e.Type().IsRegular() && pattern.MatchString(name) {
			found = append(found, filepath.Join(dir, name))
		}
	}
	return found, nil
}

// queueCompress hands a rotated file to the compression goroutine, which
// it starts on first use.
func (r *rotator) queueCompress(w *Writer, path string) {
	if r.compress == nil {
		r.compress = make(chan string, 64)
		r.compressWG.Go(func() {
			for p := range r.compress {
				if err := compressFile(p); err != nil {
					w.logger.Error("decision log compression failed, the rotated file stays uncompressed", "path", p, "err", err)
					continue
				}
				w.logger.Info("decision log rotated file compressed", "path", p+".gz")
			}
		})
	}
	r.compress <- path
}

// stop waits for the queued compressions.
func (r *rotator) stop() {
	if r.compress != nil {
		close(r.compress)
		r.compressWG.Wait()
	}
}

// compressTempName returns the temporary file that path is compressed
// into. It is hidden, so that a shell glob of the log's name, such as the
// decisions* that the audit commands are documented with, never passes a
// partial compressed file to them.
func compressTempName(path string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, "."+base+".gz.tmp")
}

// compressFile gzips path to path.gz through a temporary file, syncs it,
// and removes path.
func compressFile(path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return err
	}

	tmp := compressTempName(path)
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if err := writeGzip(dst, src, filepath.Base(path)); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return err
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path+".gz"); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	dir := filepath.Dir(path)
	if err := durable.SyncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return durable.SyncDir(dir)
}

// writeGzip writes the gzip compression of src to dst and syncs dst.
func writeGzip(dst *os.File, src io.Reader, name string) error {
	zw := gzip.NewWriter(dst)
	zw.Name = name
	if _, err := io.Copy(zw, src); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return dst.Sync()
}

// firstTimestamp returns the timestamp of the first record of a file, read
// from its first bytes without decoding the record.
func firstTimestamp(r io.ReaderAt) (time.Time, bool) {
	buf := make([]byte, 512)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return time.Time{}, false
	}
	return LineTimestamp(buf[:n])
}

// LineTimestamp returns the timestamp of the record on line, read from the
// line's bytes without decoding the record: the value of the first
// "timestamp" member, which the Writer writes second.
func LineTimestamp(line []byte) (time.Time, bool) {
	const key = `"timestamp":"`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return time.Time{}, false
	}
	rest := line[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, string(rest[:end]))
	return t, err == nil
}

// exists reports whether a file exists at path.
func exists(path string) (bool, error) {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check %s: %w", path, err)
	}
	return true, nil
}

// sizeOf returns the size of file.
func sizeOf(file logFile) (int64, error) {
	info, err := file.Stat()
	if err != nil {
		return 0, fmt.Errorf("check size of file: %w", err)
	}
	return info.Size(), nil
}
