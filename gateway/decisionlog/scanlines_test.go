package decisionlog

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// scannedLines is what scanLines reported: the decision IDs of the records
// by line, and the malformed lines as "line: error".
type scannedLines struct {
	records map[int]string
	bad     []string
}

func scanAllLines(t *testing.T, text string, maxLineBytes int) (scannedLines, error) {
	t.Helper()
	got := scannedLines{records: map[int]string{}}
	err := scanLines(strings.NewReader(text), maxLineBytes, func(line int, rec Record) error {
		got.records[line] = rec.DecisionID
		return nil
	}, func(lineErr *LineError) error {
		got.bad = append(got.bad, lineErr.Error())
		return nil
	})
	return got, err
}

func TestScanLinesGoesOnAfterMalformedLines(t *testing.T) {
	long := `{"decision_id":"` + strings.Repeat("x", 200) + `"}`
	tests := []struct {
		name    string
		text    string
		records map[int]string
		bad     []string
	}{
		{
			name:    "valid lines",
			text:    validLine1 + "\n" + validLine2 + "\n",
			records: map[int]string{1: "a", 2: "b"},
		},
		{
			name:    "invalid JSON between records",
			text:    validLine1 + "\n" + `{"decision_id":` + "\n" + validLine2 + "\n",
			records: map[int]string{1: "a", 3: "b"},
			bad:     []string{"line 2: invalid record: unexpected EOF"},
		},
		{
			name:    "empty line and text",
			text:    "\n" + "not json\n" + validLine2 + "\n",
			records: map[int]string{3: "b"},
			bad:     []string{"line 1: empty line, expected a JSON object", "line 2: line does not start with {, expected a JSON object"},
		},
		{
			name:    "long line skipped to its newline",
			text:    validLine1 + "\n" + long + "\n" + validLine2 + "\n",
			records: map[int]string{1: "a", 3: "b"},
			bad:     []string{"line 2: line is longer than the maximum of 150 bytes"},
		},
		{
			name:    "long last line without newline",
			text:    validLine1 + "\n" + long,
			records: map[int]string{1: "a"},
			bad:     []string{"line 2: line is longer than the maximum of 150 bytes"},
		},
		{
			name:    "incomplete last line",
			text:    validLine1 + "\n" + `{"decision_id":"c"}`,
			records: map[int]string{1: "a"},
			bad:     []string{"line 2: missing newline at end of file, the record is incomplete"},
		},
		{
			name:    "data after the object",
			text:    validLine1 + " {}\n" + validLine2 + "\n",
			records: map[int]string{2: "b"},
			bad:     []string{"line 1: unexpected data after the JSON object"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := scanAllLines(t, tt.text, 150)
			if err != nil {
				t.Fatalf("scanLines() error = %v", err)
			}
			if tt.records == nil {
				tt.records = map[int]string{}
			}
			if len(got.records) != len(tt.records) {
				t.Errorf("records = %v, want %v", got.records, tt.records)
			}
			for line, id := range tt.records {
				if got.records[line] != id {
					t.Errorf("record of line %d = %q, want %q", line, got.records[line], id)
				}
			}
			if !slices.Equal(got.bad, tt.bad) {
				t.Errorf("malformed lines = %q, want %q", got.bad, tt.bad)
			}
		})
	}
}

func TestScanLinesStopsOnCallbackErrors(t *testing.T) {
	stop := errors.New("stop")
	text := "junk\n" + validLine1 + "\n"
	err := ScanLines(strings.NewReader(text), func(int, Record) error { return nil },
		func(*LineError) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("ScanLines() with failing bad = %v, want %v", err, stop)
	}
	err = ScanLines(strings.NewReader(text), func(int, Record) error { return stop },
		func(*LineError) error { return nil })
	if !errors.Is(err, stop) {
		t.Errorf("ScanLines() with failing fn = %v, want %v", err, stop)
	}
}

func TestScanLinesReadError(t *testing.T) {
	failure := errors.New("disk read failed")
	reader := io.MultiReader(strings.NewReader(validLine1+"\n"), iotest.ErrReader(failure))
	calls := 0
	err := ScanLines(reader, func(int, Record) error { calls++; return nil }, func(*LineError) error { return nil })
	if !errors.Is(err, failure) || err.Error() != "line 2: disk read failed" {
		t.Errorf("ScanLines() error = %v, want line 2: disk read failed", err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times, want 1", calls)
	}
}

// FuzzScanLines checks that every line is reported once, as a record or as
// malformed, and that input which Scan reads whole gives the same records.
func FuzzScanLines(f *testing.F) {
	f.Add(validLine1 + "\n" + validLine2 + "\n")
	f.Add("junk\n\n" + validLine2)
	f.Add(`{"decision_id":"` + strings.Repeat("y", 100) + "\"}\n{}\n")
	f.Fuzz(func(t *testing.T, text string) {
		var lines []int
		var ids []string
		err := scanLines(strings.NewReader(text), 64, func(line int, rec Record) error {
			lines = append(lines, line)
			ids = append(ids, rec.DecisionID)
			return nil
		}, func(lineErr *LineError) error {
			lines = append(lines, lineErr.Line)
			return nil
		})
		if err != nil {
			t.Fatalf("scanLines() error = %v", err)
		}
		want := bytes.Count([]byte(text), []byte("\n"))
		if text != "" && !strings.HasSuffix(text, "\n") {
			want++
		}
		slices.Sort(lines)
		if len(lines) != want || (want > 0 && (lines[0] != 1 || lines[len(lines)-1] != want)) {
			t.Fatalf("reported lines %v, want 1 to %d once each", lines, want)
		}

		var strictIDs []string
		if scan(strings.NewReader(text), 64, func(_ int, rec Record) error {
			strictIDs = append(strictIDs, rec.DecisionID)
			return nil
		}) == nil && !slices.Equal(ids, strictIDs) {
			t.Errorf("ScanLines records %q, Scan records %q", ids, strictIDs)
		}
	})
}
