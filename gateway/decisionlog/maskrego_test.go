package decisionlog_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// defaultEngine loads the repository's default policy, mask rule included.
func defaultEngine(t testing.TB) *policy.Engine {
	t.Helper()
	dir, err := filepath.Abs("../../rego")
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Paths: []string{dir}})
	if err != nil {
		t.Fatalf("load default policy: %v", err)
	}
	return engine
}

var maskNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

// maskedRecords returns records of each kind, with every field that the
// default masking erases present in at least one of them.
func maskedRecords() map[string]*decisionlog.Record {
	records := map[string]*decisionlog.Record{}
	add := func(name, path string, input any) {
		rec := decisionlog.NewRecord(path)
		rec.DecisionID = name
		rec.Timestamp = maskNow
		rec.Allow, rec.Action = true, decisionlog.ActionForward
		rec.Labels = map[string]string{"id": "gw-1", "server_name": "example.org"}
		rec.Matrix = &decisionlog.Matrix{Direction: "inbound", Origin: "hs1.example.org", Endpoint: "send"}
		rec.Input = input
		rec.Result = map[string]any{"allow": true, "reasons": []string{}}
		records[name] = rec
	}

	message := policy.NewPDUInput(policy.DirectionInbound, maskNow)
	message.PDU = policy.PDU{EventID: "$m", Type: "m.room.message", Sender: "@alice:hs1.example.org",
		Content: map[string]any{"msgtype": "m.text", "body": "hello <b>", "format": "org.matrix.custom.html", "formatted_body": "<b>hello</b>"}}
	add("message", "bordergate/pdu/decision", message)

	encrypted := policy.NewPDUInput(policy.DirectionOutbound, maskNow)
	encrypted.PDU = policy.PDU{EventID: "$e", Type: "m.room.encrypted",
		Content: map[string]any{"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "AwgAEnAC", "session_id": "s"}}
	add("encrypted", "bordergate/pdu/decision", encrypted)

	everything := policy.NewPDUInput(policy.DirectionInbound, maskNow)
	everything.PDU = policy.PDU{EventID: "$x", Type: "com.example.all",
		Content: map[string]any{"body": "b", "formatted_body": "f", "ciphertext": "c", "other": []any{"kept"}}}
	add("everything", "bordergate/pdu/decision", everything)

	toDevice := policy.NewEDUInput(policy.DirectionInbound, maskNow)
	toDevice.EDU = policy.EDU{EDUType: "m.direct_to_device",
		Content: map[string]any{"message_id": "1", "type": "m.room_key_request", "messages": map[string]any{"@bob:example.org": map[string]any{"*": map[string]any{"secret": "k"}}}}}
	add("to-device", "bordergate/edu/decision", toDevice)

	typing := policy.NewEDUInput(policy.DirectionInbound, maskNow)
	typing.EDU = policy.EDU{EDUType: "m.typing", Content: map[string]any{"room_id": "!r:example.org", "typing": true}}
	add("typing", "bordergate/edu/decision", typing)

	request := policy.NewRequestInput(policy.DirectionInbound, maskNow)
	request.Request = policy.Request{Method: "PUT", Path: "/_matrix/federation/v1/send/1", Endpoint: "send"}
	add("request", "bordergate/request/decision", request)

	add("decoded JSON input", "bordergate/pdu/decision", map[string]any{"pdu": map[string]any{"content": map[string]any{"body": "a decoded body"}}})

	refused := decisionlog.NewRecord("bordergate/request/decision")
	refused.DecisionID, refused.Timestamp = "refused", maskNow
	refused.Action, refused.Error = decisionlog.ActionRejected, "invalid signature"
	records["refused without input"] = refused
	return records
}

// TestDefaultRegoMaskMatchesPointers checks that the default Rego mask
// policy writes the same bytes as the fixed default pointer list did.
func TestDefaultRegoMaskMatchesPointers(t *testing.T) {
	engine := defaultEngine(t)
	regoMasker, err := decisionlog.NewPolicyMasker(engine, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	records := maskedRecords()
	for name, rec := range records {
		t.Run(name, func(t *testing.T) {
			want, err := decisionlog.Encode(rec, decisionlog.DefaultMasker())
			if err != nil {
				t.Fatal(err)
			}
			got, err := decisionlog.Encode(rec, regoMasker)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("with the default Rego mask:\n%s\nwith the default pointers:\n%s", got, want)
			}
			for _, secret := range []string{"hello", "AwgAEnAC", `"secret"`, "decoded body"} {
				if bytes.Contains(got, []byte(secret)) {
					t.Errorf("record %s still holds %s", got, secret)
				}
			}
		})
	}
	hits, misses := engine.MaskCacheStats()
	if misses != 1 || hits != uint64(len(records)-1) {
		t.Errorf("MaskCacheStats() = %d hits, %d misses; want %d hits and 1 miss: one evaluation for all records",
			hits, misses, len(records)-1)
	}
}

func TestRegoMaskUpsertInRecord(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "decisions.rego"), `package bordergate.request
decision := {"allow": true, "reasons": []}
`)
	for _, kind := range []string{"pdu", "edu"} {
		writeFile(t, filepath.Join(dir, kind+".rego"), "package bordergate."+kind+"\ndecision := {\"allow\": true, \"reasons\": []}\n")
	}
	writeFile(t, filepath.Join(dir, "mask.rego"), `package system.log
mask contains {"op": "upsert", "path": "/input/pdu/sender", "value": "@redacted:example.org"} if input.path == "bordergate/pdu/decision"
mask contains "/input/pdu/content/body"
`)
	engine, err := policy.New(context.Background(), policy.Config{Paths: []string{dir}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := decisionlog.NewPolicyMasker(engine, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := decisionlog.Encode(maskedRecords()["message"], m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"sender":"@redacted:example.org"`, `"erased":["/input/pdu/content/body"]`, `"masked":["/input/pdu/sender"]`} {
		if !strings.Contains(string(line), want) {
			t.Errorf("record %s lacks %s", line, want)
		}
	}
	if strings.Contains(string(line), "@alice") {
		t.Errorf("record %s still names the sender", line)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
