package decisionlog

import (
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

// errInjected is the error that faultFile returns for an injected fault.
var errInjected = errors.New("injected fault")

// faultFile wraps a real *os.File, counts the calls the commit goroutine
// makes and injects faults through its hooks. The hooks are set before the
// file is used and never changed.
type faultFile struct {
	*os.File

	// failWrite returns, for the write call with the given number (from 1),
	// how many bytes to write before failing, or -1 to write normally.
	failWrite func(call int) int
	// beforeSync runs before each sync (number from 1). A non-nil result
	// is returned instead of syncing.
	beforeSync func(call int) error
	// failTruncate makes Truncate fail.
	failTruncate bool

	mu         sync.Mutex
	writes     [][]byte // bytes passed to each write call
	syncs      int
	syncedSize int64 // file size at the last successful sync
}

func (f *faultFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.writes = append(f.writes, append([]byte(nil), p...))
	call := len(f.writes)
	f.mu.Unlock()

	if f.failWrite != nil {
		if partial := f.failWrite(call); partial >= 0 {
			n, _ := f.File.Write(p[:partial])
			return n, errInjected
		}
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	f.mu.Lock()
	f.syncs++
	call := f.syncs
	f.mu.Unlock()

	if f.beforeSync != nil {
		if err := f.beforeSync(call); err != nil {
			return err
		}
	}
	if err := f.File.Sync(); err != nil {
		return err
	}
	info, err := f.File.Stat()
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.syncedSize = info.Size()
	f.mu.Unlock()
	return nil
}

func (f *faultFile) Truncate(size int64) error {
	if f.failTruncate {
		return errInjected
	}
	return f.File.Truncate(size)
}

// counts returns the number of write and sync calls so far.
func (f *faultFile) counts() (writes, syncs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.writes), f.syncs
}

// synced returns the file size at the last successful sync.
func (f *faultFile) synced() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.syncedSize
}

// faultOpener opens real files wrapped in faultFile.
type faultOpener struct {
	configure func(*faultFile) // sets the hooks of each new file, may be nil

	mu       sync.Mutex
	files    []*faultFile
	failOpen error // returned by the next open calls while set
}

func (o *faultOpener) open(path string, syncDirs bool) (logFile, error) {
	o.mu.Lock()
	failOpen := o.failOpen
	o.mu.Unlock()
	if failOpen != nil {
		return nil, failOpen
	}

	file, err := openLogFile(path, syncDirs)
	if err != nil {
		return nil, err
	}
	wrapped := &faultFile{File: file.(*os.File)}
	if o.configure != nil {
		o.configure(wrapped)
	}

	o.mu.Lock()
	o.files = append(o.files, wrapped)
	o.mu.Unlock()
	return wrapped, nil
}

// file returns the i-th opened file.
func (o *faultOpener) file(t *testing.T, i int) *faultFile {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if i >= len(o.files) {
		t.Fatalf("opened %d files, want at least %d", len(o.files), i+1)
	}
	return o.files[i]
}

func (o *faultOpener) setFailOpen(err error) {
	o.mu.Lock()
	o.failOpen = err
	o.mu.Unlock()
}

// syncGate holds a sync call until the test releases it, so that writes
// queue up behind a commit in progress.
type syncGate struct {
	reached     chan struct{}
	released    chan struct{}
	releaseOnce sync.Once
}

func newSyncGate() *syncGate {
	return &syncGate{reached: make(chan struct{}), released: make(chan struct{})}
}

// hold marks the gate as reached and blocks until release. It must be
// called at most once.
func (g *syncGate) hold() {
	close(g.reached)
	<-g.released
}

// release lets hold return. Later calls do nothing.
func (g *syncGate) release() {
	g.releaseOnce.Do(func() { close(g.released) })
}

// waitReached waits until hold has been called, failing the test after 10
// seconds.
func (g *syncGate) waitReached(t *testing.T) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(10 * time.Second):
		t.Fatal("sync not reached after 10s")
	}
}
