package events

import (
	"crypto/ed25519"
	"sync"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
	voied25519 "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// stdlibOptions makes curve25519-voi accept exactly the signatures that
// crypto/ed25519.Verify accepts (Go 1.26). Both libraries:
//   - reject a signature that is not 64 bytes or whose S is not below the
//     group order ℓ;
//   - decode A with y taken mod p and any sign bit, so non-canonical and
//     small-order A are accepted, and hash the received A bytes;
//   - compute R' = [S]B - [k]A and accept only when the canonical encoding
//     of R' equals the received R bytes (the cofactorless equation), so a
//     non-canonical R never verifies and a small-order R only when the
//     equation holds exactly.
//
// The equivalence tests check this on crafted and random signatures.
var stdlibOptions = &voied25519.Options{Verify: voied25519.VerifyOptionsStdLib}

// maxCachedKeys bounds the expanded public key cache. curve25519-voi
// documents an expanded key as about 1.47 KiB, so the cache stays near
// 1.5 MiB.
const maxCachedKeys = 1024

// expandedKey is a public key decoded once for repeated verification.
type expandedKey struct {
	// expanded is nil when the 32 bytes do not decode to a curve point, so
	// that every signature by the key is invalid.
	expanded *voied25519.ExpandedPublicKey
	// batchSafe reports that A is canonically encoded and in the prime-order
	// subgroup, the conditions a key must meet to enter a batch.
	batchSafe bool
}

// keyCache maps the 32 bytes of a public key to its expanded form. It is
// safe for concurrent use.
type keyCache struct {
	mu   sync.RWMutex
	keys map[[ed25519.PublicKeySize]byte]*expandedKey
}

// publicKeys is the process-wide cache, shared by every caller in the
// process.
var publicKeys = keyCache{keys: make(map[[ed25519.PublicKeySize]byte]*expandedKey)}

// get returns the expanded form of pub, which must be 32 bytes, expanding
// it on first use. When the cache is full an arbitrary entry is evicted.
func (c *keyCache) get(pub []byte) *expandedKey {
	id := [ed25519.PublicKeySize]byte(pub)
	c.mu.RLock()
	k := c.keys[id]
	c.mu.RUnlock()
	if k != nil {
		return k
	}

	k = expandKey(pub)
	c.mu.Lock()
	if len(c.keys) >= maxCachedKeys {
		for old := range c.keys {
			delete(c.keys, old)
			break
		}
	}
	c.keys[id] = k
	c.mu.Unlock()
	return k
}

func expandKey(pub []byte) *expandedKey {
	expanded, err := voied25519.NewExpandedPublicKey(pub)
	if err != nil {
		return &expandedKey{}
	}
	var compressed curve.CompressedEdwardsY
	var point curve.EdwardsPoint
	if _, err := compressed.SetBytes(pub); err != nil {
		return &expandedKey{}
	}
	if _, err := point.SetCompressedY(&compressed); err != nil {
		return &expandedKey{}
	}
	return &expandedKey{
		expanded:  expanded,
		batchSafe: compressed.IsCanonicalVartime() && point.IsTorsionFree(),
	}
}

// verifyEd25519 reports whether sig is a valid signature of msg by pub,
// accepting and rejecting exactly what crypto/ed25519.Verify does, but with
// the public key expanded once and cached. Unlike crypto/ed25519.Verify it
// returns false for a public key that is not 32 bytes instead of panicking.
func verifyEd25519(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return verifyExpanded(publicKeys.get(pub), msg, sig)
}

func verifyExpanded(key *expandedKey, msg, sig []byte) bool {
	if key.expanded == nil {
		return false
	}
	return voied25519.VerifyExpandedWithOptions(key.expanded, msg, sig, stdlibOptions)
}

// batchable reports whether a signature by key may be checked in a batch:
// the key must be batch-safe, S must be below ℓ, and R must be canonically
// encoded and in the prime-order subgroup. See verifyChecksBatched for why these
// conditions make a passing batch imply that single verification passes.
func batchable(key *expandedKey, sig []byte) bool {
	if key.expanded == nil || !key.batchSafe || len(sig) != ed25519.SignatureSize {
		return false
	}
	if !scalar.ScMinimalVartime(sig[32:]) {
		return false
	}
	var compressed curve.CompressedEdwardsY
	if _, err := compressed.SetBytes(sig[:32]); err != nil || !compressed.IsCanonicalVartime() {
		return false
	}
	var r curve.EdwardsPoint
	if _, err := r.SetCompressedY(&compressed); err != nil {
		return false
	}
	// [ℓ]R + [0]B is the identity exactly when R is in the prime-order
	// subgroup. The variable-time form is safe because R is public.
	var check curve.EdwardsPoint
	check.DoubleScalarMulBasepointVartime(scalar.BASEPOINT_ORDER, &r, &zeroScalar)
	return check.IsIdentity()
}

// zeroScalar is the scalar 0.
var zeroScalar scalar.Scalar
