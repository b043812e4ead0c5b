package keys

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

var (
	keyA = newTestKey("ed25519:a", 1)
	keyB = newTestKey("ed25519:b", 2)
	keyC = newTestKey("ed25519:c", 3)
)

func encodeSigned(v canonicaljson.Value, entity string, keys ...testKey) []byte {
	for _, k := range keys {
		v = sign(v, entity, k)
	}
	return canonicaljson.Encode(v)
}

func TestParseServerKeysFields(t *testing.T) {
	validUntil := time.UnixMilli(1_900_000_000_000)
	expired := time.UnixMilli(1_500_000_000_000)
	v := withOldKey(keyResponse("hs1.test", validUntil, keyA), keyB, expired)
	data := encodeSigned(v, "hs1.test", keyA)

	sk, err := ParseServerKeys(data)
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	if sk.ServerName != "hs1.test" {
		t.Errorf("ServerName = %q, want hs1.test", sk.ServerName)
	}
	if !sk.ValidUntil.Equal(validUntil) {
		t.Errorf("ValidUntil = %v, want %v", sk.ValidUntil, validUntil)
	}
	if got := sk.VerifyKeys["ed25519:a"]; !bytes.Equal(got, keyA.public()) {
		t.Errorf("VerifyKeys[ed25519:a] = %x, want %x", got, keyA.public())
	}
	if len(sk.VerifyKeys) != 1 {
		t.Errorf("len(VerifyKeys) = %d, want 1", len(sk.VerifyKeys))
	}
	old, ok := sk.OldVerifyKeys["ed25519:b"]
	if !ok {
		t.Fatalf("OldVerifyKeys has no ed25519:b")
	}
	if !bytes.Equal(old.Public, keyB.public()) {
		t.Errorf("old key = %x, want %x", old.Public, keyB.public())
	}
	if !old.Expired.Equal(expired) {
		t.Errorf("old key Expired = %v, want %v", old.Expired, expired)
	}
	if _, ok := sk.Signatures["hs1.test"]["ed25519:a"]; !ok {
		t.Errorf("Signatures has no hs1.test ed25519:a")
	}
	if err := sk.VerifySelfSignature(); err != nil {
		t.Errorf("VerifySelfSignature: %v", err)
	}
}

func TestParseServerKeysWithoutOldKeys(t *testing.T) {
	v := keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA).Without("old_verify_keys")
	sk, err := ParseServerKeys(encodeSigned(v, "hs1.test", keyA))
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	if len(sk.OldVerifyKeys) != 0 {
		t.Errorf("len(OldVerifyKeys) = %d, want 0", len(sk.OldVerifyKeys))
	}
	if err := sk.VerifySelfSignature(); err != nil {
		t.Errorf("VerifySelfSignature: %v", err)
	}
}

func TestParseServerKeysInvalid(t *testing.T) {
	good := keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA)
	sigs := canonicaljson.ObjectValue(member("hs1.test", canonicaljson.ObjectValue(
		member("ed25519:a", canonicaljson.StringValue("c2ln")),
	)))
	good = good.With("signatures", sigs)
	str := canonicaljson.StringValue
	obj := canonicaljson.ObjectValue

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not JSON", []byte(`{"server_name":`), "parse key response"},
		{"duplicate key", []byte(`{"server_name":"a","server_name":"b"}`), "parse key response"},
		{"array", []byte(`[]`), "array instead of an object"},
		{"missing server_name", canonicaljson.Encode(good.Without("server_name")), "server_name missing"},
		{"empty server_name", canonicaljson.Encode(good.With("server_name", str(""))), "server_name missing"},
		{"missing verify_keys", canonicaljson.Encode(good.Without("verify_keys")), "verify_keys missing"},
		{"missing valid_until_ts", canonicaljson.Encode(good.Without("valid_until_ts")), "valid_until_ts missing"},
		{"missing signatures", canonicaljson.Encode(good.Without("signatures")), "signatures missing"},
		{"valid_until_ts string", canonicaljson.Encode(good.With("valid_until_ts", str("1"))), "valid_until_ts is not an integer"},
		{"float valid_until_ts", []byte(`{"server_name":"a","valid_until_ts":1.5,"verify_keys":{},"signatures":{}}`), "not a canonical integer"},
		{"verify_keys array", canonicaljson.Encode(good.With("verify_keys", canonicaljson.ArrayValue())), "verify_keys is not an object"},
		{"key not base64", canonicaljson.Encode(good.With("verify_keys", obj(member("ed25519:a", obj(member("key", str("!!"))))))), "verify_keys \"ed25519:a\": key:"},
		{"key too short", canonicaljson.Encode(good.With("verify_keys", obj(member("ed25519:a", obj(member("key", str("AAAA"))))))), "3 bytes instead of 32"},
		{"key missing", canonicaljson.Encode(good.With("verify_keys", obj(member("ed25519:a", obj())))), "key missing"},
		{"old key without expired_ts", canonicaljson.Encode(good.With("old_verify_keys", obj(member("ed25519:o", obj(member("key", str(keyB.publicBase64()))))))), "expired_ts missing"},
		{"signature not string", canonicaljson.Encode(good.With("signatures", obj(member("hs1.test", obj(member("ed25519:a", canonicaljson.IntValue(1))))))), "is not a string"},
		{"signatures of entity not object", canonicaljson.Encode(good.With("signatures", obj(member("hs1.test", str("x"))))), "is not an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseServerKeys(tt.data)
			if err == nil {
				t.Fatalf("ParseServerKeys returned no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseServerKeysSkipsOtherAlgorithms(t *testing.T) {
	v := keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA)
	verify, _ := v.Get("verify_keys")
	verify = verify.With("curve448:x", canonicaljson.ObjectValue(member("key", canonicaljson.StringValue("AAAA"))))
	v = v.With("verify_keys", verify)
	sk, err := ParseServerKeys(encodeSigned(v, "hs1.test", keyA))
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	if len(sk.VerifyKeys) != 1 {
		t.Errorf("len(VerifyKeys) = %d, want 1", len(sk.VerifyKeys))
	}
	if err := sk.VerifySelfSignature(); err != nil {
		t.Errorf("VerifySelfSignature: %v", err)
	}
}

func TestVerifySelfSignature(t *testing.T) {
	base := keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA, keyB)
	tampered := func(data []byte) []byte {
		return bytes.Replace(data, []byte(`"valid_until_ts":1900000000000`), []byte(`"valid_until_ts":1900000000001`), 1)
	}
	unknownField := base.With("tls_fingerprints", canonicaljson.ArrayValue(
		canonicaljson.ObjectValue(member("sha256", canonicaljson.StringValue("abc"))),
	))

	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"one key signs", encodeSigned(base, "hs1.test", keyA), ""},
		{"both keys sign", encodeSigned(base, "hs1.test", keyA, keyB), ""},
		{"unknown field kept in signed bytes", encodeSigned(unknownField, "hs1.test", keyA), ""},
		{"unsigned ignored", canonicaljson.Encode(sign(base, "hs1.test", keyA).With("unsigned", canonicaljson.ObjectValue(member("x", canonicaljson.IntValue(1))))), ""},
		{"unlisted signing key skipped", encodeSigned(base, "hs1.test", keyA, keyC), ""},
		{"tampered body", tampered(encodeSigned(base, "hs1.test", keyA)), "does not verify"},
		{"one of two signatures bad", encodeSigned(base.With("signatures", canonicaljson.ObjectValue(
			member("hs1.test", canonicaljson.ObjectValue(member("ed25519:b", canonicaljson.StringValue(strings.Repeat("A", 86))))),
		)), "hs1.test", keyA), "signature ed25519:b does not verify"},
		{"signature not base64", canonicaljson.Encode(base.With("signatures", canonicaljson.ObjectValue(
			member("hs1.test", canonicaljson.ObjectValue(member("ed25519:a", canonicaljson.StringValue("!!")))),
		))), "is not base64"},
		{"only unlisted signing key", encodeSigned(base, "hs1.test", keyC), "no signature by hs1.test with a known key"},
		{"signed by another server", encodeSigned(base, "hs2.test", keyA), "no Ed25519 signature by hs1.test"},
		{"no signatures", canonicaljson.Encode(base.With("signatures", canonicaljson.ObjectValue())), "no Ed25519 signature by hs1.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sk, err := ParseServerKeys(tt.data)
			if err != nil {
				t.Fatalf("ParseServerKeys: %v", err)
			}
			err = sk.VerifySelfSignature()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("VerifySelfSignature: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("VerifySelfSignature returned no error, want %q", tt.wantErr)
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("error %q does not wrap ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyNotarySignature(t *testing.T) {
	notaryKey := newTestKey("ed25519:n", 9)
	base := sign(keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA), "hs1.test", keyA)
	pinned := map[string]ed25519.PublicKey{"ed25519:n": notaryKey.public()}

	sk, err := ParseServerKeys(encodeSigned(base, "notary.test", notaryKey))
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	if err := VerifyNotarySignature(sk, "notary.test", pinned); err != nil {
		t.Errorf("VerifyNotarySignature with the notary's signature: %v", err)
	}
	if err := VerifyNotarySignature(sk, "other.test", pinned); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyNotarySignature for another notary = %v, want ErrBadSignature", err)
	}

	unsigned, err := ParseServerKeys(canonicaljson.Encode(base))
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	if err := VerifyNotarySignature(unsigned, "notary.test", pinned); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyNotarySignature without notary signature = %v, want ErrBadSignature", err)
	}

	forged, err := ParseServerKeys(encodeSigned(base, "notary.test", newTestKey("ed25519:n", 10)))
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	if err := VerifyNotarySignature(forged, "notary.test", pinned); !errors.Is(err, ErrBadSignature) {
		t.Errorf("VerifyNotarySignature with a forged signature = %v, want ErrBadSignature", err)
	}
}

func TestServerKeysKeysValidityCap(t *testing.T) {
	fetchedAt := time.UnixMilli(1_700_000_000_000)
	tests := []struct {
		name       string
		validUntil time.Time
		want       time.Time
	}{
		{"published validity shorter", fetchedAt.Add(time.Hour), fetchedAt.Add(time.Hour)},
		{"exactly seven days", fetchedAt.Add(7 * 24 * time.Hour), fetchedAt.Add(7 * 24 * time.Hour)},
		{"published validity longer", fetchedAt.Add(30 * 24 * time.Hour), fetchedAt.Add(7 * 24 * time.Hour)},
		{"already ended", fetchedAt.Add(-time.Hour), fetchedAt.Add(-time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := withOldKey(keyResponse("hs1.test", tt.validUntil, keyA), keyB, fetchedAt.Add(-24*time.Hour))
			sk, err := ParseServerKeys(encodeSigned(v, "hs1.test", keyA))
			if err != nil {
				t.Fatalf("ParseServerKeys: %v", err)
			}
			keys := sk.Keys(fetchedAt, SourceServer)
			if len(keys) != 2 {
				t.Fatalf("len(Keys) = %d, want 2", len(keys))
			}
			for _, k := range keys {
				if !k.ValidUntil.Equal(tt.want) {
					t.Errorf("%s ValidUntil = %v, want %v", k.KeyID, k.ValidUntil, tt.want)
				}
				if k.Source != SourceServer {
					t.Errorf("%s Source = %q, want %q", k.KeyID, k.Source, SourceServer)
				}
				if k.ServerName != "hs1.test" {
					t.Errorf("%s ServerName = %q, want hs1.test", k.KeyID, k.ServerName)
				}
			}
			if keys[0].KeyID != "ed25519:a" || !keys[0].Expired.IsZero() {
				t.Errorf("keys[0] = %s expired %v, want current ed25519:a", keys[0].KeyID, keys[0].Expired)
			}
			if keys[1].KeyID != "ed25519:b" || !keys[1].Expired.Equal(fetchedAt.Add(-24*time.Hour)) {
				t.Errorf("keys[1] = %s expired %v, want old ed25519:b", keys[1].KeyID, keys[1].Expired)
			}
		})
	}
}

func TestServerKeysKeysCurrentWinsOverOld(t *testing.T) {
	v := withOldKey(keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA), keyA, time.UnixMilli(1))
	sk, err := ParseServerKeys(encodeSigned(v, "hs1.test", keyA))
	if err != nil {
		t.Fatalf("ParseServerKeys: %v", err)
	}
	keys := sk.Keys(time.UnixMilli(1_700_000_000_000), SourceServer)
	if len(keys) != 1 {
		t.Fatalf("len(Keys) = %d, want 1", len(keys))
	}
	if !keys[0].Expired.IsZero() {
		t.Errorf("Expired = %v, want zero for a current key", keys[0].Expired)
	}
}

func FuzzParseServerKeys(f *testing.F) {
	v := withOldKey(keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA), keyB, time.UnixMilli(1))
	f.Add(encodeSigned(v, "hs1.test", keyA))
	f.Add([]byte(`{"server_name":"a","valid_until_ts":1,"verify_keys":{},"signatures":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sk, err := ParseServerKeys(data)
		if err != nil {
			return
		}
		_ = sk.VerifySelfSignature()
		for _, k := range sk.Keys(time.UnixMilli(0), SourceServer) {
			if len(k.Public) != 32 {
				t.Fatalf("key %s has %d bytes", k.KeyID, len(k.Public))
			}
		}
	})
}

func BenchmarkVerifySelfSignature(b *testing.B) {
	data := encodeSigned(keyResponse("hs1.test", time.UnixMilli(1_900_000_000_000), keyA), "hs1.test", keyA)
	sk, err := ParseServerKeys(data)
	if err != nil {
		b.Fatalf("ParseServerKeys: %v", err)
	}
	for b.Loop() {
		if err := sk.VerifySelfSignature(); err != nil {
			b.Fatal(err)
		}
	}
}
