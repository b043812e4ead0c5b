package decisionlog

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// crashChildEnv names the file that TestCrashChildProcess writes to. The
// variable is set only in the child process that the crash test starts.
const crashChildEnv = "DECISIONLOG_CRASH_CHILD_PATH"

// fileLines returns the lines of the file at path, without newlines, and
// whether the last line ended with a newline.
func fileLines(t *testing.T, path string) ([]string, bool) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	terminated := strings.HasSuffix(text, "\n")
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil, terminated
	}
	return strings.Split(text, "\n"), terminated
}

func TestOpenAfterPartialLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	partial := `{"decision_id":"cut`
	if err := os.WriteFile(path, []byte(validLine1+"\n"+partial), 0o600); err != nil {
		t.Fatal(err)
	}

	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("next")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	lines, _ := fileLines(t, path)
	if len(lines) != 3 {
		t.Fatalf("file has %d lines, want 3: %q", len(lines), lines)
	}
	if lines[1] != partial {
		t.Errorf("line 2 = %q, want the partial line %q unchanged", lines[1], partial)
	}
	rec, err := decodeRecord([]byte(lines[2]))
	if err != nil {
		t.Fatalf("line 3: %v", err)
	}
	if rec.DecisionID != "next" {
		t.Errorf("line 3 decision ID = %q, want next", rec.DecisionID)
	}
}

func TestWriterReopenAfterPartialLine(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	partial := `{"decision_id":"cut`
	if err := os.WriteFile(path, []byte(partial), 0o600); err != nil {
		t.Fatal(err)
	}

	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("next")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	lines, _ := fileLines(t, path)
	if len(lines) != 2 || lines[0] != partial {
		t.Fatalf("file lines = %q, want the partial line and one record", lines)
	}
	if _, err := decodeRecord([]byte(lines[1])); err != nil {
		t.Errorf("line 2: %v", err)
	}
}

// TestCrashChildProcess is the child of TestWriterProcessCrash. It writes
// records from several goroutines until it is killed and prints the ID of
// each record whose Write returned nil.
func TestCrashChildProcess(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("runs only as the child of TestWriterProcessCrash")
	}
	w, err := Open(Options{Path: path})
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}

	var stdout sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("crash-%d-%d", g, i)
				if err := w.Write(t.Context(), testRecord(id)); err != nil {
					fmt.Println("write failed:", err)
					os.Exit(2)
				}
				stdout.Lock()
				fmt.Printf("ack %s end\n", id)
				stdout.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestWriterProcessCrash kills a process that is writing records and checks
// that every record acknowledged before the kill is in the file, and that a
// new Writer appends cleanly after whatever the kill left behind.
func TestWriterProcessCrash(t *testing.T) {
	const acksBeforeKill = 300
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	child := exec.Command(os.Args[0], "-test.run=^TestCrashChildProcess$")
	child.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = child.Process.Kill()
			_ = child.Wait()
		}
	})

	// Kill the child after acksBeforeKill acknowledgements, then read the
	// ones it printed before it died.
	acked := make(map[string]bool)
	timeout := time.AfterFunc(30*time.Second, func() { _ = child.Process.Kill() })
	defer timeout.Stop()
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) != 3 || fields[0] != "ack" || fields[2] != "end" {
			t.Logf("child output: %s", lines.Text())
			continue
		}
		acked[fields[1]] = true
		if len(acked) == acksBeforeKill && !killed {
			if err := child.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = child.Wait()
	if !killed {
		t.Fatalf("child stopped after %d acknowledgements, want %d", len(acked), acksBeforeKill)
	}

	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("after-crash")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// A kill during a write can leave one partial line. Every other line
	// must be a record, and the last one is the record written after the
	// crash.
	fileLinesText, terminated := fileLines(t, path)
	if !terminated {
		t.Error("file does not end with a newline")
	}
	inFile := make(map[string]bool)
	malformed := 0
	for i, line := range fileLinesText {
		rec, err := decodeRecord([]byte(line))
		if err != nil {
			malformed++
			if i != len(fileLinesText)-2 {
				t.Errorf("line %d of %d is malformed: %v", i+1, len(fileLinesText), err)
			}
			continue
		}
		inFile[rec.DecisionID] = true
	}
	if malformed > 1 {
		t.Errorf("%d malformed lines, want at most 1", malformed)
	}
	if !inFile["after-crash"] {
		t.Error("record written after the crash is missing")
	}
	for id := range acked {
		if !inFile[id] {
			t.Errorf("acknowledged record %s is missing", id)
		}
	}
}
