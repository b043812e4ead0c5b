package events

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// benchEvents returns the signed events of the benchmarks: a small message
// and a message of MaxEventSize bytes, both in room version 10.
func benchEvents(b *testing.B) map[string]canonicaljson.Value {
	rv := mustVersion(b, "10")
	return map[string]canonicaljson.Value{
		"small": mustSign(b, mustParse(b, messageJSON(rv)), rv, hs1Key),
		"64KiB": eventOfSize(b, rv, MaxEventSize, 0),
	}
}

// benchmarkVerify measures the checks of one event: ParsePDU and Verify
// from a parsed JSON value, and the whole path from the received bytes.
func benchmarkVerify(b *testing.B, name string) {
	rv := mustVersion(b, "10")
	v := benchEvents(b)[name]
	data := canonicaljson.Encode(v)
	lookup := newMemLookup(hs1Key)
	ctx := context.Background()

	b.Run("value", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			pdu, err := ParsePDU(v, rv)
			if err != nil {
				b.Fatal(err)
			}
			if res := Verify(ctx, pdu, lookup); res.Err != nil || !res.ContentHashValid {
				b.Fatalf("verify: %v, hash valid %v", res.Err, res.ContentHashValid)
			}
		}
	})
	b.Run("bytes", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			parsed, err := canonicaljson.Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			pdu, err := ParsePDU(parsed, rv)
			if err != nil {
				b.Fatal(err)
			}
			if res := Verify(ctx, pdu, lookup); res.Err != nil {
				b.Fatal(res.Err)
			}
		}
	})
}

func BenchmarkVerifySmall(b *testing.B) { benchmarkVerify(b, "small") }

func BenchmarkVerify64KiB(b *testing.B) { benchmarkVerify(b, "64KiB") }

// BenchmarkSignatureOnly measures ed25519.Verify alone over the bytes the
// signature covers, the floor of the Verify benchmarks.
func BenchmarkSignatureOnly(b *testing.B) {
	rv := mustVersion(b, "10")
	for _, name := range []string{"small", "64KiB"} {
		v := benchEvents(b)[name]
		pdu := mustParsePDU(b, v, rv)
		sigs, _ := v.Get("signatures")
		server, _ := sigs.Get(hs1Key.server)
		text, _ := server.GetString(hs1Key.keyID)
		sig, err := base64.RawStdEncoding.DecodeString(text)
		if err != nil {
			b.Fatal(err)
		}
		pub := hs1Key.public()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !ed25519.Verify(pub, pdu.signedBytes, sig) {
					b.Fatal("signature does not verify")
				}
			}
		})
	}
}
