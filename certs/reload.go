package certs

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is the default of [ReloadOptions.Interval].
const DefaultReloadInterval = 30 * time.Second

// ReloadOptions configures how a [ReloadingKeyPair] or [ReloadingPool]
// watches its files. Zero values select the defaults.
type ReloadOptions struct {
	// Interval is the minimum time between two checks of the files that
	// run when the value is read. Default [DefaultReloadInterval].
	Interval time.Duration

	// OnError, if not nil, receives the error of such a check when the files
	// changed but could not be loaded. The previous value stays in use, and
	// the same broken contents are reported once. It runs on the goroutine
	// that read the value, often a TLS handshake, so it must not block.
	// Errors of an explicit Reload are returned and not passed to OnError.
	OnError func(error)

	// Now returns the current time for the check interval. Default
	// [time.Now].
	Now func() time.Time
}

// ReloadingKeyPair is a certificate chain and private key read from PEM
// files, reread without a restart when the files change. It is safe for
// concurrent use.
//
// Reading the certificate checks the files at most once per
// [ReloadOptions.Interval]. That check compares the identity, size and
// modification time of each file after following symbolic links, so a file
// replaced by rename or by swapping a symbolic link, as Kubernetes secret
// volumes do, is seen. An in-place rewrite that keeps the size within the
// file system's timestamp granularity is seen only by
// [ReloadingKeyPair.Reload], which always reads the contents and compares
// their SHA-256 hash. New contents that fail to parse, or a key that does
// not match the certificate, leave the previous pair in use.
type ReloadingKeyPair struct {
	files *watchedFiles[tls.Certificate]
}

// NewReloadingKeyPair loads the certificate chain in certFile and the
// private key in keyFile, which must match its first certificate. Errors
// name the file at fault.
func NewReloadingKeyPair(certFile, keyFile string, opts ReloadOptions) (*ReloadingKeyPair, error) {
	parse := func(contents [][]byte) (*tls.Certificate, error) {
		chain, err := parseCertificates(certFile, contents[0])
		if err != nil {
			return nil, err
		}
		key, err := parsePrivateKey(keyFile, contents[1])
		if err != nil {
			return nil, err
		}
		pair, err := newKeyPair(certFile, keyFile, chain, key)
		if err != nil {
			return nil, err
		}
		return &pair, nil
	}
	files := []watchedFile{{certFile, "certificate file"}, {keyFile, "key file"}}
	watched, err := newWatchedFiles("key pair", files, parse, opts)
	if err != nil {
		return nil, err
	}
	return &ReloadingKeyPair{files: watched}, nil
}

// Certificate returns the current key pair. Callers must not modify it.
func (kp *ReloadingKeyPair) Certificate() *tls.Certificate {
	return kp.files.current()
}

// GetCertificate returns the current key pair, for
// [tls.Config.GetCertificate].
func (kp *ReloadingKeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return kp.files.current(), nil
}

// GetClientCertificate returns the current key pair, for
// [tls.Config.GetClientCertificate] on a client that presents it to peers
// requiring mutual TLS.
func (kp *ReloadingKeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return kp.files.current(), nil
}

// Reload reads both files now and switches to them if their contents
// changed. On error the previous pair stays in use.
func (kp *ReloadingKeyPair) Reload() error {
	return kp.files.reload()
}

// ReloadingPool is a pool of CA certificates read from a PEM file, reread
// without a restart when the file changes. Changes are detected as for
// [ReloadingKeyPair]. It is safe for concurrent use.
type ReloadingPool struct {
	files *watchedFiles[x509.CertPool]
}

// NewReloadingPool loads every certificate of the PEM file at path. Like
// [LoadCertPool], it fails on a file without certificates and on a
// certificate that does not parse.
func NewReloadingPool(path string, opts ReloadOptions) (*ReloadingPool, error) {
	parse := func(contents [][]byte) (*x509.CertPool, error) {
		certs, err := parseCertificates(path, contents[0])
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		return pool, nil
	}
	watched, err := newWatchedFiles("CA bundle", []watchedFile{{path, "certificate file"}}, parse, opts)
	if err != nil {
		return nil, err
	}
	return &ReloadingPool{files: watched}, nil
}

// Pool returns the current pool. The pointer changes when the file is
// reloaded. Callers must not modify the pool.
func (p *ReloadingPool) Pool() *x509.CertPool {
	return p.files.current()
}

// Reload reads the file now and switches to it if its contents changed. On
// error the previous pool stays in use.
func (p *ReloadingPool) Reload() error {
	return p.files.reload()
}

// watchedFile is one file of a watched set. kind names it in read errors.
type watchedFile struct {
	path string
	kind string
}

// fileState is the result of a stat of one watched file.
type fileState struct {
	info os.FileInfo
	err  string
}

func (s fileState) equal(other fileState) bool {
	if s.info == nil || other.info == nil {
		return s.info == nil && other.info == nil && s.err == other.err
	}
	return os.SameFile(s.info, other.info) &&
		s.info.Size() == other.info.Size() &&
		s.info.ModTime().Equal(other.info.ModTime())
}

// watchedFiles is a value parsed from a set of files, with the bookkeeping
// to notice when the files change.
type watchedFiles[T any] struct {
	what    string // the value, for error messages: "key pair", "CA bundle"
	files   []watchedFile
	parse   func(contents [][]byte) (*T, error)
	every   time.Duration
	now     func() time.Time
	onError func(error)

	value     atomic.Pointer[T]
	nextCheck atomic.Int64 // Unix nanoseconds at which reads check the files again

	// mu serializes checks and loads, and guards the fields below.
	mu        sync.Mutex
	states    []fileState
	loadedSum [sha256.Size]byte
	failedSum [sha256.Size]byte
	failed    bool // failedSum is set
}

func newWatchedFiles[T any](
	what string,
	files []watchedFile,
	parse func(contents [][]byte) (*T, error),
	opts ReloadOptions,
) (*watchedFiles[T], error) {
	w := &watchedFiles[T]{
		what:    what,
		files:   files,
		parse:   parse,
		every:   opts.Interval,
		now:     opts.Now,
		onError: opts.OnError,
	}
	if w.every <= 0 {
		w.every = DefaultReloadInterval
	}
	if w.now == nil {
		w.now = time.Now
	}

	w.states = w.stat()
	contents, err := w.read()
	if err != nil {
		return nil, err
	}
	value, err := parse(contents)
	if err != nil {
		return nil, err
	}
	w.value.Store(value)
	w.loadedSum = digest(contents)
	w.nextCheck.Store(w.now().Add(w.every).UnixNano())
	return w, nil
}

// current returns the value after checking the files when the interval has
// passed. Only one goroutine checks at a time, and the others go on with
// the value they find.
func (w *watchedFiles[T]) current() *T {
	now := w.now()
	if now.UnixNano() >= w.nextCheck.Load() && w.mu.TryLock() {
		err := w.checkLocked(now)
		w.mu.Unlock()
		if err != nil && w.onError != nil {
			w.onError(err)
		}
	}
	return w.value.Load()
}

// checkLocked loads the files if a stat shows that any of them changed
// since the last check.
func (w *watchedFiles[T]) checkLocked(now time.Time) error {
	if now.UnixNano() < w.nextCheck.Load() {
		return nil // checked by another goroutine since current looked
	}
	w.nextCheck.Store(now.Add(w.every).UnixNano())
	states := w.stat()
	if statesEqual(states, w.states) {
		return nil
	}
	w.states = states
	return w.loadLocked(false)
}

func (w *watchedFiles[T]) reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.nextCheck.Store(w.now().Add(w.every).UnixNano())
	w.states = w.stat()
	return w.loadLocked(true)
}

// loadLocked reads the files and parses them when their contents differ
// from the loaded ones. Unless retry is set, contents that already failed
// to parse are skipped, so that a check reports them once.
func (w *watchedFiles[T]) loadLocked(retry bool) error {
	contents, err := w.read()
	if err != nil {
		return w.keepError(err)
	}
	sum := digest(contents)
	if sum == w.loadedSum {
		w.failed = false
		return nil
	}
	if !retry && w.failed && sum == w.failedSum {
		return nil
	}
	value, err := w.parse(contents)
	if err != nil {
		w.failed, w.failedSum = true, sum
		return w.keepError(err)
	}
	w.value.Store(value)
	w.loadedSum = sum
	w.failed = false
	return nil
}

func (w *watchedFiles[T]) keepError(err error) error {
	return fmt.Errorf("reload %s: %w (the previously loaded %s stays in use)", w.what, err, w.what)
}

// stat runs before read, so that a change between the two is seen by the
// next check.
func (w *watchedFiles[T]) stat() []fileState {
	states := make([]fileState, len(w.files))
	for i, f := range w.files {
		info, err := os.Stat(f.path)
		if err != nil {
			states[i] = fileState{err: err.Error()}
			continue
		}
		states[i] = fileState{info: info}
	}
	return states
}

func (w *watchedFiles[T]) read() ([][]byte, error) {
	contents := make([][]byte, len(w.files))
	for i, f := range w.files {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.kind, err)
		}
		contents[i] = data
	}
	return contents, nil
}

func statesEqual(a, b []fileState) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].equal(b[i]) {
			return false
		}
	}
	return true
}

// digest hashes the contents of all files, each prefixed with its length so
// that moving bytes from one file to the next changes the hash.
func digest(contents [][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, data := range contents {
		var length [8]byte
		binary.BigEndian.PutUint64(length[:], uint64(len(data)))
		h.Write(length[:])
		h.Write(data)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
