package audit

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

func encodeSignature(sig []byte) string {
	return base64.StdEncoding.EncodeToString(sig)
}

// The layout of the log that writeLog writes with 12 records: a
// checkpoint after every 5 records and a final one.
//
//	lines 1-5   records seq 1-5
//	line 6      checkpoint seq 6, covering seq 5
//	lines 7-11  records seq 7-11
//	line 12     checkpoint seq 12, covering seq 11
//	lines 13-14 records seq 13-14
//	line 15     final checkpoint seq 15, covering seq 14
const testRecords = 12

func TestVerifyIntactLog(t *testing.T) {
	signer := newSigner(t)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, path, signer, testRecords)

	report := verifyFiles(t, signer, path)
	requireOK(t, report)
	if len(report.Warnings) != 0 {
		t.Errorf("warnings = %v, want none", report.Warnings)
	}
	if report.Records != 15 || report.FirstSeq != 1 || report.LastSeq != 15 {
		t.Errorf("records %d, seq %d-%d; want 15 records, seq 1-15", report.Records, report.FirstSeq, report.LastSeq)
	}
	if report.Checkpoints != 3 {
		t.Errorf("%d valid checkpoints, want 3", report.Checkpoints)
	}
	if report.Uncovered != 0 || report.LastCheckpoint == nil || report.LastCheckpoint.Line != 15 {
		t.Errorf("uncovered %d, last checkpoint %+v; want 0 and line 15", report.Uncovered, report.LastCheckpoint)
	}
	if text := reportText(t, report); !strings.Contains(text, "OK: 15 records, seq 1-15, chain intact") {
		t.Errorf("report text lacks the OK line:\n%s", text)
	}
}

func TestVerifyNamesTampering(t *testing.T) {
	other := newSigner(t)
	otherKey, err := decisionlog.GenerateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(t *testing.T, lines []string, signer *decisionlog.Signer) []string
		want   Finding // Kind and Line; Message is matched as a substring
	}{
		{
			name: "record removed",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				return slices.Delete(lines, 2, 3)
			},
			want: Finding{Kind: KindRemoved, Line: 3, Seq: 4, Message: "1 records (seq 3-3) are missing"},
		},
		{
			name: "record altered",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				lines[2] = strings.Replace(lines[2], `"allow":true`, `"allow":false`, 1)
				return lines
			},
			want: Finding{Kind: KindAltered, Line: 3, Seq: 3, Message: "do not match its hash"},
		},
		{
			name: "records swapped",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				lines[2], lines[3] = lines[3], lines[2]
				return lines
			},
			want: Finding{Kind: KindReordered, Line: 3, Seq: 4, Message: "comes before seq 3, which is at"},
		},
		{
			name: "record duplicated",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				return slices.Insert(lines, 3, lines[2])
			},
			want: Finding{Kind: KindDuplicated, Line: 4, Seq: 3, Message: "copy of the one at"},
		},
		{
			name: "record replaced with its own hash",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				link, _ := decisionlog.ParseLink([]byte(lines[2]))
				altered := strings.Replace(lines[2], `"allow":true`, `"allow":false`, 1)
				lines[2], _ = relink(altered, link.Seq, link.Prev.String())
				return lines
			},
			want: Finding{Kind: KindAltered, Line: 3, Seq: 3, Message: "the next record (line 4) links to a different hash"},
		},
		{
			name: "record altered and chain rehashed",
			tamper: func(t *testing.T, lines []string, _ *decisionlog.Signer) []string {
				lines[2] = strings.Replace(lines[2], `"allow":true`, `"allow":false`, 1)
				rechain(t, lines, 2, nil, "")
				return lines
			},
			want: Finding{Kind: KindBadCheckpoint, Line: 6, Seq: 6, Message: "the checkpoint covers seq 5 with hash"},
		},
		{
			name: "checkpoints forged with another key",
			tamper: func(t *testing.T, lines []string, _ *decisionlog.Signer) []string {
				lines[2] = strings.Replace(lines[2], `"allow":true`, `"allow":false`, 1)
				rechain(t, lines, 2, otherKey, other.KeyID())
				return lines
			},
			want: Finding{Kind: KindBadCheckpoint, Line: 6, Seq: 6, Message: "not among the keys given"},
		},
		{
			name: "checkpoints forged under the real key ID",
			tamper: func(t *testing.T, lines []string, signer *decisionlog.Signer) []string {
				lines[2] = strings.Replace(lines[2], `"allow":true`, `"allow":false`, 1)
				rechain(t, lines, 2, otherKey, signer.KeyID())
				return lines
			},
			want: Finding{Kind: KindBadCheckpoint, Line: 6, Seq: 6, Message: "forged checkpoint: checkpoint signature does not verify"},
		},
		{
			name: "checkpoint removed",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				return slices.Delete(lines, 5, 6)
			},
			want: Finding{Kind: KindRemoved, Line: 6, Seq: 7, Message: "(seq 6-6) are missing"},
		},
		{
			name: "line replaced by bytes that are not JSON",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				lines[2] = `{"decision_id":"inserted"`
				return lines
			},
			want: Finding{Kind: KindMalformed, Line: 3, Message: "the chain breaks at it"},
		},
		{
			name: "line replaced by garbage",
			tamper: func(_ *testing.T, lines []string, _ *decisionlog.Signer) []string {
				lines[2] = `{"decision_id":"inserted"}`
				return lines
			},
			want: Finding{Kind: KindMalformed, Line: 3, Message: "complete JSON object without a valid chain member"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signer := newSigner(t)
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			writeLog(t, path, signer, testRecords)
			writeLines(t, path, tc.tamper(t, readLines(t, path), signer))

			report := verifyFiles(t, signer, path)
			if report.OK() {
				t.Fatalf("verification passed, want %s at line %d:\n%s", tc.want.Kind, tc.want.Line, reportText(t, report))
			}
			first := report.Problems[0]
			if first.Kind != tc.want.Kind || first.File != path || first.Line != tc.want.Line || first.Seq != tc.want.Seq {
				t.Errorf("first problem = %s\nwant kind %s at line %d (seq %d)", first, tc.want.Kind, tc.want.Line, tc.want.Seq)
			}
			if !strings.Contains(first.Message, tc.want.Message) {
				t.Errorf("first problem message = %q, want it to contain %q", first.Message, tc.want.Message)
			}
			if text := reportText(t, report); !strings.Contains(text, "FAILED:") {
				t.Errorf("report text lacks the FAILED line:\n%s", text)
			}
		})
	}
}

func TestVerifyTruncatedTailIsUncovered(t *testing.T) {
	signer := newSigner(t)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, path, signer, testRecords)
	// Cut off the final checkpoint and the last record: what remains
	// is a valid chain, and only the lack of coverage shows.
	lines := readLines(t, path)
	writeLines(t, path, lines[:13])

	report := verifyFiles(t, signer, path)
	requireOK(t, report)
	if report.Uncovered != 1 || report.CoveredSeq != 11 {
		t.Errorf("uncovered %d, covered seq %d; want 1 record after the checkpoint covering seq 11", report.Uncovered, report.CoveredSeq)
	}
	if text := reportText(t, report); !strings.Contains(text, "1 records after the last checkpoint") {
		t.Errorf("report text lacks the coverage note:\n%s", text)
	}
}

func TestVerifyTornTail(t *testing.T) {
	signer := newSigner(t)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, path, signer, testRecords)
	lines := readLines(t, path)
	torn := strings.Join(lines, "\n") + "\n" + lines[3][:40]
	if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}

	report := verifyFiles(t, signer, path)
	requireOK(t, report)
	if len(report.Warnings) != 1 || report.Warnings[0].Kind != KindTornTail || report.Warnings[0].Line != 16 {
		t.Errorf("warnings = %v, want one torn tail at line 16", report.Warnings)
	}
}

func TestVerifyTornRecordThenRestart(t *testing.T) {
	signer := newSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	writeLog(t, path, signer, 3)
	// A crash in the middle of a write leaves a partial line.
	file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString(`{"decision_id":"cut short","timest`); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, signer, 3)

	report := verifyFiles(t, signer, path)
	requireOK(t, report)
	if !hasWarning(report, KindTornRecord) {
		t.Errorf("warnings = %v, want a torn record", report.Warnings)
	}
	if report.LastSeq != 8 {
		t.Errorf("last seq = %d, want 8: the chain continues after the restart", report.LastSeq)
	}
}

func TestVerifyRequiresKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, path, newSigner(t), 2)
	if _, err := Verify([]string{path}, VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "no public key") {
		t.Errorf("Verify without keys = %v, want an error about the missing key", err)
	}
	report, err := Verify([]string{path}, VerifyOptions{SkipSignatures: true})
	if err != nil {
		t.Fatal(err)
	}
	requireOK(t, report)
	if text := reportText(t, report); !strings.Contains(text, "signatures were not checked") {
		t.Errorf("report text lacks the unchecked note:\n%s", text)
	}
}

func TestVerifyRotatedFiles(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "gzip"}[compress], func(t *testing.T) {
			signer := newSigner(t)
			dir := t.TempDir()
			w := openWriter(t, decisionlog.Options{
				Path:     filepath.Join(dir, "decisions.jsonl"),
				Signer:   signer,
				Rotation: decisionlog.Rotation{MaxBytes: 2000, Compress: compress},
			})
			writeRecords(t, w, "r", 30)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}

			files := listFiles(t, dir)
			if len(files) < 4 {
				t.Fatalf("%d files after rotation, want at least 4: %v", len(files), files)
			}
			rotated := 0
			for _, f := range files {
				if strings.HasSuffix(f, ".gz") != compress && filepath.Base(f) != "decisions.jsonl" {
					t.Errorf("rotated file %s, want compressed = %v", f, compress)
				}
				if filepath.Base(f) != "decisions.jsonl" {
					rotated++
				}
			}
			// The order given does not matter.
			slices.Reverse(files)
			report := verifyFiles(t, signer, files...)
			requireOK(t, report)
			if report.Records == 0 || report.Uncovered != 0 {
				t.Errorf("records %d, uncovered %d; want all covered", report.Records, report.Uncovered)
			}
			for i, f := range report.Files[:rotated] {
				if f.Checkpoints == 0 {
					t.Errorf("rotated file %d (%s) has no checkpoint", i, f.Path)
				}
				if i > 0 && f.FirstSeq != report.Files[i-1].LastSeq+1 {
					t.Errorf("file %s starts at seq %d, want %d", f.Path, f.FirstSeq, report.Files[i-1].LastSeq+1)
				}
			}
		})
	}
}

func TestVerifyFilesMissingOrSwapped(t *testing.T) {
	signer := newSigner(t)
	dir := t.TempDir()
	w := openWriter(t, decisionlog.Options{Path: filepath.Join(dir, "decisions.jsonl"), Signer: signer})
	otherDir := t.TempDir()
	other := openWriter(t, decisionlog.Options{Path: filepath.Join(otherDir, "decisions.jsonl"), Signer: signer})
	names := []string{"a.jsonl", "b.jsonl", "c.jsonl"}
	for _, name := range names {
		for _, lw := range []struct {
			w   *decisionlog.Writer
			dir string
		}{{w, dir}, {other, otherDir}} {
			writeRecords(t, lw.w, name, 4)
			if err := os.Rename(filepath.Join(lw.dir, "decisions.jsonl"), filepath.Join(lw.dir, name)); err != nil {
				t.Fatal(err)
			}
			if err := lw.w.Reopen(); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b, c := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl"), filepath.Join(dir, "c.jsonl")

	t.Run("names exchanged", func(t *testing.T) {
		swapped := t.TempDir()
		for from, to := range map[string]string{a: "c.jsonl", b: "a.jsonl", c: "b.jsonl"} {
			data, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(swapped, to), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		report := verifyFiles(t, signer, listFiles(t, swapped)...)
		requireOK(t, report)
		if got := filepath.Base(report.Files[0].Path); got != "c.jsonl" {
			t.Errorf("first file in chain order = %s, want c.jsonl (the old a.jsonl)", got)
		}
	})
	t.Run("middle file missing", func(t *testing.T) {
		report := verifyFiles(t, signer, a, c)
		if report.OK() {
			t.Fatal("verification passed without the middle file")
		}
		first := report.Problems[0]
		if first.Kind != KindRemoved || first.File != c || first.Line != 1 || !strings.Contains(first.Message, "a file is missing") {
			t.Errorf("first problem = %s, want removed records at %s line 1", first, c)
		}
	})
	t.Run("file of another chain", func(t *testing.T) {
		foreign := filepath.Join(otherDir, "b.jsonl")
		report := verifyFiles(t, signer, a, foreign, c)
		if report.OK() {
			t.Fatal("verification passed with a file of another chain")
		}
		first := report.Problems[0]
		if first.Kind != KindForked || first.File != foreign || first.Line != 1 {
			t.Errorf("first problem = %s, want a fork at %s line 1", first, foreign)
		}
	})
}

func TestVerifyExternalRotationEndsFilesWithCheckpoints(t *testing.T) {
	signer := newSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	w := openWriter(t, decisionlog.Options{Path: path, Signer: signer, CheckpointRecords: 1000})
	for i, name := range []string{"decisions.jsonl.1", "decisions.jsonl.2"} {
		writeRecords(t, w, name, 3+i)
		if err := os.Rename(path, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if err := w.Reopen(); err != nil {
			t.Fatal(err)
		}
	}
	writeRecords(t, w, "current", 2)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	report := verifyFiles(t, signer, listFiles(t, dir)...)
	requireOK(t, report)
	for _, name := range []string{"decisions.jsonl.1", "decisions.jsonl.2", "decisions.jsonl"} {
		lines := readLines(t, filepath.Join(dir, name))
		if last := lines[len(lines)-1]; !strings.Contains(last, `"path":"`+decisionlog.CheckpointPath+`"`) {
			t.Errorf("last line of %s is not a checkpoint: %s", name, last)
		}
	}
	if report.Records != 3+4+2+3 {
		t.Errorf("%d records, want 12 (9 decisions and 3 checkpoints)", report.Records)
	}
}

func TestVerifyRestartContinuesChain(t *testing.T) {
	signer := newSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	state := filepath.Join(t.TempDir(), "chain.json")
	opts := decisionlog.Options{Path: path, Signer: signer, StatePath: state}

	w := openWriter(t, opts)
	writeRecords(t, w, "first", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, opts)
	writeRecords(t, w, "second", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	report := verifyFiles(t, signer, path)
	requireOK(t, report)
	if report.FirstSeq != 1 || report.LastSeq != 8 {
		t.Errorf("seq %d-%d, want 1-8 in one chain", report.FirstSeq, report.LastSeq)
	}
}

func TestVerifyRestartAfterRotationWhileStopped(t *testing.T) {
	signer := newSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	rotated := filepath.Join(dir, "decisions.jsonl.1")
	state := filepath.Join(t.TempDir(), "chain.json")

	w := openWriter(t, decisionlog.Options{Path: path, Signer: signer, StatePath: state})
	writeRecords(t, w, "before", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	w = openWriter(t, decisionlog.Options{Path: path, Signer: signer, StatePath: state})
	writeRecords(t, w, "after", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	report := verifyFiles(t, signer, path, rotated)
	requireOK(t, report)
	if report.Files[1].FirstSeq != report.Files[0].LastSeq+1 {
		t.Errorf("new file starts at seq %d, want %d", report.Files[1].FirstSeq, report.Files[0].LastSeq+1)
	}
}

func TestVerifyRestartWithoutStateRestartsChain(t *testing.T) {
	signer := newSigner(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.jsonl")
	rotated := filepath.Join(dir, "decisions.jsonl.1")

	writeLog(t, path, signer, 3)
	if err := os.Rename(path, rotated); err != nil {
		t.Fatal(err)
	}
	writeLog(t, path, signer, 3)

	report := verifyFiles(t, signer, rotated, path)
	if report.OK() {
		t.Fatal("verification passed, want the restarted chain reported")
	}
	if first := report.Problems[0]; first.Kind != KindRestarted || first.File != path || first.Line != 1 {
		t.Errorf("first problem = %s, want a restarted chain at %s line 1", first, path)
	}
}

// A crash leaves a strict prefix of a record, never a whole JSON object,
// so a complete object without a chain member was put there by someone
// else, and audit query would print it as a record.
func TestVerifyInsertedObjectIsNotTorn(t *testing.T) {
	forged := `{"decision_id":"forged","timestamp":"2026-03-14T09:00:00Z","path":"bordergate/pdu/decision","matrix":{"origin":"hs1.example.org"},"allow":true,"action":"forward"}`
	cases := []struct {
		name   string
		tamper func(lines []string) string
		line   int
	}{
		{
			name: "object between two records",
			tamper: func(lines []string) string {
				return strings.Join(slices.Insert(lines, 3, forged), "\n") + "\n"
			},
			line: 4,
		},
		{
			name: "object with a broken chain member between two records",
			tamper: func(lines []string) string {
				return strings.Join(slices.Insert(lines, 3, lines[2]+` `), "\n") + "\n"
			},
			line: 4,
		},
		{
			name: "object as the last line without a newline",
			tamper: func(lines []string) string {
				return strings.Join(append(lines, forged), "\n")
			},
			line: 16,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			signer := newSigner(t)
			path := filepath.Join(t.TempDir(), "decisions.jsonl")
			writeLog(t, path, signer, testRecords)
			if err := os.WriteFile(path, []byte(tc.tamper(readLines(t, path))), 0o600); err != nil {
				t.Fatal(err)
			}

			report := verifyFiles(t, signer, path)
			if report.OK() {
				t.Fatalf("verification passed, want %s at line %d:\n%s", KindMalformed, tc.line, reportText(t, report))
			}
			first := report.Problems[0]
			if first.Kind != KindMalformed || first.Line != tc.line {
				t.Errorf("first problem = %s\nwant kind %s at line %d", first, KindMalformed, tc.line)
			}
			if !strings.Contains(first.Message, "complete JSON object") {
				t.Errorf("first problem message = %q, want it to say the line is a complete JSON object", first.Message)
			}
		})
	}
}

func TestVerifyAlteredLastRecordWithoutNewline(t *testing.T) {
	signer := newSigner(t)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	writeLog(t, path, signer, testRecords)
	lines := readLines(t, path)
	last := len(lines) - 1
	lines[last] = strings.Replace(lines[last], `"allow":true`, `"allow":false`, 1)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}

	report := verifyFiles(t, signer, path)
	if report.OK() {
		t.Fatalf("verification passed, want %s at line %d:\n%s", KindAltered, last+1, reportText(t, report))
	}
	if first := report.Problems[0]; first.Kind != KindAltered || first.Line != last+1 {
		t.Errorf("first problem = %s\nwant kind %s at line %d", first, KindAltered, last+1)
	}
}

func TestVerifyRecordAppendedWhileStopped(t *testing.T) {
	signer := newSigner(t)
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	opts := decisionlog.Options{Path: path, Signer: signer, StatePath: filepath.Join(t.TempDir(), "chain.json")}
	w := openWriter(t, opts)
	writeRecords(t, w, "before", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Someone without the key appends a record that continues the chain.
	lines := readLines(t, path)
	last, err := decisionlog.ParseLink([]byte(lines[len(lines)-1]))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := relink(strings.Replace(lines[0], `"before-1"`, `"forged"`, 1), last.Seq+1, last.Hash.String())
	writeLines(t, path, append(lines, forged))

	w = openWriter(t, opts)
	writeRecords(t, w, "after", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	report := verifyFiles(t, signer, path)
	if report.OK() {
		t.Fatalf("verification passed over a record added while the gateway was stopped:\n%s", reportText(t, report))
	}
	if first := report.Problems[0]; first.Kind != KindForked || first.Line != len(lines)+2 {
		t.Errorf("first problem = %s\nwant kind %s at line %d, the first record after the restart", first, KindForked, len(lines)+2)
	}
}
