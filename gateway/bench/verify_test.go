package bench_test

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/matrix-org/gomatrixserverlib"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// BenchmarkVerifyPDU measures the verification of one received event per
// operation, for each event size, by four implementations in the same
// run:
//
//   - impl=bordergate: canonicaljson.Parse, events.ParsePDU and
//     events.Verify, the gateway's path;
//   - impl=floor: crypto/ed25519.Verify alone over the bytes the signature
//     covers;
//   - impl=floor-voi: the same check with curve25519-voi, its public key
//     expanded once and the options that make it accept exactly what
//     crypto/ed25519 accepts, the fastest sound single verification;
//   - impl=gmsl: gomatrixserverlib's NewEventFromUntrustedJSON and
//     VerifyEventSignatures at the version Dendrite v0.13.8 requires.
//
// Every implementation reports the event bytes as the bytes processed.
func BenchmarkVerifyPDU(b *testing.B) {
	ctx := context.Background()
	rv := mustRoomVersion(b)
	lookup := newPinnedLookup()
	impl := gomatrixserverlib.MustGetRoomVersion(roomVersion)
	keyRing := newGMSLKeyRing()
	pub := remotePublic()
	expanded, err := voied25519.NewExpandedPublicKey(voied25519.PublicKey(pub))
	if err != nil {
		b.Fatalf("expand public key: %v", err)
	}
	stdlibOptions := &voied25519.Options{Verify: voied25519.VerifyOptionsStdLib}

	for _, size := range eventSizes {
		ev := signMessage(b, size.target, 1)
		b.Run("event="+size.name+"/impl=bordergate", func(b *testing.B) {
			b.SetBytes(int64(len(ev.data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := verifyBordergate(ctx, ev.data, rv, lookup); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("event="+size.name+"/impl=floor", func(b *testing.B) {
			b.SetBytes(int64(len(ev.data)))
			b.ReportAllocs()
			for b.Loop() {
				if !ed25519.Verify(pub, ev.signedBytes, ev.signature) {
					b.Fatal("signature does not verify")
				}
			}
		})
		b.Run("event="+size.name+"/impl=floor-voi", func(b *testing.B) {
			b.SetBytes(int64(len(ev.data)))
			b.ReportAllocs()
			for b.Loop() {
				if !voied25519.VerifyExpandedWithOptions(expanded, ev.signedBytes, ev.signature, stdlibOptions) {
					b.Fatal("signature does not verify")
				}
			}
		})
		b.Run("event="+size.name+"/impl=gmsl", func(b *testing.B) {
			b.SetBytes(int64(len(ev.data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := verifyGMSL(ctx, ev.data, impl, keyRing); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
