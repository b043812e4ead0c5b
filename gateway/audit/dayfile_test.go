package audit

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// Environment variables of TestWriteDayFile.
const (
	dayFileEnv    = "BORDERGATE_AUDIT_DAYFILE"
	dayRecordsEnv = "BORDERGATE_AUDIT_DAYFILE_RECORDS"
)

// TestWriteDayFile writes a decision log that stands for one busy day, for
// measuring audit query and audit verify (docs/decision-records.md). It
// runs only when BORDERGATE_AUDIT_DAYFILE names the file to write;
// BORDERGATE_AUDIT_DAYFILE_RECORDS sets the number of records (default
// 1,000,000). The records go through the real Writer, with the default
// masking and a checkpoint every 10,000 records.
//
// The traffic: /send transactions from 20 servers, each with one request
// record, 1 to 7 PDU records and 0 to 3 EDU records, in 2,000 rooms, with
// one transaction in 50 denied. Timestamps are spread evenly over
// 2026-03-14 UTC.
func TestWriteDayFile(t *testing.T) {
	path := os.Getenv(dayFileEnv)
	if path == "" {
		t.Skip("set " + dayFileEnv + " to write a day file")
	}
	total := 1_000_000
	if n := os.Getenv(dayRecordsEnv); n != "" {
		var err error
		if total, err = strconv.Atoi(n); err != nil {
			t.Fatalf("%s: %v", dayRecordsEnv, err)
		}
	}
	w, err := decisionlog.Open(decisionlog.Options{
		Path:               path,
		Sync:               decisionlog.SyncNone,
		Signer:             newSigner(t),
		CheckpointInterval: -1,
		Labels:             map[string]string{"server_name": "example.org", "id": "gw-1"},
	})
	if err != nil {
		t.Fatal(err)
	}

	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	step := 24 * time.Hour / time.Duration(total)
	records := make(chan *decisionlog.Record, 1024)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for rec := range records {
				if err := w.Write(t.Context(), rec); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < total; {
		for _, rec := range dayTransaction(rng, n) {
			rec.Timestamp = day.Add(time.Duration(n) * step)
			records <- rec
			n++
		}
	}
	close(records)
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// dayTransaction returns the records of one /send transaction.
func dayTransaction(rng *rand.Rand, n int) []*decisionlog.Record {
	origin := fmt.Sprintf("hs%d.gouv.example", rng.IntN(20))
	room := fmt.Sprintf("!room%04d:%s", rng.IntN(2000), origin)
	denied := rng.IntN(50) == 0
	txnID := strconv.Itoa(1700000000000 + n)
	matrix := func() *decisionlog.Matrix {
		return &decisionlog.Matrix{Direction: "inbound", Origin: origin, Destination: "example.org",
			Endpoint: "send", Method: "PUT", TxnID: txnID}
	}

	request := decisionlog.NewRecord("bordergate/request/decision")
	request.Matrix = matrix()
	request.Allow, request.Action, request.Status = true, decisionlog.ActionForward, 200
	request.Input = map[string]any{"version": 1, "kind": "request", "direction": "inbound", "endpoint": "send",
		"origin": dayOrigin(origin), "tls": map[string]any{"client_certificate": true, "verified_names": []string{origin}}}
	request.Result = map[string]any{"allow": true, "reasons": []string{}}
	out := []*decisionlog.Record{request}

	deniedID := ""
	for i := range 1 + rng.IntN(7) {
		pdu := decisionlog.NewRecord("bordergate/pdu/decision")
		pdu.Matrix = matrix()
		pdu.Matrix.RoomID, pdu.Matrix.RoomVersion, pdu.Matrix.RoomVersionSource = room, "10", "stored"
		pdu.Matrix.EventID = fmt.Sprintf("$%043d", n*8+i)
		pdu.Matrix.EventType = dayEventTypes[rng.IntN(len(dayEventTypes))]
		pdu.Matrix.Sender = fmt.Sprintf("@user%d:%s", rng.IntN(500), origin)
		pdu.Allow, pdu.Action = true, decisionlog.ActionForward
		reasons := []string{}
		if denied && i == 0 {
			pdu.Matrix.EventType = "com.example.forbidden"
			pdu.Allow, pdu.Action = false, decisionlog.ActionDenied
			reasons = []string{"event type com.example.forbidden is not permitted in restricted room " + room}
			deniedID = pdu.DecisionID
		}
		pdu.Input = dayPDUInput(origin, room, pdu.Matrix)
		pdu.Result = map[string]any{"allow": pdu.Allow, "reasons": reasons}
		out = append(out, pdu)
	}
	for range rng.IntN(4) {
		edu := decisionlog.NewRecord("bordergate/edu/decision")
		edu.Matrix = matrix()
		edu.Matrix.EDUType = "m.typing"
		edu.Matrix.RoomID = room
		edu.Allow, edu.Action = true, decisionlog.ActionForward
		edu.Input = map[string]any{"version": 1, "kind": "edu", "origin": dayOrigin(origin),
			"edu": map[string]any{"edu_type": "m.typing", "content": map[string]any{"room_id": room, "typing": true}}}
		edu.Result = map[string]any{"allow": true, "reasons": []string{}}
		out = append(out, edu)
	}
	if denied {
		for _, rec := range out[1:] {
			if rec.Action == decisionlog.ActionForward {
				rec.Action, rec.WithheldBy = decisionlog.ActionWithheld, deniedID
			}
		}
		request.Action, request.WithheldBy = decisionlog.ActionAnswered, deniedID
	}
	return out
}

var dayEventTypes = []string{"m.room.message", "m.room.message", "m.room.message", "m.room.encrypted",
	"m.reaction", "m.room.member", "m.room.redaction"}

func dayOrigin(origin string) map[string]any {
	return map[string]any{"server_name": origin, "key_id": "ed25519:a_AbCd", "key_source": "pinned", "allowlisted": true,
		"entry": map[string]any{"server_name": origin, "administration": "Ministère de l'exemple",
			"endpoints": []string{"*"}, "require_mtls": true}}
}

func dayPDUInput(origin, room string, m *decisionlog.Matrix) map[string]any {
	return map[string]any{
		"version": 1, "kind": "pdu", "direction": "inbound", "endpoint": "send",
		"origin": dayOrigin(origin),
		"room":   map[string]any{"room_id": room, "version": "10", "version_source": "stored", "restricted": false},
		"pdu": map[string]any{
			"type": m.EventType, "sender": m.Sender, "room_id": room, "origin_server_ts": 1773446400000,
			"depth": 4242, "content": map[string]any{"msgtype": "m.text", "body": "a message of some length, erased by masking"},
			"prev_events": []string{"$Kp0yMZ4hRkLrTQ2fV8xg3nWc1aB5dE7uI9oJ6sH2lQ"},
			"auth_events": []string{"$Aa0yMZ4hRkLrTQ2fV8xg3nWc1aB5dE7uI9oJ6sH2lQ", "$Bb0yMZ4hRkLrTQ2fV8xg3nWc1aB5dE7uI9oJ6sH2lQ",
				"$Cc0yMZ4hRkLrTQ2fV8xg3nWc1aB5dE7uI9oJ6sH2lQ"},
			"hashes":     map[string]any{"sha256": "JhIdy0B5VpMWb6Dn0x8ZLrkHOuImD6sc2MtSuxLYYmo"},
			"signatures": map[string]any{origin: map[string]any{"ed25519:a_AbCd": "QmFzZTY0IHNpZ25hdHVyZSBvZiB0aGUgZXZlbnQgYnkgdGhlIG9yaWdpbiBzZXJ2ZXIgaW4gdW5wYWRkZWQgYmFzZTY0IGZvcm0"}},
		},
		"verified": map[string]any{"format": true, "signatures": true, "content_hash": true, "event_id": true,
			"signed_by": []string{origin}, "redacted_for_hash": false},
		"sender_local": false,
	}
}
