package decisionlog

import "fmt"

// failureLogInterval is how many consecutive failed batches the commit
// goroutine counts between two log entries, after logging the first.
const failureLogInterval = 100

// run is the commit goroutine. It takes the first queued request, adds the
// records queued behind it to the same batch, writes and syncs the batch,
// and then reports the result to every writer in the batch. Records queued
// during one commit form the next batch, so under concurrent load one fsync
// covers many records.
func (w *Writer) run() {
	defer close(w.stopped)

	for {
		req := w.pending
		w.pending = nil
		if req == nil {
			var ok bool
			req, ok = <-w.requests
			if !ok {
				return
			}
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
		if !more {
			return
		}
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

// commit writes w.batch with one write call and, in SyncAlways mode, syncs
// the file.
func (w *Writer) commit() error {
	w.buffer = w.buffer[:0]
	if w.partialTail {
		// End the partial line that a failed write or a crash left
		// behind, so that only that line is malformed and not the first
		// record of this batch too.
		w.buffer = append(w.buffer, '\n')
	}
	for _, req := range w.batch {
		w.buffer = append(w.buffer, req.line...)
	}

	n, err := w.file.Write(w.buffer)
	if cap(w.buffer) > 4*maxBatchBytes {
		w.buffer = nil // drop the memory of an unusually large record
	}
	if err != nil {
		w.undoPartialWrite(n)
		return w.commitFailed("write", err)
	}
	w.partialTail = false

	if w.sync == SyncAlways {
		// NOTE: after a failed fsync, Linux may already have dropped the
		// unwritten pages and cleared the error, so the records of this
		// batch may be missing even when a later fsync succeeds. Their
		// writers receive the error and must treat them as not recorded.
		if err := w.file.Sync(); err != nil {
			return w.commitFailed("sync", err)
		}
	}

	if w.failures > 0 {
		w.logger.Info("decision log commit recovered", "path", w.path, "failed_batches", w.failures)
		w.failures = 0
	}
	return nil
}

// undoPartialWrite truncates the n bytes that a failed write appended, so
// that the file does not end in a partial record. When that fails, the next
// commit starts with a newline.
func (w *Writer) undoPartialWrite(n int) {
	if n <= 0 {
		return
	}

	info, err := w.file.Stat()
	if err == nil {
		err = w.file.Truncate(info.Size() - int64(n))
	}
	if err != nil {
		w.partialTail = true
		w.logger.Error("decision log truncate after failed write failed", "path", w.path, "err", err)
	}
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

// reopenFile opens w.path again and closes the previous file.
func (w *Writer) reopenFile() error {
	file, partialTail, err := w.openFile()
	if err != nil {
		w.logger.Error("decision log reopen failed", "path", w.path, "err", err)
		return err
	}

	previous := w.file
	w.file = file
	w.partialTail = partialTail
	if err := syncAndClose(previous); err != nil {
		// The records written to the previous file were already reported
		// as written, so the error only goes to the log.
		w.logger.Error("decision log close of previous file failed", "path", w.path, "err", err)
	}
	w.logger.Info("decision log reopened", "path", w.path)
	return nil
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
