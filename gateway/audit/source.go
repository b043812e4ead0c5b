// Package audit checks and searches decision log files: [Verify] checks
// the hash chain and the signed checkpoints that
// [github.com/bordergate/bordergate/gateway/decisionlog] writes, across
// rotated and compressed files, and [Query] filters the records.
package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// gzipMagic starts every gzip stream.
var gzipMagic = []byte{0x1f, 0x8b}

// source is one decision log file opened for reading, decompressed when it
// is gzip, whatever its name.
type source struct {
	file   *os.File
	reader io.Reader
	gzip   bool
}

// openSource opens the file at path and detects gzip by its first bytes.
func openSource(path string) (*source, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	info, err := file.Stat()
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		_ = file.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}

	buffered := bufio.NewReaderSize(file, 256<<10)
	magic, _ := buffered.Peek(len(gzipMagic))
	src := &source{file: file, reader: buffered}
	if bytes.Equal(magic, gzipMagic) {
		zr, err := gzip.NewReader(buffered)
		if err != nil {
			_ = file.Close()
			return nil, fmt.Errorf("%s: invalid gzip data: %w", path, err)
		}
		src.reader = zr
		src.gzip = true
	}
	return src, nil
}

// Close closes the file.
func (s *source) Close() error {
	return s.file.Close()
}

// lineReader returns the lines of a source one by one.
type lineReader struct {
	reader *bufio.Reader
	buf    []byte
	number int
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{reader: bufio.NewReaderSize(r, 256<<10)}
}

// errLineTooLong is the error of next for a line longer than
// decisionlog.MaxRecordBytes.
var errLineTooLong = fmt.Errorf("line is longer than the maximum record size of %d bytes", decisionlog.MaxRecordBytes)

// next returns the next line without its newline, whether it ended with a
// newline, and io.EOF after the last line. The line is valid until the
// next call. A line that is too long is skipped and reported as
// errLineTooLong, after which reading goes on.
func (r *lineReader) next() ([]byte, bool, error) {
	r.buf = r.buf[:0]
	tooLong := false
	for {
		chunk, err := r.reader.ReadSlice('\n')
		if !tooLong {
			r.buf = append(r.buf, chunk...)
			if len(r.buf) > decisionlog.MaxRecordBytes {
				tooLong = true
				r.buf = r.buf[:0]
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, false, err
		}
		if errors.Is(err, io.EOF) && len(r.buf) == 0 && !tooLong {
			return nil, false, io.EOF
		}
		r.number++
		if tooLong {
			return nil, true, errLineTooLong
		}
		terminated := err == nil
		line := r.buf
		if terminated {
			line = line[:len(line)-1]
		}
		return line, terminated, nil
	}
}

// firstLink returns the chain member of the first chained record of the
// file at path, and false when it has none.
func firstLink(path string) (decisionlog.Link, bool, error) {
	src, err := openSource(path)
	if err != nil {
		return decisionlog.Link{}, false, err
	}
	defer src.Close()

	lines := newLineReader(src.reader)
	for {
		line, _, err := lines.next()
		if errors.Is(err, io.EOF) {
			return decisionlog.Link{}, false, nil
		}
		if errors.Is(err, errLineTooLong) {
			continue
		}
		if err != nil {
			return decisionlog.Link{}, false, fmt.Errorf("read %s: %w", path, err)
		}
		if link, err := decisionlog.ParseLink(line); err == nil {
			return link, true, nil
		}
	}
}

// chainFile is a file with the sequence number that it starts with.
type chainFile struct {
	path     string
	firstSeq int64 // 0 when the file has no chained record
}

// orderByChain returns the files sorted by the sequence number of their
// first chained record, so that names and the order given do not matter.
// Files without a chained record come last, in the order given.
func orderByChain(paths []string) ([]chainFile, error) {
	files := make([]chainFile, 0, len(paths))
	for _, path := range paths {
		link, ok, err := firstLink(path)
		if err != nil {
			return nil, err
		}
		f := chainFile{path: path}
		if ok {
			f.firstSeq = link.Seq
		}
		files = append(files, f)
	}
	slices.SortStableFunc(files, func(a, b chainFile) int {
		switch {
		case a.firstSeq == b.firstSeq:
			return 0
		case a.firstSeq == 0:
			return 1
		case b.firstSeq == 0:
			return -1
		case a.firstSeq < b.firstSeq:
			return -1
		default:
			return 1
		}
	})
	return files, nil
}
