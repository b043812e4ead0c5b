package decisionlog

import (
	"fmt"
	"time"
)

// failureLogInterval is how many consecutive failed batches the commit
// goroutine counts between two log entries, after logging the first.
const failureLogInterval = 100

// run is the commit goroutine. It takes the first queued request, adds the
// records queued behind it to the same batch, writes and syncs the batch,
// and then reports the result to every writer in the batch. Records queued
// during one commit form the next batch, so under concurrent load one fsync
// covers many records. Between batches it writes timed checkpoints and
// rotates the file when it is due.
func (w *Writer) run() {
	defer close(w.stopped)
	defer w.finish()

	for {
		req, ok := w.next()
		if !ok {
			return
		}
		if req == nil {
			continue
		}
		if req.line == nil {
			req.done <- w.reopenFile()
			continue
		}

		more := w.collect(req)
		err := w.commit()
		for _, r := range w.batch {
			r.done <- err
		}
		clear(w.batch)
		w.batch = w.batch[:0]
		if err == nil {
			w.rotateIfDue()
		}
		if !more {
			return
		}
	}
}

// next returns the next request, or nil after handling a deadline, and
// false once the queue has been closed.
func (w *Writer) next() (*request, bool) {
	if req := w.pending; req != nil {
		w.pending = nil
		return req, true
	}

	deadline := w.nextDeadline()
	if deadline.IsZero() {
		req, ok := <-w.requests
		return req, ok
	}
	w.timer.Reset(max(time.Until(deadline), 0))
	defer w.timer.Stop()
	select {
	case req, ok := <-w.requests:
		return req, ok
	case <-w.timer.C:
		w.handleDeadlines()
		return nil, true
	}
}

// nextDeadline returns the earlier of the next timed checkpoint and the
// next rotation by age, or the zero time when neither is due.
func (w *Writer) nextDeadline() time.Time {
	checkpoint, rotation := w.checkpointDeadline(), w.rot.deadline()
	switch {
	case checkpoint.IsZero():
		return rotation
	case rotation.IsZero() || checkpoint.Before(rotation):
		return checkpoint
	default:
		return rotation
	}
}

// handleDeadlines writes a timed checkpoint and rotates the file when they
// are due.
func (w *Writer) handleDeadlines() {
	if d := w.checkpointDeadline(); !d.IsZero() && !w.now().Before(d) {
		if err := w.writeCheckpoint(); err != nil {
			w.logger.Error("decision log checkpoint not written", "path", w.path, "err", err)
			// Retry after another interval rather than in a busy loop.
			w.chain.lastCheckpoint = w.now()
		}
	}
	w.rotateIfDue()
}

// finish writes the final checkpoint when the queue has been closed.
func (w *Writer) finish() {
	if w.chain.signer == nil || w.chain.sinceCheckpoint == 0 {
		return
	}
	if err := w.writeCheckpoint(); err != nil {
		w.logger.Error("decision log final checkpoint not written", "path", w.path, "err", err)
	}
}

// collect fills w.batch with first and the records queued behind it, up to
// maxBatchBytes. A reopen request ends the batch and is kept in w.pending,
// so that the records queued before it go to the old file. collect returns
// false when the queue has been closed.
func (w *Writer) collect(first *request) bool {
	w.batch = append(w.batch, first)
	size := len(first.line)
	for size < maxBatchBytes {
		select {
		case req, ok := <-w.requests:
			if !ok {
				return false
			}
			if req.line == nil {
				w.pending = req
				return true
			}
			w.batch = append(w.batch, req)
			size += len(req.line)
		default:
			return true
		}
	}
	return true
}

// commit writes w.batch, each record linked into the chain, with one write
// call and, in SyncAlways mode, syncs the file. When the batch reaches the
// checkpoint count, a checkpoint ends it.
func (w *Writer) commit() error {
	w.startBuffer()
	for _, req := range w.batch {
		w.appendRecord(req)
	}
	if w.checkpointDue() {
		if err := w.appendCheckpoint(); err != nil {
			// The records are still written; the next batch tries again.
			w.logger.Error("decision log checkpoint not written", "path", w.path, "err", err)
		}
	}
	return w.flush()
}

// writeCheckpoint writes a checkpoint on its own, synced in SyncAlways
// mode.
func (w *Writer) writeCheckpoint() error {
	w.startBuffer()
	if err := w.appendCheckpoint(); err != nil {
		return err
	}
	if err := w.flush(); err != nil {
		return err
	}
	return w.syncState()
}

// flush writes the buffer with one write call and, in SyncAlways mode,
// syncs the file. After a failed write it truncates what was written, or,
// when that fails, keeps the complete records in the chain.
func (w *Writer) flush() error {
	n, err := w.file.Write(w.buffer)
	written := len(w.buffer)
	lines := w.buffer
	if w.rot.size == 0 && n > 0 {
		w.rot.started = w.now()
	}
	if cap(w.buffer) > 4*maxBatchBytes {
		w.buffer = nil // drop the memory of an unusually large record
	}
	if err != nil {
		if w.undoPartialWrite(n) {
			return w.commitFailed("write", err)
		}
		// The bytes stay in the file: the complete records among them
		// are part of the chain, and the next record links to the last.
		w.rot.size += int64(n)
		w.written(n)
		w.saveState()
		w.handOver(lines[:n])
		return w.commitFailed("write", err)
	}
	w.partialTail = false
	w.rot.size += int64(n)
	w.written(written)
	w.saveState()

	if w.sync == SyncAlways {
		// NOTE: after a failed fsync, Linux may already have dropped the
		// unwritten pages and cleared the error, so the records of this
		// batch may be missing even when a later fsync succeeds. Their
		// writers receive the error and must treat them as not recorded.
		if err := w.file.Sync(); err != nil {
			return w.commitFailed("sync", err)
		}
	}

	w.handOver(lines)
	if w.failures > 0 {
		w.logger.Info("decision log commit recovered", "path", w.path, "failed_batches", w.failures)
		w.failures = 0
	}
	return nil
}

// undoPartialWrite truncates the n bytes that a failed write appended, so
// that the file does not end in a partial record, and reports whether the
// file is as before the write. When truncating fails, the next commit
// starts with a newline.
func (w *Writer) undoPartialWrite(n int) bool {
	if n <= 0 {
		return true
	}

	info, err := w.file.Stat()
	if err == nil {
		err = w.file.Truncate(info.Size() - int64(n))
	}
	if err != nil {
		w.partialTail = true
		w.logger.Error("decision log truncate after failed write failed", "path", w.path, "err", err)
		return false
	}
	return true
}

// commitFailed logs the first failed batch of a series and then every
// failureLogInterval-th, and returns err with op as context.
func (w *Writer) commitFailed(op string, err error) error {
	w.failures++
	if w.failures%failureLogInterval == 1 {
		w.logger.Error("decision log commit failed",
			"path", w.path,
			"op", op,
			"records", len(w.batch),
			"failed_batches", w.failures,
			"err", err)
	}
	return fmt.Errorf("%s %s: %w", op, w.path, err)
}

// reopenFile opens w.path again and closes the previous file, after
// ending it with a checkpoint. The chain continues in the new file.
func (w *Writer) reopenFile() error {
	w.closeWithCheckpoint()
	previous, err := w.switchFile()
	if err != nil {
		w.logger.Error("decision log reopen failed", "path", w.path, "err", err)
		return err
	}
	if err := syncAndClose(previous); err != nil {
		// The records written to the previous file were already reported
		// as written, so the error only goes to the log.
		w.logger.Error("decision log close of previous file failed", "path", w.path, "err", err)
	}
	w.logger.Info("decision log reopened", "path", w.path)
	return nil
}

// switchFile opens w.path and makes it the file that receives the
// records. It returns the previous file, which the caller closes.
func (w *Writer) switchFile() (logFile, error) {
	file, partialTail, err := w.openFile()
	if err != nil {
		return nil, err
	}
	size, err := sizeOf(file)
	if err != nil {
		_ = file.Close()
		return nil, err
	}

	previous := w.file
	w.file = file
	w.partialTail = partialTail
	w.rot.opened(w, size)
	return previous, nil
}

// openFile opens w.path and reports whether the file ends in a partial line.
func (w *Writer) openFile() (logFile, bool, error) {
	file, err := w.open(w.path, w.sync == SyncAlways)
	if err != nil {
		return nil, false, err
	}
	partialTail, err := endsMidLine(file)
	if err != nil {
		_ = file.Close()
		return nil, false, err
	}
	return file, partialTail, nil
}

// closeFile syncs and closes the file after the commit goroutine stopped.
func (w *Writer) closeFile() error {
	if err := syncAndClose(w.file); err != nil {
		w.logger.Error("decision log close failed", "path", w.path, "err", err)
		return fmt.Errorf("close decision log: %w", err)
	}
	return nil
}
