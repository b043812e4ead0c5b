package decisionlog

import (
	"fmt"
	"path/filepath"
	"testing"
)

// benchmarkWrite measures Write with parallel writers, 8 per GOMAXPROCS,
// each writing a PDU decision with a masked message body.
func benchmarkWrite(b *testing.B, mode SyncMode) {
	w, err := Open(Options{
		Path:   filepath.Join(b.TempDir(), "decisions.jsonl"),
		Sync:   mode,
		Labels: map[string]string{"id": "bench", "version": "0"},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()

	rec := testRecord("bench")
	rec.Matrix = &Matrix{
		Direction:   "inbound",
		Origin:      "hs1.localhost:8481",
		Destination: "hs2.localhost:8448",
		Endpoint:    "send",
		RoomID:      "!room:hs1.localhost:8481",
		EventID:     "$0123456789abcdef0123456789abcdef0123456789a",
		EventType:   "m.room.message",
	}
	rec.Result = map[string]any{"allow": true, "reasons": []string{}}

	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		own := *rec
		for pb.Next() {
			if err := w.Write(b.Context(), &own); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkWriteAlways(b *testing.B) {
	benchmarkWrite(b, SyncAlways)
}

func BenchmarkWriteNone(b *testing.B) {
	benchmarkWrite(b, SyncNone)
}

// BenchmarkWriteAlwaysWriters shows how group commit scales with the
// number of concurrent writers per GOMAXPROCS.
func BenchmarkWriteAlwaysWriters(b *testing.B) {
	for _, parallelism := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("writers=%dxGOMAXPROCS", parallelism), func(b *testing.B) {
			w, err := Open(Options{Path: filepath.Join(b.TempDir(), "decisions.jsonl")})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			rec := testRecord("bench")

			b.SetParallelism(parallelism)
			b.RunParallel(func(pb *testing.PB) {
				own := *rec
				for pb.Next() {
					if err := w.Write(b.Context(), &own); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
