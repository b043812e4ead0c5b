package testfed

import (
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// readAttempts bounds the reads of a decision log whose rotated files
// change while they are read.
const readAttempts = 5

// DecisionLogFiles returns the decision log file at path, when it exists,
// and the files rotated away from it: those beside it named NAME-*.EXT or
// NAME-*.EXT.gz for a log named NAME.EXT, as the gateway's own rotation
// names them. A rotated file that is present both plain and compressed,
// while the gateway compresses it, is returned once, plain. The files are
// in lexical order, which is not their chain order.
func DecisionLogFiles(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	entries, err := os.ReadDir(cmp.Or(dir, "."))
	if err != nil {
		return nil, fmt.Errorf("list decision log files: %w", err)
	}
	regular := map[string]bool{}
	for _, entry := range entries {
		if entry.Type().IsRegular() {
			regular[entry.Name()] = true
		}
	}
	var files []string
	for name := range regular {
		plain, compressed := strings.CutSuffix(name, ".gz")
		rotated := strings.HasPrefix(plain, prefix) && strings.HasSuffix(plain, ext)
		if name == base || rotated && !(compressed && regular[plain]) {
			files = append(files, filepath.Join(dir, name))
		}
	}
	slices.Sort(files)
	return files, nil
}

// readDecisions returns the records of the decision log at path and of the
// files rotated away from it, in chain order. A missing log has no
// records. A last line without its newline, which the gateway may be
// writing, is left out.
func readDecisions(path string) ([]decisionlog.Record, error) {
	var err error
	for range readAttempts {
		var records []decisionlog.Record
		records, err = readDecisionFiles(path)
		// A rotated file that the gateway compressed and removed after
		// the listing is read again, compressed, from a new listing.
		if !errors.Is(err, fs.ErrNotExist) {
			return records, err
		}
	}
	return nil, err
}

func readDecisionFiles(path string) ([]decisionlog.Record, error) {
	files, err := DecisionLogFiles(path)
	if err != nil {
		return nil, err
	}
	var perFile [][]decisionlog.Record
	for _, file := range files {
		records, err := readDecisionFile(file)
		if err != nil {
			return nil, err
		}
		if len(records) > 0 {
			perFile = append(perFile, records)
		}
	}
	slices.SortFunc(perFile, func(a, b []decisionlog.Record) int {
		return cmp.Compare(chainSeq(a[0]), chainSeq(b[0]))
	})
	var all []decisionlog.Record
	for _, records := range perFile {
		all = append(all, records...)
	}
	return all, nil
}

// readDecisionFile returns the records of one file, gunzipped when its
// name ends in .gz.
func readDecisionFile(path string) ([]decisionlog.Record, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read decision log: %w", err)
	}
	defer file.Close()
	var r io.Reader = file
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(file)
		if err != nil {
			return nil, fmt.Errorf("read decision log %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	var records []decisionlog.Record
	err = decisionlog.Scan(r, func(_ int, rec decisionlog.Record) error {
		records = append(records, rec)
		return nil
	})
	if err != nil && !errors.Is(err, decisionlog.ErrIncompleteLine) {
		return nil, fmt.Errorf("read decision log %s: %w", path, err)
	}
	return records, nil
}

// chainSeq returns the sequence number of a record in the hash chain, 0
// for a record without chain.
func chainSeq(rec decisionlog.Record) int64 {
	if rec.Chain == nil {
		return 0
	}
	return rec.Chain.Seq
}
