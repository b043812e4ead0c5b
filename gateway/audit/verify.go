package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// recentWindow is the number of recent records whose hashes Verify keeps
// to tell a duplicated record from a forked one.
const recentWindow = 4096

// checkpointMarker is in every checkpoint line. Lines without it are not
// decoded.
var checkpointMarker = []byte(`"path":"` + decisionlog.CheckpointPath + `"`)

// VerifyOptions configures [Verify].
type VerifyOptions struct {
	// Keys are the public keys that checkpoints may be signed with.
	Keys []ed25519.PublicKey
	// SkipSignatures checks the chain without checking checkpoint
	// signatures. Without it, Verify requires at least one key.
	SkipSignatures bool
	// RequireGenesis fails verification when the first record is not the
	// first of its chain (seq 1), for when the files given are the whole
	// log.
	RequireGenesis bool
}

// Verify checks the hash chain of the decision log files, in any order and
// gzip-compressed or not, and the signatures of their checkpoints. It
// returns an error only when a file cannot be opened or the options are
// invalid; everything wrong with the content is in the report.
func Verify(paths []string, opts VerifyOptions) (*Report, error) {
	if len(paths) == 0 {
		return nil, errors.New("verify: no files given")
	}
	if len(opts.Keys) == 0 && !opts.SkipSignatures {
		return nil, errors.New("verify: no public key to check checkpoint signatures with; give one, or skip the signatures explicitly")
	}
	files, err := orderByChain(paths)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}

	v := &verifier{
		opts:   opts,
		keys:   make(map[string]ed25519.PublicKey),
		report: &Report{SignaturesChecked: !opts.SkipSignatures},
		recent: make(map[int64]recentRecord),
	}
	for _, key := range opts.Keys {
		v.keys[decisionlog.KeyID(key)] = key
	}
	for _, f := range files {
		if err := v.verifyFile(f.path); err != nil {
			return nil, fmt.Errorf("verify: %w", err)
		}
	}
	v.finish()
	return v.report, nil
}

// recentRecord is a record kept in the window of recent records.
type recentRecord struct {
	hash decisionlog.Hash
	pos  Position
}

// chainEntry is the last chained record read.
type chainEntry struct {
	seq     int64
	hash    decisionlog.Hash
	pos     Position
	altered bool // already reported as altered
	present bool
}

// gap is a run of missing sequence numbers, which becomes a reordering
// when one of them turns up later.
type gap struct {
	from, to int64
	problem  int // index in report.Problems, or -1 when not kept
}

// verifier is the state of one Verify call.
type verifier struct {
	opts   VerifyOptions
	keys   map[string]ed25519.PublicKey
	report *Report

	prev      chainEntry
	malformed *Position // a line that is not a chained record, pending
	gaps      []gap
	recent    map[int64]recentRecord
	order     []int64 // sequence numbers in recent, oldest first

	summary *FileSummary
	records int // chained records read in the current file
}

// verifyFile checks the lines of one file, continuing the chain of the
// files before it.
func (v *verifier) verifyFile(path string) error {
	src, err := openSource(path)
	if err != nil {
		return err
	}
	defer src.Close()

	v.report.Files = append(v.report.Files, FileSummary{Path: path})
	v.summary = &v.report.Files[len(v.report.Files)-1]
	v.records = 0
	lines := newLineReader(src.reader)
	for {
		line, terminated, err := lines.next()
		if errors.Is(err, io.EOF) {
			break
		}
		v.summary.Lines = lines.number
		pos := Position{File: path, Line: lines.number}
		if errors.Is(err, errLineTooLong) {
			v.notRecord(pos)
			continue
		}
		if err != nil {
			v.problem(Finding{Kind: KindUnreadable, File: path, Line: lines.number,
				Message: fmt.Sprintf("file cannot be read past this point: %v", err)})
			break
		}
		v.line(pos, line, terminated)
	}
	if v.summary.FirstSeq == 0 {
		v.warning(Finding{Kind: KindEmpty, File: path, Message: "the file contains no chained record"})
	}
	return nil
}

// line checks one line.
func (v *verifier) line(pos Position, line []byte, terminated bool) {
	link, err := decisionlog.ParseLink(line)
	switch {
	case err != nil && json.Valid(line):
		// A failed write leaves the start of a record, which is never a
		// whole JSON value, and a whole record ends in its chain member.
		v.problem(Finding{Kind: KindMalformed, File: pos.File, Line: pos.Line,
			Message: "the line is a complete JSON object without a valid chain member, so it was added or altered, because a failed write leaves only the start of a record"})
		return
	case err != nil && !terminated:
		v.warning(Finding{Kind: KindTornTail, File: pos.File, Line: pos.Line,
			Message: "the last line is incomplete, as a crash during a write leaves it; it was never acknowledged as written"})
		return
	case err != nil:
		v.notRecord(pos)
		return
	}
	hashOK := link.Verify(line)
	if !terminated {
		v.warning(Finding{Kind: KindTornTail, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: "the last record is complete but lacks its newline"})
	}

	altered := !hashOK
	if altered {
		v.problem(Finding{Kind: KindAltered, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: "the record's bytes do not match its hash: it was changed after it was written"})
	}
	v.link(pos, link, altered)
	if bytes.Contains(line, checkpointMarker) {
		v.checkpoint(pos, line, link)
	} else {
		v.report.Uncovered++
	}
}

// notRecord handles a line that is not a chained record. Whether that is
// a torn write or tampering depends on whether the chain continues across
// it, which the next record shows.
func (v *verifier) notRecord(pos Position) {
	if v.malformed != nil {
		v.problem(Finding{Kind: KindMalformed, File: v.malformed.File, Line: v.malformed.Line,
			Message: "the line is not a chained record"})
	}
	v.malformed = &pos
}

// link checks that a record continues the chain, and makes it the last
// record.
func (v *verifier) link(pos Position, link decisionlog.Link, altered bool) {
	v.records++
	v.report.Records++
	if v.summary.FirstSeq == 0 {
		v.summary.FirstSeq = link.Seq
	}
	v.summary.LastSeq = link.Seq
	if v.report.FirstSeq == 0 {
		v.report.FirstSeq = link.Seq
	}

	anchor := true
	switch {
	case !v.prev.present:
		v.start(pos, link)
	case link.Seq == v.prev.seq+1 && link.Prev == v.prev.hash:
		v.resolveMalformed(true)
	case link.Seq == v.prev.seq+1:
		v.resolveMalformed(false)
		v.brokenLink(pos, link)
	case link.Seq > v.prev.seq+1:
		v.resolveMalformed(false)
		v.missing(pos, link)
	default:
		v.resolveMalformed(false)
		anchor = v.behind(pos, link)
	}

	v.remember(link, pos)
	if anchor {
		v.prev = chainEntry{seq: link.Seq, hash: link.Hash, pos: pos, altered: altered, present: true}
	}
	v.report.LastSeq = max(v.report.LastSeq, link.Seq)
}

// start checks the first record of all files.
func (v *verifier) start(pos Position, link decisionlog.Link) {
	// Nothing before the first record can be checked, so a line that is
	// not a record before it counts as a torn write.
	v.resolveMalformed(true)
	switch {
	case link.Seq == 1 && link.Prev != (decisionlog.Hash{}):
		v.problem(Finding{Kind: KindAltered, File: pos.File, Line: pos.Line, Seq: 1,
			Message: "the first record of the chain links to a previous record"})
	case link.Seq > 1 && v.opts.RequireGenesis:
		v.problem(Finding{Kind: KindRemoved, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: fmt.Sprintf("the chain starts at seq %d: records 1-%d are missing", link.Seq, link.Seq-1)})
	case link.Seq > 1:
		v.warning(Finding{Kind: KindChainStart, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: fmt.Sprintf("the chain starts at seq %d: the records before are in files not given", link.Seq)})
	}
}

// resolveMalformed classifies the pending line that is not a record, now
// that the next record shows whether the chain continues across it.
func (v *verifier) resolveMalformed(chainIntact bool) {
	if v.malformed == nil {
		return
	}
	pos := *v.malformed
	v.malformed = nil
	if chainIntact {
		v.warning(Finding{Kind: KindTornRecord, File: pos.File, Line: pos.Line,
			Message: "the line is an incomplete record from a failed write; the chain continues across it"})
		return
	}
	v.problem(Finding{Kind: KindMalformed, File: pos.File, Line: pos.Line,
		Message: "the line is not a chained record and the chain breaks at it: a record was altered or replaced here"})
}

// brokenLink reports a record that has the next sequence number but links
// to another hash than the record before it.
func (v *verifier) brokenLink(pos Position, link decisionlog.Link) {
	prev := v.prev
	switch {
	case v.records == 1:
		v.problem(Finding{Kind: KindForked, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: fmt.Sprintf("the file does not continue %s (seq %d at line %d): its first record links to another record, so it belongs to another chain or the previous file was altered",
				prev.pos.File, prev.seq, prev.pos.Line)})
	case prev.altered:
		// Already reported: the altered record kept its old hash.
	default:
		v.problem(Finding{Kind: KindAltered, File: prev.pos.File, Line: prev.pos.Line, Seq: prev.seq,
			Message: fmt.Sprintf("the record was replaced: the next record (line %d) links to a different hash", pos.Line)})
	}
}

// missing reports the records missing before a record whose sequence
// number jumps.
func (v *verifier) missing(pos Position, link decisionlog.Link) {
	from, to := v.prev.seq+1, link.Seq-1
	message := fmt.Sprintf("%d records (seq %d-%d) are missing before this record", to-from+1, from, to)
	if v.records == 1 {
		message = fmt.Sprintf("%d records (seq %d-%d) are missing between %s (seq %d at line %d) and this file: a file is missing or was cut short",
			to-from+1, from, to, v.prev.pos.File, v.prev.seq, v.prev.pos.Line)
	}
	index := v.problem(Finding{Kind: KindRemoved, File: pos.File, Line: pos.Line, Seq: link.Seq, Message: message})
	v.gaps = append(v.gaps, gap{from: from, to: to, problem: index})
}

// behind handles a record whose sequence number is not above the last
// one, and reports whether it becomes the record that the next links to.
func (v *verifier) behind(pos Position, link decisionlog.Link) bool {
	if g := v.fillGap(link.Seq); g != nil {
		if g.problem >= 0 {
			p := &v.report.Problems[g.problem]
			p.Kind = KindReordered
			p.Message = fmt.Sprintf("the record comes before seq %d, which is at %s line %d: records were reordered",
				link.Seq, pos.File, pos.Line)
		}
		return false
	}

	seen, ok := v.recent[link.Seq]
	switch {
	case ok && seen.hash == link.Hash:
		v.problem(Finding{Kind: KindDuplicated, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: fmt.Sprintf("the record is a copy of the one at %s line %d", seen.pos.File, seen.pos.Line)})
		return false
	case link.Seq == 1 && link.Prev == (decisionlog.Hash{}):
		v.problem(Finding{Kind: KindRestarted, File: pos.File, Line: pos.Line, Seq: 1,
			Message: fmt.Sprintf("a new chain starts after seq %d: the writer lost its chain head, or records of another chain were inserted", v.prev.seq)})
	case ok:
		v.problem(Finding{Kind: KindForked, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: fmt.Sprintf("a different record with this seq is at %s line %d: the chain forks", seen.pos.File, seen.pos.Line)})
	default:
		v.problem(Finding{Kind: KindReordered, File: pos.File, Line: pos.Line, Seq: link.Seq,
			Message: fmt.Sprintf("the record comes after seq %d (%s line %d)", v.prev.seq, v.prev.pos.File, v.prev.pos.Line)})
	}
	return true
}

// fillGap removes seq from the open gap that contains it and returns the
// gap, or nil when seq is in none.
func (v *verifier) fillGap(seq int64) *gap {
	for i := range v.gaps {
		g := v.gaps[i]
		if seq < g.from || seq > g.to {
			continue
		}
		filled := g
		switch {
		case g.from == g.to:
			v.gaps = append(v.gaps[:i], v.gaps[i+1:]...)
		case seq == g.from:
			v.gaps[i].from++
		case seq == g.to:
			v.gaps[i].to--
		default:
			v.gaps[i].to = seq - 1
			v.gaps = append(v.gaps, gap{from: seq + 1, to: g.to, problem: g.problem})
		}
		return &filled
	}
	return nil
}

// remember keeps a record in the window of recent records.
func (v *verifier) remember(link decisionlog.Link, pos Position) {
	if _, ok := v.recent[link.Seq]; ok {
		return
	}
	v.recent[link.Seq] = recentRecord{hash: link.Hash, pos: pos}
	v.order = append(v.order, link.Seq)
	if len(v.order) > recentWindow {
		delete(v.recent, v.order[0])
		v.order = v.order[1:]
	}
}

// checkpointRecord is the part of a checkpoint record that Verify decodes.
type checkpointRecord struct {
	Path       string                  `json:"path"`
	Checkpoint *decisionlog.Checkpoint `json:"checkpoint"`
}

// checkpoint checks a checkpoint against the chain and its key.
func (v *verifier) checkpoint(pos Position, line []byte, link decisionlog.Link) {
	var rec checkpointRecord
	if err := json.Unmarshal(line, &rec); err != nil || rec.Path != decisionlog.CheckpointPath {
		v.report.Uncovered++
		return
	}
	v.summary.Checkpoints++

	bad := func(message string) {
		v.problem(Finding{Kind: KindBadCheckpoint, File: pos.File, Line: pos.Line, Seq: link.Seq, Message: message})
	}
	cp := rec.Checkpoint
	if cp == nil {
		bad("the checkpoint record has no checkpoint member")
		return
	}
	if cp.Seq != link.Seq-1 || cp.Hash != link.Prev.String() {
		bad(fmt.Sprintf("the checkpoint covers seq %d with hash %s, but the record before it is seq %d with hash %s",
			cp.Seq, cp.Hash, link.Seq-1, link.Prev))
		return
	}

	if !v.opts.SkipSignatures {
		key, ok := v.keys[cp.KeyID]
		if !ok {
			bad(fmt.Sprintf("the checkpoint is signed with key %s, which is not among the keys given: it is forged, or its public key is missing", cp.KeyID))
			return
		}
		if err := cp.VerifySignature(key); err != nil {
			bad(fmt.Sprintf("forged checkpoint: %v", err))
			return
		}
	}

	v.report.Checkpoints++
	v.report.LastCheckpoint = &pos
	v.report.CoveredSeq = cp.Seq
	v.report.Uncovered = 0
}

// finish reports what is pending at the end of the last file.
func (v *verifier) finish() {
	if v.malformed != nil {
		v.problem(Finding{Kind: KindMalformed, File: v.malformed.File, Line: v.malformed.Line,
			Message: "the last complete line is not a chained record: a record was altered or replaced here"})
		v.malformed = nil
	}
	if !v.report.SignaturesChecked {
		v.report.LastCheckpoint = nil
	}
}

// problem adds a problem and returns its index, or -1 when it was merged
// or left out.
func (v *verifier) problem(f Finding) int {
	before := len(v.report.Problems)
	v.report.add(&v.report.Problems, f)
	if len(v.report.Problems) > before {
		return len(v.report.Problems) - 1
	}
	return -1
}

// warning adds a warning.
func (v *verifier) warning(f Finding) {
	v.report.add(&v.report.Warnings, f)
}
