package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// Output formats of [Query].
const (
	// FormatTable prints one aligned row per record with the columns an
	// auditor reads first.
	FormatTable = "table"
	// FormatJSONL prints each matching line exactly as it is in the file,
	// chain member included.
	FormatJSONL = "jsonl"
	// FormatCount prints only the number of matching records.
	FormatCount = "count"
)

// chunkSize is the size of the blocks of lines that the workers filter.
const chunkSize = 4 << 20

// chunksAhead is the number of chunks that each file reader may read
// ahead of the workers.
const chunksAhead = 4

// QueryOptions configures [Query].
type QueryOptions struct {
	// Filter selects the records.
	Filter Filter
	// Format is FormatTable, FormatJSONL or FormatCount. Empty means
	// FormatTable.
	Format string
	// Workers is the number of goroutines that filter lines, and of files
	// read at once. Zero means GOMAXPROCS.
	Workers int
}

// QueryStats counts what [Query] read.
type QueryStats struct {
	// Lines is the number of lines read.
	Lines int64
	// Matched is the number of records printed or counted.
	Matched int64
	// Malformed is the number of lines that are not a JSON object, such
	// as torn writes, which were skipped.
	Malformed int64
}

// Query prints the records of the decision log files that match the
// filter, in chain order of the files and line order within each file.
// Files are read several at once, and each is cut into blocks of lines
// that are filtered in parallel. A byte check rules most lines out before
// any decoding. Files may be gzip-compressed.
func Query(ctx context.Context, paths []string, opts QueryOptions, out io.Writer) (QueryStats, error) {
	m, err := compile(opts.Filter)
	if err != nil {
		return QueryStats{}, fmt.Errorf("query: %w", err)
	}
	switch opts.Format {
	case "":
		opts.Format = FormatTable
	case FormatTable, FormatJSONL, FormatCount:
	default:
		return QueryStats{}, fmt.Errorf("query: invalid format %q, want %s, %s or %s", opts.Format, FormatTable, FormatJSONL, FormatCount)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	files, err := orderByChain(paths)
	if err != nil {
		return QueryStats{}, fmt.Errorf("query: %w", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := &queryRun{matcher: m, format: opts.Format, workers: opts.Workers}
	results := make(chan chan chunkResult, opts.Workers*chunksAhead)
	jobs := make(chan job)

	var wg sync.WaitGroup
	for range opts.Workers {
		wg.Go(func() {
			for j := range jobs {
				j.result <- q.filter(j.chunk)
			}
		})
	}
	go func() {
		q.dispatch(ctx, files, jobs, results)
		close(jobs)
		close(results)
	}()

	stats, err := q.collect(results, out)
	cancel()
	for range results {
		// Drain, so that the dispatcher ends after a write error.
	}
	wg.Wait()
	return stats, err
}

// chunk is a block of whole lines of one file.
type chunk struct {
	file      string
	firstLine int
	data      []byte
	err       error // a read error after the lines of data
}

// job is a chunk for a worker, with where the result goes.
type job struct {
	chunk  chunk
	result chan chunkResult
}

// chunkResult is the output of one chunk.
type chunkResult struct {
	out   []byte
	stats QueryStats
	err   error
}

// queryRun is the state of one Query call.
type queryRun struct {
	matcher *matcher
	format  string
	workers int
}

// dispatch hands the chunks of the files, in order, to the workers, and
// queues each result channel for collect in the same order. It reads up to
// q.workers files at once.
func (q *queryRun) dispatch(ctx context.Context, files []chainFile, jobs chan<- job, results chan<- chan chunkResult) {
	readers := make([]chan chunk, len(files))
	started := 0
	for i := range files {
		for ; started < len(files) && started < i+q.workers; started++ {
			readers[started] = make(chan chunk, chunksAhead)
			go readChunks(ctx, files[started].path, readers[started])
		}
		for c := range readers[i] {
			result := make(chan chunkResult, 1)
			select {
			case jobs <- job{chunk: c, result: result}:
			case <-ctx.Done():
				return
			}
			select {
			case results <- result:
			case <-ctx.Done():
				return
			}
		}
	}
}

// readChunks reads the file at path into chunks of whole lines and sends
// them to out, which it closes at the end.
func readChunks(ctx context.Context, path string, out chan<- chunk) {
	defer close(out)
	send := func(c chunk) bool {
		select {
		case out <- c:
			return true
		case <-ctx.Done():
			return false
		}
	}

	src, err := openSource(path)
	if err != nil {
		send(chunk{file: path, err: err})
		return
	}
	defer src.Close()

	line := 1
	var carry []byte
	for {
		buf := make([]byte, len(carry), max(chunkSize, 2*len(carry)))
		copy(buf, carry)
		buf, err := fill(src.reader, buf)
		end := len(buf)
		if err == nil {
			end = bytes.LastIndexByte(buf, '\n') + 1
		}
		if end == 0 && len(buf) > decisionlog.MaxRecordBytes {
			// No record is this long: pass the bytes on, to be counted
			// as a malformed line, rather than grow the buffer further.
			end = len(buf)
		}
		carry = buf[end:]
		if end > 0 {
			c := chunk{file: path, firstLine: line, data: buf[:end]}
			line += bytes.Count(c.data, []byte{'\n'})
			if !send(c) {
				return
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			return
		case err != nil:
			send(chunk{file: path, firstLine: line, err: err})
			return
		}
	}
}

// fill reads from r into the free capacity of buf until it is full or r
// returns an error, and returns the extended buf.
func fill(r io.Reader, buf []byte) ([]byte, error) {
	for len(buf) < cap(buf) {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// filter returns the output of the matching lines of c.
func (q *queryRun) filter(c chunk) chunkResult {
	var res chunkResult
	if c.err != nil {
		res.err = fmt.Errorf("read %s after line %d: %w", c.file, c.firstLine-1, c.err)
		return res
	}
	data := c.data
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		res.stats.Lines++
		if !q.matcher.mayMatch(line) {
			continue
		}
		r, err := decodeRow(line)
		if err != nil {
			res.stats.Malformed++
			continue
		}
		if !q.matcher.matches(&r) {
			continue
		}
		res.stats.Matched++
		switch q.format {
		case FormatJSONL:
			res.out = append(res.out, line...)
			res.out = append(res.out, '\n')
		case FormatTable:
			res.out = appendTableRow(res.out, &r)
		}
	}
	return res
}

// collect writes the results in order and adds up the counts.
func (q *queryRun) collect(results <-chan chan chunkResult, out io.Writer) (QueryStats, error) {
	var stats QueryStats
	var readErrs []error
	table := newTableWriter(out)
	for result := range results {
		res := <-result
		if res.err != nil {
			readErrs = append(readErrs, res.err)
			continue
		}
		stats.Lines += res.stats.Lines
		stats.Matched += res.stats.Matched
		stats.Malformed += res.stats.Malformed

		var err error
		switch q.format {
		case FormatJSONL:
			_, err = out.Write(res.out)
		case FormatTable:
			err = table.write(res.out, res.stats.Matched)
		}
		if err != nil {
			return stats, fmt.Errorf("query: write output: %w", err)
		}
	}

	var err error
	switch q.format {
	case FormatTable:
		err = table.flush()
	case FormatCount:
		_, err = fmt.Fprintln(out, stats.Matched)
	}
	if err != nil {
		return stats, fmt.Errorf("query: write output: %w", err)
	}
	if len(readErrs) > 0 {
		return stats, fmt.Errorf("query: %w", errors.Join(readErrs...))
	}
	return stats, nil
}
