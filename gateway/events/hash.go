package events

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"sync"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// bufferPool holds encoding buffers reused across events. Buffers that grew
// beyond maxPooledBuffer are left to the garbage collector, so one huge
// input does not stay pinned in the pool.
var bufferPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

const maxPooledBuffer = 1 << 20

func getBuffer() *[]byte { return bufferPool.Get().(*[]byte) }

func putBuffer(b *[]byte) {
	if cap(*b) > maxPooledBuffer {
		return
	}
	*b = (*b)[:0]
	bufferPool.Put(b)
}

// ContentHash returns the SHA-256 content hash of the event v: the hash of
// its canonical JSON without `unsigned`, `signatures` and `hashes`. v must
// be an object.
func ContentHash(v canonicaljson.Value) [32]byte {
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = appendContentHashForm(*buf, v)
	return sha256.Sum256(*buf)
}

// appendContentHashForm appends the canonical JSON of v without the
// top-level `unsigned`, `signatures` and `hashes` to dst.
func appendContentHashForm(dst []byte, v canonicaljson.Value) []byte {
	dst = append(dst, '{')
	first := true
	for _, m := range v.Members() {
		switch m.Key {
		case "unsigned", "signatures", "hashes":
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = canonicaljson.AppendString(dst, m.Key)
		dst = append(dst, ':')
		dst = canonicaljson.Append(dst, m.Value)
	}
	return append(dst, '}')
}

// ReferenceHash returns the SHA-256 reference hash of the event v in room
// version rv: the hash of the canonical JSON of the redacted event without
// `signatures` and `unsigned`. v must be an object.
func ReferenceHash(v canonicaljson.Value, rv *RoomVersion) [32]byte {
	buf := getBuffer()
	defer putBuffer(buf)
	*buf = appendRedacted(*buf, v, rv, false)
	return sha256.Sum256(*buf)
}

// EventID returns the event ID of v in room version rv. In room versions 1
// and 2 it is the `event_id` member, which must be a string. From version 3
// it is derived from the reference hash, and any `event_id` member of v is
// ignored.
func EventID(v canonicaljson.Value, rv *RoomVersion) (string, error) {
	if rv.EventIDFormat == EventIDServerChosen {
		id, ok := v.GetString("event_id")
		if !ok {
			return "", fieldErr("event_id", "missing or not a string; room version %s requires it", rv.ID)
		}
		return id, nil
	}
	return eventIDFromHash(ReferenceHash(v, rv), rv), nil
}

// eventIDFromHash formats a reference hash as an event ID of a room version
// from 3 on.
func eventIDFromHash(hash [32]byte, rv *RoomVersion) string {
	enc := base64.RawURLEncoding
	if rv.EventIDFormat == EventIDStdBase64 {
		enc = base64.RawStdEncoding
	}
	var id [1 + hashIDLen]byte
	id[0] = '$'
	enc.Encode(id[1:], hash[:])
	return string(id[:])
}

// RoomIDFromCreate returns the room ID that the m.room.create event
// createEvent defines in room version rv: in room version 12, `!` and the
// reference hash of the create event in unpadded URL-safe base64. In
// earlier versions the room ID is chosen by the creating server, and the
// create event's `room_id` member is returned ("" when it has none).
func RoomIDFromCreate(createEvent canonicaljson.Value, rv *RoomVersion) string {
	if !rv.RoomIDFromCreate {
		id, _ := createEvent.GetString("room_id")
		return id
	}
	hash := ReferenceHash(createEvent, rv)
	return "!" + base64.RawURLEncoding.EncodeToString(hash[:])
}

// decodeBase64 decodes standard base64 with or without padding. The Matrix
// specification recommends that decoders accept both.
func decodeBase64(dst []byte, s string) (int, error) {
	if len(s)%4 == 0 && len(s) > 0 && s[len(s)-1] == '=' {
		return base64.StdEncoding.Decode(dst, []byte(s))
	}
	return base64.RawStdEncoding.Decode(dst, []byte(s))
}

// decodeHash decodes a SHA-256 hash in unpadded or padded standard base64.
func decodeHash(s string) ([32]byte, error) {
	var out [32]byte
	if base64.RawStdEncoding.DecodedLen(len(s)) > 33 {
		return out, errors.New("hash is too long")
	}
	var buf [33]byte
	n, err := decodeBase64(buf[:], s)
	if err != nil {
		return out, err
	}
	if n != 32 {
		return out, errors.New("hash is not 32 bytes")
	}
	copy(out[:], buf[:32])
	return out, nil
}
