package events

import (
	"bytes"
	"crypto/sha256"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// PDU is a parsed event whose format has been checked for its room version.
// A PDU is not verified until [Verify] accepts it. Its fields must not be
// modified.
type PDU struct {
	// Event is the whole event as received.
	Event canonicaljson.Value
	// RoomVersion is the room version the event was parsed for.
	RoomVersion *RoomVersion
	// EventID is the `event_id` member in room versions 1 and 2, and the
	// ID derived from the reference hash from version 3.
	EventID string
	// RoomID is the `room_id` member, or for an m.room.create event of room
	// version 12 the room ID derived from the event.
	RoomID string
	// Type is the event type.
	Type string
	// StateKey is the state key of a state event, or nil for other events.
	StateKey *string
	// Sender is the user ID of the sender.
	Sender string
	// SenderServer is the server name of Sender.
	SenderServer string
	// OriginServerTS is `origin_server_ts`, in milliseconds since the Unix
	// epoch.
	OriginServerTS int64
	// Depth is the event's depth in the room graph.
	Depth int64
	// PrevEvents are the IDs of the events this event follows.
	PrevEvents []string
	// AuthEvents are the IDs of the events that authorise this event.
	AuthEvents []string
	// Redacts is the ID of the event an m.room.redaction redacts, taken
	// from `content.redacts` from room version 11 and from the top-level
	// `redacts` before. It is "" for other events. Before room version 11
	// only the content hash covers it, and from version 11 the signatures
	// cover it too.
	Redacts string
	// Content is the `content` object. It is covered by the content hash
	// only, so it must not be used before [Verify] reports a valid hash.
	Content canonicaljson.Value

	// contentHash is the computed content hash.
	contentHash [32]byte
	// signedBytes is the canonical JSON of the redacted event without
	// `signatures`: the bytes every signature covers and whose SHA-256 is
	// the reference hash.
	signedBytes []byte
	// referenceHash is the SHA-256 of signedBytes.
	referenceHash [32]byte
}

// IsState reports whether the event is a state event, that is, whether it
// has a `state_key`.
func (p *PDU) IsState() bool { return p.StateKey != nil }

// ReferenceHash returns the event's reference hash.
func (p *PDU) ReferenceHash() [32]byte { return p.referenceHash }

// ParseOptions adjusts [ParsePDUWith].
type ParseOptions struct {
	// RelaxEdgeLimits lifts the limits of 10 `auth_events` and 20
	// `prev_events`, which do not apply to events in /backfill responses.
	RelaxEdgeLimits bool
}

// ParsePDU checks the format of the event v for room version rv and
// extracts its fields. Errors wrap [ErrFormat] and are [*FieldError]
// values naming the offending field.
//
// ParsePDU also computes the content hash, the redacted canonical encoding
// that signatures cover and the reference hash, so that [Verify] encodes
// nothing again.
func ParsePDU(v canonicaljson.Value, rv *RoomVersion) (*PDU, error) {
	return ParsePDUWith(v, rv, ParseOptions{})
}

// ParsePDUWith is [ParsePDU] with options.
func ParsePDUWith(v canonicaljson.Value, rv *RoomVersion, opts ParseOptions) (*PDU, error) {
	if v.Kind() != canonicaljson.Object {
		return nil, fieldErr("", "event is a JSON %s, not an object", v.Kind())
	}
	p := &PDU{Event: v, RoomVersion: rv}
	if err := p.parseFields(opts); err != nil {
		return nil, err
	}
	if rv.StrictCanonicalJSON {
		if err := checkStrictNumbers(v, rv); err != nil {
			return nil, err
		}
	}
	if err := p.hashAndMeasure(); err != nil {
		return nil, err
	}

	buf := getBuffer()
	*buf = appendRedacted(*buf, v, rv, false)
	p.signedBytes = bytes.Clone(*buf)
	putBuffer(buf)
	p.referenceHash = sha256.Sum256(p.signedBytes)
	if rv.EventIDFormat != EventIDServerChosen {
		p.EventID = eventIDFromHash(p.referenceHash, rv)
	}
	if rv.RoomIDFromCreate && p.Type == "m.room.create" {
		p.RoomID = "!" + p.EventID[1:]
	}
	return p, nil
}

// hashAndMeasure computes the content hash and rejects an event whose
// canonical JSON without `unsigned` exceeds MaxEventSize. The size is
// derived from the content hash encoding plus the encodings of `hashes`
// and `signatures`, so the event is encoded only once.
func (p *PDU) hashAndMeasure() error {
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = appendContentHashForm(*buf, p.Event)
	p.contentHash = sha256.Sum256(*buf)

	size := len(*buf)
	membersBefore := len(*buf) > 2
	added := 0
	for _, key := range []string{"hashes", "signatures"} {
		val, ok := p.Event.Get(key)
		if !ok {
			continue
		}
		start := len(*buf)
		*buf = canonicaljson.AppendString(*buf, key)
		*buf = canonicaljson.Append(*buf, val)
		size += len(*buf) - start + 1 // the ':' after the key
		added++
	}
	// Each added member needs a comma, except the first one added to an
	// otherwise empty object.
	if added > 0 {
		size += added
		if !membersBefore {
			size--
		}
	}
	if size > MaxEventSize {
		return fieldErr("", "event is %d bytes as canonical JSON (without unsigned), more than the limit of %d", size, MaxEventSize)
	}
	return nil
}
