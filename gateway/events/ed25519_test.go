package events

import (
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/binary"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/oasisprotocol/curve25519-voi/curve"
	"github.com/oasisprotocol/curve25519-voi/curve/scalar"
)

// groupOrder is ℓ, the order of the prime-order subgroup.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// fieldPrime is p = 2^255 - 19.
var fieldPrime = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// littleEndian32 encodes n, which must be below 2^256, in 32 bytes.
func littleEndian32(n *big.Int) [32]byte {
	var out [32]byte
	be := n.FillBytes(make([]byte, 32))
	for i := range out {
		out[i] = be[31-i]
	}
	return out
}

func bigFromLittleEndian(b []byte) *big.Int {
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	return new(big.Int).SetBytes(be)
}

func scalarOf(t testing.TB, n *big.Int) *scalar.Scalar {
	t.Helper()
	b := littleEndian32(new(big.Int).Mod(n, groupOrder))
	s, err := scalar.NewFromCanonicalBytes(b[:])
	if err != nil {
		t.Fatalf("scalar %v: %v", n, err)
	}
	return s
}

func baseMul(t testing.TB, n *big.Int) *curve.EdwardsPoint {
	return new(curve.EdwardsPoint).Mul(curve.ED25519_BASEPOINT_POINT, scalarOf(t, n))
}

func encodePoint(p *curve.EdwardsPoint) [32]byte {
	var c curve.CompressedEdwardsY
	c.SetEdwardsPoint(p)
	return [32]byte(c)
}

func decodePoint(t testing.TB, b []byte) *curve.EdwardsPoint {
	t.Helper()
	var c curve.CompressedEdwardsY
	copy(c[:], b)
	p, err := new(curve.EdwardsPoint).SetCompressedY(&c)
	if err != nil {
		t.Fatalf("decode point %x: %v", b, err)
	}
	return p
}

// challenge returns k = SHA-512(R ‖ A ‖ msg) mod ℓ as an integer.
func challenge(r, a [32]byte, msg []byte) *big.Int {
	h := sha512.New()
	h.Write(r[:])
	h.Write(a[:])
	h.Write(msg)
	return new(big.Int).Mod(bigFromLittleEndian(h.Sum(nil)), groupOrder)
}

// torsionGenerator returns a point of order 8, found as [ℓ]P for points P
// decoded from y = 2, 3, ... until the result has order exactly 8.
func torsionGenerator(t testing.TB) *curve.EdwardsPoint {
	t.Helper()
	for y := int64(2); y < 1000; y++ {
		enc := littleEndian32(big.NewInt(y))
		var c curve.CompressedEdwardsY
		copy(c[:], enc[:])
		p, err := new(curve.EdwardsPoint).SetCompressedY(&c)
		if err != nil {
			continue
		}
		q := new(curve.EdwardsPoint).Mul(p, scalar.BASEPOINT_ORDER)
		var q4 curve.EdwardsPoint
		q4.Add(q, q)
		q4.Add(&q4, &q4)
		if !q4.IsIdentity() {
			return q
		}
	}
	t.Fatal("no point of order 8 found")
	return nil
}

// smallOrderPoints returns [i]T for i = 0..7, the eight points of E[8],
// with the identity first.
func smallOrderPoints(t testing.TB) []*curve.EdwardsPoint {
	gen := torsionGenerator(t)
	points := []*curve.EdwardsPoint{new(curve.EdwardsPoint).Identity()}
	for i := 1; i < 8; i++ {
		points = append(points, new(curve.EdwardsPoint).Add(points[i-1], gen))
	}
	return points
}

// forge returns R ‖ S with S = r + k·a mod ℓ, where k is computed over the
// given R and A encodings. With R = [r]B and A = [a]B this is an honest
// signature. Other R and A give signatures whose validity depends on the
// torsion components and on which equation is checked.
func forge(rEnc, aEnc [32]byte, r, a *big.Int, msg []byte) []byte {
	k := challenge(rEnc, aEnc, msg)
	s := new(big.Int).Mul(k, a)
	s.Add(s, r).Mod(s, groupOrder)
	sEnc := littleEndian32(s)
	return append(rEnc[:], sEnc[:]...)
}

// withS returns sig with S replaced by n, which may be ℓ or above.
func withS(sig []byte, n *big.Int) []byte {
	enc := littleEndian32(n)
	return append(append([]byte(nil), sig[:32]...), enc[:]...)
}

// sigCase is a public key, message and signature to check.
type sigCase struct {
	name string
	pub  []byte
	msg  []byte
	sig  []byte
	// want is the crypto/ed25519.Verify result the case is built for.
	want bool
}

func craftedSignatures(t testing.TB) []sigCase {
	msg := []byte(`{"type":"m.room.message"}`)
	aHash := sha512.Sum512([]byte("secret a"))
	rHash := sha512.Sum512([]byte("nonce r"))
	a := bigFromLittleEndian(aHash[:])
	r := bigFromLittleEndian(rHash[:])
	otherEnc := encodePoint(baseMul(t, big.NewInt(7)))
	A := baseMul(t, a)
	aEnc := encodePoint(A)
	R := baseMul(t, r)
	rEnc := encodePoint(R)
	valid := forge(rEnc, aEnc, r, a, msg)
	small := smallOrderPoints(t)
	zero := big.NewInt(0)
	identityEnc := encodePoint(small[0])

	cases := []sigCase{
		{name: "valid", pub: aEnc[:], msg: msg, sig: valid, want: true},
		{name: "wrong message", pub: aEnc[:], msg: []byte("other"), sig: valid},
		{name: "wrong key", pub: otherEnc[:], msg: msg, sig: valid},
		{name: "empty message valid", pub: aEnc[:], msg: nil, sig: forge(rEnc, aEnc, r, a, nil), want: true},
		{name: "truncated signature", pub: aEnc[:], msg: msg, sig: valid[:63]},
		{name: "long signature", pub: aEnc[:], msg: msg, sig: append(append([]byte(nil), valid...), 0)},
		{name: "empty signature", pub: aEnc[:], msg: msg, sig: nil},
		{name: "S plus l", pub: aEnc[:], msg: msg, sig: withS(valid, new(big.Int).Add(bigFromLittleEndian(valid[32:]), groupOrder))},
		{name: "S top bits set", pub: aEnc[:], msg: msg, sig: func() []byte {
			s := append([]byte(nil), valid...)
			s[63] |= 0xe0
			return s
		}()},
		// With A the identity, [S]B = R is the whole equation, so R = [0]B
		// and S = ℓ holds mod ℓ but S is not canonical.
		{name: "S equal to l", pub: identityEnc[:], msg: msg, sig: withS(identityEnc[:], groupOrder)},
		{name: "S zero with identity key", pub: identityEnc[:], msg: msg, sig: withS(identityEnc[:], zero), want: true},
		{name: "A not on curve", pub: notOnCurve(t), msg: msg, sig: valid},
		{name: "R not on curve", pub: aEnc[:], msg: msg, sig: func() []byte {
			n := notOnCurve(t)
			return forge([32]byte(n), aEnc, r, a, msg)
		}()},
	}

	// Small-order R: [S]B - [k]A lies in the prime-order subgroup, so only
	// R = identity can satisfy the cofactorless equation. The others hold
	// only under the cofactored equation.
	for i, T := range small {
		tEnc := encodePoint(T)
		cases = append(cases, sigCase{
			name: "small-order R " + string(rune('0'+i)),
			pub:  aEnc[:], msg: msg, sig: forge(tEnc, aEnc, zero, a, msg), want: i == 0,
		})
	}

	// Small-order A with R = [r]B and S = r: valid exactly when [k]A is
	// the identity, that is when k is a multiple of the order of A.
	for i, T := range small {
		tEnc := encodePoint(T)
		order := pointOrder(T)
		k := challenge(rEnc, tEnc, msg)
		cases = append(cases, sigCase{
			name: "small-order A " + string(rune('0'+i)),
			pub:  tEnc[:], msg: msg, sig: forge(rEnc, tEnc, r, zero, msg),
			want: new(big.Int).Mod(k, big.NewInt(int64(order))).Sign() == 0,
		})
	}
	// Small-order A and R = identity, S = 0, searching for messages where
	// k is and is not a multiple of 8.
	cases = append(cases, smallOrderBoth(t, small[1])...)

	// Mixed-order A = [a]B + T: the honest signature gives
	// [S]B - [k]A = R - [k]T, which is R only when 8 divides k.
	mixed := new(curve.EdwardsPoint).Add(A, small[1])
	mixedEnc := encodePoint(mixed)
	for n := 0; n < 64; n++ {
		nonce := new(big.Int).Add(r, big.NewInt(int64(n)))
		nEnc := encodePoint(baseMul(t, nonce))
		divisible := new(big.Int).Mod(challenge(nEnc, mixedEnc, msg), big.NewInt(8)).Sign() == 0
		name := "mixed-order A, k not multiple of 8 (cofactored only)"
		if divisible {
			name = "mixed-order A, k multiple of 8"
		}
		if !hasCase(cases, name) {
			cases = append(cases, sigCase{name: name, pub: mixedEnc[:], msg: msg, sig: forge(nEnc, mixedEnc, nonce, a, msg), want: divisible})
		}
	}

	// Mixed-order R = [r]B + T with a prime-order A holds only under the
	// cofactored equation.
	mixedR := encodePoint(new(curve.EdwardsPoint).Add(R, small[1]))
	cases = append(cases, sigCase{name: "mixed-order R (cofactored only)", pub: aEnc[:], msg: msg, sig: forge(mixedR, aEnc, r, a, msg)})

	cases = append(cases, nonCanonicalCases(t, aEnc, a, msg)...)
	return cases
}

func hasCase(cases []sigCase, name string) bool {
	for _, c := range cases {
		if c.name == name {
			return true
		}
	}
	return false
}

// pointOrder returns the order of a point of E[8].
func pointOrder(p *curve.EdwardsPoint) int {
	q := new(curve.EdwardsPoint).Set(p)
	for order := 1; order <= 8; order++ {
		if q.IsIdentity() {
			return order
		}
		q.Add(q, p)
	}
	return 0
}

func smallOrderBoth(t testing.TB, gen *curve.EdwardsPoint) []sigCase {
	tEnc := encodePoint(gen)
	identityEnc := encodePoint(new(curve.EdwardsPoint).Identity())
	var out []sigCase
	found := map[bool]bool{}
	for i := 0; len(found) < 2 && i < 200; i++ {
		msg := binary.BigEndian.AppendUint32([]byte("message "), uint32(i))
		divisible := new(big.Int).Mod(challenge(identityEnc, tEnc, msg), big.NewInt(8)).Sign() == 0
		if found[divisible] {
			continue
		}
		found[divisible] = true
		name := "small-order A and R, k not multiple of 8"
		if divisible {
			name = "small-order A and R, k multiple of 8"
		}
		out = append(out, sigCase{name: name, pub: tEnc[:], msg: msg, sig: withS(identityEnc[:], big.NewInt(0)), want: divisible})
	}
	if len(found) < 2 {
		t.Fatal("no message found for both small-order A and R cases")
	}
	return out
}

// notOnCurve returns the first encoding y = 2, 3, ... that is not a point.
func notOnCurve(t testing.TB) []byte {
	for y := int64(2); y < 1000; y++ {
		enc := littleEndian32(big.NewInt(y))
		var c curve.CompressedEdwardsY
		copy(c[:], enc[:])
		if _, err := new(curve.EdwardsPoint).SetCompressedY(&c); err != nil {
			return enc[:]
		}
	}
	t.Fatal("no encoding off the curve found")
	return nil
}

// nonCanonicalCases builds R and A encodings with y ≥ p, and with the
// sign bit set where x = 0. Both libraries decode A with y mod p, but a
// received R is compared to the canonical encoding of the computed point.
func nonCanonicalCases(t testing.TB, aEnc [32]byte, a *big.Int, msg []byte) []sigCase {
	zero := big.NewInt(0)
	identityPlusP := littleEndian32(new(big.Int).Add(big.NewInt(1), fieldPrime)) // y = 1 + p
	identitySigned := littleEndian32(big.NewInt(1))                              // y = 1, sign bit set
	identitySigned[31] |= 0x80
	minusOneSigned := littleEndian32(new(big.Int).Sub(fieldPrime, big.NewInt(1))) // y = -1, x = 0, sign bit set
	minusOneSigned[31] |= 0x80
	yZeroPlusP := littleEndian32(fieldPrime) // y = 0 + p, a point of order 4

	var cases []sigCase
	for _, enc := range []struct {
		name string
		b    [32]byte
	}{
		{"y=1+p", identityPlusP},
		{"y=1 with sign bit", identitySigned},
		{"y=-1 with sign bit", minusOneSigned},
		{"y=p", yZeroPlusP},
	} {
		decodePoint(t, enc.b[:]) // each must decode, or the case tests nothing
		// The decoded point is small-order, so with S = k·a the
		// cofactored equation holds, and for the identity the
		// cofactorless one holds too, up to the encoding of R.
		cases = append(cases, sigCase{
			name: "non-canonical R " + enc.name,
			pub:  aEnc[:], msg: msg, sig: forge(enc.b, aEnc, zero, a, msg),
		})
	}

	// Non-canonical A encodings of the identity: any R = [s]B, S = s
	// verifies, with k taken over the received A bytes.
	s := big.NewInt(12345)
	sEnc := encodePoint(baseMul(t, s))
	for _, enc := range []struct {
		name string
		b    [32]byte
	}{
		{"y=1+p", identityPlusP},
		{"y=1 with sign bit", identitySigned},
	} {
		cases = append(cases, sigCase{
			name: "non-canonical A " + enc.name,
			pub:  enc.b[:], msg: msg, sig: withS(sEnc[:], s), want: true,
		})
	}
	return cases
}

// checkBatch runs sig through the batch path beside fillers valid
// signatures, so that a batch is formed, and returns its outcome. It fails
// the test when a filler is not reported valid.
func checkBatch(t testing.TB, pub, msg, sig []byte, fillers int) bool {
	t.Helper()
	checks := make([]sigCheck, 0, fillers+1)
	target := map[string]SigStatus{}
	if len(pub) == ed25519.PublicKeySize && len(sig) == ed25519.SignatureSize {
		checks = append(checks, sigCheck{statuses: target, keyID: "case", key: publicKeys.get(pub), msg: msg, sig: [64]byte(sig)})
	} else {
		target["case"] = SigInvalid // resolveSignature rejects other lengths
	}
	filler := map[string]SigStatus{}
	for i := range fillers {
		signer := newSigner("filler", "ed25519:f", "filler "+string(rune('a'+i)))
		fmsg := []byte("filler message")
		checks = append(checks, sigCheck{statuses: filler, keyID: string(rune('a' + i)), key: publicKeys.get(signer.public()), msg: fmsg, sig: [64]byte(ed25519.Sign(signer.priv, fmsg))})
	}
	verifyChecksBatched(checks)
	for id, status := range filler {
		if status != SigValid {
			t.Errorf("filler %s is %s, want valid", id, status)
		}
	}
	return target["case"] == SigValid
}

func TestFastVerifyCraftedSignatures(t *testing.T) {
	for _, tc := range craftedSignatures(t) {
		t.Run(tc.name, func(t *testing.T) {
			stdlib := ed25519.Verify(tc.pub, tc.msg, tc.sig)
			if stdlib != tc.want {
				t.Fatalf("crypto/ed25519.Verify = %v, case built for %v", stdlib, tc.want)
			}
			if got := verifyEd25519(tc.pub, tc.msg, tc.sig); got != stdlib {
				t.Errorf("verifyEd25519 = %v, crypto/ed25519.Verify = %v", got, stdlib)
			}
			if got := checkBatch(t, tc.pub, tc.msg, tc.sig, 3); got != stdlib {
				t.Errorf("batch = %v, crypto/ed25519.Verify = %v", got, stdlib)
			}
		})
	}
}

func TestFastVerifyCraftedSignaturesOneBatch(t *testing.T) {
	cases := craftedSignatures(t)
	checks := make([]sigCheck, 0, len(cases))
	statuses := map[string]SigStatus{}
	for _, tc := range cases {
		if len(tc.sig) != ed25519.SignatureSize {
			continue
		}
		checks = append(checks, sigCheck{statuses: statuses, keyID: tc.name, key: publicKeys.get(tc.pub), msg: tc.msg, sig: [64]byte(tc.sig)})
	}
	verifyChecksBatched(checks)
	for _, tc := range cases {
		if len(tc.sig) != ed25519.SignatureSize {
			continue
		}
		if got := statuses[tc.name] == SigValid; got != tc.want {
			t.Errorf("%s: batch of all cases = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBatchableRejectsTorsion(t *testing.T) {
	cases := craftedSignatures(t)
	for _, tc := range cases {
		if len(tc.sig) != ed25519.SignatureSize {
			continue
		}
		key := publicKeys.get(tc.pub)
		if !batchable(key, tc.sig) {
			continue
		}
		// A batchable signature has canonical, torsion-free R and A and a
		// canonical S, so the cofactored and cofactorless equations agree.
		R := decodePoint(t, tc.sig[:32])
		A := decodePoint(t, tc.pub)
		if !R.IsTorsionFree() || !A.IsTorsionFree() {
			t.Errorf("%s: batchable with a torsion component", tc.name)
		}
		if bigFromLittleEndian(tc.sig[32:]).Cmp(groupOrder) >= 0 {
			t.Errorf("%s: batchable with S ≥ ℓ", tc.name)
		}
	}
	for _, name := range []string{"mixed-order R (cofactored only)", "small-order R 1", "mixed-order A, k multiple of 8"} {
		tc := cases[caseIndex(t, cases, name)]
		if batchable(publicKeys.get(tc.pub), tc.sig) {
			t.Errorf("%s: batchable, want screened out", name)
		}
	}
}

func caseIndex(t testing.TB, cases []sigCase, name string) int {
	t.Helper()
	for i, c := range cases {
		if c.name == name {
			return i
		}
	}
	t.Fatalf("no case %q", name)
	return -1
}

// mutate returns a changed copy of one of pub, msg or sig, chosen by rng.
func mutate(t testing.TB, rng *rand.Rand, small []*curve.EdwardsPoint, pub, msg, sig []byte) ([]byte, []byte, []byte) {
	pub, msg, sig = append([]byte(nil), pub...), append([]byte(nil), msg...), append([]byte(nil), sig...)
	switch rng.IntN(7) {
	case 0:
		sig[rng.IntN(len(sig))] ^= 1 << rng.IntN(8)
	case 1:
		if len(msg) > 0 {
			msg[rng.IntN(len(msg))] ^= 1 << rng.IntN(8)
		} else {
			msg = append(msg, 1)
		}
	case 2:
		pub[rng.IntN(len(pub))] ^= 1 << rng.IntN(8)
	case 3: // add a torsion point to R
		R := decodePoint(t, sig[:32])
		enc := encodePoint(R.Add(R, small[1+rng.IntN(7)]))
		copy(sig, enc[:])
	case 4: // S + ℓ
		sig = withS(sig, new(big.Int).Add(bigFromLittleEndian(sig[32:]), groupOrder))
	case 5: // replace R with a small-order point
		enc := encodePoint(small[rng.IntN(8)])
		copy(sig, enc[:])
	case 6: // add a torsion point to A
		A := decodePoint(t, pub)
		enc := encodePoint(A.Add(A, small[1+rng.IntN(7)]))
		copy(pub, enc[:])
	}
	return pub, msg, sig
}

func TestFastVerifyRandomDifferential(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	small := smallOrderPoints(t)
	const rounds = 400
	checks := make([]sigCheck, 0, rounds)
	statuses := map[string]SigStatus{}
	want := map[string]bool{}
	for i := range rounds {
		var seed [32]byte
		binary.LittleEndian.PutUint64(seed[:], rng.Uint64())
		priv := ed25519.NewKeyFromSeed(seed[:])
		pub := []byte(priv.Public().(ed25519.PublicKey))
		msg := make([]byte, rng.IntN(300))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if i%2 == 1 {
			pub, msg, sig = mutate(t, rng, small, pub, msg, sig)
		}

		stdlib := ed25519.Verify(pub, msg, sig)
		if got := verifyEd25519(pub, msg, sig); got != stdlib {
			t.Errorf("round %d: verifyEd25519 = %v, crypto/ed25519.Verify = %v (pub %x, sig %x)", i, got, stdlib, pub, sig)
		}
		id := string(binary.BigEndian.AppendUint32(nil, uint32(i)))
		want[id] = stdlib
		checks = append(checks, sigCheck{statuses: statuses, keyID: id, key: publicKeys.get(pub), msg: msg, sig: [64]byte(sig)})
	}

	// Batches of 10: about half of each holds an invalid member, which
	// forces the fallback.
	for start := 0; start < len(checks); start += 10 {
		verifyChecksBatched(checks[start : start+10])
	}
	for id, stdlib := range want {
		if got := statuses[id] == SigValid; got != stdlib {
			t.Errorf("round %d: batch = %v, crypto/ed25519.Verify = %v", binary.BigEndian.Uint32([]byte(id)), got, stdlib)
		}
	}
}

func FuzzVerifyAgreesWithStdlib(f *testing.F) {
	for _, tc := range craftedSignatures(f) {
		if len(tc.pub) == ed25519.PublicKeySize {
			f.Add(tc.pub, tc.msg, tc.sig)
		}
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize {
			return // crypto/ed25519.Verify panics on other key sizes
		}
		stdlib := ed25519.Verify(pub, msg, sig)
		if got := verifyEd25519(pub, msg, sig); got != stdlib {
			t.Fatalf("verifyEd25519 = %v, crypto/ed25519.Verify = %v", got, stdlib)
		}
		if got := checkBatch(t, pub, msg, sig, 2); got != stdlib {
			t.Fatalf("batch = %v, crypto/ed25519.Verify = %v", got, stdlib)
		}
	})
}
