package events

import (
	"context"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// TestHotPathAllocations pins the allocation counts of the verification
// hot path so that a change that adds allocations fails here. The bounds
// are the counts measured with Go 1.26 on linux/amd64.
func TestHotPathAllocations(t *testing.T) {
	rv := mustVersion(t, "10")
	v := mustSign(t, mustParse(t, messageJSON(rv)), rv, hs1Key)
	pdu := mustParsePDU(t, v, rv)
	lookup := newMemLookup(hs1Key)
	ctx := context.Background()
	sigs, _ := v.Get("signatures")
	server, _ := sigs.Get(hs1Key.server)
	sig, _ := server.GetString(hs1Key.keyID)
	raw := [64]byte(mustDecodeSignature(t, sig))
	pub := []byte(hs1Key.public())
	buf := make([]byte, 0, 4096)
	encoded := canonicaljson.Encode(v)

	cases := []struct {
		name string
		max  float64
		run  func()
	}{
		{name: "verifyEd25519", max: 0, run: func() {
			if !verifyEd25519(pub, pdu.signedBytes, raw[:]) {
				t.Fatal("signature does not verify")
			}
		}},
		{name: "checkSignature", max: 0, run: func() {
			if status, err := pdu.checkSignature(ctx, lookup, hs1Key.server, hs1Key.keyID, sig); status != SigValid {
				t.Fatalf("status %s, err %v", status, err)
			}
		}},
		{name: "ContentHash", max: 0, run: func() { _ = ContentHash(v) }},
		{name: "appendRedacted", max: 0, run: func() { buf = appendRedacted(buf[:0], v, rv, false) }},
		// One copy of the input, plus one slice per object and array, and
		// a few more under the race detector, whose pools drop items.
		{name: "canonicaljson.Parse", max: 12, run: func() {
			if _, err := canonicaljson.Parse(encoded); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "ParsePDU", max: 8, run: func() {
			if _, err := ParsePDU(v, rv); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "Verify", max: 6, run: func() {
			if res := Verify(ctx, pdu, lookup); res.Err != nil {
				t.Fatal(res.Err)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run() // warm the key cache and the buffer pool
			got := testing.AllocsPerRun(100, tc.run)
			t.Logf("%s: %v allocations", tc.name, got)
			if got > tc.max {
				t.Errorf("%s allocates %v times per run, want at most %v", tc.name, got, tc.max)
			}
		})
	}
}

func mustDecodeSignature(t testing.TB, text string) []byte {
	t.Helper()
	var raw [66]byte
	n, err := decodeBase64(raw[:], text)
	if err != nil || n != 64 {
		t.Fatalf("decode signature %q: %d bytes, %v", text, n, err)
	}
	return raw[:n]
}
