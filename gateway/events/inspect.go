package events

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/keys"
)

// Content hash outcomes in a [Report].
const (
	HashValid   = "valid"
	HashInvalid = "invalid"
	// HashMissing is reported when `hashes.sha256` is absent or not a
	// string.
	HashMissing = "missing"
)

// Report describes one event for the `bordergate event inspect` command.
type Report struct {
	// RoomVersion is the room version the event was checked for.
	RoomVersion string `json:"room_version"`
	// Canonical is the canonical JSON of the whole event.
	Canonical string `json:"canonical"`
	// EventID is the event ID, or "" when it cannot be determined.
	EventID string `json:"event_id"`
	// RoomID is the room ID, derived from the event for a room version 12
	// create event.
	RoomID string `json:"room_id"`
	// ContentHash is HashValid, HashInvalid or HashMissing.
	ContentHash string `json:"content_hash"`
	// ComputedContentHash is the content hash computed from the event, in
	// unpadded base64.
	ComputedContentHash string `json:"computed_content_hash"`
	// ReferenceHash is the reference hash, in unpadded base64.
	ReferenceHash string `json:"reference_hash"`
	// RequiredSigners are the servers that must have signed the event. It
	// is empty when the format is invalid.
	RequiredSigners []string `json:"required_signers"`
	// SignedBy are the required servers with a valid signature.
	SignedBy []string `json:"signed_by"`
	// Signatures holds the outcome of each signature of a required server.
	Signatures map[string]map[string]SigStatus `json:"signatures"`
	// Redacted is the canonical JSON of the redacted event when the content
	// hash is not valid, the form a homeserver keeps.
	Redacted string `json:"redacted,omitempty"`
	// FormatError is the reason the format is invalid, or "".
	FormatError string `json:"format_error"`
	// SignatureError is the reason the signature check failed, or "". It
	// is "" when the format is invalid, because signatures are then not
	// checked.
	SignatureError string `json:"signature_error"`
	// Accepted reports whether the event passes the format and signature
	// checks. A content hash mismatch does not prevent it.
	Accepted bool `json:"accepted"`
}

// Inspect parses data as an event of room version version, checks it as
// [ParsePDU] and [Verify] do, and describes the outcome. It returns an
// error only when data is not valid JSON or the room version is unknown.
// An event with an invalid format still gets a report, but its signatures
// are not checked.
func Inspect(ctx context.Context, data []byte, version string, lookup keys.Lookup) (Report, error) {
	rv, err := RoomVersionByID(version)
	if err != nil {
		return Report{}, err
	}
	v, err := canonicaljson.Parse(data)
	if err != nil {
		return Report{}, fmt.Errorf("parse event JSON: %w", err)
	}

	report := Report{
		RoomVersion:     rv.ID,
		Canonical:       string(canonicaljson.Encode(v)),
		RequiredSigners: []string{},
		SignedBy:        []string{},
		Signatures:      map[string]map[string]SigStatus{},
	}
	if v.Kind() == canonicaljson.Object {
		describeHashes(&report, v, rv)
	}

	pdu, err := ParsePDU(v, rv)
	if err != nil {
		report.FormatError = err.Error()
		return report, nil
	}
	res := Verify(ctx, pdu, lookup)
	report.EventID = res.EventID
	report.RoomID = pdu.RoomID
	report.RequiredSigners = res.RequiredSigners
	report.SignedBy = res.SignedBy
	report.Signatures = res.Signatures
	if !res.ContentHashValid {
		report.Redacted = string(canonicaljson.Encode(res.Redacted))
	}
	if res.Err != nil {
		report.SignatureError = res.Err.Error()
	}
	report.Accepted = res.Err == nil
	return report, nil
}

// describeHashes fills the hash fields and the event and room IDs of
// report from the object v, whatever its format.
func describeHashes(report *Report, v canonicaljson.Value, rv *RoomVersion) {
	computed := ContentHash(v)
	report.ComputedContentHash = base64.RawStdEncoding.EncodeToString(computed[:])
	ref := ReferenceHash(v, rv)
	report.ReferenceHash = base64.RawStdEncoding.EncodeToString(ref[:])

	report.ContentHash = HashMissing
	if hashes, ok := v.Get("hashes"); ok {
		if text, ok := hashes.GetString("sha256"); ok {
			report.ContentHash = HashInvalid
			if claimed, err := decodeHash(text); err == nil && claimed == computed {
				report.ContentHash = HashValid
			}
		}
	}

	if id, err := EventID(v, rv); err == nil {
		report.EventID = id
	}
	if typ, _ := v.GetString("type"); typ == "m.room.create" {
		report.RoomID = RoomIDFromCreate(v, rv)
	} else {
		report.RoomID, _ = v.GetString("room_id")
	}
}
