package bench_test

import (
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/matrix-org/gomatrixserverlib"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// TestBenchmarkEvents checks that the events of the benchmarks have their
// sizes and that all three implementations accept them, so that no
// benchmark measures a rejection.
func TestBenchmarkEvents(t *testing.T) {
	ctx := context.Background()
	rv := mustRoomVersion(t)
	impl := gomatrixserverlib.MustGetRoomVersion(roomVersion)
	keyRing := newGMSLKeyRing()
	for _, size := range eventSizes {
		t.Run(size.name, func(t *testing.T) {
			ev := signMessage(t, size.target, 1)
			if size.target != 0 && len(ev.data) != size.target {
				t.Errorf("event is %d bytes, want %d", len(ev.data), size.target)
			}
			if err := verifyBordergate(ctx, ev.data, rv, newPinnedLookup()); err != nil {
				t.Errorf("bordergate: %v", err)
			}
			if !ed25519.Verify(remotePublic(), ev.signedBytes, ev.signature) {
				t.Error("ed25519.Verify rejects the signed bytes")
			}
			if err := verifyGMSL(ctx, ev.data, impl, keyRing); err != nil {
				t.Errorf("gomatrixserverlib: %v", err)
			}
		})
	}
}

// TestBenchmarkEventsTampered checks that the benchmark verifiers reject a
// changed signed field, so that they cannot pass by checking nothing.
func TestBenchmarkEventsTampered(t *testing.T) {
	ctx := context.Background()
	rv := mustRoomVersion(t)
	ev := signMessage(t, 0, 1)
	tampered := signMessage(t, 0, 2)
	// The event of depth 2 with the signature of the event of depth 1.
	sigs, _ := ev.value.Get("signatures")
	forged := tampered.value.With("signatures", sigs)
	data := canonicaljson.Encode(forged)

	if err := verifyBordergate(ctx, data, rv, newPinnedLookup()); err == nil {
		t.Error("bordergate accepts a forged signature")
	}
	if ed25519.Verify(remotePublic(), tampered.signedBytes, ev.signature) {
		t.Error("ed25519.Verify accepts a forged signature")
	}
	impl := gomatrixserverlib.MustGetRoomVersion(roomVersion)
	if err := verifyGMSL(ctx, data, impl, newGMSLKeyRing()); err == nil {
		t.Error("gomatrixserverlib accepts a forged signature")
	}
}

// TestPolicyInputsAllowed checks that the default policy allows the inputs
// of BenchmarkPolicyDecide, so that the benchmark measures the allow path.
func TestPolicyInputsAllowed(t *testing.T) {
	engine := newDefaultEngine(t)
	ctx := context.Background()
	if d, err := engine.Decide(ctx, policy.KindRequest, sendRequestInput()); err != nil || !d.Allow {
		t.Errorf("request decision = %+v, %v; want allowed", d, err)
	}
	if d, err := engine.Decide(ctx, policy.KindPDU, messagePDUInput()); err != nil || !d.Allow {
		t.Errorf("PDU decision = %+v, %v; want allowed", d, err)
	}
}

// TestAllowlistLookupCases checks the names of BenchmarkAllowlistLookup in
// the smallest allow-list.
func TestAllowlistLookupCases(t *testing.T) {
	s, err := store.New(store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.ReplaceAllowlist(allowlistEntries(allowlistSizes[0])); err != nil {
		t.Fatal(err)
	}
	for _, c := range lookupCases {
		if _, ok := s.Lookup(c.serverName); ok != c.found {
			t.Errorf("Lookup(%q) found = %v, want %v", c.serverName, ok, c.found)
		}
	}
}
