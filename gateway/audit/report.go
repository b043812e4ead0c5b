package audit

import (
	"fmt"
	"io"
	"strings"
)

// Kinds of [Finding]. The first group is evidence that records were
// removed, altered, reordered or forged, and fails verification. The
// second group describes a log that is intact.
const (
	// KindAltered is a record whose bytes do not match its hash, or that
	// was replaced by a record with another hash.
	KindAltered = "altered"
	// KindRemoved is a gap in the sequence numbers.
	KindRemoved = "removed"
	// KindReordered is a record found after records that follow it.
	KindReordered = "reordered"
	// KindDuplicated is a record that appears twice.
	KindDuplicated = "duplicated"
	// KindForked is a sequence number with two different records, or a
	// file whose records link to another chain.
	KindForked = "forked"
	// KindRestarted is a new chain that begins after records of an older
	// one: the writer lost its chain head.
	KindRestarted = "restarted"
	// KindBadCheckpoint is a checkpoint whose signature does not verify,
	// that names an unknown key, or that does not match the chain.
	KindBadCheckpoint = "bad_checkpoint"
	// KindMalformed is a line that is a complete JSON object without a
	// valid chain member, or another line that is not a chained record,
	// where the chain does not continue across it.
	KindMalformed = "malformed"
	// KindUnreadable is a file that could not be read to its end, such as
	// a truncated gzip file.
	KindUnreadable = "unreadable"

	// KindTornTail is a last line without a newline that is not a whole
	// JSON object: a record that a crash cut short.
	KindTornTail = "torn_tail"
	// KindTornRecord is an incomplete line in the middle of a file, left
	// by a failed write, with the chain intact around it. A complete JSON
	// object is never one.
	KindTornRecord = "torn_record"
	// KindChainStart is a chain that starts after seq 1 in the files
	// given: older files were not given, or were removed.
	KindChainStart = "chain_start"
	// KindEmpty is a file without a chained record.
	KindEmpty = "empty"
)

// maxFindings bounds the findings of each severity that a report keeps.
const maxFindings = 100

// Finding is one problem or warning, located by file and line.
type Finding struct {
	// Kind is one of the Kind constants.
	Kind string
	// File is the path of the file, as given.
	File string
	// Line is the 1-based line number, or 0 for the whole file.
	Line int
	// EndLine is the last line of a run of findings of one kind on
	// consecutive lines, or 0 for a single line.
	EndLine int
	// Seq is the sequence number of the record concerned, or 0.
	Seq int64
	// Message is what is wrong, in a sentence.
	Message string
}

// String returns the finding as "FILE line N (seq S): KIND: MESSAGE".
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.File)
	switch {
	case f.EndLine > f.Line:
		fmt.Fprintf(&b, " lines %d-%d", f.Line, f.EndLine)
	case f.Line > 0:
		fmt.Fprintf(&b, " line %d", f.Line)
	}
	if f.Seq > 0 {
		fmt.Fprintf(&b, " (seq %d)", f.Seq)
	}
	fmt.Fprintf(&b, ": %s: %s", f.Kind, f.Message)
	return b.String()
}

// FileSummary describes one verified file.
type FileSummary struct {
	// Path is the path as given.
	Path string
	// Lines is the number of lines.
	Lines int
	// FirstSeq and LastSeq are the sequence numbers of the first and last
	// chained records, 0 when there are none.
	FirstSeq, LastSeq int64
	// Checkpoints is the number of checkpoint records.
	Checkpoints int
}

// Position is a record's place in the files.
type Position struct {
	// File is the path as given.
	File string
	// Line is the 1-based line number.
	Line int
}

// Report is the result of [Verify].
type Report struct {
	// Files lists the files in chain order.
	Files []FileSummary
	// Records is the number of chained records, checkpoints included.
	Records int64
	// FirstSeq and LastSeq are the first and last sequence numbers seen.
	FirstSeq, LastSeq int64
	// Checkpoints is the number of checkpoints with a valid signature
	// that match the chain.
	Checkpoints int
	// SignaturesChecked is false when verification ran without keys.
	SignaturesChecked bool
	// LastCheckpoint is the position of the last valid checkpoint, and
	// CoveredSeq the sequence number that it covers.
	LastCheckpoint *Position
	CoveredSeq     int64
	// Uncovered is the number of records after the last valid checkpoint,
	// which no signature covers.
	Uncovered int64
	// Problems are evidence of removed, altered, reordered or forged
	// records. Verification fails when there is any.
	Problems []Finding
	// Warnings describe an intact log: torn lines, where the chain starts.
	Warnings []Finding
	// Omitted counts the findings left out beyond maxFindings.
	Omitted int
}

// OK reports whether verification found no problem.
func (r *Report) OK() bool {
	return len(r.Problems) == 0
}

// add appends f to list, merging it into the previous finding when both
// are of one kind on consecutive lines of one file.
func (r *Report) add(list *[]Finding, f Finding) {
	if n := len(*list); n > 0 {
		last := &(*list)[n-1]
		end := max(last.Line, last.EndLine)
		if last.Kind == f.Kind && last.File == f.File && f.Line == end+1 && last.Line > 0 {
			last.EndLine = f.Line
			return
		}
	}
	if len(*list) >= maxFindings {
		r.Omitted++
		return
	}
	*list = append(*list, f)
}

// WriteText writes the report for a person: the files, the problems, the
// warnings and a summary line.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	for _, f := range r.Files {
		if f.FirstSeq == 0 {
			fmt.Fprintf(&b, "file %s: %d lines, no chained record\n", f.Path, f.Lines)
			continue
		}
		fmt.Fprintf(&b, "file %s: %d lines, seq %d-%d, %d checkpoints\n",
			f.Path, f.Lines, f.FirstSeq, f.LastSeq, f.Checkpoints)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "FAIL %s\n", p)
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(&b, "WARN %s\n", warning)
	}
	if r.Omitted > 0 {
		fmt.Fprintf(&b, "%d more findings not shown\n", r.Omitted)
	}
	b.WriteString(r.coverage())
	if r.OK() {
		fmt.Fprintf(&b, "OK: %d records, seq %d-%d, chain intact\n", r.Records, r.FirstSeq, r.LastSeq)
	} else {
		fmt.Fprintf(&b, "FAILED: %d problems in %d records; the first is %s\n", len(r.Problems), r.Records, r.Problems[0])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// coverage returns the lines about signatures.
func (r *Report) coverage() string {
	switch {
	case !r.SignaturesChecked:
		return "NOTE checkpoint signatures were not checked: no public key given\n"
	case r.LastCheckpoint == nil:
		return "NOTE no valid checkpoint: no record is covered by a signature, so records could have been rewritten or cut off at the end without a trace\n"
	case r.Uncovered > 0:
		return fmt.Sprintf("NOTE %d records after the last checkpoint (%s line %d, covering seq %d) are not covered by a signature: a cut or rewrite after it cannot be detected from the files alone\n",
			r.Uncovered, r.LastCheckpoint.File, r.LastCheckpoint.Line, r.CoveredSeq)
	default:
		return fmt.Sprintf("all records are covered by the checkpoint at %s line %d\n", r.LastCheckpoint.File, r.LastCheckpoint.Line)
	}
}
