package signedlist

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
)

// signer is a key pair of the tests with its key ID and algorithm.
type signer struct {
	kid, alg string
	private  any
	public   any
}

func newEd25519Signer(t testing.TB, kid string) signer {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, alg: "EdDSA", private: priv, public: pub}
}

func newES256Signer(t testing.TB, kid string) signer {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signer{kid: kid, alg: "ES256", private: priv, public: &priv.PublicKey}
}

// jwks returns the JWK Set of the signers' public keys.
func jwks(t testing.TB, signers ...signer) []byte {
	t.Helper()
	set := jwk.NewSet()
	for _, s := range signers {
		key, err := jwk.Import(s.public)
		if err != nil {
			t.Fatal(err)
		}
		if err := key.Set(jwk.KeyIDKey, s.kid); err != nil {
			t.Fatal(err)
		}
		if err := set.AddKey(key); err != nil {
			t.Fatal(err)
		}
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func keySet(t testing.TB, signers ...signer) *KeySet {
	t.Helper()
	set, err := ParseKeys(jwks(t, signers...))
	if err != nil {
		t.Fatal(err)
	}
	return set
}

const validPayload = `{"issuer": "authority.example", "issued": "2026-03-01T00:00:00Z",
 "not_before": "2026-03-01T00:00:00Z", "expires": "2026-03-08T00:00:00Z",
 "servers": [{"server_name": "hs1.example", "endpoints": ["*"]},
             {"server_name": "*.evil.example", "deny": true, "note": "spam"}]}`

func sign(t testing.TB, s signer, payload string) []byte {
	t.Helper()
	signed, err := Sign([]byte(payload), s.kid, s.alg, s.private)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestVerifyAlgorithms(t *testing.T) {
	for _, s := range []signer{newEd25519Signer(t, "ed"), newES256Signer(t, "ec")} {
		t.Run(s.alg, func(t *testing.T) {
			list, err := Verify(sign(t, s, validPayload), keySet(t, s))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if list.KeyID != s.kid || list.Issuer != "authority.example" || len(list.Entries) != 2 {
				t.Errorf("list = %+v, want kid %s, issuer authority.example, 2 entries", list, s.kid)
			}
			if !list.Entries[1].Deny || list.Entries[1].Note != "spam" {
				t.Errorf("entries[1] = %+v, want the deny entry with its note", list.Entries[1])
			}
		})
	}
}

func TestVerifyKeyRotation(t *testing.T) {
	oldKey, newKey := newEd25519Signer(t, "2026-01"), newES256Signer(t, "2026-02")
	both := keySet(t, oldKey, newKey)
	onlyOld := keySet(t, oldKey)

	for _, s := range []signer{oldKey, newKey} {
		if _, err := Verify(sign(t, s, validPayload), both); err != nil {
			t.Errorf("list signed with %s, both keys configured: %v", s.kid, err)
		}
	}
	_, err := Verify(sign(t, newKey, validPayload), onlyOld)
	want := `signature not valid: unknown kid "2026-02" (expected one of 2026-01)`
	if err == nil || err.Error() != want || !errors.Is(err, ErrSignature) {
		t.Errorf("list signed with the new key, only the old one configured: error %v, want %s", err, want)
	}
}

func TestVerifyRefused(t *testing.T) {
	good := newEd25519Signer(t, "k1")
	other := newEd25519Signer(t, "k1") // same kid, another key
	ec := newES256Signer(t, "k2")
	keys := keySet(t, good, ec)
	signed := sign(t, good, validPayload)
	parts := strings.Split(string(signed), ".")

	header := func(h string) string {
		return encode(h) + "." + parts[1] + "." + parts[2]
	}
	tamperedPayload := parts[0] + "." + encode(strings.Replace(validPayload, "hs1.example", "hs9.example", 1)) + "." + parts[2]

	tests := []struct {
		name    string
		jws     string
		wantIs  error
		wantMsg string
	}{
		{"other key with the same kid", string(sign(t, other, validPayload)), ErrSignature, `signature not valid: kid "k1": `},
		{"tampered payload", tamperedPayload, ErrSignature, `signature not valid: kid "k1": `},
		{"alg of another key", string(sign(t, signer{kid: "k2", alg: "EdDSA", private: good.private}, validPayload)), ErrSignature,
			`signature not valid: alg "EdDSA" for kid "k2", whose key signs with ES256`},
		{"no typ", header(`{"alg":"EdDSA","kid":"k1"}`), ErrSignature, `signature not valid: typ "" (expected "bordergate-allowlist+jws")`},
		{"no kid", header(`{"alg":"EdDSA","typ":"bordergate-allowlist+jws"}`), ErrSignature,
			"signature not valid: no kid in the protected header (expected the ID of the signing key)"},
		{"alg none", header(`{"alg":"none","kid":"k1","typ":"bordergate-allowlist+jws"}`), ErrSignature,
			`signature not valid: alg "none" for kid "k1", whose key signs with EdDSA`},
		{"crit header", header(`{"alg":"EdDSA","kid":"k1","typ":"bordergate-allowlist+jws","crit":["exp"]}`), ErrSignature,
			"signature not valid: crit or b64 header present (expected neither)"},
		{"two parts", parts[0] + "." + parts[1], ErrSignature,
			"signature not valid: not a JWS in compact serialization (expected three base64url parts separated by dots)"},
		{"bad payload", string(sign(t, good, `{"issuer": "a"}`)), ErrPayload,
			`payload not valid: issued: invalid value "" (expected an RFC 3339 timestamp such as "2027-12-31T00:00:00Z")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify([]byte(tt.jws), keys)
			if err == nil {
				t.Fatal("Verify succeeded, want an error")
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if !strings.HasPrefix(err.Error(), tt.wantMsg) {
				t.Errorf("error:\n got %s\nwant prefix %s", err, tt.wantMsg)
			}
		})
	}
}

func encode(s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func TestParsePayloadErrors(t *testing.T) {
	tests := []struct {
		name, payload, want string
	}{
		{"unknown field", `{"issuer":"a","extra":1}`, `payload not valid: json: unknown field "extra" (expected an object with issuer, issued, not_before, expires and servers)`},
		{"no issuer", `{"issued":"2026-03-01T00:00:00Z"}`, "payload not valid: issuer missing (expected the name of the list's authority)"},
		{"bare date", `{"issuer":"a","issued":"2026-03-01","not_before":"2026-03-01T00:00:00Z","expires":"2026-03-08T00:00:00Z","servers":[]}`,
			`payload not valid: issued: invalid value "2026-03-01" (expected an RFC 3339 timestamp such as "2027-12-31T00:00:00Z")`},
		{"empty window", `{"issuer":"a","issued":"2026-03-01T00:00:00Z","not_before":"2026-03-08T00:00:00Z","expires":"2026-03-08T00:00:00Z","servers":[]}`,
			"payload not valid: expires 2026-03-08T00:00:00Z is not after not_before 2026-03-08T00:00:00Z"},
		{"no servers", `{"issuer":"a","issued":"2026-03-01T00:00:00Z","not_before":"2026-03-01T00:00:00Z","expires":"2026-03-08T00:00:00Z"}`,
			"payload not valid: servers missing (expected a list of allow-list entries, possibly empty)"},
		{"invalid entry", `{"issuer":"a","issued":"2026-03-01T00:00:00Z","not_before":"2026-03-01T00:00:00Z","expires":"2026-03-08T00:00:00Z","servers":[{"server_name":"hs1.example","endpoints":["sned"]}]}`,
			`payload not valid: payload:1: servers[0] (server_name "hs1.example"): endpoints[0]: unknown endpoint ID "sned" (expected "*" or one of `},
		{"trailing data", validPayload + `{}`, "payload not valid: data after the payload object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePayload([]byte(tt.payload))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || !errors.Is(err, ErrPayload) {
				t.Errorf("ParsePayload() error:\n got %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func TestCheckWindow(t *testing.T) {
	list, err := ParsePayload([]byte(validPayload))
	if err != nil {
		t.Fatal(err)
	}
	checkWindowCases(t, list, []windowCase{
		{"2026-02-28T23:59:59Z", "outside validity window: not valid before 2026-03-01T00:00:00Z"},
		{"2026-03-01T00:00:00Z", ""},
		{"2026-03-07T23:59:59Z", ""},
		{"2026-03-08T00:00:00Z", "outside validity window: expired at 2026-03-08T00:00:00Z"},
	})
}

// windowCase is a time and the error CheckWindow gives then, "" for none.
type windowCase struct {
	now  string
	want string
}

// checkWindowCases checks CheckWindow at each case's time. Every error
// must wrap ErrWindow, and only an expiry may wrap ErrExpired.
func checkWindowCases(t *testing.T, list *List, cases []windowCase) {
	t.Helper()
	for _, tt := range cases {
		now, _ := time.Parse(time.RFC3339, tt.now)
		err := list.CheckWindow(now)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrWindow) {
				t.Errorf("CheckWindow(%s) error does not wrap ErrWindow", tt.now)
			}
			if expired := strings.Contains(got, "expired at"); errors.Is(err, ErrExpired) != expired {
				t.Errorf("CheckWindow(%s) error %q wraps ErrExpired %t, want %t", tt.now, got, !expired, expired)
			}
		}
		if got != tt.want {
			t.Errorf("CheckWindow(%s) = %q, want %q", tt.now, got, tt.want)
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	ed := newEd25519Signer(t, "a")
	privateKey, err := jwk.Import(ed.private)
	if err != nil {
		t.Fatal(err)
	}
	_ = privateKey.Set(jwk.KeyIDKey, "a")
	privateSet := jwk.NewSet()
	_ = privateSet.AddKey(privateKey)
	privateJSON, _ := json.Marshal(privateSet)

	noKid := strings.Replace(string(jwks(t, ed)), `"kid":"a",`, "", 1)
	tests := []struct {
		name, data, want string
	}{
		{"empty set", `{"keys":[]}`, "no keys (expected at least one public key with a kid)"},
		{"duplicate kid", string(jwks(t, ed, newEd25519Signer(t, "a"))), `keys[1]: duplicate kid "a" (expected a distinct kid per key)`},
		{"private key", string(privateJSON), `keys[0]: kid "a": not a public key (expected only public keys; keep the private key with the list's signer)`},
		{"no kid", noKid, "keys[0]: missing kid (expected a key ID, which lists name in their kid header)"},
		{"not JSON", "x", "invalid JWK Set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeys([]byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseKeys() error:\n got %v\nwant prefix %s", err, tt.want)
			}
		})
	}
}

func FuzzParsePayload(f *testing.F) {
	f.Add([]byte(validPayload))
	f.Add([]byte(`{"issuer":"a","issued":"2026-03-01T00:00:00+01:00","not_before":"2026-03-01T00:00:00Z","expires":"2027-03-08T00:00:00Z","servers":[]}`))
	f.Add([]byte(`{"issuer":"a","servers":[{"server_name":"[::1]:1","deny":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := ParsePayload(data)
		if err != nil {
			if !errors.Is(err, ErrPayload) {
				t.Fatalf("error %v does not wrap ErrPayload", err)
			}
			return
		}
		if list.Issuer == "" || !list.Expires.After(list.NotBefore) {
			t.Fatalf("accepted list with issuer %q and window %s to %s", list.Issuer, list.NotBefore, list.Expires)
		}
		for i, entry := range list.Entries {
			if entry.ServerName == "" {
				t.Fatalf("entries[%d] has no server_name", i)
			}
		}
	})
}

// A list issued after the gateway's clock, beyond the allowed skew, is
// refused: taken, it would make every later list of the authority look
// like a rollback until that instant.
func TestCheckWindowIssuedInFuture(t *testing.T) {
	list, err := ParsePayload([]byte(strings.Replace(validPayload, `"issued": "2026-03-01T00:00:00Z"`, `"issued": "2026-03-05T00:00:00Z"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	checkWindowCases(t, list, []windowCase{
		{"2026-03-02T00:00:00Z", "outside validity window: issued 2026-03-05T00:00:00Z, after the gateway's clock 2026-03-02T00:00:00Z by more than 5m0s (check the clocks of the authority and the gateway)"},
		{"2026-03-04T23:54:59Z", "outside validity window: issued 2026-03-05T00:00:00Z, after the gateway's clock 2026-03-04T23:54:59Z by more than 5m0s (check the clocks of the authority and the gateway)"},
		{"2026-03-04T23:55:00Z", ""},
		{"2026-03-05T00:00:00Z", ""},
		{"2026-03-08T00:00:00Z", "outside validity window: expired at 2026-03-08T00:00:00Z"},
	})
}

// Text after the payload object is refused, whatever it starts with.
func TestParsePayloadTrailingText(t *testing.T) {
	for _, trailing := range []string{"}", "]", "x", `{}`, "\n}"} {
		_, err := ParsePayload([]byte(validPayload + trailing))
		if err == nil || err.Error() != "payload not valid: data after the payload object" || !errors.Is(err, ErrPayload) {
			t.Errorf("ParsePayload(valid + %q) error = %v, want payload not valid: data after the payload object", trailing, err)
		}
	}
	if _, err := ParsePayload([]byte(validPayload + " \n\t")); err != nil {
		t.Errorf("ParsePayload(valid + white space) error = %v, want none", err)
	}
}

// A keys file that any local user may write lets any local user add a
// signing key and sign lists of their own, so LoadKeys refuses it.
func TestLoadKeysWritableByOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, jwks(t, newEd25519Signer(t, "a")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o646); err != nil {
		t.Fatal(err)
	}
	_, err := LoadKeys(path)
	want := fmt.Sprintf("%s: mode 0646 lets every local user add a signing key (run chmod o-w %s)", path, path)
	if err == nil || err.Error() != want {
		t.Errorf("LoadKeys() error:\n got %v\nwant %s", err, want)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeys(path); err != nil {
		t.Errorf("LoadKeys() with mode 0644 error = %v, want none", err)
	}
}
