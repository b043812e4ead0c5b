package decisionlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ScanLines reads JSON Lines decision records from r like [Scan], but a
// malformed line does not stop it: ScanLines passes the line's *LineError to
// bad and goes on with the next line. A line longer than MaxRecordBytes is
// skipped up to its newline. ScanLines stops when fn or bad returns an
// error, and returns that error unchanged, or when reading r fails, and
// returns a *LineError with the read error and the number of the line it was
// reading.
func ScanLines(r io.Reader, fn func(line int, rec Record) error, bad func(*LineError) error) error {
	return scanLines(r, MaxRecordBytes, fn, bad)
}

// scanLines is ScanLines with a line length limit that tests can lower.
func scanLines(r io.Reader, maxLineBytes int, fn func(line int, rec Record) error, bad func(*LineError) error) error {
	reader := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for number := 1; ; number++ {
		line, tooLong, err := readBoundedLine(reader, buf[:0], maxLineBytes)
		buf = line
		switch {
		case errors.Is(err, io.EOF) && len(line) == 0 && !tooLong:
			return nil
		case err != nil && !errors.Is(err, io.EOF):
			return &LineError{Line: number, Err: err}
		}

		var lineErr *LineError
		switch {
		case tooLong:
			lineErr = &LineError{Line: number, Err: fmt.Errorf("line is longer than the maximum of %d bytes", maxLineBytes)}
		case err != nil:
			lineErr = &LineError{Line: number, Err: ErrIncompleteLine}
		default:
			rec, decodeErr := decodeRecord(line[:len(line)-1])
			if decodeErr == nil {
				if err := fn(number, rec); err != nil {
					return err
				}
				continue
			}
			lineErr = &LineError{Line: number, Err: decodeErr}
		}
		if err := bad(lineErr); err != nil {
			return err
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
	}
}

// readBoundedLine appends the next line of reader, newline included, to buf.
// A line longer than maxLineBytes is read to its end but not kept, and
// reported with tooLong. At the end of the input it returns what is left
// with io.EOF.
func readBoundedLine(reader *bufio.Reader, buf []byte, maxLineBytes int) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := reader.ReadSlice('\n')
		if !tooLong {
			buf = append(buf, chunk...)
			if len(buf) > maxLineBytes {
				tooLong, buf = true, buf[:0]
			}
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, tooLong, err
		}
	}
}
