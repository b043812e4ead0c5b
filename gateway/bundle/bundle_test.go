package bundle

import (
	"bytes"
	"compress/gzip"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/internal/testbundle"
)

const testPolicy = `package bordergate.request

decision := {"allow": true, "reasons": []}
`

var testModules = map[string]string{
	"bordergate/request.rego":      testPolicy,
	"bordergate/request_test.rego": "package bordergate.request_test\n\ntest_x if true\n",
}

func newSigner(t *testing.T, keyID string) *testbundle.Signer {
	t.Helper()
	s, err := testbundle.NewEd25519Signer(keyID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newVerifier(t *testing.T, signers ...*testbundle.Signer) *Verifier {
	t.Helper()
	var keys []Key
	for _, s := range signers {
		keys = append(keys, Key{ID: s.KeyID, Algorithm: s.Algorithm, PEM: s.PublicPEM})
	}
	v, err := NewVerifier(keys, "")
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func build(t *testing.T, spec testbundle.Spec) []byte {
	t.Helper()
	if spec.Modules == nil {
		spec.Modules = testModules
	}
	raw, err := testbundle.Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestReadSigned(t *testing.T) {
	signer := newSigner(t, "policy-a")
	raw := build(t, testbundle.Spec{
		Revision: "r1",
		Signer:   signer,
		Data: map[string]any{"bordergate": map[string]any{
			"config":    map[string]any{"denied_event_types": []any{"x"}},
			"allowlist": map[string]any{"servers": []any{map[string]any{"server_name": "hs1.example", "endpoints": []any{"*"}}}},
		}},
	})
	b, err := Read(raw, newVerifier(t, signer), 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if b.KeyID != "policy-a" {
		t.Errorf("KeyID = %q, want policy-a", b.KeyID)
	}
	if !regexp.MustCompile(`^r1@sha256:[0-9a-f]{64}$`).MatchString(b.Revision) {
		t.Errorf("Revision = %q, want r1@sha256: and 64 hex digits", b.Revision)
	}
	if b.ManifestRevision != "r1" || b.Revision != "r1@sha256:"+b.Digest {
		t.Errorf("ManifestRevision = %q, Revision = %q, Digest = %q", b.ManifestRevision, b.Revision, b.Digest)
	}
	if len(b.Modules) != 1 || b.Modules[0].Name != "bordergate/request.rego" || string(b.Modules[0].Source) != testPolicy {
		t.Errorf("Modules = %+v, want only bordergate/request.rego without the test module", b.Modules)
	}
	if got, _ := b.Config["denied_event_types"].([]any); len(got) != 1 || got[0] != "x" {
		t.Errorf("Config = %v, want denied_event_types [x]", b.Config)
	}
	if !b.HasAllowlist || len(b.Allowlist) != 1 || b.Allowlist[0].ServerName != "hs1.example" {
		t.Errorf("Allowlist = %+v (present %v), want hs1.example", b.Allowlist, b.HasAllowlist)
	}
}

func TestReadUnsignedWithoutKeys(t *testing.T) {
	b, err := Read(build(t, testbundle.Spec{}), nil, 0)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if b.KeyID != "" || b.HasAllowlist || b.Config != nil {
		t.Errorf("KeyID = %q, HasAllowlist = %v, Config = %v; want none", b.KeyID, b.HasAllowlist, b.Config)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(b.Revision) {
		t.Errorf("Revision = %q, want sha256: and 64 hex digits", b.Revision)
	}
}

func TestReadKeyRotation(t *testing.T) {
	a, b := newSigner(t, "policy-a"), newSigner(t, "policy-b")
	raw := build(t, testbundle.Spec{Revision: "r2", Signer: b})

	got, err := Read(raw, newVerifier(t, a, b), 0)
	if err != nil {
		t.Fatalf("Read with keys A and B: %v", err)
	}
	if got.KeyID != "policy-b" {
		t.Errorf("KeyID = %q, want policy-b", got.KeyID)
	}

	_, err = Read(raw, newVerifier(t, a), 0)
	assertReason(t, err, ReasonSignature, "read bundle: verification key corresponding to ID policy-b not found")
}

func TestDigestIgnoresArchiveLayout(t *testing.T) {
	spec := testbundle.Spec{Revision: "r1", Data: map[string]any{"bordergate": map[string]any{"config": map[string]any{"a": 1}}}}
	first, err := Read(build(t, spec), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Recompressing changes every byte of the archive but not its content.
	second, err := Read(recompress(t, build(t, spec)), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if first.Digest != second.Digest {
		t.Errorf("digests differ for the same content: %s and %s", first.Digest, second.Digest)
	}
	spec.Data = map[string]any{"bordergate": map[string]any{"config": map[string]any{"a": 2}}}
	third, err := Read(build(t, spec), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if third.Digest == first.Digest {
		t.Error("digest did not change with the data")
	}
}

func recompress(t *testing.T, raw []byte) []byte {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var plain bytes.Buffer
	if _, err := plain.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	w, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	w.Write(plain.Bytes())
	w.Close()
	return out.Bytes()
}

func TestReadRejects(t *testing.T) {
	a, b := newSigner(t, "policy-a"), newSigner(t, "policy-b")
	verifier := newVerifier(t, a)
	withData := func(data map[string]any) []byte {
		return build(t, testbundle.Spec{Signer: a, Data: data})
	}
	allowlist := func(v any) []byte {
		return withData(map[string]any{"bordergate": map[string]any{"allowlist": v}})
	}
	tests := []struct {
		name     string
		raw      []byte
		verifier *Verifier
		reason   Reason
		message  string
	}{
		{
			"unsigned with signing on", build(t, testbundle.Spec{}), verifier, ReasonUnsigned,
			"read bundle: the bundle carries no signature and signing is configured; sign it with opa build --signing-key",
		},
		{
			"module changed after signing", build(t, testbundle.Spec{Signer: a, TamperModule: "bordergate/request.rego"}), verifier,
			ReasonSignature, "read bundle: bordergate/request.rego: digest mismatch",
		},
		{
			"signed by an unknown key", build(t, testbundle.Spec{Signer: b}), verifier, ReasonSignature,
			"read bundle: verification key corresponding to ID policy-b not found",
		},
		{
			"signed without keys configured", build(t, testbundle.Spec{Signer: a}), nil, ReasonSignature,
			"read bundle: the bundle is signed but no signing keys are configured; add its public key: verification key not provided",
		},
		{"not gzip", []byte("plain text"), verifier, ReasonMalformed, "read bundle: not a gzip archive: gzip: invalid header"},
		{
			"manifest revision that names a digest",
			build(t, testbundle.Spec{Signer: a, Revision: "v41@sha256:" + strings.Repeat("ab", 32)}), verifier, ReasonMalformed,
			`read bundle: the manifest revision "v41@sha256:abab`,
		},
		{
			"manifest revision in the form of a digest",
			build(t, testbundle.Spec{Signer: a, Revision: "sha256:" + strings.Repeat("ab", 32)}), verifier, ReasonMalformed,
			`read bundle: the manifest revision "sha256:abab`,
		},
		{
			"no modules", build(t, testbundle.Spec{Signer: a, Modules: map[string]string{}}), verifier, ReasonMalformed,
			"read bundle: the bundle holds no .rego module other than tests",
		},
		{
			"unparsable module", build(t, testbundle.Spec{Signer: a, Modules: map[string]string{"p.rego": "package x\n\nx := {\n"}}),
			verifier, ReasonMalformed, "read bundle: 2 errors occurred:",
		},
		{
			"data outside bordergate", withData(map[string]any{"other": map[string]any{}}), verifier, ReasonData,
			"bundle data other: a bordergate bundle holds data only under bordergate/config and bordergate/allowlist",
		},
		{
			"unknown bordergate path", withData(map[string]any{"bordergate": map[string]any{"rooms": 1}}), verifier, ReasonData,
			"bundle data bordergate/rooms: a bordergate bundle holds data only under bordergate/config and bordergate/allowlist",
		},
		{
			"config not an object", withData(map[string]any{"bordergate": map[string]any{"config": []any{}}}), verifier, ReasonData,
			"bundle data bordergate/config: is an array, expected an object",
		},
		{
			"allow-list not an object", allowlist([]any{}), verifier, ReasonAllowlist,
			"bundle data bordergate/allowlist: is an array, expected an object with the key servers",
		},
		{
			"allow-list unknown key", allowlist(map[string]any{"servers": []any{}, "extra": 1}), verifier, ReasonAllowlist,
			`bundle data bordergate/allowlist: unknown key "extra"; the allow-list has the single key servers`,
		},
		{
			"allow-list entry unknown field",
			allowlist(map[string]any{"servers": []any{map[string]any{"server_name": "a.example", "endpoints": []any{"*"}, "colour": "red"}}}),
			verifier, ReasonAllowlist, `bundle data bordergate/allowlist: servers[0]: json: unknown field "colour"`,
		},
		{
			"allow-list entry invalid",
			allowlist(map[string]any{"servers": []any{map[string]any{"server_name": "a.example", "endpoints": []any{}}}}),
			verifier, ReasonAllowlist,
			`bundle data bordergate/allowlist: servers[0] (server_name "a.example"): endpoints: missing (expected ["*"] to permit every endpoint, or a list of endpoint IDs such as ["send", "make_join"])`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(tt.raw, tt.verifier, 0)
			assertReason(t, err, tt.reason, tt.message)
		})
	}
}

func TestReadSizeCap(t *testing.T) {
	big := map[string]string{"bordergate/request.rego": testPolicy + "# " + strings.Repeat("x", 4096) + "\n"}
	_, err := Read(build(t, testbundle.Spec{Modules: big}), nil, 2048)
	assertReason(t, err, ReasonMalformed, "read bundle: files add up to more than 2048 bytes; raise the bundle's max_bytes or shrink the bundle")
}

func assertReason(t *testing.T, err error, reason Reason, message string) {
	t.Helper()
	var bundleErr *Error
	if !errors.As(err, &bundleErr) {
		t.Fatalf("error = %v, want a *bundle.Error", err)
	}
	if bundleErr.Reason != reason {
		t.Errorf("Reason = %q, want %q (error %v)", bundleErr.Reason, reason, err)
	}
	if !strings.HasPrefix(err.Error(), message) {
		t.Errorf("error = %q, want prefix %q", err, message)
	}
}

func TestNewVerifierErrors(t *testing.T) {
	ed := newSigner(t, "k")
	tests := []struct {
		name    string
		keys    []Key
		message string
	}{
		{"no keys", nil, "no keys: list at least one public key"},
		{"missing id", []Key{{Algorithm: "EdDSA", PEM: ed.PublicPEM}}, "keys[0]: key_id is missing; write the ID that signatures name in their kid header"},
		{
			"duplicate id", []Key{{ID: "k", Algorithm: "EdDSA", PEM: ed.PublicPEM}, {ID: "k", Algorithm: "EdDSA", PEM: ed.PublicPEM}},
			`keys[1]: key_id "k" is listed twice`,
		},
		{"not PEM", []Key{{ID: "k", Algorithm: "EdDSA", PEM: []byte("abc")}}, "keys[0] (k): no PEM block found; write the public key in PEM form"},
		{
			"private key", []Key{{ID: "k", Algorithm: "EdDSA", PEM: ed.PrivatePEM}},
			`keys[0] (k): PEM block is "PRIVATE KEY"; write a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE block, never a private key`,
		},
		{
			"wrong algorithm", []Key{{ID: "k", Algorithm: "RS256", PEM: ed.PublicPEM}},
			"keys[0] (k): the key is a ed25519.PublicKey, which does not suit algorithm RS256",
		},
		{
			"unknown algorithm", []Key{{ID: "k", Algorithm: "HS256", PEM: ed.PublicPEM}},
			`keys[0] (k): algorithm "HS256" is not supported; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA`,
		},
		{
			"missing algorithm", []Key{{ID: "k", PEM: ed.PublicPEM}},
			"keys[0] (k): algorithm is missing; write the JWS algorithm of the signatures, such as EdDSA or RS256",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewVerifier(tt.keys, "")
			if err == nil || err.Error() != tt.message {
				t.Errorf("NewVerifier error = %v, want %q", err, tt.message)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	signer, err := testbundle.NewEd25519Signer("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	for _, spec := range []testbundle.Spec{
		{Modules: testModules},
		{Modules: testModules, Signer: signer, Revision: "r"},
		{Modules: testModules, Data: map[string]any{"bordergate": map[string]any{"allowlist": map[string]any{"servers": []any{}}}}},
	} {
		raw, err := testbundle.Build(spec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte{})
	verifier, err := NewVerifier([]Key{{ID: "fuzz", Algorithm: "EdDSA", PEM: signer.PublicPEM}}, "")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, v := range []*Verifier{nil, verifier} {
			b, err := Read(raw, v, 1<<20)
			if err != nil {
				var bundleErr *Error
				if !errors.As(err, &bundleErr) {
					t.Fatalf("error %v is not a *bundle.Error", err)
				}
				continue
			}
			if len(b.Modules) == 0 {
				t.Fatal("accepted a bundle without modules")
			}
			if v != nil && b.KeyID != "fuzz" {
				t.Fatalf("accepted a bundle signed by %q with only key fuzz configured", b.KeyID)
			}
		}
	})
}
