// Package events checks Matrix PDUs (persistent data units) for room
// versions 1 to 12. It checks the event format of each version, computes
// the content hash, the redaction, the reference hash and the event ID, and
// verifies the signatures of the servers that must have signed the event.
//
// A PDU is parsed once with [ParsePDU], which checks its format and computes
// its canonical encodings, content hash and event ID. [Verify] then checks the
// content hash and the signatures. Following the Matrix server-server API, a
// wrong content hash does not reject the event: the event is redacted and
// only the redacted copy may be used. Signature and format failures reject
// the event.
package events

import (
	"errors"
	"fmt"
)

// ErrFormat marks an event that does not have the format its room version
// requires. Homeservers drop such events.
var ErrFormat = errors.New("invalid event format")

// ErrSignature marks an event whose required signatures are missing,
// invalid or could not be checked.
var ErrSignature = errors.New("event signature check failed")

// ErrUnknownRoomVersion marks a room version this package does not know.
var ErrUnknownRoomVersion = errors.New("unknown room version")

// Size limits of the Matrix specification, in bytes.
const (
	// MaxEventSize is the largest canonical JSON encoding of an event,
	// signatures included.
	//
	// NOTE: the size is measured without `unsigned`, which is not covered by
	// signatures and which intermediaries may extend. Implementations that
	// also count `unsigned` reject some events near the limit that pass here.
	MaxEventSize = 65536
	// MaxIDSize is the largest `sender`, `room_id`, `state_key`, `type` or
	// `event_id`.
	MaxIDSize = 255
)

// Limits on the number of events an event may reference.
const (
	// MaxAuthEvents is the maximum length of `auth_events`.
	MaxAuthEvents = 10
	// MaxPrevEvents is the maximum length of `prev_events`.
	MaxPrevEvents = 20
)

// FieldError describes why an event's format is invalid. It wraps
// [ErrFormat].
type FieldError struct {
	// Field is the path of the offending member, such as "depth" or
	// "content.membership", or "" when the problem concerns the whole event.
	Field string
	// Msg describes what is wrong with the field.
	Msg string
}

// Error returns the field path and what is wrong with it.
func (e *FieldError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", ErrFormat, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", ErrFormat, e.Field, e.Msg)
}

// Unwrap returns [ErrFormat].
func (e *FieldError) Unwrap() error { return ErrFormat }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
