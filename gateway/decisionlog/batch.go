package decisionlog

import (
	"context"
	"errors"
	"fmt"
)

// WriteBatch writes recs as Write writes each one, and returns once all are
// written as the Writer's SyncMode promises. It encodes them in the calling
// goroutine and queues them all before it waits, so that they share one
// commit where the queue allows, without a goroutine per record. The error
// joins the errors of the records that may be missing from the file; an
// error while encoding one record affects only that record.
func (w *Writer) WriteBatch(ctx context.Context, recs []*Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write decision records: %w", err)
	}
	var errs []error
	queued := make([]*request, 0, len(recs))
	ids := make([]string, 0, len(recs))
	for _, rec := range recs {
		if rec == nil {
			errs = append(errs, errors.New("write decision record: nil record"))
			continue
		}
		line, err := w.encode(rec)
		if err != nil {
			errs = append(errs, fmt.Errorf("write decision record %s: %w", rec.DecisionID, err))
			continue
		}
		req := &request{line: line, done: make(chan error, 1)}
		if err := w.enqueue(ctx, req); err != nil {
			errs = append(errs, fmt.Errorf("write decision record %s: %w", rec.DecisionID, err))
			continue
		}
		queued = append(queued, req)
		ids = append(ids, rec.DecisionID)
	}
	for i, req := range queued {
		select {
		case err := <-req.done:
			if err != nil {
				errs = append(errs, fmt.Errorf("write decision record %s: %w", ids[i], err))
			}
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("write decision record %s: %w", ids[i], context.Cause(ctx)))
		}
	}
	return errors.Join(errs...)
}
