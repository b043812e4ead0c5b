package testfed

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
)

// specKey is the signing key of the Matrix specification's cryptographic
// test vectors (appendices, "Signing Key"): server "domain", key ID
// "ed25519:1".
func specKey(t *testing.T) SigningKey {
	t.Helper()
	seed, err := base64.RawStdEncoding.DecodeString("YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1")
	if err != nil {
		t.Fatal(err)
	}
	return SigningKey{ServerName: "domain", KeyID: "ed25519:1", Private: ed25519.NewKeyFromSeed(seed)}
}

func TestSignJSONSpecVectors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"empty object", `{}`,
			"K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"},
		{"two members", `{"one": 1, "two": "Two"}`,
			"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"},
		{"unsigned and signatures excluded", `{"one": 1, "two": "Two", "unsigned": {"age": 5}, "signatures": {"other": {"ed25519:x": "abc"}}}`,
			"KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var object map[string]any
			if err := json.Unmarshal([]byte(tt.input), &object); err != nil {
				t.Fatal(err)
			}
			if err := specKey(t).SignJSON(object); err != nil {
				t.Fatal(err)
			}
			signatures := object["signatures"].(map[string]any)
			got := signatures["domain"].(map[string]any)["ed25519:1"]
			if got != tt.want {
				t.Errorf("signature = %v, want %s", got, tt.want)
			}
		})
	}
}

func TestSignJSONKeepsOtherMembers(t *testing.T) {
	object := map[string]any{
		"a":          "b",
		"unsigned":   map[string]any{"age": 5},
		"signatures": map[string]any{"other": map[string]any{"ed25519:x": "abc"}},
	}
	if err := specKey(t).SignJSON(object); err != nil {
		t.Fatal(err)
	}
	data, err := canonicalJSON(object)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"b","signatures":{"domain":{"ed25519:1":"` + signatureOf(t, `{"a":"b"}`) +
		`"},"other":{"ed25519:x":"abc"}},"unsigned":{"age":5}}`
	if string(data) != want {
		t.Errorf("signed object = %s\nwant %s", data, want)
	}
}

func signatureOf(t *testing.T, canonical string) string {
	t.Helper()
	return base64.RawStdEncoding.EncodeToString(ed25519.Sign(specKey(t).Private, []byte(canonical)))
}

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		name  string
		input any
		want  string
	}{
		{"sorted keys", map[string]any{"b": 1, "a": map[string]any{"d": true, "c": nil}}, `{"a":{"c":null,"d":true},"b":1}`},
		{"no HTML escaping", map[string]any{"uri": "/a?b=<c>&d"}, `{"uri":"/a?b=<c>&d"}`},
		{"large integer kept exact", map[string]any{"ts": int64(9007199254740991)}, `{"ts":9007199254740991}`},
		{"struct through map", struct {
			Z string `json:"z"`
			A int    `json:"a"`
		}{"x", 2}, `{"a":2,"z":"x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := canonicalJSON(tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("canonicalJSON() = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSignRequest(t *testing.T) {
	key := specKey(t)
	tests := []struct {
		name   string
		method string
		url    string
		body   []byte
		signed string
	}{
		{
			name: "GET with query", method: http.MethodGet,
			url:    "https://hs2.localhost:8448/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2",
			signed: `{"destination":"hs2.localhost:8448","method":"GET","origin":"domain","uri":"/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2"}`,
		},
		{
			name: "PUT with body", method: http.MethodPut,
			url:    "https://hs2.localhost:8448/_matrix/federation/v1/send/1",
			body:   []byte(`{"pdus": [], "origin": "domain"}`),
			signed: `{"content":{"origin":"domain","pdus":[]},"destination":"hs2.localhost:8448","method":"PUT","origin":"domain","uri":"/_matrix/federation/v1/send/1"}`,
		},
	}
	header := regexp.MustCompile(`^X-Matrix origin="domain",destination="hs2.localhost:8448",key="ed25519:1",sig="([A-Za-z0-9+/]{86})"$`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := key.SignRequest(req, "hs2.localhost:8448", tt.body); err != nil {
				t.Fatal(err)
			}
			match := header.FindStringSubmatch(req.Header.Get("Authorization"))
			if match == nil {
				t.Fatalf("Authorization = %q, want an X-Matrix header matching %s", req.Header.Get("Authorization"), header)
			}
			if want := signatureOf(t, tt.signed); match[1] != want {
				t.Errorf("sig = %s, want the signature of %s (%s)", match[1], tt.signed, want)
			}
		})
	}
}

func TestNewSigningKey(t *testing.T) {
	random, err := NewSigningKey("hs1.localhost:8481", "")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ed25519:t[0-9a-f]{6}$`).MatchString(random.KeyID) {
		t.Errorf("random KeyID = %q, want ed25519:t followed by six hex digits", random.KeyID)
	}
	fixed, err := NewSigningKey("hs1.localhost:8481", "ed25519:abc")
	if err != nil {
		t.Fatal(err)
	}
	if fixed.KeyID != "ed25519:abc" {
		t.Errorf("KeyID = %q, want ed25519:abc", fixed.KeyID)
	}
	if random.PublicKeyBase64() == fixed.PublicKeyBase64() {
		t.Error("two generated keys are equal")
	}
	if got := len(fixed.PublicKeyBase64()); got != 43 {
		t.Errorf("public key is %d base64 characters, want 43", got)
	}
}
