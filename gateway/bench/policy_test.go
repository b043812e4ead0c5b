package bench_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// newDefaultEngine loads the repository's default policy without a data
// file, as a fresh installation runs it, with its decision cache.
func newDefaultEngine(tb testing.TB) *policy.Engine {
	tb.Helper()
	return newEngine(tb, 0)
}

// newEngine loads the default policy with a decision cache of cacheSize
// decisions per kind; a negative size turns the cache off.
func newEngine(tb testing.TB, cacheSize int) *policy.Engine {
	tb.Helper()
	dir, err := filepath.Abs("../../rego")
	if err != nil {
		tb.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Paths: []string{dir}, DecisionCacheSize: cacheSize})
	if err != nil {
		tb.Fatalf("load default policy: %v", err)
	}
	return engine
}

var policyNow = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func remoteEntry() *policy.AllowlistEntry {
	return &policy.AllowlistEntry{
		ServerName:     remoteName,
		Administration: "Benchmark",
		PinnedKeys:     map[string]string{remoteKeyID: base64.RawStdEncoding.EncodeToString(remotePublic())},
		Endpoints:      []string{"*"},
		Labels:         map[string]string{"classification": "restricted"},
	}
}

// sendRequestInput is the request decision input of an authenticated
// /send from the allow-listed remote server.
func sendRequestInput() *policy.RequestInput {
	in := policy.NewRequestInput(policy.DirectionInbound, policyNow)
	in.Request = policy.Request{
		Method:        "PUT",
		Path:          "/_matrix/federation/v1/send/1700000000000",
		Endpoint:      "send",
		PathParams:    map[string]string{"txn_id": "1700000000000"},
		Authenticated: true,
		BodySize:      51200,
	}
	in.Origin = policy.Origin{
		ServerName: remoteName, KeyID: remoteKeyID, KeySource: policy.KeySourcePinned,
		Allowlisted: true, Entry: remoteEntry(),
	}
	in.Destination = policy.Destination{ServerName: localName}
	return in
}

// messagePDUInput is the PDU decision input of a verified m.room.message
// of that /send.
func messagePDUInput() *policy.PDUInput {
	request := sendRequestInput()
	in := policy.NewPDUInput(policy.DirectionInbound, policyNow)
	in.Request, in.Origin, in.Destination = request.Request, request.Origin, request.Destination
	in.Transaction = policy.Transaction{TxnID: "1700000000000", PDUCount: 50}
	in.Room = policy.Room{RoomID: benchRoomID, Version: roomVersion, VersionSource: policy.VersionSourceSeed}
	in.PDU = policy.PDU{
		EventID:        "$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",
		Type:           "m.room.message",
		Sender:         "@alice:" + remoteName,
		SenderServer:   remoteName,
		OriginServerTS: 1700000000000,
		Content:        map[string]any{"msgtype": "m.text", "body": "hello"},
		Depth:          12,
		PrevEvents:     []string{"$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		AuthEvents:     []string{"$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBE"},
	}
	in.Verified = policy.Verified{Format: true, Signatures: true, ContentHash: true, EventID: true, SignedBy: []string{remoteName}}
	in.SenderEntry = remoteEntry()
	return in
}

// BenchmarkPolicyDecide measures one decision of the default policy: the
// request decision of a /send and the decision on one of its PDUs. With
// cache=hit, the decision cache holds the decision, as it does for all but
// the first of the PDUs of one type from one sender in one room; with
// cache=off, every decision is evaluated.
func BenchmarkPolicyDecide(b *testing.B) {
	ctx := context.Background()
	inputs := []struct {
		kind  policy.Kind
		input any
	}{
		{policy.KindRequest, sendRequestInput()},
		{policy.KindPDU, messagePDUInput()},
	}
	for _, mode := range []struct {
		name      string
		cacheSize int
	}{{"hit", 0}, {"off", -1}} {
		engine := newEngine(b, mode.cacheSize)
		for _, in := range inputs {
			b.Run("kind="+string(in.kind)+"/cache="+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					decision, err := engine.Decide(ctx, in.kind, in.input)
					if err != nil || !decision.Allow {
						b.Fatalf("Decide(%s) = %+v, %v; want allowed", in.kind, decision, err)
					}
				}
			})
		}
	}
}

// allowlistEntries returns total allow-list entries, one in a hundred of
// them globs: three in four "*.globN.example" and one in four
// "hs??.globN.example".
func allowlistEntries(total int) []store.Entry {
	globs := total / 100
	entries := make([]store.Entry, 0, total)
	for i := range total - globs {
		key := sha256.Sum256(fmt.Appendf(nil, "key %d", i))
		entries = append(entries, store.Entry{
			ServerName: fmt.Sprintf("hs%d.org%d.example:%d", i, i%977, 8000+i%1000),
			Endpoints:  []string{"*"},
			PinnedKeys: map[string]string{"ed25519:a": base64.RawStdEncoding.EncodeToString(key[:])},
		})
	}
	for i := range globs {
		pattern := fmt.Sprintf("*.glob%d.example", i)
		if i%4 == 0 {
			pattern = fmt.Sprintf("hs??.glob%d.example", i)
		}
		entries = append(entries, store.Entry{ServerName: pattern, Endpoints: []string{"*"}})
	}
	return entries
}

// allowlistSizes are the allow-list sizes of BenchmarkAllowlistLookup.
var allowlistSizes = []int{1_000, 10_000, 100_000}

// lookupCases are names looked up in every allow-list size. Each size has
// the entries and globs they name.
var lookupCases = []struct {
	name       string
	serverName string
	found      bool
}{
	{"exact", "hs424.org424.example:8424", true},
	{"other_port", "hs424.org424.example:1", false},
	{"glob_star", "host.sub.glob5.example:8448", true},
	{"glob_question", "hs12.glob4.example", true},
	{"miss", "unknown.server.example.com:8448", false},
}

// BenchmarkAllowlistLookup measures store.Lookup on allow-lists of 1,000,
// 10,000 and 100,000 entries, 1% of them globs, to show how a lookup grows
// with the number of entries.
func BenchmarkAllowlistLookup(b *testing.B) {
	for _, size := range allowlistSizes {
		s, err := store.New(store.Options{})
		if err != nil {
			b.Fatalf("store.New: %v", err)
		}
		if err := s.ReplaceAllowlist(allowlistEntries(size)); err != nil {
			b.Fatalf("ReplaceAllowlist(%d entries): %v", size, err)
		}
		for _, c := range lookupCases {
			b.Run(fmt.Sprintf("entries=%d/name=%s", size, c.name), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, ok := s.Lookup(c.serverName); ok != c.found {
						b.Fatalf("Lookup(%q) found = %v, want %v", c.serverName, ok, c.found)
					}
				}
			})
		}
		_ = s.Close()
	}
}
