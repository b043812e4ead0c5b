package policycmd

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// DefaultExamples is the number of examples that Replay keeps per group.
const DefaultExamples = 5

// ReplayConfig configures Replay.
type ReplayConfig struct {
	// DecisionFiles are decision logs in JSON Lines, plain or
	// gzip-compressed, in any order.
	DecisionFiles []string
	// Policy is the candidate policy.
	Policy policy.Config
	// Examples is the number of examples kept per group, from 0.
	Examples int
	// Strict stops the replay with an error at the first malformed line
	// or unreadable file content.
	Strict bool
	// Format is the form of the report.
	Format Format
}

// Replay evaluates the inputs of recorded decisions with a candidate policy
// and writes what would change to w. It returns an *ExitError with
// ExitCodeFailed when a decision changes from allow to deny or back.
func Replay(ctx context.Context, cfg ReplayConfig, w io.Writer) error {
	report, err := ReplayFiles(ctx, cfg)
	if err != nil {
		return err
	}
	if err := writeReport(w, cfg.Format, report, writeReplayPretty); err != nil {
		return err
	}
	if report.Changed() > 0 {
		return failed("%d %s would change: %d from allow to deny, %d from deny to allow",
			report.Changed(), plural(report.Changed(), "decision"), report.Totals.AllowToDeny, report.Totals.DenyToAllow)
	}
	return nil
}

// ReplayFiles replays the decision records of cfg.DecisionFiles against the
// candidate policy and returns the report. It reads each file as a stream.
func ReplayFiles(ctx context.Context, cfg ReplayConfig) (*ReplayReport, error) {
	if len(cfg.DecisionFiles) == 0 {
		return nil, errors.New("no decision logs to replay: name them with --decisions")
	}
	if cfg.Examples < 0 {
		return nil, fmt.Errorf("invalid --examples %d: must be 0 or more", cfg.Examples)
	}
	// Every file is checked before the replay starts, so that a typo does
	// not show after minutes of work.
	for _, file := range cfg.DecisionFiles {
		if err := checkDecisionFile(file); err != nil {
			return nil, err
		}
	}
	engine, err := policy.New(ctx, cfg.Policy)
	if err != nil {
		return nil, err
	}

	r := newReplayer(engine, cfg)
	for _, file := range cfg.DecisionFiles {
		if err := r.replayFile(ctx, file); err != nil {
			return nil, err
		}
	}
	return r.finish(), nil
}

func checkDecisionFile(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("decision log %s does not exist", path)
	}
	if err != nil {
		return fmt.Errorf("read decision log: %w", err)
	}
	if info.IsDir() {
		return fmt.Errorf("decision log %s is a directory: name the files, such as %s/*.jsonl*", path, path)
	}
	return nil
}

// replayer accumulates the report of one replay.
type replayer struct {
	engine   *policy.Engine
	cfg      ReplayConfig
	report   ReplayReport
	revision map[string]int
	added    map[string]*ReasonGroup
	removed  map[string]*ReasonGroup
	pointers map[string]*PointerGroup
	skipped  map[string]*SkipGroup
}

func newReplayer(engine *policy.Engine, cfg ReplayConfig) *replayer {
	r := &replayer{
		engine:   engine,
		cfg:      cfg,
		revision: map[string]int{},
		added:    map[string]*ReasonGroup{},
		removed:  map[string]*ReasonGroup{},
		pointers: map[string]*PointerGroup{},
		skipped:  map[string]*SkipGroup{},
	}
	r.report.Policy = PolicyInfo{Paths: cfg.Policy.Paths, DataFile: cfg.Policy.DataFile, Revision: engine.Revision()}
	r.report.Kinds = map[policy.Kind]*KindCounts{
		policy.KindRequest: {}, policy.KindPDU: {}, policy.KindEDU: {},
	}
	r.report.AllowToDeny = newGroup()
	r.report.DenyToAllow = newGroup()
	r.report.Errors = newGroup()
	r.report.Malformed.Lines = []MalformedLine{}
	return r
}

// stopError carries an error of a callback of ScanLines that ends the
// replay, to tell it from a read error of the file.
type stopError struct {
	err error
}

func (e *stopError) Error() string { return e.err.Error() }

// replayFile replays the records of one decision log.
func (r *replayer) replayFile(ctx context.Context, path string) error {
	reader, err := openDecisionLog(path)
	if err != nil {
		return err
	}
	defer reader.Close()

	count := FileCount{File: path}
	err = decisionlog.ScanLines(reader, func(line int, rec decisionlog.Record) error {
		if rec.Path == decisionlog.CheckpointPath {
			// A signed checkpoint of the hash chain, not a decision.
			return nil
		}
		count.Records++
		if err := r.replayRecord(ctx, path, line, &rec); err != nil {
			return &stopError{err}
		}
		return nil
	}, func(lineErr *decisionlog.LineError) error {
		count.Malformed++
		if r.cfg.Strict {
			return &stopError{fmt.Errorf("decision log %s: %w (remove --strict to skip malformed lines)", path, lineErr)}
		}
		r.addMalformed(path, lineErr)
		return nil
	})
	var stop *stopError
	var lineErr *decisionlog.LineError
	switch {
	case errors.As(err, &stop):
		return stop.err
	case errors.As(err, &lineErr):
		// The file could not be read to its end, such as a gzip file
		// cut short. The records before stay counted.
		count.Malformed++
		if r.cfg.Strict {
			return fmt.Errorf("decision log %s: %w", path, lineErr)
		}
		r.addMalformed(path, lineErr)
	case err != nil:
		return fmt.Errorf("decision log %s: %w", path, err)
	}
	r.report.Files = append(r.report.Files, count)
	return nil
}

// openDecisionLog opens a decision log, decompressing it when it starts
// with the gzip magic number, whatever its name.
func openDecisionLog(path string) (io.ReadCloser, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read decision log: %w", err)
	}
	buffered := bufio.NewReaderSize(file, 64<<10)
	magic, _ := buffered.Peek(2)
	if !bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		return readCloser{buffered, file}, nil
	}
	decompressed, err := gzip.NewReader(buffered)
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("decision log %s: %w", path, err)
	}
	return readCloser{decompressed, file}, nil
}

// readCloser reads from one reader and closes the file beneath it.
type readCloser struct {
	io.Reader
	io.Closer
}

// addMalformed counts a malformed line and keeps the first ones by file
// name and line number.
func (r *replayer) addMalformed(path string, lineErr *decisionlog.LineError) {
	malformed := &r.report.Malformed
	malformed.Count++
	line := MalformedLine{File: path, Line: lineErr.Line, Error: lineErr.Err.Error()}
	compare := func(a, b MalformedLine) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	}
	i, _ := slices.BinarySearchFunc(malformed.Lines, line, compare)
	malformed.Lines = slices.Insert(malformed.Lines, i, line)
	malformed.Lines = malformed.Lines[:min(len(malformed.Lines), r.cfg.Examples)]
}

// replayRecord replays one record. Its error ends the replay: only a
// cancelled context returns one.
func (r *replayer) replayRecord(ctx context.Context, file string, line int, rec *decisionlog.Record) error {
	r.report.Records++
	r.revision[rec.Bundles[decisionlog.BundleName].Revision]++
	kind, _ := kindOfPath(rec.Path)
	example := newExample(file, line, kind, rec)

	c, skip := caseOfRecord(rec)
	if skip != "" {
		r.skip(kind, skip, example, rec)
		return nil
	}
	counts := r.report.Kinds[c.kind]
	example.Recorded = &c.recorded
	if r.addMasked(c.pointers, example) {
		counts.Masked++
		return nil
	}

	counts.Replayed++
	decision, err := r.engine.Decide(ctx, c.kind, c.input)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		example.Error = err.Error()
		counts.Errors++
		r.report.Errors.add(example, r.cfg.Examples)
		if c.recorded.Allow {
			counts.AllowToDeny++
			r.report.AllowToDeny.add(example, r.cfg.Examples)
		}
		return nil
	}

	now := outcomeOf(decision)
	example.Replayed = &now
	added, removed := reasonChanges(c.recorded.Reasons, now.Reasons)
	switch {
	case c.recorded.Allow && !now.Allow:
		counts.AllowToDeny++
		r.report.AllowToDeny.add(example, r.cfg.Examples)
	case !c.recorded.Allow && now.Allow:
		counts.DenyToAllow++
		r.report.DenyToAllow.add(example, r.cfg.Examples)
	case len(added)+len(removed) > 0:
		counts.ReasonsChanged++
	default:
		counts.Unchanged++
	}
	addReasons(r.added, added, c.kind, example, r.cfg.Examples)
	addReasons(r.removed, removed, c.kind, example, r.cfg.Examples)
	return nil
}

// skip counts a record that has no decision to replay.
func (r *replayer) skip(kind policy.Kind, reason SkipReason, example Example, rec *decisionlog.Record) {
	if counts := r.report.Kinds[kind]; counts != nil {
		counts.Skipped++
	} else {
		r.report.Totals.Skipped++
	}
	group := r.skipped[string(reason)]
	if group == nil {
		group = &SkipGroup{Reason: reason, Description: skipDescriptions[reason], Group: newGroup()}
		r.skipped[string(reason)] = group
	}
	example.Error = rec.Error
	group.add(example, r.cfg.Examples)
}

// addMasked counts a record whose input was masked where the candidate
// reads it, and reports whether it was.
func (r *replayer) addMasked(pointers []string, example Example) bool {
	found := false
	for _, pointer := range pointers {
		read, ok := r.engine.ReadMasked(pointer)
		if !ok {
			continue
		}
		found = true
		group := r.pointers[pointer]
		if group == nil {
			group = &PointerGroup{Pointer: pointer, Group: newGroup()}
			if read.Location != nil {
				group.Read, group.Location = read.String(), locationText(read.Location)
			}
			r.pointers[pointer] = group
		}
		group.add(example, r.cfg.Examples)
	}
	if found {
		r.report.Masked.Count++
	}
	return found
}

// addReasons counts a record in the group of each of its reasons. The
// reasons are sorted, and one given twice counts once.
func addReasons(groups map[string]*ReasonGroup, reasons []string, kind policy.Kind, example Example, limit int) {
	for _, reason := range slices.Compact(reasons) {
		group := groups[reason]
		if group == nil {
			group = &ReasonGroup{Reason: reason, Kinds: map[policy.Kind]int{}, Group: newGroup()}
			groups[reason] = group
		}
		group.Kinds[kind]++
		group.add(example, limit)
	}
}

// finish adds up the totals and sorts the groups.
func (r *replayer) finish() *ReplayReport {
	report := &r.report
	skippedWithoutKind := report.Totals.Skipped
	report.Totals = KindCounts{Skipped: skippedWithoutKind}
	for _, counts := range report.Kinds {
		report.Totals.Replayed += counts.Replayed
		report.Totals.Unchanged += counts.Unchanged
		report.Totals.AllowToDeny += counts.AllowToDeny
		report.Totals.DenyToAllow += counts.DenyToAllow
		report.Totals.ReasonsChanged += counts.ReasonsChanged
		report.Totals.Errors += counts.Errors
		report.Totals.Masked += counts.Masked
		report.Totals.Skipped += counts.Skipped
	}
	report.ReasonsAdded = sortedByCount(r.added, func(g *ReasonGroup) int { return g.Count })
	report.ReasonsRemoved = sortedByCount(r.removed, func(g *ReasonGroup) int { return g.Count })
	report.Masked.Pointers = sortedByCount(r.pointers, func(g *PointerGroup) int { return g.Count })
	report.Skipped.Reasons = sortedByCount(r.skipped, func(g *SkipGroup) int { return g.Count })
	report.Skipped.Count = report.Totals.Skipped

	revisions := make(map[string]*RevisionCount, len(r.revision))
	for revision, count := range r.revision {
		revisions[revision] = &RevisionCount{Revision: revision, Count: count}
	}
	report.RecordedRevisions = sortedByCount(revisions, func(c *RevisionCount) int { return c.Count })
	return report
}
