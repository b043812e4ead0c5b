package events

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

func TestInspectValidEvent(t *testing.T) {
	rv := mustVersion(t, "10")
	v := mustSign(t, mustParse(t, messageJSON(rv)), rv, hs1Key)
	pdu := mustParsePDU(t, v, rv)
	// Pretty-printed input must be reported in canonical form.
	pretty, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}

	report, err := Inspect(context.Background(), pretty, "10", newMemLookup(hs1Key))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"RoomVersion", report.RoomVersion, "10"},
		{"Canonical", report.Canonical, string(canonicaljson.Encode(v))},
		{"EventID", report.EventID, pdu.EventID},
		{"RoomID", report.RoomID, "!r:hs1"},
		{"ContentHash", report.ContentHash, HashValid},
		{"ComputedContentHash", report.ComputedContentHash, b64(ContentHash(v))},
		{"ReferenceHash", report.ReferenceHash, b64(pdu.ReferenceHash())},
		{"RequiredSigners", strings.Join(report.RequiredSigners, ","), "hs1"},
		{"SignedBy", strings.Join(report.SignedBy, ","), "hs1"},
		{"Signature", report.Signatures["hs1"]["ed25519:a"], SigValid},
		{"Redacted", report.Redacted, ""},
		{"FormatError", report.FormatError, ""},
		{"SignatureError", report.SignatureError, ""},
		{"Accepted", report.Accepted, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
		}
	}

	out, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out, &fields); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"canonical", "content_hash", "event_id", "room_version", "signatures", "required_signers", "format_error"} {
		if _, ok := fields[key]; !ok {
			t.Errorf("JSON report has no %q member: %s", key, out)
		}
	}
	if got := string(fields["signatures"]); got != `{"hs1":{"ed25519:a":"valid"}}` {
		t.Errorf("JSON signatures = %s", got)
	}
}

func TestInspectProblems(t *testing.T) {
	rv3 := mustVersion(t, "3")
	rv10 := mustVersion(t, "10")
	signed := mustSign(t, mustParse(t, messageJSON(rv10)), rv10, hs1Key)
	tampered := setContent("body", `"changed"`)(t, signed)
	withEventID := set("event_id", `"$x:hs1"`)(t, mustSign(t, mustParse(t, messageJSON(rv3)), rv3, hs1Key))
	unknownKey := mustSign(t, mustParse(t, messageJSON(rv10)), rv10, hs1OtherKey)

	cases := []struct {
		name           string
		data           []byte
		version        string
		wantHash       string
		wantFormat     string
		wantSignature  string
		wantAccepted   bool
		wantRedacted   bool
		wantRequired   []string
		wantStatus     SigStatus // status of hs1's first key, "" when none
		wantEventIDSet bool
	}{
		{
			name: "tampered content", data: canonicaljson.Encode(tampered), version: "10",
			wantHash: HashInvalid, wantAccepted: true, wantRedacted: true,
			wantRequired: []string{"hs1"}, wantStatus: SigValid, wantEventIDSet: true,
		},
		{
			// event_id was added after signing, so the content hash no
			// longer matches.
			name: "v3 event with event_id", data: canonicaljson.Encode(withEventID), version: "3",
			wantHash:       HashInvalid,
			wantFormat:     "invalid event format: event_id: must be absent in room version 3, where the event ID is derived from the event",
			wantRequired:   []string{},
			wantEventIDSet: true,
		},
		{
			name: "missing hashes", data: canonicaljson.Encode(signed.Without("hashes")), version: "10",
			wantHash: HashMissing, wantFormat: "invalid event format: hashes: missing",
			wantRequired: []string{}, wantEventIDSet: true,
		},
		{
			name: "unknown key", data: canonicaljson.Encode(unknownKey), version: "10",
			wantHash:       HashValid,
			wantSignature:  `event signature check failed: no signature from required server "hs1" could be checked (ed25519:b unknown_key)`,
			wantRequired:   []string{"hs1"},
			wantEventIDSet: true,
		},
		{
			name: "not an object", data: []byte(`[1,2]`), version: "10",
			wantFormat:   "invalid event format: event is a JSON array, not an object",
			wantRequired: []string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			report, err := Inspect(context.Background(), tc.data, tc.version, newMemLookup(hs1Key))
			if err != nil {
				t.Fatal(err)
			}
			if report.ContentHash != tc.wantHash {
				t.Errorf("ContentHash = %q, want %q", report.ContentHash, tc.wantHash)
			}
			if report.FormatError != tc.wantFormat {
				t.Errorf("FormatError:\n got  %s\n want %s", report.FormatError, tc.wantFormat)
			}
			if report.SignatureError != tc.wantSignature {
				t.Errorf("SignatureError:\n got  %s\n want %s", report.SignatureError, tc.wantSignature)
			}
			if report.Accepted != tc.wantAccepted {
				t.Errorf("Accepted = %v, want %v", report.Accepted, tc.wantAccepted)
			}
			if (report.Redacted != "") != tc.wantRedacted {
				t.Errorf("Redacted = %q, want set %v", report.Redacted, tc.wantRedacted)
			}
			if !slices.Equal(report.RequiredSigners, tc.wantRequired) {
				t.Errorf("RequiredSigners = %v, want %v", report.RequiredSigners, tc.wantRequired)
			}
			var status SigStatus
			for _, s := range report.Signatures["hs1"] {
				status = s
			}
			if tc.wantStatus != "" && status != tc.wantStatus {
				t.Errorf("hs1 signature status = %q, want %q", status, tc.wantStatus)
			}
			if (report.EventID != "") != tc.wantEventIDSet {
				t.Errorf("EventID = %q, want set %v", report.EventID, tc.wantEventIDSet)
			}
			if report.Canonical != string(canonicaljson.Encode(mustParse(t, string(tc.data)))) {
				t.Errorf("Canonical = %s", report.Canonical)
			}
		})
	}
}

func TestInspectErrors(t *testing.T) {
	cases := []struct {
		name    string
		data    string
		version string
		is      error
		want    string
	}{
		{
			name: "invalid JSON", data: `{"type":`, version: "10", is: canonicaljson.ErrNotJSON,
			want: "parse event JSON: unexpected end of input at offset 8",
		},
		{
			name: "duplicate key", data: `{"a":1,"a":2}`, version: "10", is: canonicaljson.ErrBadJSON,
			want: `parse event JSON: duplicate object key "a" at offset 7`,
		},
		{
			name: "unknown room version", data: `{}`, version: "13", is: ErrUnknownRoomVersion,
			want: `unknown room version "13": supported versions are 1 to 12`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Inspect(context.Background(), []byte(tc.data), tc.version, nil)
			if err == nil {
				t.Fatal("Inspect returned no error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if err.Error() != tc.want {
				t.Errorf("error:\n got  %s\n want %s", err, tc.want)
			}
		})
	}
}
