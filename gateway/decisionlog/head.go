package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxSkippedLines bounds the malformed lines that lastLink steps over at
// the end of a file. Each failed write leaves at most one, so more means
// the file is not a decision log.
const maxSkippedLines = 64

// scanBlockSize is the size of the blocks that lastLink reads backwards.
const scanBlockSize = 64 << 10

// fileHead is what lastLink found at the end of a file.
type fileHead struct {
	link     Link
	chained  bool // a chained record was found
	verified bool // its hash matches its bytes
	legacy   bool // the last record is a valid record without a chain member
}

// lastLink returns the chain member of the last chained record of the
// file of the given size. It skips a torn last line and malformed lines
// before it, and stops at a valid record without a chain member, which is
// the end of a file written before the chain existed.
func lastLink(r io.ReaderAt, size int64, maxLine int) (fileHead, error) {
	end, err := lastNewline(r, size)
	if err != nil {
		return fileHead{}, err
	}
	end++ // just after the newline, or 0 when there is none

	for skipped := 0; end > 0; skipped++ {
		if skipped > maxSkippedLines {
			return fileHead{}, fmt.Errorf("no chained record in the last %d lines", maxSkippedLines)
		}
		start, err := lastNewline(r, end-1)
		if err != nil {
			return fileHead{}, err
		}
		start++
		lineLen := end - 1 - start
		end = start
		if lineLen > int64(maxLine) {
			continue
		}

		line := make([]byte, lineLen)
		if _, err := r.ReadAt(line, start); err != nil {
			return fileHead{}, fmt.Errorf("read last record: %w", err)
		}
		link, err := ParseLink(line)
		if err == nil {
			return fileHead{link: link, chained: true, verified: link.Verify(line)}, nil
		}
		if _, decodeErr := decodeRecord(line); decodeErr == nil {
			return fileHead{legacy: true}, nil
		}
	}
	return fileHead{}, nil
}

// lastNewline returns the offset of the last newline before offset end, or
// -1 when there is none.
func lastNewline(r io.ReaderAt, end int64) (int64, error) {
	block := make([]byte, scanBlockSize)
	for end > 0 {
		start := max(end-scanBlockSize, 0)
		chunk := block[:end-start]
		if _, err := r.ReadAt(chunk, start); err != nil {
			return 0, fmt.Errorf("read end of file: %w", err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i), nil
		}
		end = start
	}
	return -1, nil
}

// chainState is the content of the state file.
type chainState struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// Stopped is set when the Writer that saved the head stopped cleanly,
	// so that the head is the last record it wrote.
	Stopped bool `json:"stopped,omitempty"`
}

// stateFile keeps the chain head in a small file outside the log
// directory, so that the chain continues when the log file was rotated
// away while the gateway was stopped. The commit goroutine overwrites it in
// place after each batch without fsync, and syncs it at checkpoints,
// rotations and Close. The content only grows, because seq only grows, so
// an overwrite never leaves stale bytes behind.
type stateFile struct {
	path string
	file *os.File
	buf  []byte
}

// openState opens or creates the state file at path and returns it with
// its content, which is empty for a new file.
func openState(path string) (*stateFile, []byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return nil, nil, fmt.Errorf("create state directory: %w", err)
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open chain state: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(file, 4096))
	if err != nil {
		_ = file.Close()
		return nil, nil, fmt.Errorf("read chain state %s: %w", path, err)
	}
	return &stateFile{path: path, file: file}, data, nil
}

// parseState decodes the content of a state file, and reports whether the
// Writer that saved it stopped cleanly.
func parseState(data []byte) (head, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var st chainState
	if err := decodeOnly(dec, &st); err != nil {
		return head{}, false, fmt.Errorf("invalid content: %w", err)
	}
	if st.Seq < 1 {
		return head{}, false, fmt.Errorf("invalid seq %d, want at least 1", st.Seq)
	}
	hash, err := ParseHash(st.Hash)
	if err != nil {
		return head{}, false, err
	}
	return head{seq: st.Seq, hash: hash}, st.Stopped, nil
}

// save overwrites the state with h, without syncing.
func (s *stateFile) save(h head) error {
	return s.write(h, false)
}

// saveStopped overwrites the state with h and the mark of a clean stop,
// without syncing. The mark makes the content longer than that of save
// with the same head, so no stale bytes remain either.
func (s *stateFile) saveStopped(h head) error {
	return s.write(h, true)
}

func (s *stateFile) write(h head, stopped bool) error {
	s.buf = append(s.buf[:0], `{"seq":`...)
	s.buf = fmt.Appendf(s.buf, "%d", h.seq)
	s.buf = append(s.buf, `,"hash":"`...)
	s.buf = append(s.buf, h.hash.String()...)
	s.buf = append(s.buf, '"')
	if stopped {
		s.buf = append(s.buf, `,"stopped":true`...)
	}
	s.buf = append(s.buf, "}\n"...)
	if _, err := s.file.WriteAt(s.buf, 0); err != nil {
		return fmt.Errorf("write chain state %s: %w", s.path, err)
	}
	return nil
}

// replace writes h as the whole content and syncs the file.
func (s *stateFile) replace(h head) error {
	if err := s.file.Truncate(0); err != nil {
		return fmt.Errorf("truncate chain state %s: %w", s.path, err)
	}
	if err := s.save(h); err != nil {
		return err
	}
	return s.sync()
}

// sync flushes the state to stable storage.
func (s *stateFile) sync() error {
	if err := s.file.Sync(); err != nil {
		return fmt.Errorf("sync chain state %s: %w", s.path, err)
	}
	return nil
}

// close closes the file.
func (s *stateFile) close() error {
	return s.file.Close()
}
