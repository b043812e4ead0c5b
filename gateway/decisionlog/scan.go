package decisionlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrIncompleteLine is the cause of a LineError for a last line without a
// newline. A Writer ends every record with a newline, so such a line is
// usually a record that a crash or a full disk cut short.
var ErrIncompleteLine = errors.New("missing newline at end of file, the record is incomplete")

// LineError is a malformed line in a decision log.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Err describes what is wrong with the line.
	Err error
}

// Error returns the line number and the cause.
func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: %v", e.Line, e.Err)
}

// Unwrap returns the cause.
func (e *LineError) Unwrap() error {
	return e.Err
}

// Scan reads JSON Lines decision records from r and calls fn with the line
// number (from 1) and the record of each line, in order. Numbers inside
// Input and Result are decoded as json.Number.
//
// Scan stops at the first malformed line and returns a *LineError that
// names it: an empty line, a line that is not one JSON object, a line longer
// than MaxRecordBytes, or a last line without a newline (ErrIncompleteLine).
// When fn returns an error, Scan stops and returns that error unchanged.
func Scan(r io.Reader, fn func(line int, rec Record) error) error {
	return scan(r, MaxRecordBytes, fn)
}

// scan is Scan with a line length limit that tests can lower.
func scan(r io.Reader, maxLineBytes int, fn func(line int, rec Record) error) error {
	reader := bufio.NewReaderSize(r, 64<<10)
	var buf []byte
	for number := 1; ; number++ {
		line, err := readLine(reader, buf[:0], maxLineBytes)
		buf = line
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return nil
		}
		if errors.Is(err, io.EOF) {
			return &LineError{Line: number, Err: ErrIncompleteLine}
		}
		if err != nil {
			return &LineError{Line: number, Err: err}
		}

		rec, err := decodeRecord(line[:len(line)-1])
		if err != nil {
			return &LineError{Line: number, Err: err}
		}
		if err := fn(number, rec); err != nil {
			return err
		}
	}
}

// ReadFile returns all records of the decision log at path.
func ReadFile(path string) ([]Record, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read decision log: %w", err)
	}
	defer file.Close()

	var records []Record
	err = Scan(file, func(_ int, rec Record) error {
		records = append(records, rec)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read decision log %s: %w", path, err)
	}
	return records, nil
}

// readLine appends the next line of reader, newline included, to buf. At the
// end of the input it returns the unterminated rest with io.EOF.
func readLine(reader *bufio.Reader, buf []byte, maxLineBytes int) ([]byte, error) {
	for {
		chunk, err := reader.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLineBytes {
			return buf, fmt.Errorf("line is longer than the maximum of %d bytes", maxLineBytes)
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return buf, err
		}
	}
}

// decodeRecord decodes one line without its newline.
func decodeRecord(line []byte) (Record, error) {
	if len(line) == 0 {
		return Record{}, errors.New("empty line, expected a JSON object")
	}
	if line[0] != '{' {
		return Record{}, errors.New("line does not start with {, expected a JSON object")
	}

	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	var rec Record
	if err := decodeOnly(dec, &rec); err != nil {
		if errors.Is(err, errTrailingData) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("invalid record: %w", err)
	}
	return rec, nil
}

// errTrailingData is the error of decodeOnly for data after the value.
var errTrailingData = errors.New("unexpected data after the JSON object")

// decodeOnly decodes the one JSON value of dec's input into v.
func decodeOnly(dec *json.Decoder, v any) error {
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errTrailingData
	}
	return nil
}
