package audit

import (
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode/utf8"
)

// tableHeader names the columns of FormatTable.
const tableHeader = "TIME\tDECISION\tACTION\tSTATUS\tDIR\tORIGIN\tDESTINATION\tENDPOINT\tROOM\tTYPE\tDECISION_ID\tREASON\n"

// tableBlockRows is the number of rows after which the table is written
// out. Columns are aligned within each block, so that a large result does
// not have to be held in memory.
const tableBlockRows = 10000

// maxReasonRunes bounds the reason column.
const maxReasonRunes = 120

// tableTimeFormat is the time column: UTC with milliseconds.
const tableTimeFormat = "2006-01-02T15:04:05.000Z"

// tableWriter aligns rows of tab-separated cells.
type tableWriter struct {
	out      io.Writer
	tab      *tabwriter.Writer
	rows     int64
	buffered int64
}

func newTableWriter(out io.Writer) *tableWriter {
	return &tableWriter{out: out}
}

// write adds rows, tab-separated lines as appendTableRow makes them.
func (t *tableWriter) write(rows []byte, count int64) error {
	if t.tab == nil {
		t.tab = tabwriter.NewWriter(t.out, 0, 0, 2, ' ', 0)
		if _, err := io.WriteString(t.tab, tableHeader); err != nil {
			return err
		}
	}
	if _, err := t.tab.Write(rows); err != nil {
		return err
	}
	t.rows += count
	t.buffered += count
	if t.buffered >= tableBlockRows {
		t.buffered = 0
		return t.tab.Flush()
	}
	return nil
}

// flush writes the rows still buffered, or a line saying that nothing
// matched.
func (t *tableWriter) flush() error {
	if t.tab == nil || t.rows == 0 {
		_, err := io.WriteString(t.out, "no matching records\n")
		return err
	}
	return t.tab.Flush()
}

// appendTableRow appends the cells of r, separated by tabs, and a newline.
func appendTableRow(buf []byte, r *row) []byte {
	decision := "deny"
	if r.allow {
		decision = "allow"
	}
	status := ""
	if r.status != 0 {
		status = strconv.FormatInt(r.status, 10)
	}
	eventType := r.matrix["event_type"]
	if eventType == "" {
		eventType = r.matrix["edu_type"]
	}
	cells := []string{
		r.timestamp.UTC().Format(tableTimeFormat),
		decision,
		r.action,
		status,
		r.matrix["direction"],
		r.matrix["origin"],
		r.matrix["destination"],
		r.matrix["endpoint"],
		r.matrix["room_id"],
		eventType,
		r.decisionID,
		reasonCell(r),
	}
	for i, cell := range cells {
		if i > 0 {
			buf = append(buf, '\t')
		}
		buf = append(buf, cleanCell(cell)...)
	}
	return append(buf, '\n')
}

// reasonCell returns the error, else the reasons, shortened.
func reasonCell(r *row) string {
	text := r.errText
	if text == "" {
		text = strings.Join(r.reasons, "; ")
	}
	if utf8.RuneCountInString(text) > maxReasonRunes {
		runes := []rune(text)
		text = string(runes[:maxReasonRunes-1]) + "…"
	}
	return text
}

// cleanCell returns "-" for an empty cell, and replaces tabs, newlines
// and other control characters, which would break the table.
func cleanCell(cell string) string {
	if cell == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, cell)
}
