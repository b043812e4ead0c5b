package ship

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bordergate/bordergate/gateway/internal/durable"
)

// Names in the buffer directory.
const (
	segmentSuffix = ".jsonl"
	segmentDigits = 20
	cursorName    = "cursor"
	cursorTemp    = "cursor.tmp"
)

// Modes of the files and directories that the spool creates.
const (
	fileMode = 0o640
	dirMode  = 0o750
)

// position is a place in the buffer: a byte offset in a segment.
type position struct {
	seq    uint64
	offset int64
}

// before reports whether p comes before q.
func (p position) before(q position) bool {
	return p.seq < q.seq || p.seq == q.seq && p.offset < q.offset
}

// segment is one file of the buffer.
type segment struct {
	seq  uint64
	size int64
}

// spool is the on-disk buffer of records that wait to be shipped. Records
// are appended, one JSON line each, to segment files named by a sequence
// number, and the cursor file keeps the position of the first record that
// the collector has not accepted. Segments behind the cursor are deleted.
// When the buffer would exceed maxBytes, whole segments are dropped, the
// oldest first. A spool is safe for concurrent use.
type spool struct {
	dir          string
	maxBytes     int64
	segmentBytes int64
	sync         bool

	mu       sync.Mutex // guards the fields below
	segments []segment  // oldest first; the last one receives appends
	active   *os.File   // the last segment, open for appending
	cursor   position
	total    int64 // bytes in all segments
	// inflight is the batch that the last read returned, until it is
	// acknowledged or abandoned.
	inflight inflightBatch
}

// inflightBatch is a batch on its way to the collector. When its segment
// is dropped for space meanwhile, its records are counted as dropped only
// if the upload then fails, because a successful upload shipped them.
type inflightBatch struct {
	active  bool
	seq     uint64
	records int
	dropped bool
}

// openSpool opens or creates the buffer in dir. A crash during a write to
// the last segment, or damage to an earlier one, can leave a segment ending
// in a partial line. Such a segment is cut back to its last complete line,
// so that reading never stops at it. An unreadable or stale cursor restarts from the
// oldest segment, so records are shipped again rather than lost; notes
// describes what was repaired.
func openSpool(dir string, maxBytes, segmentBytes int64, syncWrites bool) (*spool, []string, error) {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, nil, fmt.Errorf("create buffer directory: %w", err)
	}
	s := &spool{dir: dir, maxBytes: maxBytes, segmentBytes: segmentBytes, sync: syncWrites}
	if err := s.listSegments(); err != nil {
		return nil, nil, err
	}
	var notes []string
	for i := range s.segments {
		note, err := s.repairTail(&s.segments[i])
		if err != nil {
			return nil, nil, err
		}
		if note != "" {
			notes = append(notes, note)
		}
	}
	if note := s.loadCursor(); note != "" {
		notes = append(notes, note)
	}
	if len(s.segments) == 0 {
		if err := s.addSegment(s.cursor.seq); err != nil {
			return nil, nil, err
		}
	} else if err := s.openActive(); err != nil {
		return nil, nil, err
	}
	return s, notes, nil
}

// listSegments reads the segment files of the directory.
func (s *spool) listSegments() error {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read buffer directory: %w", err)
	}
	for _, entry := range entries {
		seq, ok := parseSegmentName(entry.Name())
		if !ok || !entry.Type().IsRegular() {
			continue
		}
		info, err := entry.Info()
		if err != nil {
			return fmt.Errorf("read buffer directory: %w", err)
		}
		s.segments = append(s.segments, segment{seq: seq, size: info.Size()})
		s.total += info.Size()
	}
	slices.SortFunc(s.segments, func(a, b segment) int {
		switch {
		case a.seq < b.seq:
			return -1
		case a.seq > b.seq:
			return 1
		}
		return 0
	})
	return nil
}

// parseSegmentName returns the sequence number of a segment file name:
// exactly segmentDigits decimal digits and segmentSuffix.
func parseSegmentName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(digits) != segmentDigits {
		return 0, false
	}
	for _, c := range []byte(digits) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	seq, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return seq, true
}

func segmentName(seq uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, seq, segmentSuffix)
}

func (s *spool) path(seq uint64) string {
	return filepath.Join(s.dir, segmentName(seq))
}

// repairTail cuts segment g back to its last complete line. It reads the
// whole file only when its last byte is not a newline.
func (s *spool) repairTail(g *segment) (string, error) {
	if g.size == 0 || s.endsWithNewline(g.seq, g.size) {
		return "", nil
	}
	data, err := os.ReadFile(s.path(g.seq))
	if err != nil {
		return "", fmt.Errorf("read buffer segment: %w", err)
	}
	keep := int64(completeLinesLen(data))
	if keep == int64(len(data)) {
		return "", nil
	}
	if err := os.Truncate(s.path(g.seq), keep); err != nil {
		return "", fmt.Errorf("cut partial record from buffer segment: %w", err)
	}
	s.total -= g.size - keep
	note := fmt.Sprintf("cut a partial record of %d bytes from %s", g.size-keep, segmentName(g.seq))
	g.size = keep
	return note, nil
}

// endsWithNewline reports whether the last byte of segment seq, of size
// bytes, is a newline.
func (s *spool) endsWithNewline(seq uint64, size int64) bool {
	return s.atLineStart(position{seq: seq, offset: size})
}

// completeLinesLen returns the length of the complete lines at the start
// of data: up to and including its last newline.
func completeLinesLen(data []byte) int {
	return bytes.LastIndexByte(data, '\n') + 1
}

// loadCursor reads the cursor file and checks it against the segments.
func (s *spool) loadCursor() string {
	first := position{}
	if len(s.segments) > 0 {
		first = position{seq: s.segments[0].seq}
	}
	s.cursor = first
	data, err := os.ReadFile(filepath.Join(s.dir, cursorName))
	if errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	if err != nil {
		return fmt.Sprintf("cursor unreadable, shipping again from the oldest record: %v", err)
	}
	cursor, err := parseCursor(data)
	if err != nil {
		return fmt.Sprintf("cursor invalid, shipping again from the oldest record: %v", err)
	}
	if len(s.segments) == 0 || cursor.before(first) {
		// The segments before the cursor were shipped and deleted.
		if len(s.segments) == 0 {
			s.cursor = position{seq: cursor.seq}
		}
		return ""
	}
	i, found := s.find(cursor.seq)
	if !found || cursor.offset > s.segments[i].size || !s.atLineStart(cursor) {
		return fmt.Sprintf("cursor %d:%d does not match the buffer, shipping again from the oldest record", cursor.seq, cursor.offset)
	}
	s.cursor = cursor
	return ""
}

// parseCursor parses the cursor file: the segment number and the byte
// offset, in decimal, separated by a space and ended by a newline.
func parseCursor(data []byte) (position, error) {
	text, ok := strings.CutSuffix(string(data), "\n")
	if !ok {
		return position{}, errors.New("cursor does not end with a newline")
	}
	seqText, offsetText, ok := strings.Cut(text, " ")
	if !ok {
		return position{}, fmt.Errorf("cursor %q is not SEGMENT OFFSET", text)
	}
	seq, err := parseDecimal(seqText)
	if err != nil {
		return position{}, fmt.Errorf("cursor segment: %w", err)
	}
	offset, err := parseDecimal(offsetText)
	if err != nil || offset > 1<<62 {
		return position{}, fmt.Errorf("cursor offset %q is not a byte offset", offsetText)
	}
	return position{seq: seq, offset: int64(offset)}, nil
}

// parseDecimal parses digits without sign, spaces or leading zeros.
func parseDecimal(text string) (uint64, error) {
	if text == "" || len(text) > 1 && text[0] == '0' {
		return 0, fmt.Errorf("%q is not a decimal number without leading zeros", text)
	}
	for _, c := range []byte(text) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", text)
		}
	}
	return strconv.ParseUint(text, 10, 64)
}

func formatCursor(p position) []byte {
	return fmt.Appendf(nil, "%d %d\n", p.seq, p.offset)
}

// atLineStart reports whether p is the start of a segment or follows a
// newline.
func (s *spool) atLineStart(p position) bool {
	if p.offset == 0 {
		return true
	}
	f, err := os.Open(s.path(p.seq))
	if err != nil {
		return false
	}
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], p.offset-1)
	return err == nil && b[0] == '\n'
}

// find returns the index of the segment seq.
func (s *spool) find(seq uint64) (int, bool) {
	return slices.BinarySearchFunc(s.segments, seq, func(g segment, seq uint64) int {
		switch {
		case g.seq < seq:
			return -1
		case g.seq > seq:
			return 1
		}
		return 0
	})
}

// openActive opens the last segment for appending.
func (s *spool) openActive() error {
	last := s.segments[len(s.segments)-1]
	f, err := os.OpenFile(s.path(last.seq), os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("open buffer segment: %w", err)
	}
	s.active = f
	return nil
}

// addSegment creates segment seq and makes it the one appended to.
func (s *spool) addSegment(seq uint64) error {
	f, err := os.OpenFile(s.path(seq), os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("create buffer segment: %w", err)
	}
	if s.sync {
		if err := durable.SyncDir(s.dir); err != nil {
			_ = f.Close()
			return err
		}
	}
	if s.active != nil {
		_ = s.active.Close()
	}
	s.active = f
	s.segments = append(s.segments, segment{seq: seq})
	return nil
}

// unsent returns the number of bytes from the cursor to the end.
func (s *spool) unsent() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, g := range s.segments {
		switch {
		case g.seq > s.cursor.seq:
			n += g.size
		case g.seq == s.cursor.seq:
			n += g.size - s.cursor.offset
		}
	}
	return n
}

// appendLines appends complete JSON lines. It first drops the oldest
// segments as far as needed to stay within maxBytes, and returns how many
// unsent records it dropped. Lines longer than maxBytes on their own are
// dropped and counted too.
func (s *spool) appendLines(lines []byte) (dropped int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if int64(len(lines)) > s.maxBytes {
		return bytes.Count(lines, []byte{'\n'}), nil
	}
	last := &s.segments[len(s.segments)-1]
	if last.size > 0 && last.size+int64(len(lines)) > s.segmentBytes {
		if err := s.addSegment(last.seq + 1); err != nil {
			return 0, err
		}
	}
	for s.total+int64(len(lines)) > s.maxBytes {
		if len(s.segments) == 1 {
			if err := s.addSegment(s.segments[0].seq + 1); err != nil {
				return dropped, err
			}
		}
		n, err := s.dropOldest()
		dropped += n
		if err != nil {
			return dropped, err
		}
	}

	last = &s.segments[len(s.segments)-1]
	n, err := s.active.Write(lines)
	if err != nil {
		if n > 0 {
			if terr := s.active.Truncate(last.size); terr != nil {
				// The segment keeps a partial line, which the next open
				// cuts off.
				last.size += int64(n)
				s.total += int64(n)
			}
		}
		return dropped, fmt.Errorf("write buffer segment: %w", err)
	}
	last.size += int64(n)
	s.total += int64(n)
	if s.sync {
		if err := s.active.Sync(); err != nil {
			return dropped, fmt.Errorf("sync buffer segment: %w", err)
		}
	}
	return dropped, nil
}

// dropOldest deletes the oldest segment, which is not the active one, and
// returns the number of unsent records it held.
func (s *spool) dropOldest() (int, error) {
	oldest := s.segments[0]
	records := 0
	if oldest.seq >= s.cursor.seq {
		from := int64(0)
		if oldest.seq == s.cursor.seq {
			from = s.cursor.offset
		}
		data, err := os.ReadFile(s.path(oldest.seq))
		if err != nil {
			return 0, fmt.Errorf("read buffer segment to drop: %w", err)
		}
		records = bytes.Count(data[min(from, int64(len(data))):], []byte{'\n'})
		if s.inflight.active && s.inflight.seq == oldest.seq && !s.inflight.dropped {
			// A read starts at the cursor, so the batch is part of the
			// records counted.
			records -= s.inflight.records
			s.inflight.dropped = true
		}
	}
	if err := s.removeSegment(); err != nil {
		return 0, err
	}
	if s.cursor.seq <= oldest.seq {
		s.cursor = position{seq: s.segments[0].seq}
	}
	return records, nil
}

// removeSegment deletes the oldest segment file.
func (s *spool) removeSegment() error {
	oldest := s.segments[0]
	if err := os.Remove(s.path(oldest.seq)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove buffer segment: %w", err)
	}
	s.segments = s.segments[1:]
	s.total -= oldest.size
	return nil
}

// read returns the complete lines from the cursor on, at most maxBytes of
// them unless the first line alone is longer, and the position after them.
// It returns no lines when nothing is unsent.
func (s *spool) read(maxBytes int) ([]byte, position, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		i, found := s.find(s.cursor.seq)
		if !found {
			if len(s.segments) == 0 {
				return nil, s.cursor, nil
			}
			s.cursor = position{seq: s.segments[0].seq}
			continue
		}
		g := s.segments[i]
		if s.cursor.offset < g.size {
			return s.readSegment(g, maxBytes)
		}
		if i == len(s.segments)-1 {
			return nil, s.cursor, nil
		}
		s.cursor = position{seq: s.segments[i+1].seq}
	}
}

// readSegment reads lines of segment g from the cursor.
func (s *spool) readSegment(g segment, maxBytes int) ([]byte, position, error) {
	f, err := os.Open(s.path(g.seq))
	if err != nil {
		return nil, s.cursor, fmt.Errorf("open buffer segment: %w", err)
	}
	defer f.Close()

	want := min(int64(maxBytes), g.size-s.cursor.offset)
	buf := make([]byte, want)
	if _, err := f.ReadAt(buf, s.cursor.offset); err != nil && !errors.Is(err, io.EOF) {
		return nil, s.cursor, fmt.Errorf("read buffer segment: %w", err)
	}
	n := completeLinesLen(buf)
	if n == 0 {
		// The first line is longer than maxBytes: read on to its end.
		rest := io.NewSectionReader(f, s.cursor.offset, g.size-s.cursor.offset)
		buf, err = io.ReadAll(rest)
		if err != nil {
			return nil, s.cursor, fmt.Errorf("read buffer segment: %w", err)
		}
		n = bytes.IndexByte(buf, '\n') + 1
		if n == 0 {
			return nil, s.cursor, fmt.Errorf("buffer segment %s ends in a partial record", segmentName(g.seq))
		}
	}
	s.inflight = inflightBatch{active: true, seq: g.seq, records: bytes.Count(buf[:n], []byte{'\n'})}
	return buf[:n], position{seq: g.seq, offset: s.cursor.offset + int64(n)}, nil
}

// abandon ends the batch in flight after a failed upload, and returns the
// number of its records that were dropped for space meanwhile, and so are
// lost now.
func (s *spool) abandon() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	lost := 0
	if s.inflight.dropped {
		lost = s.inflight.records
	}
	s.inflight = inflightBatch{}
	return lost
}

// ack moves the cursor to end, which a read returned, once the collector
// has accepted the records before it, saves the cursor and deletes the
// segments that are wholly behind it. A cursor that records dropped for
// space have passed already stays where it is.
func (s *spool) ack(end position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inflight = inflightBatch{}
	if !s.cursor.before(end) {
		return nil
	}
	s.cursor = end
	for len(s.segments) > 1 && s.segments[0].seq < end.seq {
		if err := s.removeSegment(); err != nil {
			return err
		}
	}
	return s.saveCursor()
}

// saveCursor writes the cursor file by replacing it, so that a crash
// leaves the old or the new cursor.
func (s *spool) saveCursor() error {
	temp := filepath.Join(s.dir, cursorTemp)
	f, err := os.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return fmt.Errorf("save buffer cursor: %w", err)
	}
	_, err = f.Write(formatCursor(s.cursor))
	if err == nil && s.sync {
		err = f.Sync()
	}
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err == nil {
		err = os.Rename(temp, filepath.Join(s.dir, cursorName))
	}
	if err == nil && s.sync {
		err = durable.SyncDir(s.dir)
	}
	if err != nil {
		return fmt.Errorf("save buffer cursor: %w", err)
	}
	return nil
}

// close closes the segment appended to.
func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return nil
	}
	err := s.active.Close()
	s.active = nil
	return err
}
