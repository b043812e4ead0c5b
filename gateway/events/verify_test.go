package events

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/keys"
)

// Keys of the verification tests. wrongHS1 signs under hs1's key ID with a
// key hs1 never published.
var (
	hs1Key      = newSigner("hs1", "ed25519:a", "hs1")
	hs1OtherKey = newSigner("hs1", "ed25519:b", "hs1 second")
	hs2Key      = newSigner("hs2", "ed25519:a", "hs2")
	residentKey = newSigner("res", "ed25519:r", "resident")
	wrongHS1    = newSigner("hs1", "ed25519:a", "not hs1")
)

func TestVerifySignatures(t *testing.T) {
	ts := time.UnixMilli(testTS)
	errLookup := errors.New("dial tcp 127.0.0.1:8448: connection refused")
	member := func(version, content string) string {
		return eventJSON(mustVersion(t, version), "m.room.member", content, "@alice:hs1")
	}
	restrictedJoin := `{"membership":"join","join_authorised_via_users_server":"@admin:res"}`

	cases := []struct {
		name    string
		version string
		base    string // event JSON, or "" for messageJSON of the version
		signers []signer
		edits   []edit // applied after signing
		lookup  func(l *memLookup)
		// nilLookup passes a nil keys.Lookup to Verify.
		nilLookup bool

		wantErr      string
		wantRequired []string
		wantSignedBy []string
		wantStatus   map[string]map[string]SigStatus
	}{
		{
			name: "valid", version: "10", signers: []signer{hs1Key},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "signature by wrong key", version: "10", signers: []signer{wrongHS1},
			wantErr:      `event signature check failed: signature ed25519:a of server "hs1" is invalid`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigInvalid}},
		},
		{
			name: "missing sender signature", version: "10", signers: []signer{hs2Key},
			wantErr:      `event signature check failed: no signature from required server "hs1"`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{},
		},
		{
			name: "unknown key only", version: "10", signers: []signer{hs1OtherKey},
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked (ed25519:b unknown_key)`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:b": SigUnknownKey}},
		},
		{
			name: "unknown key skipped beside valid key", version: "10", signers: []signer{hs1Key, hs1OtherKey},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid, "ed25519:b": SigUnknownKey}},
		},
		{
			name: "invalid signature beside valid one", version: "10", signers: []signer{hs1Key, hs1OtherKey},
			lookup: func(l *memLookup) {
				l.add(hs1OtherKey, func(k *keys.VerifyKey) { k.Public = hs2Key.public() })
			},
			wantErr:      `event signature check failed: signature ed25519:b of server "hs1" is invalid`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid, "ed25519:b": SigInvalid}},
		},
		{
			name: "revoked key", version: "10", signers: []signer{hs1Key},
			lookup:       func(l *memLookup) { l.revoke("hs1", "ed25519:a") },
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked (ed25519:a revoked_key)`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigRevokedKey}},
		},
		{
			name: "v1 event ID server did not sign", version: "1", signers: []signer{hs1Key},
			base:         strings.Replace(messageJSON(mustVersion(t, "1")), `"$e1:hs1"`, `"$e1:hs2"`, 1),
			wantErr:      `event signature check failed: no signature from required server "hs2"`,
			wantRequired: []string{"hs1", "hs2"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "v2 event ID server signed", version: "2", signers: []signer{hs1Key, hs2Key},
			base:         strings.Replace(messageJSON(mustVersion(t, "2")), `"$e1:hs1"`, `"$e1:hs2"`, 1),
			wantRequired: []string{"hs1", "hs2"}, wantSignedBy: []string{"hs1", "hs2"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}, "hs2": {"ed25519:a": SigValid}},
		},
		{
			name: "v3 event ID server not required", version: "3", signers: []signer{hs1Key},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "v8 restricted join without authoriser signature", version: "8",
			base: member("8", restrictedJoin), signers: []signer{hs1Key},
			wantErr:      `event signature check failed: no signature from required server "res"`,
			wantRequired: []string{"hs1", "res"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "v7 restricted join without authoriser signature", version: "7",
			base: member("7", restrictedJoin), signers: []signer{hs1Key},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "v10 restricted join with authoriser signature", version: "10",
			base: member("10", restrictedJoin), signers: []signer{hs1Key, residentKey},
			wantRequired: []string{"hs1", "res"}, wantSignedBy: []string{"hs1", "res"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}, "res": {"ed25519:r": SigValid}},
		},
		{
			name: "v8 restricted leave needs no authoriser", version: "8",
			base:    member("8", `{"membership":"leave","join_authorised_via_users_server":"@admin:res"}`),
			signers: []signer{hs1Key}, wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "third-party invite without sender signature", version: "10",
			base:         member("10", `{"membership":"invite","third_party_invite":{"display_name":"b","signed":{"mxid":"@bob:hs3","token":"t"}}}`),
			signers:      []signer{hs2Key},
			wantRequired: []string{}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{},
		},
		{
			name: "expired key v5", version: "5", signers: []signer{hs1Key},
			lookup: func(l *memLookup) {
				l.add(hs1Key, func(k *keys.VerifyKey) { k.ValidUntil = ts.Add(-time.Millisecond) })
			},
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked (ed25519:a expired_key)`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigExpiredKey}},
		},
		{
			name: "key valid until the event v5", version: "5", signers: []signer{hs1Key},
			lookup: func(l *memLookup) {
				l.add(hs1Key, func(k *keys.VerifyKey) { k.ValidUntil = ts })
			},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "expired key v4", version: "4", signers: []signer{hs1Key},
			lookup: func(l *memLookup) {
				l.add(hs1Key, func(k *keys.VerifyKey) { k.ValidUntil = ts.Add(-time.Millisecond) })
			},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "old verify key at its expired_ts v4", version: "4", signers: []signer{hs1Key},
			lookup: func(l *memLookup) {
				l.add(hs1Key, func(k *keys.VerifyKey) { k.Expired = ts })
			},
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked (ed25519:a expired_key)`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigExpiredKey}},
		},
		{
			name: "old verify key before its expired_ts v10", version: "10", signers: []signer{hs1Key},
			lookup: func(l *memLookup) {
				l.add(hs1Key, func(k *keys.VerifyKey) { k.Expired = ts.Add(time.Millisecond) })
			},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "key lookup failure", version: "10", signers: []signer{hs1OtherKey},
			lookup:       func(l *memLookup) { l.fail = errLookup },
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked: look up key ed25519:b of "hs1": dial tcp 127.0.0.1:8448: connection refused`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:b": SigLookupFailed}},
		},
		{
			name: "nil lookup", version: "10", signers: []signer{hs1Key}, nilLookup: true,
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked (ed25519:a unknown_key)`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigUnknownKey}},
		},
		{
			name: "unsupported algorithm only", version: "10",
			edits:        []edit{set("signatures", `{"hs1":{"curve25519:x":"AAAA"}}`)},
			wantErr:      `event signature check failed: no signature from required server "hs1" could be checked (curve25519:x unsupported_algorithm)`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"curve25519:x": SigUnsupportedAlgorithm}},
		},
		{
			name: "empty signatures of sender", version: "10", signers: []signer{hs1Key},
			edits:        []edit{set("signatures", `{"hs1":{}}`)},
			wantErr:      `event signature check failed: no signature from required server "hs1"`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{},
		},
		{
			name: "truncated signature", version: "10", signers: []signer{hs1Key},
			edits:        []edit{set("signatures", `{"hs1":{"ed25519:a":"AAAA"}}`)},
			wantErr:      `event signature check failed: signature ed25519:a of server "hs1" is invalid`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigInvalid}},
		},
		{
			name: "tampered type", version: "10", signers: []signer{hs1Key},
			edits:        []edit{set("type", `"m.room.messagf"`)},
			wantErr:      `event signature check failed: signature ed25519:a of server "hs1" is invalid`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigInvalid}},
		},
		{
			name: "tampered depth", version: "3", signers: []signer{hs1Key},
			edits:        []edit{set("depth", "6")},
			wantErr:      `event signature check failed: signature ed25519:a of server "hs1" is invalid`,
			wantRequired: []string{"hs1"}, wantSignedBy: []string{},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigInvalid}},
		},
		{
			name: "tampered unsigned", version: "10", signers: []signer{hs1Key},
			edits:        []edit{set("unsigned", `{"age":99999}`)},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
		{
			name: "extra signature of other server", version: "10", signers: []signer{hs1Key, hs2Key},
			wantRequired: []string{"hs1"}, wantSignedBy: []string{"hs1"},
			wantStatus: map[string]map[string]SigStatus{"hs1": {"ed25519:a": SigValid}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rv := mustVersion(t, tc.version)
			base := tc.base
			if base == "" {
				base = messageJSON(rv)
			}
			// Cases without signers replace the signatures in an edit, but
			// signing still sets the content hash.
			signers := tc.signers
			if len(signers) == 0 {
				signers = []signer{hs1Key}
			}
			v := mustSign(t, mustParse(t, base), rv, signers...)
			for _, e := range tc.edits {
				v = e(t, v)
			}
			lookup := newMemLookup(hs1Key, hs2Key, residentKey)
			if tc.lookup != nil {
				tc.lookup(lookup)
			}
			var l keys.Lookup = lookup
			if tc.nilLookup {
				l = nil
			}

			res := Verify(context.Background(), mustParsePDU(t, v, rv), l)
			if tc.wantErr == "" && res.Err != nil {
				t.Errorf("Verify error: %v", res.Err)
			}
			if tc.wantErr != "" {
				if res.Err == nil {
					t.Errorf("Verify accepted the event, want error %q", tc.wantErr)
				} else if res.Err.Error() != tc.wantErr {
					t.Errorf("Verify error:\n got  %s\n want %s", res.Err, tc.wantErr)
				}
				if !errors.Is(res.Err, ErrSignature) {
					t.Errorf("error %v does not wrap ErrSignature", res.Err)
				}
			}
			if !slices.Equal(res.RequiredSigners, tc.wantRequired) {
				t.Errorf("RequiredSigners = %v, want %v", res.RequiredSigners, tc.wantRequired)
			}
			if !slices.Equal(res.SignedBy, tc.wantSignedBy) {
				t.Errorf("SignedBy = %v, want %v", res.SignedBy, tc.wantSignedBy)
			}
			if got, want := fmt.Sprint(res.Signatures), fmt.Sprint(tc.wantStatus); got != want {
				t.Errorf("Signatures = %s, want %s", got, want)
			}
		})
	}
}

func TestVerifyLookupErrorIsWrapped(t *testing.T) {
	rv := mustVersion(t, "10")
	lookup := newMemLookup()
	lookup.fail = context.DeadlineExceeded
	v := mustSign(t, mustParse(t, messageJSON(rv)), rv, hs1Key)
	res := Verify(context.Background(), mustParsePDU(t, v, rv), lookup)
	if !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the lookup error", res.Err)
	}
	if !errors.Is(res.Err, ErrSignature) {
		t.Errorf("error %v does not wrap ErrSignature", res.Err)
	}
}

func TestVerifyContentHash(t *testing.T) {
	cases := []struct {
		name      string
		version   string
		base      string
		edits     []edit
		wantValid bool
		// wantContent is the content of Result.Redacted when the hash is
		// invalid.
		wantContent string
	}{
		{name: "untouched", version: "10", wantValid: true},
		{
			name: "tampered message body", version: "10", edits: []edit{setContent("body", `"goodbye"`)},
			wantContent: `{}`,
		},
		{
			name: "tampered member displayname", version: "11",
			base:        eventJSON(mustVersion(t, "11"), "m.room.member", `{"membership":"join","displayname":"Alice"}`, "@alice:hs1"),
			edits:       []edit{setContent("displayname", `"Mallory"`)},
			wantContent: `{"membership":"join"}`,
		},
		{
			name: "hash not base64", version: "10",
			edits:       []edit{set("hashes", `{"sha256":"not base64!"}`), resignV10(hs1Key)},
			wantContent: `{}`,
		},
		{
			name: "padded hash accepted", version: "10", edits: []edit{paddedHash, resignV10(hs1Key)},
			wantValid: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rv := mustVersion(t, tc.version)
			base := tc.base
			if base == "" {
				base = messageJSON(rv)
			}
			v := mustSign(t, mustParse(t, base), rv, hs1Key)
			for _, e := range tc.edits {
				v = e(t, v)
			}
			pdu := mustParsePDU(t, v, rv)
			res := Verify(context.Background(), pdu, newMemLookup(hs1Key))
			if res.Err != nil {
				t.Errorf("Verify error: %v", res.Err)
			}
			if res.ContentHashValid != tc.wantValid {
				t.Errorf("ContentHashValid = %v, want %v", res.ContentHashValid, tc.wantValid)
			}
			if tc.wantValid {
				if !res.Redacted.IsNull() {
					t.Errorf("Redacted = %s, want the zero Value", canonicaljson.Encode(res.Redacted))
				}
				return
			}
			want := string(canonicaljson.Encode(Redact(v, rv)))
			if got := string(canonicaljson.Encode(res.Redacted)); got != want {
				t.Errorf("Redacted:\n got  %s\n want %s", got, want)
			}
			content, _ := res.Redacted.Get("content")
			if got := string(canonicaljson.Encode(content)); got != tc.wantContent {
				t.Errorf("redacted content = %s, want %s", got, tc.wantContent)
			}
			var keys []string
			for _, m := range res.Redacted.Members() {
				keys = append(keys, m.Key)
			}
			wantKeys := "auth_events content depth hashes origin origin_server_ts prev_events room_id sender signatures type"
			if rv.Redaction >= RedactionV11 {
				wantKeys = "auth_events content depth hashes origin_server_ts prev_events room_id sender signatures state_key type"
			}
			if got := strings.Join(keys, " "); got != wantKeys {
				t.Errorf("redacted members = %s, want %s", got, wantKeys)
			}
		})
	}
}

// paddedHash rewrites hashes.sha256 in padded base64.
func paddedHash(t testing.TB, v canonicaljson.Value) canonicaljson.Value {
	hashes, _ := v.Get("hashes")
	text, _ := hashes.GetString("sha256")
	return set("hashes", fmt.Sprintf(`{"sha256":"%s="}`, text))(t, v)
}

// resignV10 replaces the signatures with one by s over the event as it is in
// room version 10, without recomputing the content hash as SignEvent does.
func resignV10(s signer) edit {
	return func(t testing.TB, v canonicaljson.Value) canonicaljson.Value {
		rv := mustVersion(t, "10")
		sig := ed25519.Sign(s.priv, appendRedacted(nil, v, rv, false))
		text := base64.RawStdEncoding.EncodeToString(sig)
		return set("signatures", fmt.Sprintf(`{%q:{%q:%q}}`, s.server, s.keyID, text))(t, v)
	}
}

// TestVerifyPaddedSignature checks that a signature in padded base64,
// which decoders should accept, verifies.
func TestVerifyPaddedSignature(t *testing.T) {
	rv := mustVersion(t, "10")
	v := mustSign(t, mustParse(t, messageJSON(rv)), rv, hs1Key)
	sigs, _ := v.Get("signatures")
	server, _ := sigs.Get("hs1")
	text, _ := server.GetString("ed25519:a")
	v = set("signatures", fmt.Sprintf(`{"hs1":{"ed25519:a":"%s=="}}`, text))(t, v)
	res := Verify(context.Background(), mustParsePDU(t, v, rv), newMemLookup(hs1Key))
	if res.Err != nil {
		t.Errorf("Verify error: %v", res.Err)
	}
}

// TestEventIDIgnoresSignatures checks that adding a signature, as invited
// and authorising servers do, keeps the event ID.
func TestEventIDIgnoresSignatures(t *testing.T) {
	for _, id := range []string{"3", "4", "11", "12"} {
		rv := mustVersion(t, id)
		once := mustSign(t, mustParse(t, messageJSON(rv)), rv, hs1Key)
		twice := mustSign(t, once, rv, hs2Key, residentKey)
		a, b := mustParsePDU(t, once, rv), mustParsePDU(t, twice, rv)
		if a.EventID != b.EventID {
			t.Errorf("v%s: event ID changed from %s to %s after signing", id, a.EventID, b.EventID)
		}
		if !strings.HasPrefix(a.EventID, "$") || len(a.EventID) != 44 {
			t.Errorf("v%s: event ID %q is not $ and 43 characters", id, a.EventID)
		}
	}
}
