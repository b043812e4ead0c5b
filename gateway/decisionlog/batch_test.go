package decisionlog

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestWriteBatchWritesAll(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	var recs []*Record
	for i := range 20 {
		recs = append(recs, testRecord(fmt.Sprintf("r%d", i)))
	}
	if err := w.WriteBatch(t.Context(), recs); err != nil {
		t.Fatalf("WriteBatch: %v", err)
	}
	got := readRecords(t, path)
	if len(got) != len(recs) {
		t.Fatalf("file contains %d records, want %d", len(got), len(recs))
	}
	for i, rec := range got {
		if want := fmt.Sprintf("r%d", i); rec.DecisionID != want {
			t.Errorf("record %d has decision_id %q, want %q", i, rec.DecisionID, want)
		}
	}
}

func TestWriteBatchOneCommit(t *testing.T) {
	gate := newSyncGate()
	opener := &faultOpener{configure: func(f *faultFile) {
		f.beforeSync = func(call int) error {
			if call == 1 {
				gate.hold()
			}
			return nil
		}
	}}
	w, _ := openTest(t, Options{}, opener)
	t.Cleanup(gate.release)

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.Write(t.Context(), testRecord("first")); err != nil {
			t.Errorf("Write: %v", err)
		}
	})
	gate.waitReached(t)
	// While the first commit is in fsync, the whole batch queues up behind
	// it and is committed with the next single write and fsync.
	batch := []*Record{testRecord("a"), testRecord("b"), testRecord("c")}
	wg.Go(func() {
		if err := w.WriteBatch(t.Context(), batch); err != nil {
			t.Errorf("WriteBatch: %v", err)
		}
	})
	waitQueued(t, w, len(batch))
	gate.release()
	wg.Wait()

	writes, syncs := opener.file(t, 0).counts()
	if writes != 2 {
		t.Errorf("%d write calls, want 2", writes)
	}
	if syncs != 2 {
		t.Errorf("%d sync calls, want 2", syncs)
	}
}

func TestWriteBatchBadRecordKeepsOthers(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	bad := testRecord("bad")
	bad.Result = map[string]any{"unencodable": make(chan int)}
	err := w.WriteBatch(t.Context(), []*Record{testRecord("a"), bad, nil, testRecord("b")})
	if err == nil {
		t.Fatal("WriteBatch error = nil, want errors for the bad and the nil record")
	}
	if !strings.Contains(err.Error(), "write decision record bad") {
		t.Errorf("error %q does not name the unencodable record", err)
	}
	if !strings.Contains(err.Error(), "nil record") {
		t.Errorf("error %q does not mention the nil record", err)
	}
	if n := len(readRecords(t, path)); n != 2 {
		t.Errorf("file contains %d records, want the 2 good ones", n)
	}
}

func TestWriteBatchCanceledContext(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := w.WriteBatch(ctx, []*Record{testRecord("a")}); err == nil {
		t.Error("WriteBatch with a canceled context: error = nil")
	}
	if n := len(readRecords(t, path)); n != 0 {
		t.Errorf("file contains %d records, want none", n)
	}
}

func TestWriteBatchAfterClose(t *testing.T) {
	w, _ := openTest(t, Options{}, nil)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteBatch(t.Context(), []*Record{testRecord("a")}); err == nil || !strings.Contains(err.Error(), ErrClosed.Error()) {
		t.Errorf("WriteBatch after Close = %v, want %v", err, ErrClosed)
	}
}
