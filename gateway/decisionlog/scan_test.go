package decisionlog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	validLine1 = `{"decision_id":"a","timestamp":"2026-01-02T03:04:05Z","path":"p","allow":true,"input":{"n":12345678901234567890}}`
	validLine2 = `{"decision_id":"b","timestamp":"2026-01-02T03:04:06Z","path":"p","allow":false}`
)

func TestScanReadsRecordsInOrder(t *testing.T) {
	var lines []int
	var ids []string
	err := Scan(strings.NewReader(validLine1+"\n"+validLine2+"\n"), func(line int, rec Record) error {
		lines = append(lines, line)
		ids = append(ids, rec.DecisionID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 2 || lines[0] != 1 || lines[1] != 2 {
		t.Errorf("line numbers = %v, want [1 2]", lines)
	}
	if len(ids) != 2 || ids[0] != "a" || ids[1] != "b" {
		t.Errorf("decision IDs = %v, want [a b]", ids)
	}
}

func TestScanKeepsNumbersExact(t *testing.T) {
	var input any
	err := Scan(strings.NewReader(validLine1+"\n"), func(_ int, rec Record) error {
		input = rec.Input
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	n := input.(map[string]any)["n"]
	if n != json.Number("12345678901234567890") {
		t.Errorf("input n = %#v, want json.Number 12345678901234567890", n)
	}
}

func TestScanEmptyInput(t *testing.T) {
	calls := 0
	if err := Scan(strings.NewReader(""), func(int, Record) error { calls++; return nil }); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Errorf("fn called %d times, want 0", calls)
	}
}

func TestScanMalformedLine(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		wantLine int
		wantErr  string
	}{
		{
			name:     "invalid JSON",
			text:     validLine1 + "\n" + `{"decision_id":` + "\n",
			wantLine: 2,
			wantErr:  "line 2: invalid record: unexpected EOF",
		},
		{
			name:     "empty line",
			text:     validLine1 + "\n" + validLine2 + "\n\n",
			wantLine: 3,
			wantErr:  "line 3: empty line, expected a JSON object",
		},
		{
			name:     "not an object",
			text:     "null\n",
			wantLine: 1,
			wantErr:  "line 1: line does not start with {, expected a JSON object",
		},
		{
			name:     "two objects on one line",
			text:     validLine1 + "\n" + validLine2 + validLine2 + "\n",
			wantLine: 2,
			wantErr:  "line 2: unexpected data after the JSON object",
		},
		{
			name:     "wrong field type",
			text:     `{"decision_id":1}` + "\n",
			wantLine: 1,
			wantErr:  "line 1: invalid record: json: cannot unmarshal number into Go struct field Record.decision_id of type string",
		},
		{
			name:     "missing final newline",
			text:     validLine1 + "\n" + validLine2,
			wantLine: 2,
			wantErr:  "line 2: missing newline at end of file, the record is incomplete",
		},
		{
			name:     "line too long",
			text:     validLine1 + "\n" + `{"decision_id":"` + strings.Repeat("x", 300) + `"}` + "\n",
			wantLine: 2,
			wantErr:  "line 2: line is longer than the maximum of 256 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := scan(strings.NewReader(tt.text), 256, func(int, Record) error { calls++; return nil })
			var lineErr *LineError
			if !errors.As(err, &lineErr) {
				t.Fatalf("Scan error = %v, want a *LineError", err)
			}
			if lineErr.Line != tt.wantLine {
				t.Errorf("error line = %d, want %d", lineErr.Line, tt.wantLine)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q, want %q", err, tt.wantErr)
			}
			if calls != tt.wantLine-1 {
				t.Errorf("fn called %d times, want %d", calls, tt.wantLine-1)
			}
		})
	}
}

func TestScanIncompleteLineSentinel(t *testing.T) {
	err := Scan(strings.NewReader(validLine1), func(int, Record) error { return nil })
	if !errors.Is(err, ErrIncompleteLine) {
		t.Errorf("Scan error = %v, want ErrIncompleteLine", err)
	}
}

func TestScanReturnsCallbackError(t *testing.T) {
	stop := errors.New("stop")
	calls := 0
	err := Scan(strings.NewReader(validLine1+"\n"+validLine2+"\n"), func(int, Record) error {
		calls++
		return stop
	})
	if err != stop {
		t.Errorf("Scan error = %v, want the callback's error unchanged", err)
	}
	if calls != 1 {
		t.Errorf("fn called %d times, want 1", calls)
	}
}

func TestScanLongLineWithinLimit(t *testing.T) {
	// Longer than the reader's 64 KiB buffer, so the line is read in parts.
	padding := strings.Repeat("y", 200<<10)
	text := `{"decision_id":"long","path":"p","allow":true,"input":{"padding":"` + padding + `"}}` + "\n"
	var got Record
	err := Scan(strings.NewReader(text), func(_ int, rec Record) error {
		got = rec
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got.Input.(map[string]any)["padding"] != padding {
		t.Error("padding of the long line was not decoded intact")
	}
}

func TestReadFileNamesPathAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	if err := os.WriteFile(path, []byte(validLine1+"\nnot json\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	_, err := ReadFile(path)
	want := "read decision log " + path + ": line 2: line does not start with {, expected a JSON object"
	if err == nil || err.Error() != want {
		t.Errorf("ReadFile error = %v, want %q", err, want)
	}
}

func TestReadFileMissing(t *testing.T) {
	_, err := ReadFile(filepath.Join(t.TempDir(), "missing.jsonl"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile error = %v, want os.ErrNotExist", err)
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte(validLine1 + "\n" + validLine2 + "\n"))
	f.Add([]byte("{}\n{\n"))
	f.Add([]byte("\n"))
	f.Add([]byte(`{"timestamp":"not a time"}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		previous := 0
		err := scan(strings.NewReader(string(data)), 4096, func(line int, rec Record) error {
			if line != previous+1 {
				t.Fatalf("line %d after line %d", line, previous)
			}
			previous = line
			if _, err := json.Marshal(rec); err != nil {
				t.Fatalf("line %d: decoded record does not encode: %v", line, err)
			}
			return nil
		})
		var lineErr *LineError
		if err != nil && !errors.As(err, &lineErr) {
			t.Fatalf("Scan error %v is not a *LineError", err)
		}
		if lineErr != nil && lineErr.Line != previous+1 {
			t.Fatalf("error on line %d after %d good lines", lineErr.Line, previous)
		}
	})
}
