package ship

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// sender is the state of the goroutine that uploads the buffer.
type sender struct {
	s *Shipper
	// attempt counts the failed uploads in a row.
	attempt int
	// limit is the batch size in bytes; it shrinks while a refused record
	// is searched for.
	limit int
	// waitingSince is when the oldest unsent record started to wait for
	// its batch to fill, zero when nothing waits.
	waitingSince time.Time
	timer        *time.Timer
}

// runSender uploads the buffer until ctx ends: a batch goes when it holds
// MaxBatchBytes or its oldest record has waited FlushInterval.
func (s *Shipper) runSender(ctx context.Context) {
	defer s.stopped.Done()
	snd := &sender{s: s, limit: s.cfg.MaxBatchBytes, timer: time.NewTimer(time.Hour)}
	snd.timer.Stop()
	for ctx.Err() == nil {
		if !snd.step(ctx) {
			return
		}
	}
}

// step waits for a batch or sends one, and reports whether to go on.
func (snd *sender) step(ctx context.Context) bool {
	s := snd.s
	unsent := s.spool.unsent()
	if unsent == 0 {
		snd.waitingSince = time.Time{}
		return snd.wait(ctx, -1)
	}
	if snd.waitingSince.IsZero() {
		snd.waitingSince = time.Now()
	}
	if unsent < int64(snd.limit) && snd.limit == s.cfg.MaxBatchBytes {
		if remaining := s.cfg.FlushInterval - time.Since(snd.waitingSince); remaining > 0 {
			return snd.wait(ctx, remaining)
		}
	}

	lines, end, err := s.spool.read(snd.limit)
	if err != nil {
		s.log.Error("decision log shipping buffer unreadable", "dir", s.cfg.Dir, "err", err)
		return snd.wait(ctx, backoff(s.cfg.MinRetryDelay, s.cfg.MaxRetryDelay, snd.attempt, 0))
	}
	if len(lines) == 0 {
		return true
	}
	// An upload in flight when the shipper stops runs on for up to
	// CloseTimeout, so that a batch the collector took is not sent again
	// after a restart.
	uploadCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(s.cfg.CloseTimeout, cancel) })
	err = s.uploader.upload(uploadCtx, lines)
	stop()
	cancel()
	if err == nil {
		snd.accepted(lines, end)
		return ctx.Err() == nil
	}
	if ctx.Err() != nil {
		return false
	}
	return snd.failed(ctx, lines, end, err)
}

// accepted advances the buffer past a batch the collector took.
func (snd *sender) accepted(lines []byte, end position) {
	s := snd.s
	if err := s.spool.ack(end); err != nil {
		// The cursor on disk lags, so these records are sent again after
		// a restart and the collector receives their decision IDs twice.
		s.log.Error("decision log shipping cursor not saved", "dir", s.cfg.Dir, "err", err)
	}
	s.counters.shipped.Add(context.Background(), int64(bytes.Count(lines, []byte{'\n'})))
	if snd.attempt > 0 {
		s.log.Info("decision log shipping recovered", "url", s.uploader.url, "failed_uploads", snd.attempt)
	}
	snd.attempt, snd.limit, snd.waitingSince = 0, s.cfg.MaxBatchBytes, time.Time{}
}

// failed handles a failed upload of lines and reports whether to go on.
func (snd *sender) failed(ctx context.Context, lines []byte, end position, err error) bool {
	s := snd.s
	var uploadErr *uploadError
	if !errors.As(err, &uploadErr) {
		uploadErr = &uploadError{outcome: retry, reason: "network", err: err}
	}
	s.counters.failures.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", uploadErr.reason)))
	records := bytes.Count(lines, []byte{'\n'})
	if uploadErr.outcome != rejected || records > 1 {
		if lost := s.spool.abandon(); lost > 0 {
			s.dropped(DropBufferFull, lost, nil)
		}
	}

	if uploadErr.outcome == rejected {
		if records > 1 {
			// Halve the batch until the refused record goes alone.
			snd.limit = max(len(lines)/2, 1)
			return true
		}
		if ackErr := s.spool.ack(end); ackErr != nil {
			s.log.Error("decision log shipping cursor not saved", "dir", s.cfg.Dir, "err", ackErr)
		}
		s.log.Error("decision record rejected by the collector, not shipped",
			"decision_id", decisionID(lines), "status", uploadErr.status, "url", s.uploader.url)
		s.dropped(DropRejected, 1, err)
		snd.limit = s.cfg.MaxBatchBytes
		return true
	}

	delay := backoff(s.cfg.MinRetryDelay, s.cfg.MaxRetryDelay, snd.attempt, uploadErr.retryAfter)
	snd.attempt++
	if suppressed, ok := s.failureLog.Allow(time.Now()); ok {
		s.log.Warn("decision log upload failed, retrying",
			"url", s.uploader.url, "reason", uploadErr.reason, "records", records,
			"retry_in", delay.String(), "failed_uploads", snd.attempt, "suppressed", suppressed, "err", err)
	}
	return snd.wait(ctx, delay)
}

// wait waits for d, or for new records in the buffer when d is negative,
// and reports whether ctx is still live. New records end a wait for a
// batch to fill but not a retry delay.
func (snd *sender) wait(ctx context.Context, d time.Duration) bool {
	if d < 0 {
		select {
		case <-snd.s.stored:
			return true
		case <-ctx.Done():
			return false
		}
	}
	snd.timer.Reset(d)
	defer snd.timer.Stop()
	stored := snd.s.stored
	if snd.attempt > 0 {
		stored = nil
	}
	select {
	case <-snd.timer.C:
	case <-stored:
	case <-ctx.Done():
		return false
	}
	return true
}

// decisionID returns the decision_id of a one-record batch, for the log.
func decisionID(line []byte) string {
	var rec struct {
		DecisionID string `json:"decision_id"`
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return ""
	}
	return rec.DecisionID
}
