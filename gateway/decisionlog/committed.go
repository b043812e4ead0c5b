package decisionlog

import "bytes"

// handOver passes the complete records among bytes just written to the
// file to Options.Committed. A leading newline, which ended a partial line
// left by an earlier failure, is not part of any record.
func (w *Writer) handOver(written []byte) {
	if w.committed == nil {
		return
	}
	written = bytes.TrimPrefix(written, []byte{'\n'})
	if end := bytes.LastIndexByte(written, '\n'); end >= 0 {
		w.committed(written[:end+1])
	}
}
