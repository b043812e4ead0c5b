package servername

import (
	"errors"
	"fmt"
	"strings"
)

// maxIDLen is the limit the Matrix specification sets on user IDs, room IDs,
// room aliases and event IDs, in bytes, sigil and server name included.
const maxIDLen = 255

// ErrNoServer marks a room ID or event ID that has no server part: room IDs
// of room version 12 ("!" and a hash) and event IDs of room versions 3 and
// later ("$" and a hash).
var ErrNoServer = errors.New("identifier has no server part")

// FromID returns the server name of a user ID ("@localpart:server"), room ID
// ("!opaque:server"), room alias ("#alias:server") or event ID of room
// versions 1 and 2 ("$opaque:server"). The ID is split at its first colon,
// because the part before it cannot contain one, and the rest is validated
// as a server name, port included.
//
// A room ID or event ID without a colon returns an error wrapping
// [ErrNoServer]. FromID checks only the sigil, the length (at most 255
// bytes) and that the part before the colon is not empty. Use
// [ValidUserID] to check a user ID's localpart as well.
func FromID(id string) (string, error) {
	kind, err := idKind(id)
	if err != nil {
		return "", err
	}
	if len(id) > maxIDLen {
		return "", fmt.Errorf("invalid %s %q: %d bytes, more than %d", kind, id, len(id), maxIDLen)
	}

	local, server, found := strings.Cut(id[1:], ":")
	if !found {
		if id[0] == '!' || id[0] == '$' {
			return "", fmt.Errorf("%s %q: %w", kind, id, ErrNoServer)
		}
		return "", fmt.Errorf("invalid %s %q: missing ':' before the server name", kind, id)
	}
	if local == "" {
		return "", fmt.Errorf("invalid %s %q: empty part before ':'", kind, id)
	}
	if err := Validate(server); err != nil {
		return "", fmt.Errorf("invalid %s %q: %w", kind, id, err)
	}
	return server, nil
}

// ValidUserID returns nil if id is a user ID that a server must accept on
// receipt: "@", a non-empty localpart, ":" and a valid server name, at most
// 255 bytes in all. The localpart may use the historical character set, any
// printable ASCII character except ":", and not only the lower-case set that
// new user IDs are limited to.
func ValidUserID(id string) error {
	_, _, err := SplitUserID(id)
	return err
}

// SplitUserID checks id as [ValidUserID] does and returns its localpart and
// server name: "@alice:example.org:8448" gives "alice" and
// "example.org:8448".
func SplitUserID(id string) (localpart, server string, err error) {
	if id == "" || id[0] != '@' {
		return "", "", fmt.Errorf("invalid user ID %q: must start with '@'", id)
	}
	if len(id) > maxIDLen {
		return "", "", fmt.Errorf("invalid user ID %q: %d bytes, more than %d", id, len(id), maxIDLen)
	}

	localpart, server, found := strings.Cut(id[1:], ":")
	if !found {
		return "", "", fmt.Errorf("invalid user ID %q: missing ':' before the server name", id)
	}
	if localpart == "" {
		return "", "", fmt.Errorf("invalid user ID %q: empty localpart", id)
	}
	for i := 0; i < len(localpart); i++ {
		if c := localpart[i]; c < 0x21 || c > 0x7e {
			return "", "", fmt.Errorf("invalid user ID %q: %s not allowed in localpart", id, describeByte(c))
		}
	}
	if err := Validate(server); err != nil {
		return "", "", fmt.Errorf("invalid user ID %q: %w", id, err)
	}
	return localpart, server, nil
}

// idKind returns the identifier type that the sigil of id denotes, such as
// "user ID".
func idKind(id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("invalid identifier %q: empty", id)
	}
	switch id[0] {
	case '@':
		return "user ID", nil
	case '!':
		return "room ID", nil
	case '#':
		return "room alias", nil
	case '$':
		return "event ID", nil
	}
	return "", fmt.Errorf("invalid identifier %q: sigil must be '@', '!', '#' or '$'", id)
}
