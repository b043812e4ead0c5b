package policy

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// defaultPolicyDir is the default policy of the repository.
const defaultPolicyDir = "../rego"

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newDefaultEngine loads the default policy with testdata/config.yaml.
func newDefaultEngine(t testing.TB) *Engine {
	t.Helper()
	engine, err := New(context.Background(), Config{
		Paths:    []string{defaultPolicyDir},
		DataFile: "testdata/config.yaml",
	})
	if err != nil {
		t.Fatalf("New(default policy) error = %v", err)
	}
	return engine
}

// writeFiles writes name -> content files under dir, creating directories.
func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func hs1Entry() *AllowlistEntry {
	return &AllowlistEntry{
		ServerName:     "hs1.example",
		Administration: "Ministry One",
		PinnedKeys:     map[string]string{"ed25519:a": "l8Hft5qXKn1vfHrg3p4+W8gELQVo8N13JkluMfmn2sQ"},
		RevokedKeys:    []string{"ed25519:old"},
		Address:        "127.0.0.1:8481",
		Endpoints:      []string{"*"},
		Expires:        "2027-12-31T00:00:00Z",
		Labels:         map[string]string{"classification": "restricted"},
	}
}

func hs3Entry() *AllowlistEntry {
	return &AllowlistEntry{
		ServerName:     "hs3.example",
		Administration: "Agency Three",
		Endpoints:      []string{"send", "backfill"},
	}
}

// sendRequest returns an allowed inbound /send request from hs1.example.
func sendRequest() *RequestInput {
	in := NewRequestInput(DirectionInbound, testNow)
	in.Request = Request{
		Method:        "PUT",
		Path:          "/_matrix/federation/v1/send/1700000000000",
		Endpoint:      "send",
		PathParams:    map[string]string{"txn_id": "1700000000000"},
		Authenticated: true,
		BodySize:      1843,
	}
	in.Origin = Origin{
		ServerName:  "hs1.example",
		KeyID:       "ed25519:a",
		KeySource:   KeySourcePinned,
		Allowlisted: true,
		Entry:       hs1Entry(),
	}
	in.Destination = Destination{ServerName: "hs2.example"}
	return in
}

// messagePDU returns an allowed inbound m.room.message PDU from hs1.example.
func messagePDU() *PDUInput {
	in := NewPDUInput(DirectionInbound, testNow)
	request := sendRequest()
	in.Request = request.Request
	in.Origin = request.Origin
	in.Destination = request.Destination
	in.Transaction = Transaction{TxnID: "1700000000000", PDUCount: 1, EDUCount: 1}
	in.Room = Room{RoomID: "!room:hs1.example", Version: "10", VersionSource: VersionSourceInvite}
	in.PDU = PDU{
		EventID:        "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",
		Type:           "m.room.message",
		Sender:         "@alice:hs1.example",
		SenderServer:   "hs1.example",
		OriginServerTS: 1700000000000,
		Content:        map[string]any{"msgtype": "m.text", "body": "hello"},
		Depth:          12,
		PrevEvents:     []string{"$prev"},
		AuthEvents:     []string{"$create", "$power", "$member"},
	}
	in.Verified = Verified{
		Format:      true,
		Signatures:  true,
		ContentHash: true,
		EventID:     true,
		SignedBy:    []string{"hs1.example"},
	}
	in.SenderEntry = hs1Entry()
	return in
}

// typingEDU returns an allowed inbound m.typing EDU from hs1.example.
func typingEDU() *EDUInput {
	in := NewEDUInput(DirectionInbound, testNow)
	request := sendRequest()
	in.Request = request.Request
	in.Origin = request.Origin
	in.Destination = request.Destination
	in.Transaction = Transaction{TxnID: "1700000000000", PDUCount: 1, EDUCount: 1}
	in.EDU = EDU{
		EDUType: "m.typing",
		Content: map[string]any{"room_id": "!room:hs1.example", "user_id": "@alice:hs1.example", "typing": true},
	}
	in.RoomIDs = []string{"!room:hs1.example"}
	return in
}
