package decisionlog

import (
	"encoding/json"
	"fmt"
	"hash"
	"path/filepath"
	"strings"
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

// BenchmarkEncodeRecord measures encoding one masked PDU decision record
// whose input is a typed policy input, as the gateway writes it, with
// appendRecord and with the decoded-copy path of Masker.Apply and
// encoding/json that it replaced.
func BenchmarkEncodeRecord(b *testing.B) {
	rec := pduRecord()
	masker := DefaultMasker()
	b.Run("impl=append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := appendRecord(nil, rec, masker); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			masked, err := masker.Apply(*rec)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(&masked); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchEntry, benchParty and benchInput have the shape of the policy
// package's PDU input, which this package does not import.
type benchEntry struct {
	ServerName string            `json:"server_name"`
	PinnedKeys map[string]string `json:"pinned_keys"`
	Endpoints  []string          `json:"endpoints"`
	EventTypes []string          `json:"event_types"`
	Expires    string            `json:"expires"`
	Expired    bool              `json:"expired"`
	Labels     map[string]string `json:"labels"`
}

type benchParty struct {
	ServerName  string      `json:"server_name"`
	KeyID       string      `json:"key_id"`
	Allowlisted bool        `json:"allowlisted"`
	Entry       *benchEntry `json:"entry"`
}

type benchInput struct {
	Version     int               `json:"version"`
	Kind        string            `json:"kind"`
	Direction   string            `json:"direction"`
	Request     map[string]any    `json:"request"`
	Origin      benchParty        `json:"origin"`
	Destination benchParty        `json:"destination"`
	Now         string            `json:"now"`
	Room        map[string]string `json:"room"`
	PDU         map[string]any    `json:"pdu"`
	Verified    map[string]any    `json:"verified"`
	SenderEntry *benchEntry       `json:"sender_entry"`
}

// pduRecord returns the record of an allowed m.room.message of about 1 KiB.
func pduRecord() *Record {
	entry := &benchEntry{
		ServerName: "hs1.localhost:8481",
		PinnedKeys: map[string]string{"ed25519:a": "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ"},
		Endpoints:  []string{"*"},
		Labels:     map[string]string{"classification": "restricted"},
	}
	rec := NewRecord("bordergate/pdu/decision")
	rec.Allow, rec.Action = true, ActionForward
	rec.Bundles = PolicyBundles("0f3c9a7e5d1b2c4a6e8f0a1b3c5d7e9f0f3c9a7e5d1b2c4a6e8f0a1b3c5d7e9f")
	rec.Labels = map[string]string{"id": "gw-1", "server_name": "hs2.localhost:8448"}
	rec.Matrix = &Matrix{
		Direction: "inbound", Origin: "hs1.localhost:8481", Destination: "hs2.localhost:8448",
		Endpoint: "send", Method: "PUT", TxnID: "1700000000000", RoomID: "!room:hs1.localhost:8481",
		RoomVersion: "10", EventID: "$0123456789abcdef0123456789abcdef0123456789a", EventType: "m.room.message",
		Sender: "@alice:hs1.localhost:8481",
	}
	rec.Input = &benchInput{
		Version: 1, Kind: "pdu", Direction: "inbound",
		Request:     map[string]any{"method": "PUT", "path": "/_matrix/federation/v1/send/1700000000000", "endpoint": "send", "authenticated": true},
		Origin:      benchParty{ServerName: "hs1.localhost:8481", KeyID: "ed25519:a", Allowlisted: true, Entry: entry},
		Destination: benchParty{ServerName: "hs2.localhost:8448"},
		Now:         "2026-03-01T12:00:00.123456789Z",
		Room:        map[string]string{"room_id": "!room:hs1.localhost:8481", "version": "10", "version_source": "seed"},
		PDU: map[string]any{
			"event_id": "$0123456789abcdef0123456789abcdef0123456789a",
			"type":     "m.room.message",
			"sender":   "@alice:hs1.localhost:8481",
			"content": map[string]any{
				"msgtype":        "m.text",
				"body":           strings.Repeat("a message of about one kibibyte ", 16),
				"format":         "org.matrix.custom.html",
				"formatted_body": strings.Repeat("<b>a message</b> ", 16),
			},
			"prev_events": []string{"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			"auth_events": []string{"$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBE", "$C", "$D"},
		},
		Verified:    map[string]any{"format": true, "signatures": true, "content_hash": true, "event_id": true, "signed_by": []string{"hs1.localhost:8481"}},
		SenderEntry: entry,
	}
	rec.Result = map[string]any{"allow": true, "reasons": []string{}}
	return rec
}

// benchmarkLine is a PDU decision record of about 1,600 bytes, the mean size of
// the records of a /send transaction with a masked message body.
var benchmarkLine = []byte(`{"decision_id":"8444b439-f141-4195-9395-7c240945062f","timestamp":"2026-03-14T00:00:04.32Z",` +
	`"path":"bordergate/pdu/decision","input":{"padding":"` + strings.Repeat("x", 1600-130) + `"}}` + "\n")

// BenchmarkCommitBuffer is the commit goroutine's work per record without
// the chain: appending the encoded record to the batch buffer.
func BenchmarkCommitBuffer(b *testing.B) {
	buf := make([]byte, 0, 64<<10)
	b.SetBytes(int64(len(benchmarkLine)))
	for b.Loop() {
		buf = append(buf[:0], benchmarkLine...)
	}
}

// BenchmarkCommitBufferChained is the same work with the chain: the
// writer's hashBody and the commit goroutine's splice of the chain member.
// The difference to BenchmarkCommitBuffer is what the chain adds per
// record, and the difference to BenchmarkHashBody what it adds to the
// commit goroutine, which is serial.
func BenchmarkCommitBufferChained(b *testing.B) {
	buf := make([]byte, 0, 64<<10)
	var h head
	b.SetBytes(int64(len(benchmarkLine)))
	for b.Loop() {
		body := hashBody(benchmarkLine[:len(benchmarkLine)-2])
		buf, h = h.appendLinkedHashed(buf[:0], benchmarkLine, body)
	}
}

// BenchmarkChainCommit is the commit goroutine's work per record with the
// chain, the body already hashed by the writer.
func BenchmarkChainCommit(b *testing.B) {
	buf := make([]byte, 0, 64<<10)
	var h head
	bodies := make([]hash.Hash, 1024)
	b.SetBytes(int64(len(benchmarkLine)))
	for i := 0; b.Loop(); i++ {
		if i%len(bodies) == 0 {
			b.StopTimer()
			for j := range bodies {
				bodies[j] = hashBody(benchmarkLine[:len(benchmarkLine)-2])
			}
			b.StartTimer()
		}
		buf, h = h.appendLinkedHashed(buf[:0], benchmarkLine, bodies[i%len(bodies)])
	}
}

// BenchmarkHashBody is the part of the chain's work that the writer's own
// goroutine does.
func BenchmarkHashBody(b *testing.B) {
	b.SetBytes(int64(len(benchmarkLine)))
	for b.Loop() {
		hashBody(benchmarkLine[:len(benchmarkLine)-2])
	}
}
