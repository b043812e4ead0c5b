package ship

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCursor(t *testing.T) {
	tests := []struct {
		text    string
		want    position
		message string
	}{
		{text: "0 0\n", want: position{}},
		{text: "12 4096\n", want: position{seq: 12, offset: 4096}},
		{text: "18446744073709551615 1\n", want: position{seq: 1<<64 - 1, offset: 1}},
		{text: "12 4096", message: "cursor does not end with a newline"},
		{text: "", message: "cursor does not end with a newline"},
		{text: "12\n", message: `cursor "12" is not SEGMENT OFFSET`},
		{text: "12  4\n", message: `cursor offset " 4" is not a byte offset`},
		{text: "012 4\n", message: `cursor segment: "012" is not a decimal number without leading zeros`},
		{text: "-1 4\n", message: `cursor segment: "-1" is not a decimal number`},
		{text: "1 +4\n", message: `cursor offset "+4" is not a byte offset`},
		{text: "18446744073709551616 0\n", message: `cursor segment: strconv.ParseUint: parsing "18446744073709551616": value out of range`},
		{text: "1 9223372036854775807\n", message: `cursor offset "9223372036854775807" is not a byte offset`},
		{text: "1 2\n\n", message: `cursor offset "2\n" is not a byte offset`},
	}
	for _, tt := range tests {
		got, err := parseCursor([]byte(tt.text))
		if tt.message != "" {
			if err == nil || err.Error() != tt.message {
				t.Errorf("parseCursor(%q) error = %v, want %q", tt.text, err, tt.message)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseCursor(%q) = %+v, %v; want %+v", tt.text, got, err, tt.want)
		}
	}
}

// FuzzParseCursor checks that every cursor that parses formats back to the
// same text.
func FuzzParseCursor(f *testing.F) {
	for _, seed := range []string{"0 0\n", "12 4096\n", "012 1\n", "1 2", " 1 2\n", "1 -2\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseCursor(data)
		if err != nil {
			return
		}
		if formatted := formatCursor(p); !bytes.Equal(formatted, data) {
			t.Errorf("parseCursor(%q) = %+v, which formats as %q", data, p, formatted)
		}
	})
}

func TestParseSegmentName(t *testing.T) {
	tests := []struct {
		name string
		seq  uint64
		ok   bool
	}{
		{segmentName(0), 0, true},
		{segmentName(42), 42, true},
		{"00000000000000000042.jsonl.tmp", 0, false},
		{"0000000000000000042.jsonl", 0, false},
		{"0000000000000000004a.jsonl", 0, false},
		{"99999999999999999999.jsonl", 0, false},
		{"cursor", 0, false},
	}
	for _, tt := range tests {
		seq, ok := parseSegmentName(tt.name)
		if seq != tt.seq || ok != tt.ok {
			t.Errorf("parseSegmentName(%q) = %d, %t; want %d, %t", tt.name, seq, ok, tt.seq, tt.ok)
		}
	}
}

// readAll reads and acknowledges everything unsent in s.
func readAll(t *testing.T, s *spool, batch int) []byte {
	t.Helper()
	var out []byte
	for {
		lines, end, err := s.read(batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(lines) == 0 {
			return out
		}
		out = append(out, lines...)
		if err := s.ack(end); err != nil {
			t.Fatal(err)
		}
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentSuffix) {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestSpoolSegmentsRotateAndGo(t *testing.T) {
	dir := t.TempDir()
	s, notes, err := openSpool(dir, 1<<20, 1000, true)
	if err != nil || len(notes) > 0 {
		t.Fatalf("openSpool = %v, notes %q", err, notes)
	}
	lines := joinLines(records("seg", 10, 300))
	for line := range bytes.Lines(lines) {
		if dropped, err := s.appendLines(line); err != nil || dropped != 0 {
			t.Fatalf("appendLines = %d, %v", dropped, err)
		}
	}
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Errorf("%d segment files for 3000 bytes with 1000-byte segments, want at least 3", n)
	}
	if got := readAll(t, s, 700); !bytes.Equal(got, lines) {
		t.Errorf("read back %q, want %q", got, lines)
	}
	if files := segmentFiles(t, dir); len(files) != 1 {
		t.Errorf("segment files after everything was acknowledged = %q, want only the one appended to", files)
	}
	if s.unsent() != 0 {
		t.Errorf("unsent = %d, want 0", s.unsent())
	}
}

func TestSpoolReopenKeepsCursor(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openSpool(dir, 1<<20, 1000, true)
	if err != nil {
		t.Fatal(err)
	}
	all := records("reopen", 6, 200)
	if _, err := s.appendLines(joinLines(all)); err != nil {
		t.Fatal(err)
	}
	lines, end, err := s.read(450)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lines, joinLines(all[:2])) {
		t.Fatalf("first read = %q, want the first two records", lines)
	}
	if err := s.ack(end); err != nil {
		t.Fatal(err)
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	s, notes, err := openSpool(dir, 1<<20, 1000, true)
	if err != nil || len(notes) > 0 {
		t.Fatalf("openSpool = %v, notes %q", err, notes)
	}
	if got := readAll(t, s, 1<<20); !bytes.Equal(got, joinLines(all[2:])) {
		t.Errorf("after reopening read %q, want the four unacknowledged records", got)
	}
}

func TestSpoolRepairsPartialRecord(t *testing.T) {
	dir := t.TempDir()
	complete := joinLines(records("crash", 2, 100))
	if err := os.WriteFile(filepath.Join(dir, segmentName(7)), append(slices.Clone(complete), `{"decision_id":"cut`...), 0o600); err != nil {
		t.Fatal(err)
	}
	s, notes, err := openSpool(dir, 1<<20, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := "cut a partial record of 19 bytes from " + segmentName(7); !slices.Equal(notes, []string{want}) {
		t.Errorf("notes = %q, want [%q]", notes, want)
	}
	if got := readAll(t, s, 1<<20); !bytes.Equal(got, complete) {
		t.Errorf("read %q, want the complete records only", got)
	}
	if _, err := s.appendLines([]byte("{\"decision_id\":\"next\"}\n")); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, 1<<20); string(got) != "{\"decision_id\":\"next\"}\n" {
		t.Errorf("read after the repair = %q, want the next record on a line of its own", got)
	}
}

func TestSpoolInvalidCursor(t *testing.T) {
	tests := []struct {
		name   string
		cursor string
		note   string
	}{
		{"garbage", "not a cursor", "cursor invalid, shipping again from the oldest record: cursor does not end with a newline"},
		{"past the end", "3 100000\n", "cursor 3:100000 does not match the buffer, shipping again from the oldest record"},
		{"inside a record", "3 5\n", "cursor 3:5 does not match the buffer, shipping again from the oldest record"},
		{"missing segment after the oldest", "9 0\n", "cursor 9:0 does not match the buffer, shipping again from the oldest record"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			lines := joinLines(records("cursor", 3, 100))
			if err := os.WriteFile(filepath.Join(dir, segmentName(3)), lines, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, cursorName), []byte(tt.cursor), 0o600); err != nil {
				t.Fatal(err)
			}
			s, notes, err := openSpool(dir, 1<<20, 1<<20, false)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(notes, []string{tt.note}) {
				t.Errorf("notes = %q, want [%q]", notes, tt.note)
			}
			if got := readAll(t, s, 1<<20); !bytes.Equal(got, lines) {
				t.Errorf("read %q, want every record again", got)
			}
		})
	}
}

func TestSpoolCursorBeforeOldestSegment(t *testing.T) {
	dir := t.TempDir()
	lines := joinLines(records("old", 2, 100))
	if err := os.WriteFile(filepath.Join(dir, segmentName(5)), lines, 0o600); err != nil {
		t.Fatal(err)
	}
	// Segment 2 was shipped and removed, and the cursor still names it.
	if err := os.WriteFile(filepath.Join(dir, cursorName), []byte("2 900\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, notes, err := openSpool(dir, 1<<20, 1<<20, false)
	if err != nil || len(notes) > 0 {
		t.Fatalf("openSpool = %v, notes %q", err, notes)
	}
	if got := readAll(t, s, 1<<20); !bytes.Equal(got, lines) {
		t.Errorf("read %q, want the records of segment 5", got)
	}
}

func TestSpoolDropsOldestSegments(t *testing.T) {
	dir := t.TempDir()
	s, _, err := openSpool(dir, 4000, 1000, false)
	if err != nil {
		t.Fatal(err)
	}
	all := records("drop", 20, 500)
	total := 0
	for _, line := range all {
		dropped, err := s.appendLines(line)
		if err != nil {
			t.Fatal(err)
		}
		total += dropped
	}
	if s.unsent() > 4000 {
		t.Errorf("unsent = %d, want at most the 4000-byte limit", s.unsent())
	}
	got := readAll(t, s, 1<<20)
	if kept := bytes.Count(got, []byte{'\n'}); kept+total != len(all) {
		t.Errorf("kept %d and dropped %d records of %d", kept, total, len(all))
	}
	if !bytes.HasSuffix(joinLines(all), got) {
		t.Errorf("kept records %q are not the newest", got)
	}

	big := bytes.Repeat([]byte("x"), 5000)
	if dropped, err := s.appendLines(append(big, '\n')); err != nil || dropped != 1 {
		t.Errorf("appendLines(a record larger than the buffer) = %d, %v; want it dropped and counted", dropped, err)
	}
}

func TestSpoolReadLongRecord(t *testing.T) {
	s, _, err := openSpool(t.TempDir(), 1<<20, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	long := append(bytes.Repeat([]byte("y"), 3000), '\n')
	short := []byte("{}\n")
	if _, err := s.appendLines(slices.Concat(long, short)); err != nil {
		t.Fatal(err)
	}
	lines, end, err := s.read(100)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(lines, long) {
		t.Errorf("read(100) returned %d bytes, want the 3001-byte record alone", len(lines))
	}
	if err := s.ack(end); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, 100); !bytes.Equal(got, short) {
		t.Errorf("next read = %q, want %q", got, short)
	}
}

// A segment other than the last that ends in a partial record, from a
// damaged disk or a copied buffer, must not stop shipping at that record:
// its partial record is cut at open, as the last segment's is.
func TestSpoolRepairsPartialRecordInEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	first := joinLines(records("seven", 2, 100))
	second := joinLines(records("eight", 2, 100))
	if err := os.WriteFile(filepath.Join(dir, segmentName(7)), append(slices.Clone(first), `{"decision_id":"torn`...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(8)), second, 0o600); err != nil {
		t.Fatal(err)
	}
	s, notes, err := openSpool(dir, 1<<20, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if want := "cut a partial record of 20 bytes from " + segmentName(7); !slices.Equal(notes, []string{want}) {
		t.Errorf("notes = %q, want [%q]", notes, want)
	}
	var got []byte
	for range 4 {
		lines, end, err := s.read(1 << 20)
		if err != nil {
			t.Fatalf("read after %q: %v", got, err)
		}
		if len(lines) == 0 {
			break
		}
		got = append(got, lines...)
		if err := s.ack(end); err != nil {
			t.Fatal(err)
		}
	}
	if want := append(slices.Clone(first), second...); !bytes.Equal(got, want) {
		t.Errorf("read %q, want the complete records of both segments", got)
	}
}
