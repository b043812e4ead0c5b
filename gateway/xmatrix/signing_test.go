package xmatrix

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// signingVectors is testdata/request_signing.json.
type signingVectors struct {
	SigningKey struct {
		Seed       string `json:"seed"`
		ServerName string `json:"server_name"`
		KeyID      string `json:"key_id"`
		PublicKey  string `json:"public_key"`
	} `json:"signing_key"`
	RequestSigning []struct {
		SignedObject string `json:"signed_object"`
		Sig          string `json:"sig"`
	} `json:"request_signing"`
}

// signedRequest is one vector split into the arguments of Sign and Verify.
type signedRequest struct {
	method, uri, origin, destination string
	content                          *canonicaljson.Value
	signedObject                     string
	sig                              string
}

func loadVectors(t testing.TB) (ed25519.PrivateKey, string, []signedRequest) {
	t.Helper()
	data, err := os.ReadFile("testdata/request_signing.json")
	if err != nil {
		t.Fatal(err)
	}
	var v signingVectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("parse testdata/request_signing.json: %v", err)
	}

	seed, err := base64.RawStdEncoding.DecodeString(v.SigningKey.Seed)
	if err != nil {
		t.Fatalf("decode seed: %v", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	wantPub := v.SigningKey.PublicKey
	if got := base64.RawStdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)); got != wantPub {
		t.Fatalf("public key from seed = %s, want %s", got, wantPub)
	}

	var requests []signedRequest
	for _, vec := range v.RequestSigning {
		obj, err := canonicaljson.Parse([]byte(vec.SignedObject))
		if err != nil {
			t.Fatalf("parse signed object %s: %v", vec.SignedObject, err)
		}
		r := signedRequest{signedObject: vec.SignedObject, sig: vec.Sig}
		r.method, _ = obj.GetString("method")
		r.uri, _ = obj.GetString("uri")
		r.origin, _ = obj.GetString("origin")
		r.destination, _ = obj.GetString("destination")
		if content, ok := obj.Get("content"); ok {
			r.content = &content
		}
		requests = append(requests, r)
	}
	if len(requests) != 3 {
		t.Fatalf("loaded %d request-signing vectors, want 3", len(requests))
	}
	return key, v.SigningKey.KeyID, requests
}

func TestSigningInputVectors(t *testing.T) {
	_, _, requests := loadVectors(t)
	for _, r := range requests {
		t.Run(r.method+" "+r.uri, func(t *testing.T) {
			got := SigningInput(r.method, r.uri, r.origin, r.destination, r.content)
			if string(got) != r.signedObject {
				t.Errorf("SigningInput = %s\nwant           %s", got, r.signedObject)
			}
		})
	}
}

func TestSignVectors(t *testing.T) {
	key, keyID, requests := loadVectors(t)
	for _, r := range requests {
		t.Run(r.method+" "+r.uri, func(t *testing.T) {
			c := Sign(key, keyID, r.method, r.uri, r.origin, r.destination, r.content)
			want := Credentials{Origin: r.origin, Destination: r.destination, KeyID: keyID, Signature: r.sig}
			if c != want {
				t.Errorf("Sign = %+v, want %+v", c, want)
			}
		})
	}
}

func TestVerifyVectors(t *testing.T) {
	key, keyID, requests := loadVectors(t)
	pub := key.Public().(ed25519.PublicKey)
	for _, r := range requests {
		t.Run(r.method+" "+r.uri, func(t *testing.T) {
			c := Credentials{Origin: r.origin, Destination: r.destination, KeyID: keyID, Signature: r.sig}
			if err := Verify(c, r.method, r.uri, r.destination, r.content, pub); err != nil {
				t.Errorf("Verify: %v", err)
			}
			c.Signature += "=="
			if err := Verify(c, r.method, r.uri, r.destination, r.content, pub); err != nil {
				t.Errorf("Verify with padded signature: %v", err)
			}
		})
	}
}

func mustParse(t *testing.T, text string) *canonicaljson.Value {
	t.Helper()
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		t.Fatalf("parse %s: %v", text, err)
	}
	return &v
}

func TestVerifyRejectsChangedRequest(t *testing.T) {
	key, keyID, requests := loadVectors(t)
	pub := key.Public().(ed25519.PublicKey)
	get, put, query := requests[0], requests[1], requests[2]
	credentials := func(r signedRequest) Credentials {
		return Credentials{Origin: r.origin, Destination: r.destination, KeyID: keyID, Signature: r.sig}
	}
	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

	tests := []struct {
		name        string
		c           Credentials
		method      string
		uri         string
		destination string
		content     *canonicaljson.Value
		pub         ed25519.PublicKey
	}{
		{"one byte of uri", credentials(get), get.method, "/_matrix/federation/v1/versioN", get.destination, nil, pub},
		{"percent sign encoded again", credentials(query), query.method,
			strings.Replace(query.uri, "%23", "%2523", 1), query.destination, nil, pub},
		{"query decoded", credentials(query), query.method,
			"/_matrix/federation/v1/query/directory?room_alias=#room:remote.example", query.destination, nil, pub},
		{"other destination", credentials(get), get.method, get.uri, "domain", nil, pub},
		{"destination with port", credentials(get), get.method, get.uri, "remote.example:8448", nil, pub},
		{"method lower case", credentials(get), "get", get.uri, get.destination, nil, pub},
		{"empty content added to GET", credentials(get), get.method, get.uri, get.destination,
			mustParse(t, `{}`), pub},
		{"content dropped from PUT", credentials(put), put.method, put.uri, put.destination, nil, pub},
		{"content value changed", credentials(put), put.method, put.uri, put.destination,
			mustParse(t, `{"origin":"domain","origin_server_ts":1000001,"pdus":[]}`), pub},
		{"content member added", credentials(put), put.method, put.uri, put.destination,
			mustParse(t, `{"origin":"domain","origin_server_ts":1000000,"pdus":[],"edus":[]}`), pub},
		{"other origin", Credentials{Origin: "remote.example", KeyID: keyID, Signature: get.sig},
			get.method, get.uri, get.destination, nil, pub},
		{"other key", credentials(get), get.method, get.uri, get.destination, nil,
			otherKey.Public().(ed25519.PublicKey)},
		{"signature of another request", Credentials{Origin: "domain", KeyID: keyID, Signature: put.sig},
			get.method, get.uri, get.destination, nil, pub},
		{"invalid UTF-8 in uri", credentials(get), get.method, get.uri + "\xff", get.destination, nil, pub},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.c, tt.method, tt.uri, tt.destination, tt.content, tt.pub)
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify error = %v, want ErrBadSignature", err)
			}
		})
	}
}

func TestVerifyIgnoresBodyKeyOrder(t *testing.T) {
	key, keyID, requests := loadVectors(t)
	put := requests[1]
	c := Credentials{Origin: put.origin, Destination: put.destination, KeyID: keyID, Signature: put.sig}
	reordered := mustParse(t, "{ \"pdus\": [],\n \"origin_server_ts\": 1000000, \"origin\": \"domain\" }")
	if err := Verify(c, put.method, put.uri, put.destination, reordered, key.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("Verify with reordered body: %v", err)
	}
}

func TestVerifySignatureEncoding(t *testing.T) {
	key, keyID, requests := loadVectors(t)
	pub := key.Public().(ed25519.PublicKey)
	get := requests[0]
	tests := []struct {
		name    string
		sig     string
		wantErr string
	}{
		{"empty", "", "invalid X-Matrix signature: signature is 0 bytes, want 64"},
		{"truncated", get.sig[:84], "invalid X-Matrix signature: signature is 63 bytes, want 64"},
		{"too long", get.sig + "AAAA", "invalid X-Matrix signature: signature is 67 bytes, want 64"},
		{"url-safe alphabet", strings.NewReplacer("+", "-", "/", "_").Replace(get.sig),
			"invalid X-Matrix signature: signature is not base64: illegal base64 data at input byte 17"},
		{"wrong padding", get.sig + "=",
			"invalid X-Matrix signature: signature is not base64: illegal base64 data at input byte 87"},
		{"non-zero trailing bits", get.sig[:85] + "R",
			"invalid X-Matrix signature: signature is not base64: illegal base64 data at input byte 84"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Credentials{Origin: get.origin, KeyID: keyID, Signature: tt.sig}
			err := Verify(c, get.method, get.uri, get.destination, nil, pub)
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("Verify error = %v, want %q", err, tt.wantErr)
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify error = %v, want it to wrap ErrBadSignature", err)
			}
		})
	}
}

func TestVerifyBadPublicKey(t *testing.T) {
	_, keyID, requests := loadVectors(t)
	get := requests[0]
	c := Credentials{Origin: get.origin, KeyID: keyID, Signature: get.sig}
	err := Verify(c, get.method, get.uri, get.destination, nil, make(ed25519.PublicKey, 31))
	want := "verify X-Matrix signature: public key is 31 bytes, want 32"
	if err == nil || err.Error() != want {
		t.Fatalf("Verify error = %v, want %q", err, want)
	}
	if errors.Is(err, ErrBadSignature) {
		t.Errorf("Verify error wraps ErrBadSignature for a caller's bad key")
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key, keyID, _ := loadVectors(t)
	content := mustParse(t, `{"room_version":"12","event":{"content":{"body":"é\u2028<&>"}},"n":-5}`)
	uri := "/_matrix/federation/v2/invite/!room:domain/$ev%2Fent?x=ä"
	c := Sign(key, keyID, "PUT", uri, "domain", "remote.example:8448", content)
	if err := Verify(c, "PUT", uri, "remote.example:8448", content, key.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("Verify of a fresh signature: %v", err)
	}
	header, err := FormatAuthorization(c)
	if err != nil {
		t.Fatalf("FormatAuthorization: %v", err)
	}
	parsed, err := ParseAuthorization([]string{header})
	if err != nil {
		t.Fatalf("ParseAuthorization(%q): %v", header, err)
	}
	if len(parsed) != 1 || parsed[0] != c {
		t.Errorf("ParseAuthorization(%q) = %+v, want [%+v]", header, parsed, c)
	}
}

func BenchmarkVerify(b *testing.B) {
	key, keyID, requests := loadVectors(b)
	pub := key.Public().(ed25519.PublicKey)
	put := requests[1]
	c := Credentials{Origin: put.origin, Destination: put.destination, KeyID: keyID, Signature: put.sig}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(c, put.method, put.uri, put.destination, put.content, pub); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSigningInput(b *testing.B) {
	_, _, requests := loadVectors(b)
	put := requests[1]
	b.ReportAllocs()
	for b.Loop() {
		SigningInput(put.method, put.uri, put.origin, put.destination, put.content)
	}
}
