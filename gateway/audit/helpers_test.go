package audit

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// newSigner returns a signer with a new key.
func newSigner(t *testing.T) *decisionlog.Signer {
	t.Helper()
	key, err := decisionlog.GenerateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := decisionlog.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

// openWriter opens a Writer that checkpoints every `every` records and
// never by time, and closes it at the end of the test.
func openWriter(t *testing.T, opts decisionlog.Options) *decisionlog.Writer {
	t.Helper()
	if opts.CheckpointRecords == 0 {
		opts.CheckpointRecords = 5
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = -1
	}
	w, err := decisionlog.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// writeRecords writes n records one after the other, with IDs prefix-1 to
// prefix-n.
func writeRecords(t *testing.T, w *decisionlog.Writer, prefix string, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		rec := decisionlog.NewRecord("bordergate/pdu/decision")
		rec.DecisionID = fmt.Sprintf("%s-%d", prefix, i)
		rec.Allow = true
		rec.Action = decisionlog.ActionForward
		rec.Matrix = &decisionlog.Matrix{Direction: "inbound", Origin: "hs1.example.org", EventType: "m.room.message"}
		if err := w.Write(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// writeLog writes a closed log of n records at path, with a checkpoint
// after every 5 records and a final one.
func writeLog(t *testing.T, path string, signer *decisionlog.Signer, n int) {
	t.Helper()
	w := openWriter(t, decisionlog.Options{Path: path, Signer: signer})
	writeRecords(t, w, filepath.Base(path), n)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// readLines returns the lines of the file at path without newlines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// writeLines replaces the file at path with lines, each ended by a
// newline.
func writeLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// relink replaces the chain member of line with one that links to prev at
// seq, as a forger who rewrites the chain would, and returns the new line
// and its hash.
func relink(line string, seq int64, prev string) (string, string) {
	body := line[:strings.LastIndex(line, `,"chain":`)]
	prefix := fmt.Sprintf(`%s,"chain":{"seq":%d,"prev":"%s","hash":"`, body, seq, prev)
	sum := sha256.Sum256([]byte(prefix))
	hash := hex.EncodeToString(sum[:])
	return prefix + hash + `"}}`, hash
}

// rechain rewrites the chain members of lines from index `from` on, and
// re-signs their checkpoints with key under keyID when key is not nil.
func rechain(t *testing.T, lines []string, from int, key ed25519.PrivateKey, keyID string) {
	t.Helper()
	link, err := decisionlog.ParseLink([]byte(lines[from]))
	if err != nil {
		t.Fatal(err)
	}
	seq, prev := link.Seq, link.Prev.String()
	for i := from; i < len(lines); i++ {
		if key != nil && strings.Contains(lines[i], decisionlog.CheckpointPath) {
			lines[i] = resign(t, lines[i], seq-1, prev, key, keyID)
		}
		lines[i], prev = relink(lines[i], seq, prev)
		seq++
	}
}

// resign returns a checkpoint line that covers seq with hash, signed with
// key under keyID, without its chain member.
func resign(t *testing.T, line string, seq int64, hash string, key ed25519.PrivateKey, keyID string) string {
	t.Helper()
	var rec decisionlog.Record
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	cp := &decisionlog.Checkpoint{Seq: seq, Hash: hash, Time: rec.Checkpoint.Time, KeyID: keyID}
	cp.Signature = encodeSignature(ed25519.Sign(key, cp.Statement()))
	rec.Checkpoint = cp
	rec.Chain = nil
	data, err := json.Marshal(&rec)
	if err != nil {
		t.Fatal(err)
	}
	// relink cuts at the chain member, so give it one to cut.
	return string(data[:len(data)-1]) + `,"chain":{}}`
}

// verifyFiles runs Verify with the public key of signer.
func verifyFiles(t *testing.T, signer *decisionlog.Signer, paths ...string) *Report {
	t.Helper()
	report, err := Verify(paths, VerifyOptions{Keys: []ed25519.PublicKey{signer.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	return report
}

// reportText returns the text form of a report, for failure messages.
func reportText(t *testing.T, r *Report) string {
	t.Helper()
	var b strings.Builder
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// requireOK fails the test when the report has problems.
func requireOK(t *testing.T, r *Report) {
	t.Helper()
	if !r.OK() {
		t.Fatalf("verification failed:\n%s", reportText(t, r))
	}
}

// kinds returns the kinds of findings.
func kinds(findings []Finding) []string {
	var out []string
	for _, f := range findings {
		out = append(out, f.Kind)
	}
	return out
}

// hasWarning reports whether the report has a warning of kind.
func hasWarning(r *Report, kind string) bool {
	return slices.Contains(kinds(r.Warnings), kind)
}

// listFiles returns the files in dir, except those named in skip.
func listFiles(t *testing.T, dir string, skip ...string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		if !slices.Contains(skip, e.Name()) {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	return paths
}

// fixedClock is a time for records that tests compare.
var fixedClock = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
