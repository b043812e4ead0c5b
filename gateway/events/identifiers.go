package events

import (
	"encoding/base64"

	"github.com/bordergate/bordergate/gateway/servername"
)

// hashIDLen is the length of a reference hash in unpadded base64.
const hashIDLen = 43

// serverOfSigilID returns the server name of an ID `<sigil>opaque:server_name`,
// the room ID form of room versions 1 to 11 and the event ID form of
// versions 1 and 2, and reports whether id has that form with a valid
// server name.
func serverOfSigilID(id string, sigil byte) (server string, ok bool) {
	if id == "" || id[0] != sigil {
		return "", false
	}
	server, err := servername.FromID(id)
	if err != nil {
		return "", false
	}
	return server, true
}

// validHashID reports whether id is sigil followed by a 32-byte hash in
// unpadded base64 of the given alphabet, the form of event IDs from room
// version 3 and of room IDs in room version 12.
func validHashID(id string, sigil byte, enc *base64.Encoding) bool {
	if len(id) != 1+hashIDLen || id[0] != sigil {
		return false
	}
	var buf [33]byte
	n, err := enc.Strict().Decode(buf[:], []byte(id[1:]))
	return err == nil && n == 32
}
