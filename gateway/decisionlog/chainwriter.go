package decisionlog

import (
	"errors"
	"fmt"
	"time"
)

// chainWriter is the chain state of a Writer, owned by the commit
// goroutine: the head, the state file and the checkpoint triggers.
type chainWriter struct {
	head        head
	state       *stateFile // nil without Options.StatePath
	stateFailed bool       // the last state write failed, logged once

	signer          *Signer
	everyRecords    int           // records between checkpoints, <= 0 for off
	interval        time.Duration // time between checkpoints, <= 0 for off
	sinceCheckpoint int           // records written after the last checkpoint
	lastCheckpoint  time.Time     // time of the last checkpoint, or of Open

	// pending describes the lines of the buffer being committed, in order.
	pending []pendingLine
}

// pendingLine is one line of the buffer being committed.
type pendingLine struct {
	end        int  // offset in the buffer just after the line's newline
	head       head // the chain head once the line is written
	checkpoint bool
}

// recoverHead sets the chain head from the end of the open file and from
// the state file, keeping the further of the two so that the chain never
// forks. Records that the state file counts but the log file lacks were
// rotated away or lost, and verification reports their absence. After a
// clean stop, the state file's head is the last record that this Writer
// wrote, so the chain continues from it even when the log file now ends
// elsewhere: see pickHead.
func (w *Writer) recoverHead(statePath string) error {
	info, err := w.file.Stat()
	if err != nil {
		return fmt.Errorf("check end of file: %w", err)
	}
	fromFile, err := lastLink(w.file, info.Size(), w.maxRecordBytes)
	if err != nil {
		return fmt.Errorf("find chain head in %s: %w", w.path, err)
	}
	w.rot.size = info.Size()
	if fromFile.chained && !fromFile.verified {
		w.logger.Error("decision log last record does not match its hash; the chain continues from it",
			"path", w.path, "seq", fromFile.link.Seq)
	}
	if fromFile.legacy {
		w.logger.Warn("decision log file ends in records without a chain; rotate it away to verify the new chain on its own",
			"path", w.path)
	}
	fileHead := head{seq: fromFile.link.Seq, hash: fromFile.link.Hash}
	w.chain.head = fileHead

	if statePath == "" {
		return nil
	}
	state, data, err := openState(statePath)
	if err != nil {
		return err
	}
	w.chain.state = state
	if len(data) > 0 {
		stateHead, stopped, err := parseState(data)
		switch {
		case err != nil && !fromFile.chained:
			_ = state.close()
			w.chain.state = nil
			return fmt.Errorf("chain state %s: %w; the log file has no chained record to recover from, so remove the state file to start a new chain, which verification reports as a break", statePath, err)
		case err != nil:
			w.logger.Error("decision log chain state unreadable, continuing from the log file",
				"state_file", statePath, "seq", fileHead.seq, "err", err)
		default:
			w.chain.head = w.pickHead(fileHead, stateHead, stopped, statePath)
		}
	}
	if err := state.replace(w.chain.head); err != nil {
		_ = state.close()
		w.chain.state = nil
		return err
	}
	return nil
}

// pickHead chooses between the head found in the log file and the one in
// the state file. stopped reports that the state file was saved at a clean
// stop.
//
// After a clean stop, a log file that ends in another record than the
// state's head was written to while the Writer was stopped. Continuing
// from that record would put the next checkpoint's signature over records
// that this Writer never wrote, so the chain continues from the state's
// head instead, and verification reports the records added since as a
// fork.
//
// NOTE: after a crash the state file has no mark of a clean stop, and a
// log file that goes further than the state is taken as it is: records
// that another process appended before the restart then join the chain.
func (w *Writer) pickHead(fileHead, stateHead head, stopped bool, statePath string) head {
	switch {
	case stateHead.seq > fileHead.seq:
		if fileHead.seq > 0 {
			w.logger.Warn("decision log file ends before the chain state; the records in between are missing from it",
				"path", w.path, "state_file", statePath, "file_seq", fileHead.seq, "seq", stateHead.seq)
		}
		return stateHead
	case stopped && fileHead != stateHead:
		w.logger.Error("decision log file changed while the gateway was stopped; the chain continues from the chain state, and verification reports the records added since as a fork",
			"path", w.path, "state_file", statePath, "file_seq", fileHead.seq, "seq", stateHead.seq)
		return stateHead
	case stateHead.seq == fileHead.seq && stateHead.hash != fileHead.hash:
		w.logger.Error("decision log last record differs from the chain state; the chain continues from the file",
			"path", w.path, "state_file", statePath, "seq", fileHead.seq)
	}
	return fileHead
}

// startBuffer begins the buffer of one write call.
func (w *Writer) startBuffer() {
	w.buffer = w.buffer[:0]
	w.chain.pending = w.chain.pending[:0]
	if w.partialTail {
		// End the partial line that a failed write or a crash left
		// behind, so that only that line is malformed and not the first
		// record of this batch too.
		w.buffer = append(w.buffer, '\n')
	}
}

// bufferHead returns the chain head after the lines in the buffer.
func (w *Writer) bufferHead() head {
	if n := len(w.chain.pending); n > 0 {
		return w.chain.pending[n-1].head
	}
	return w.chain.head
}

// appendRecord appends an encoded record to the buffer with its chain
// member.
func (w *Writer) appendRecord(req *request) {
	var next head
	w.buffer, next = w.bufferHead().appendLinkedHashed(w.buffer, req.line, req.body)
	w.chain.pending = append(w.chain.pending, pendingLine{end: len(w.buffer), head: next})
}

// appendCheckpoint appends a checkpoint record that covers the last line
// of the buffer, or the head when the buffer is empty.
func (w *Writer) appendCheckpoint() error {
	covered := w.bufferHead()
	now := w.now().UTC()
	rec := Record{
		DecisionID: NewID(),
		Timestamp:  now,
		Path:       CheckpointPath,
		Labels:     w.labels,
		Allow:      true,
		Action:     ActionCheckpoint,
		Checkpoint: w.chain.signer.sign(covered, now),
	}
	line, err := encodeLine(&rec)
	if err != nil {
		return fmt.Errorf("encode checkpoint: %w", err)
	}
	var next head
	w.buffer, next = covered.appendLinked(w.buffer, line)
	w.chain.pending = append(w.chain.pending, pendingLine{end: len(w.buffer), head: next, checkpoint: true})
	return nil
}

// checkpointDue reports whether the batch in the buffer reaches the
// record count of a checkpoint.
func (w *Writer) checkpointDue() bool {
	c := &w.chain
	return c.signer != nil && c.everyRecords > 0 && c.sinceCheckpoint+len(c.pending) >= c.everyRecords
}

// checkpointDeadline returns when the next timed checkpoint is due, or the
// zero time when none is.
func (w *Writer) checkpointDeadline() time.Time {
	c := &w.chain
	if c.signer == nil || c.interval <= 0 || c.sinceCheckpoint == 0 {
		return time.Time{}
	}
	return c.lastCheckpoint.Add(c.interval)
}

// written advances the chain over the lines of the buffer that end within
// its first n bytes, which are in the file.
func (w *Writer) written(n int) {
	for _, line := range w.chain.pending {
		if line.end > n {
			break
		}
		w.chain.head = line.head
		if line.checkpoint {
			w.chain.sinceCheckpoint = 0
			w.chain.lastCheckpoint = w.now()
		} else {
			w.chain.sinceCheckpoint++
		}
	}
}

// saveState writes the head to the state file without syncing it. A
// failure is logged once until a write succeeds again, because the state
// file only matters when the log file is rotated away while stopped.
func (w *Writer) saveState() {
	c := &w.chain
	if c.state == nil {
		return
	}
	if err := c.state.save(c.head); err != nil {
		if !c.stateFailed {
			w.logger.Error("decision log chain state not saved", "state_file", c.state.path, "err", err)
		}
		c.stateFailed = true
		return
	}
	if c.stateFailed {
		w.logger.Info("decision log chain state saved again", "state_file", c.state.path)
		c.stateFailed = false
	}
}

// syncState saves and syncs the head, at checkpoints, rotations and Close.
func (w *Writer) syncState() error {
	c := &w.chain
	if c.state == nil {
		return nil
	}
	if err := c.state.save(c.head); err != nil {
		return err
	}
	return c.state.sync()
}

// finishState syncs the final head h to the state file, marked as the
// head of a clean stop, and closes the file.
func (c *chainWriter) finishState(h head) error {
	if c.state == nil {
		return nil
	}
	err := c.state.saveStopped(h)
	if err == nil {
		err = c.state.sync()
	}
	return errors.Join(err, c.closeState())
}

// closeState closes the state file.
func (c *chainWriter) closeState() error {
	if c.state == nil {
		return nil
	}
	err := c.state.close()
	c.state = nil
	return err
}
