package events

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// transactionPDUs returns n signed message PDUs of room version 10 with
// distinct bodies. The signers of PDU i are signersOf(i).
func transactionPDUs(t testing.TB, n int, signersOf func(i int) []signer) []*PDU {
	t.Helper()
	rv := mustVersion(t, "10")
	pdus := make([]*PDU, n)
	for i := range pdus {
		content := fmt.Sprintf(`{"body":"message %d","msgtype":"m.text"}`, i)
		v := mustSign(t, mustParse(t, eventJSON(rv, "m.room.message", content)), rv, signersOf(i)...)
		pdus[i] = mustParsePDU(t, v, rv)
	}
	return pdus
}

func TestVerifyBatchMatchesVerifyWith(t *testing.T) {
	rv := mustVersion(t, "10")
	tampered := mustSign(t, mustParse(t, messageJSON(rv)), rv, hs1Key).
		With("content", mustParse(t, `{"body":"changed","msgtype":"m.text"}`))

	cases := []struct {
		name      string
		signersOf func(i int) []signer
		extra     []canonicaljson.Value
	}{
		{name: "all valid", signersOf: func(int) []signer { return []signer{hs1Key} }},
		{name: "one wrong key", signersOf: func(i int) []signer {
			if i == 7 {
				return []signer{wrongHS1}
			}
			return []signer{hs1Key}
		}},
		{name: "mixed outcomes", signersOf: func(i int) []signer {
			switch i % 4 {
			case 0:
				return []signer{hs1Key, hs1OtherKey}
			case 1:
				return []signer{wrongHS1}
			case 2:
				return []signer{hs2Key}
			}
			return []signer{hs1Key}
		}, extra: []canonicaljson.Value{tampered}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pdus := transactionPDUs(t, 20, tc.signersOf)
			for _, v := range tc.extra {
				pdus = append(pdus, mustParsePDU(t, v, rv))
			}
			lookup := newMemLookup(hs1Key, hs1OtherKey, hs2Key)
			ctx := context.Background()
			opts := VerifyOptions{Origin: "hs1"}

			for mode, got := range map[string][]Result{
				"VerifyBatch": VerifyBatch(ctx, pdus, lookup, opts),
				"batched":     verifyBatch(ctx, pdus, lookup, opts, verifyChecksBatched),
			} {
				if len(got) != len(pdus) {
					t.Fatalf("%s returned %d results for %d PDUs", mode, len(got), len(pdus))
				}
				for i, pdu := range pdus {
					want := VerifyWith(ctx, pdu, lookup, opts)
					if errText(got[i].Err) != errText(want.Err) {
						t.Errorf("%s, PDU %d: Err = %v, want %v", mode, i, got[i].Err, want.Err)
					}
					got[i].Err, want.Err = nil, nil
					if !reflect.DeepEqual(got[i], want) {
						t.Errorf("%s, PDU %d: result %+v, VerifyWith %+v", mode, i, got[i], want)
					}
				}
			}
		})
	}
}

func TestVerifyBatchEmpty(t *testing.T) {
	if got := VerifyBatch(context.Background(), nil, newMemLookup(), VerifyOptions{}); len(got) != 0 {
		t.Errorf("VerifyBatch(nil) = %v, want no results", got)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// BenchmarkVerifyBatch measures a transaction of 50 small PDUs: VerifyBatch,
// the screened Ed25519 batch it does not use, and VerifyWith on each PDU in
// turn.
func BenchmarkVerifyBatch(b *testing.B) {
	pdus := transactionPDUs(b, 50, func(int) []signer { return []signer{hs1Key} })
	lookup := newMemLookup(hs1Key)
	ctx := context.Background()
	b.Run("batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, res := range VerifyBatch(ctx, pdus, lookup, VerifyOptions{}) {
				if res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		}
	})
	b.Run("screened-batch", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, res := range verifyBatch(ctx, pdus, lookup, VerifyOptions{}, verifyChecksBatched) {
				if res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		}
	})
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, pdu := range pdus {
				if res := VerifyWith(ctx, pdu, lookup, VerifyOptions{}); res.Err != nil {
					b.Fatal(res.Err)
				}
			}
		}
	})
}

// BenchmarkBatchScreen measures batchable, the per-signature screen a
// signature must pass to enter a batch.
func BenchmarkBatchScreen(b *testing.B) {
	pdus := transactionPDUs(b, 1, func(int) []signer { return []signer{hs1Key} })
	sigs, _ := pdus[0].Event.Get("signatures")
	server, _ := sigs.Get(hs1Key.server)
	text, _ := server.GetString(hs1Key.keyID)
	sig := mustDecodeSignature(b, text)
	key := publicKeys.get(hs1Key.public())
	b.ReportAllocs()
	for b.Loop() {
		if !batchable(key, sig) {
			b.Fatal("signature not batchable")
		}
	}
}
