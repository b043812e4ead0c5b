package decisionlog

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"
)

// fullRecord returns a record with every field set, matching
// testdata/full_record.json.
func fullRecord(t *testing.T) Record {
	t.Helper()
	timestamp, err := time.Parse(time.RFC3339Nano, "2026-03-14T09:26:53.589793238Z")
	if err != nil {
		t.Fatal(err)
	}
	return Record{
		DecisionID: "0f8c6d2e-3b1a-4c5d-9e7f-a1b2c3d4e5f6",
		Timestamp:  timestamp,
		Path:       "bordergate/pdu/decision",
		Labels:     map[string]string{"version": "0.1.0", "id": "gw-1"},
		Bundles:    PolicyBundles("rev-42"),
		TraceID:    "4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:     "00f067aa0ba902b7",
		Matrix: &Matrix{
			Direction:         "inbound",
			Origin:            "hs1.localhost:8481",
			Destination:       "hs2.localhost:8448",
			Endpoint:          "send",
			Method:            "PUT",
			TxnID:             "1700000000000",
			RoomID:            "!room:hs1.localhost:8481",
			RoomVersion:       "10",
			RoomVersionSource: "rooms_table",
			EventID:           "$abc123",
			EventType:         "m.room.message",
			EDUType:           "m.typing",
			Sender:            "@alice:hs1.localhost:8481",
		},
		Allow:      false,
		Action:     ActionWithheld,
		Status:     200,
		WithheldBy: "9d7e5c3a-1b2f-4e6d-8c0a-f1e2d3c4b5a6",
		Error:      "invalid signature",
		Input: map[string]any{
			"pdu":       map[string]any{"type": "m.room.message"},
			"direction": "inbound",
		},
		Result: map[string]any{
			"reasons": []any{"event type not permitted"},
			"allow":   false,
		},
		Erased: []string{"/input/pdu/content/body"},
		Masked: []string{"/input/pdu/content/formatted_body"},
	}
}

// goldenRecord returns testdata/full_record.json without insignificant
// whitespace.
func goldenRecord(t *testing.T) []byte {
	t.Helper()
	indented, err := os.ReadFile(filepath.Join("testdata", "full_record.json"))
	if err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, indented); err != nil {
		t.Fatal(err)
	}
	return compact.Bytes()
}

func TestRecordJSONMatchesGolden(t *testing.T) {
	got, err := json.Marshal(fullRecord(t))
	if err != nil {
		t.Fatal(err)
	}
	want := goldenRecord(t)
	if !bytes.Equal(got, want) {
		t.Errorf("encoded record:\n got %s\nwant %s", got, want)
	}
}

func TestRecordJSONOmitsEmptyFields(t *testing.T) {
	rec := Record{
		DecisionID: "0f8c6d2e-3b1a-4c5d-9e7f-a1b2c3d4e5f6",
		Timestamp:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Path:       "bordergate/request/decision",
		Matrix:     &Matrix{Origin: "hs1.localhost"},
	}
	got, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"decision_id":"0f8c6d2e-3b1a-4c5d-9e7f-a1b2c3d4e5f6",` +
		`"timestamp":"2026-01-02T03:04:05Z","path":"bordergate/request/decision",` +
		`"matrix":{"origin":"hs1.localhost"},"allow":false}`
	if string(got) != want {
		t.Errorf("encoded record:\n got %s\nwant %s", got, want)
	}
}

// pduInput is a policy input struct, to check that records with the same
// input type encode to the same bytes.
type pduInput struct {
	Direction string            `json:"direction"`
	Verified  map[string]bool   `json:"verified"`
	Content   map[string]string `json:"content"`
}

func TestRecordJSONIsDeterministic(t *testing.T) {
	encode := func() []byte {
		rec := fullRecord(t)
		rec.Input = pduInput{
			Direction: "inbound",
			Verified:  map[string]bool{"signatures": true, "hashes": true, "event_id": true, "origin": true},
			Content:   map[string]string{"z": "1", "a": "2", "m": "3", "b": "4"},
		}
		rec.Labels = map[string]string{"z": "1", "a": "2", "m": "3", "id": "gw", "version": "1"}
		encoded, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		return encoded
	}

	first := encode()
	for range 50 {
		if got := encode(); !bytes.Equal(got, first) {
			t.Fatalf("encodings differ:\n%s\n%s", first, got)
		}
	}
}

func TestRecordGoldenDecodes(t *testing.T) {
	var got Record
	if err := json.Unmarshal(goldenRecord(t), &got); err != nil {
		t.Fatal(err)
	}
	want := fullRecord(t)
	// Generic decoding turns the input and result into maps with the same
	// content, and the Matrix pointer must be compared by value.
	if !reflect.DeepEqual(got.Input, want.Input) {
		t.Errorf("input = %#v, want %#v", got.Input, want.Input)
	}
	if !reflect.DeepEqual(got.Result, want.Result) {
		t.Errorf("result = %#v, want %#v", got.Result, want.Result)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded record = %+v, want %+v", got, want)
	}
}

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewIDFormat(t *testing.T) {
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		if !uuidV4.MatchString(id) {
			t.Fatalf("NewID() = %q, not a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("NewID() returned %q twice", id)
		}
		seen[id] = true
	}
}

func TestNewRecordFillsIDAndTime(t *testing.T) {
	before := time.Now()
	rec := NewRecord("bordergate/edu/decision")
	after := time.Now()

	if !uuidV4.MatchString(rec.DecisionID) {
		t.Errorf("DecisionID = %q, not a version 4 UUID", rec.DecisionID)
	}
	if rec.Path != "bordergate/edu/decision" {
		t.Errorf("Path = %q, want bordergate/edu/decision", rec.Path)
	}
	if rec.Timestamp.Location() != time.UTC {
		t.Errorf("Timestamp location = %v, want UTC", rec.Timestamp.Location())
	}
	if rec.Timestamp.Before(before) || rec.Timestamp.After(after) {
		t.Errorf("Timestamp = %v, want between %v and %v", rec.Timestamp, before, after)
	}
}
