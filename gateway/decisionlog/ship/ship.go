// Package ship sends decision records to a decision-log service with Open
// Policy Agent's decision log API: each upload is a POST of a
// gzip-compressed JSON array of records to the service's logs path. The
// records are shipped as the decision log wrote them, byte for byte.
//
// A [Shipper] takes each batch that the decision log has committed
// without waiting, and keeps it in a bounded buffer of segment files on
// disk. Its own goroutines upload the buffer in batches, retrying with
// exponential back-off and jitter while the service is down. The buffer
// survives a restart. When it is full, the oldest records are dropped,
// counted and logged.
package ship

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bordergate/bordergate/gateway/internal/lograte"
	"github.com/bordergate/bordergate/gateway/telemetry"
)

// Defaults of Config.
const (
	DefaultResource       = "/logs"
	DefaultTimeout        = 10 * time.Second
	DefaultCloseTimeout   = 5 * time.Second
	DefaultMaxBatchBytes  = 1 << 20
	DefaultFlushInterval  = 5 * time.Second
	DefaultMaxBufferBytes = 256 << 20
	DefaultMinRetryDelay  = time.Second
	DefaultMaxRetryDelay  = time.Minute
)

// MinBufferBytes is the smallest MaxBufferBytes, so that the buffer holds
// several batches of the decision log, which are up to 1 MiB each.
const MinBufferBytes = 4 << 20

// Reasons for dropping records, the reason attribute of the drop counter.
const (
	// DropBufferFull means the buffer reached its size limit, so the
	// oldest records made room for new ones.
	DropBufferFull = "buffer_full"
	// DropBufferError means the records could not be written to the
	// buffer directory, a full disk for example.
	DropBufferError = "buffer_error"
	// DropRejected means the collector refused the record on its own with
	// 400, 413 or 422, so sending it again cannot succeed.
	DropRejected = "rejected"
)

// dropLogInterval and failureLogInterval are the minimum times between two
// log entries of drops and of failed uploads.
const (
	dropLogInterval    = 10 * time.Second
	failureLogInterval = time.Minute
)

// Config configures a Shipper.
type Config struct {
	// URL is the base URL of the decision-log service, http or https,
	// such as "https://collector.example.org:8443". Required.
	URL string
	// Resource is the path of the logs endpoint, appended to URL. Empty
	// means DefaultResource.
	Resource string
	// Dir is the buffer directory. Required; Dir belongs to one Shipper.
	Dir string
	// Sync syncs the buffer with fsync after each write, as the decision
	// log does in its SyncAlways mode.
	Sync bool
	// MaxBufferBytes bounds the buffer on disk. Zero means
	// DefaultMaxBufferBytes.
	MaxBufferBytes int64
	// MaxBatchBytes bounds the uncompressed records of one upload; a
	// record larger than that goes alone. Zero means DefaultMaxBatchBytes.
	MaxBatchBytes int
	// FlushInterval is the longest time a record waits for its batch to
	// fill. Zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// Timeout bounds one upload, from connecting to reading the response.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// CloseTimeout bounds how long Close lets an upload in progress run
	// on, within Timeout. Zero means DefaultCloseTimeout.
	CloseTimeout time.Duration
	// MinRetryDelay and MaxRetryDelay bound the delay before an upload is
	// tried again; it doubles after each failure. Zero means the defaults.
	MinRetryDelay, MaxRetryDelay time.Duration
	// RootCAs verifies the collector's certificate. Nil means the system
	// roots.
	RootCAs *x509.CertPool
	// ClientCertificate returns the client certificate for collectors that
	// require one. Nil presents none.
	ClientCertificate func() (*tls.Certificate, error)
	// TokenFile holds a bearer token sent with each upload. It is read
	// before each upload, so that a rotated token applies at once.
	TokenFile string
	// Logger receives the Shipper's events and errors. Nil discards them.
	Logger *slog.Logger
	// Metrics creates the Shipper's counters. Nil discards them.
	Metrics *telemetry.Metrics
}

// setDefaults checks cfg and fills its zero fields.
func (cfg *Config) setDefaults() error {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid collector URL %q: write an http or https URL such as https://collector.example.org:8443", cfg.URL)
	}
	if cfg.Dir == "" {
		return errors.New("missing buffer directory")
	}
	if cfg.Resource == "" {
		cfg.Resource = DefaultResource
	}
	if cfg.MaxBufferBytes == 0 {
		cfg.MaxBufferBytes = DefaultMaxBufferBytes
	}
	if cfg.MaxBufferBytes < MinBufferBytes {
		return fmt.Errorf("buffer size %d bytes is below the minimum of %d", cfg.MaxBufferBytes, MinBufferBytes)
	}
	setDefault(&cfg.MaxBatchBytes, DefaultMaxBatchBytes)
	setDefault(&cfg.FlushInterval, DefaultFlushInterval)
	setDefault(&cfg.Timeout, DefaultTimeout)
	setDefault(&cfg.CloseTimeout, DefaultCloseTimeout)
	setDefault(&cfg.MinRetryDelay, DefaultMinRetryDelay)
	setDefault(&cfg.MaxRetryDelay, DefaultMaxRetryDelay)
	if cfg.MaxRetryDelay < cfg.MinRetryDelay {
		return fmt.Errorf("maximum retry delay %s is below the minimum %s", cfg.MaxRetryDelay, cfg.MinRetryDelay)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDefault[T int | int64 | time.Duration](field *T, value T) {
	if *field == 0 {
		*field = value
	}
}

// Shipper sends committed decision records to a decision-log service. It
// is safe for concurrent use.
type Shipper struct {
	cfg      Config
	log      *slog.Logger
	spool    *spool
	uploader *uploader
	counters counters

	// mu guards pending, the committed batches not yet in the buffer,
	// oldest first, and pendingBytes, their size.
	mu           sync.Mutex
	pending      [][]byte
	pendingBytes int
	closed       bool

	intake  chan struct{} // signals pending batches to the buffer goroutine
	stored  chan struct{} // signals new records in the buffer to the sender
	stop    context.CancelFunc
	stopped sync.WaitGroup

	dropLog, failureLog lograte.Limiter
}

// counters are the Shipper's telemetry.
type counters struct {
	shipped  metric.Int64Counter
	dropped  metric.Int64Counter
	failures metric.Int64Counter
}

func newCounters(m *telemetry.Metrics) counters {
	return counters{
		shipped: m.Counter("bordergate_decision_log_shipped",
			"Decision records that the decision-log service accepted."),
		dropped: m.Counter("bordergate_decision_log_shipping_dropped",
			"Decision records not shipped, by reason: buffer_full, buffer_error or rejected."),
		failures: m.Counter("bordergate_decision_log_shipping_failures",
			"Failed uploads to the decision-log service, by reason: network, timeout, server_error, client_error or rejected."),
	}
}

// New opens the buffer in cfg.Dir, which may hold records of an earlier
// run, and starts shipping them.
func New(cfg Config) (*Shipper, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("decision log shipping: %w", err)
	}
	segmentBytes := min(cfg.MaxBufferBytes/8, 16<<20)
	sp, notes, err := openSpool(cfg.Dir, cfg.MaxBufferBytes, segmentBytes, cfg.Sync)
	if err != nil {
		return nil, fmt.Errorf("decision log shipping: %w", err)
	}
	s := &Shipper{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "decisionlog_ship"),
		spool:    sp,
		uploader: newUploader(&cfg),
		counters: newCounters(cfg.Metrics),
		intake:   make(chan struct{}, 1),
		stored:   make(chan struct{}, 1),
	}
	s.dropLog.Interval = dropLogInterval
	s.failureLog.Interval = failureLogInterval
	for _, note := range notes {
		s.log.Warn("decision log shipping buffer repaired", "dir", cfg.Dir, "note", note)
	}

	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.stopped.Add(2)
	go s.runIntake(ctx)
	go s.runSender(ctx)
	s.log.Info("decision log shipping started", "url", s.uploader.url, "dir", cfg.Dir, "buffered_bytes", sp.unsent())
	return s, nil
}

// Committed takes a batch of records that the decision log has written:
// complete JSON lines, each ended by a newline. It copies lines and
// returns at once, whatever the state of the collector or the buffer, so
// that it can run in the decision log's commit goroutine. When more than
// one buffer segment of batches waits to reach the disk, the oldest are
// dropped and counted.
func (s *Shipper) Committed(lines []byte) {
	if len(lines) == 0 {
		return
	}
	batch := bytes.Clone(lines)
	limit := int(s.spool.segmentBytes)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.pending = append(s.pending, batch)
	s.pendingBytes += len(batch)
	dropped := 0
	for s.pendingBytes > limit && len(s.pending) > 1 {
		dropped += bytes.Count(s.pending[0], []byte{'\n'})
		s.pendingBytes -= len(s.pending[0])
		s.pending[0] = nil
		s.pending = s.pending[1:]
	}
	s.mu.Unlock()

	if dropped > 0 {
		s.dropped(DropBufferFull, dropped, nil)
	}
	select {
	case s.intake <- struct{}{}:
	default:
	}
}

// runIntake moves committed batches into the buffer until ctx ends, and
// then once more.
func (s *Shipper) runIntake(ctx context.Context) {
	defer s.stopped.Done()
	for {
		select {
		case <-s.intake:
			s.store()
		case <-ctx.Done():
			s.store()
			return
		}
	}
}

// store appends the pending batches to the buffer.
func (s *Shipper) store() {
	s.mu.Lock()
	batches := s.pending
	s.pending, s.pendingBytes = nil, 0
	s.mu.Unlock()

	for _, batch := range batches {
		dropped, err := s.spool.appendLines(batch)
		if dropped > 0 {
			s.dropped(DropBufferFull, dropped, nil)
		}
		if err != nil {
			s.dropped(DropBufferError, bytes.Count(batch, []byte{'\n'}), err)
		}
	}
	if len(batches) > 0 {
		select {
		case s.stored <- struct{}{}:
		default:
		}
	}
}

// dropped counts and logs n dropped records.
func (s *Shipper) dropped(reason string, n int, err error) {
	s.counters.dropped.Add(context.Background(), int64(n), metric.WithAttributes(attribute.String("reason", reason)))
	suppressed, ok := s.dropLog.Allow(time.Now())
	if !ok {
		return
	}
	attrs := []any{"reason", reason, "count", n, "suppressed", suppressed, "dir", s.cfg.Dir}
	if err != nil {
		attrs = append(attrs, "err", err)
	}
	s.log.Error("decision records dropped from shipping", attrs...)
}

// Close stops shipping. The batches handed over so far are written to the
// buffer, and the records that were not shipped yet stay there for the
// next start. Close lets an upload in progress end, for at most
// Config.CloseTimeout, so that a batch the collector took is not sent
// again.
func (s *Shipper) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.stop()
	s.stopped.Wait()
	err := s.spool.close()
	s.log.Info("decision log shipping stopped", "buffered_bytes", s.spool.unsent())
	if err != nil {
		return fmt.Errorf("close decision log shipping buffer: %w", err)
	}
	return nil
}

// backoff returns the delay before retry number attempt, counted from 0:
// the minimum delay doubled attempt times and capped at the maximum. A
// random part of up to a half is taken off, so that gateways that lost the
// collector together do not retry together. A Retry-After from the
// collector raises the delay, up to the maximum.
func backoff(minDelay, maxDelay time.Duration, attempt int, retryAfter time.Duration) time.Duration {
	delay := maxDelay
	if attempt < 32 && minDelay<<attempt > 0 && minDelay<<attempt < maxDelay {
		delay = minDelay << attempt
	}
	delay -= time.Duration(rand.Int64N(int64(delay/2) + 1))
	if retryAfter > delay {
		delay = min(retryAfter, maxDelay)
	}
	return delay
}
