package decisionlog

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"maps"
	"sync"
	"time"
)

// SyncMode selects when a Writer forces records to stable storage.
type SyncMode string

const (
	// SyncAlways makes Write return only after the record has been written
	// and the file synced with fsync. A record whose Write returned nil
	// survives a crash of the process, of the operating system and a power
	// loss, as far as the storage device honours fsync. Concurrent writes are
	// committed as a group with one fsync. This is the default.
	SyncAlways SyncMode = "always"

	// SyncNone makes Write return once the record has been handed to the
	// operating system with write(2). Such records survive a crash of the
	// process, but the records written since the kernel last flushed the
	// file are lost when the operating system crashes or the power fails.
	SyncNone SyncMode = "none"
)

// MaxRecordBytes is the maximum size of one encoded record, newline
// included. Write rejects larger records and Scan rejects longer lines. The
// limit bounds the memory that Scan spends on a corrupt file. A record
// contains one policy input, and Matrix limits a PDU to 65536 bytes, so
// real records are far smaller.
const MaxRecordBytes = 64 << 20

// maxBatchBytes is the size at which the commit goroutine stops adding
// queued records to a batch, so that one write(2) call stays bounded.
const maxBatchBytes = 1 << 20

// queueLength is the capacity of the queue between Write callers and the
// commit goroutine. Write blocks while the queue is full.
const queueLength = 1024

// ErrClosed is returned by Write and Reopen after Close.
var ErrClosed = errors.New("decision log is closed")

// Options configures a Writer.
type Options struct {
	// Path is the file that records are appended to. It is required.
	Path string

	// Sync is SyncAlways or SyncNone. Empty means SyncAlways.
	Sync SyncMode

	// Masker erases values from each record before it is written. Nil means
	// DefaultMasker(). Use NewMasker(nil) to write records unmasked.
	Masker *Masker

	// Logger receives the Writer's own events and errors. Nil discards them.
	Logger *slog.Logger

	// Labels are added to every record for the keys that the record's own
	// Labels do not set, usually "id" and "version" of the gateway instance.
	// Open copies the map.
	Labels map[string]string

	// StatePath is a small file that keeps the chain head, so that the
	// chain continues when the log file was rotated away while the gateway
	// was stopped. Empty means the head is recovered from the log file
	// alone. Two Writers must never share a state file.
	StatePath string

	// Signer signs checkpoint records. Nil means no checkpoints, so nothing
	// proves that the end of the log was not cut off or rewritten.
	Signer *Signer

	// CheckpointRecords is the number of records after which a checkpoint
	// ends the batch that reached it. Zero means DefaultCheckpointRecords;
	// a negative value turns this trigger off.
	CheckpointRecords int

	// CheckpointInterval is the time after the last checkpoint at which a
	// checkpoint is written when records were written since. Zero means
	// DefaultCheckpointInterval; a negative value turns this trigger off.
	CheckpointInterval time.Duration

	// Rotation rotates the file by size or age. The zero value never
	// rotates, which leaves rotation to an external tool and Reopen.
	Rotation Rotation

	// Committed, when set, receives the bytes of each write once they are
	// written as Sync promises: complete records and checkpoints, each
	// ended by a newline, exactly as in the file and chained. It is
	// called from the commit goroutine, so it must copy what it keeps and
	// must not block.
	Committed func(lines []byte)
}

// Defaults of the checkpoint triggers.
const (
	DefaultCheckpointRecords  = 10000
	DefaultCheckpointInterval = time.Minute
)

// Writer appends decision records to a file as JSON Lines, one record per
// line. A Writer is safe for concurrent use. Records are encoded by the
// goroutine that calls Write and written by a single commit goroutine,
// which writes each batch of queued records with one write(2) call and, in
// SyncAlways mode, one fsync. The commit goroutine also links each record
// into the hash chain (chain.go, chainwriter.go), appends signed
// checkpoints and rotates the file (rotate.go).
type Writer struct {
	path   string
	sync   SyncMode
	masker *Masker
	labels map[string]string
	logger *slog.Logger
	open   openFunc
	// committed is Options.Committed.
	committed func(lines []byte)

	maxRecordBytes int // MaxRecordBytes, lowered by tests

	// mu guards closed. Write and Reopen hold it for reading while they
	// queue a request, so that Close can close requests safely.
	mu       sync.RWMutex
	closed   bool
	requests chan *request

	stopped   chan struct{} // closed when the commit goroutine has returned
	closeOnce sync.Once
	closeErr  error

	// now returns the current time; tests replace it.
	now func() time.Time

	// The fields below are owned by the commit goroutine.
	file        logFile
	pending     *request // a reopen request met while collecting a batch
	batch       []*request
	buffer      []byte
	failures    int  // consecutive failed batches, counted to rate-limit log entries
	partialTail bool // the file may end in a partial line from a failed write or a crash

	chain chainWriter
	rot   rotator
	timer *time.Timer // fires at the next checkpoint or rotation deadline
}

// request is one item for the commit goroutine: an encoded record, or a
// request to reopen the file when line is nil.
type request struct {
	line []byte
	body hash.Hash  // the SHA-256 state after the record body, see hashBody
	done chan error // capacity 1 and one send, so the commit goroutine never blocks
}

// Open opens the file at opts.Path for appending, creating it with mode
// 0640 and its missing parent directories with mode 0750, and starts the
// commit goroutine. When an existing file ends in a partial line, left by a
// crash during a write, the first record starts on a new line, so that only
// the partial line is malformed. In SyncAlways mode it also syncs the directories whose
// entries it created, so that the file itself survives a crash.
func Open(opts Options) (*Writer, error) {
	return openWriter(opts, openLogFile)
}

func openWriter(opts Options, open openFunc) (*Writer, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, fmt.Errorf("open decision log: %w", err)
	}

	w := &Writer{
		path:      opts.Path,
		sync:      opts.Sync,
		masker:    opts.Masker,
		labels:    maps.Clone(opts.Labels),
		logger:    opts.Logger.With("component", "decisionlog"),
		open:      open,
		committed: opts.Committed,
		requests:  make(chan *request, queueLength),
		stopped:   make(chan struct{}),
		now:       time.Now,

		maxRecordBytes: MaxRecordBytes,
	}
	w.chain = chainWriter{
		signer:         opts.Signer,
		everyRecords:   opts.CheckpointRecords,
		interval:       opts.CheckpointInterval,
		lastCheckpoint: w.now(),
	}
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	w.rot = rotator{config: opts.Rotation}

	file, partialTail, err := w.openFile()
	if err != nil {
		return nil, fmt.Errorf("open decision log: %w", err)
	}
	w.file = file
	w.partialTail = partialTail
	if err := w.recoverHead(opts.StatePath); err != nil {
		_ = file.Close()
		return nil, fmt.Errorf("open decision log: %w", err)
	}
	if err := w.rot.start(w); err != nil {
		_ = w.chain.closeState()
		_ = file.Close()
		return nil, fmt.Errorf("open decision log: %w", err)
	}

	go w.run()
	w.logger.Info("decision log opened",
		"path", w.path,
		"sync", string(w.sync),
		"seq", w.chain.head.seq,
		"checkpoints", w.chain.signer != nil)
	return w, nil
}

// setDefaults checks opts and fills its zero fields with their defaults.
func (opts *Options) setDefaults() error {
	if opts.Path == "" {
		return errors.New("missing path")
	}
	switch opts.Sync {
	case "":
		opts.Sync = SyncAlways
	case SyncAlways, SyncNone:
	default:
		return fmt.Errorf("invalid sync mode %q, use %q or %q", opts.Sync, SyncAlways, SyncNone)
	}
	if opts.Masker == nil {
		opts.Masker = DefaultMasker()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CheckpointRecords == 0 {
		opts.CheckpointRecords = DefaultCheckpointRecords
	}
	if opts.CheckpointInterval == 0 {
		opts.CheckpointInterval = DefaultCheckpointInterval
	}
	if opts.Rotation.MaxBytes < 0 {
		return fmt.Errorf("invalid rotation size %d, want 0 (off) or a positive number of bytes", opts.Rotation.MaxBytes)
	}
	if opts.Rotation.MaxAge < 0 {
		return fmt.Errorf("invalid rotation age %s, want 0 (off) or a positive duration", opts.Rotation.MaxAge)
	}
	return nil
}

// Write masks a copy of rec, encodes it and appends it to the file. It
// returns nil once the record is written as the Writer's SyncMode promises.
// On the copy, Write fills an empty DecisionID with NewID() and a zero
// Timestamp with the current time. Callers that must report the decision ID
// set it first, as NewRecord does.
//
// An error means the record may be missing from the file. When ctx ends
// while the record is queued, Write returns ctx's error and the record may
// still be written later. An error while encoding rec affects only this
// call, never the other records of the same batch.
func (w *Writer) Write(ctx context.Context, rec *Record) error {
	if rec == nil {
		return errors.New("write decision record: nil record")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write decision record %s: %w", rec.DecisionID, err)
	}

	line, err := w.encode(rec)
	if err != nil {
		return fmt.Errorf("write decision record %s: %w", rec.DecisionID, err)
	}

	req := &request{line: line, body: hashBody(line[:len(line)-2]), done: make(chan error, 1)}
	if err := w.enqueue(ctx, req); err != nil {
		return fmt.Errorf("write decision record %s: %w", rec.DecisionID, err)
	}
	select {
	case err := <-req.done:
		if err != nil {
			return fmt.Errorf("write decision record %s: %w", rec.DecisionID, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("write decision record %s: %w", rec.DecisionID, context.Cause(ctx))
	}
}

// Reopen closes the file and opens the same path again, so that writing
// continues in a new file after a tool such as logrotate has renamed the old
// one. Records queued before the call go to the old file. When the path
// cannot be opened, Reopen returns the error and the Writer keeps writing to
// the old file.
func (w *Writer) Reopen() error {
	req := &request{done: make(chan error, 1)}
	if err := w.enqueue(context.Background(), req); err != nil {
		return fmt.Errorf("reopen decision log: %w", err)
	}
	if err := <-req.done; err != nil {
		return fmt.Errorf("reopen decision log: %w", err)
	}
	return nil
}

// Close writes the queued records, syncs and closes the file and stops the
// commit goroutine. Further calls return the result of the first. Write and
// Reopen return ErrClosed after Close.
func (w *Writer) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		close(w.requests)
		w.mu.Unlock()

		<-w.stopped
		w.closeErr = errors.Join(w.closeFile(), w.chain.finishState(w.chain.head))
		w.rot.stop()
		w.logger.Info("decision log closed", "path", w.path, "seq", w.chain.head.seq)
	})
	return w.closeErr
}

// encode returns the masked JSON encoding of rec with a trailing newline.
func (w *Writer) encode(rec *Record) ([]byte, error) {
	filled := *rec
	if filled.DecisionID == "" {
		filled.DecisionID = NewID()
	}
	if filled.Timestamp.IsZero() {
		filled.Timestamp = time.Now()
	}
	filled.Timestamp = filled.Timestamp.UTC()
	filled.Labels = mergeLabels(rec.Labels, w.labels)
	filled.Chain = nil
	if filled.Path == CheckpointPath || filled.Checkpoint != nil {
		return nil, fmt.Errorf("path %s and the checkpoint member are reserved for the writer's own checkpoints", CheckpointPath)
	}

	line, err := appendRecord(nil, &filled, w.masker)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	if len(line)+maxChainLen > w.maxRecordBytes {
		return nil, fmt.Errorf("encoded record is %d bytes with its chain member, more than the maximum of %d",
			len(line)+maxChainLen, w.maxRecordBytes)
	}
	return line, nil
}

// encodeLine returns the JSON encoding of rec with a trailing newline,
// unmasked. The commit goroutine encodes its checkpoint records with it.
func encodeLine(rec *Record) ([]byte, error) {
	line, err := marshalNoHTMLEscape(rec)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return append(line, '\n'), nil
}

// mergeLabels returns own plus the defaults for the keys that own does not
// set, without modifying either map.
func mergeLabels(own, defaults map[string]string) map[string]string {
	if len(defaults) == 0 {
		return own
	}
	merged := maps.Clone(defaults)
	maps.Copy(merged, own)
	return merged
}

// enqueue hands req to the commit goroutine.
func (w *Writer) enqueue(ctx context.Context, req *request) error {
	w.mu.RLock()
	defer w.mu.RUnlock()

	if w.closed {
		return ErrClosed
	}
	select {
	case w.requests <- req:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
