package bench_test

import (
	"testing"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy"
)

// messageRecord returns the decision record of the m.room.message PDU of
// the benchmark /send, as the gateway writes it before masking.
func messageRecord() *decisionlog.Record {
	rec := decisionlog.NewRecord("bordergate/pdu/decision")
	rec.Allow, rec.Action = true, decisionlog.ActionForward
	rec.Labels = map[string]string{"id": "gw-1", "server_name": localName}
	rec.Bundles = decisionlog.PolicyBundles("0f3c9a7e5d1b2c4a6e8f0a1b3c5d7e9f0f3c9a7e5d1b2c4a6e8f0a1b3c5d7e9f")
	rec.Matrix = &decisionlog.Matrix{
		Direction: "inbound", Origin: remoteName, Destination: localName, Endpoint: "send",
		Method: "PUT", TxnID: "1700000000000", RoomID: benchRoomID, RoomVersion: roomVersion,
	}
	rec.Input = messagePDUInput()
	rec.Result = map[string]any{"allow": true, "reasons": []string{}}
	return rec
}

// BenchmarkEncodeRecordMask measures encoding one masked PDU record: with
// the fixed default pointer list, with the default Rego mask policy
// (rego/mask.rego) through the engine's cache, and with that policy
// evaluated for every record, which is what the cache saves. A 50-PDU
// /send writes 51 records.
func BenchmarkEncodeRecordMask(b *testing.B) {
	rec := messageRecord()
	regoMasker := func(b *testing.B, engine *policy.Engine) *decisionlog.Masker {
		m, err := decisionlog.NewPolicyMasker(engine, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	maskers := []struct {
		name   string
		masker func(b *testing.B) *decisionlog.Masker
	}{
		{"mask=pointers", func(*testing.B) *decisionlog.Masker { return decisionlog.DefaultMasker() }},
		{"mask=rego-cached", func(b *testing.B) *decisionlog.Masker { return regoMasker(b, newDefaultEngine(b)) }},
		{"mask=rego-uncached", func(b *testing.B) *decisionlog.Masker { return regoMasker(b, newEngine(b, -1)) }},
	}
	for _, tc := range maskers {
		b.Run(tc.name, func(b *testing.B) {
			m := tc.masker(b)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decisionlog.Encode(rec, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
