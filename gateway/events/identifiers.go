package events

import (
	"encoding/base64"
	"net/netip"
	"strings"
)

// hashIDLen is the length of a reference hash in unpadded base64.
const hashIDLen = 43

// splitUserID splits a user ID `@localpart:server_name` and reports whether
// it is valid. The localpart may use the historical character set that
// servers must still accept in events: any printable ASCII except ':'.
func splitUserID(id string) (localpart, server string, ok bool) {
	rest, found := strings.CutPrefix(id, "@")
	if !found {
		return "", "", false
	}
	localpart, server, found = strings.Cut(rest, ":")
	if !found || localpart == "" || !validServerName(server) {
		return "", "", false
	}
	for i := 0; i < len(localpart); i++ {
		if c := localpart[i]; c < 0x21 || c > 0x7E {
			return "", "", false
		}
	}
	return localpart, server, true
}

// serverOfUserID returns the server name of a valid user ID, or "".
func serverOfUserID(id string) string {
	_, server, ok := splitUserID(id)
	if !ok {
		return ""
	}
	return server
}

// splitSigilID splits an ID `<sigil>opaque:server_name`, the room ID form
// of room versions 1 to 11 and the event ID form of versions 1 and 2, and
// reports whether it is valid.
func splitSigilID(id string, sigil byte) (server string, ok bool) {
	if len(id) < 2 || id[0] != sigil {
		return "", false
	}
	opaque, server, found := strings.Cut(id[1:], ":")
	if !found || opaque == "" || !validServerName(server) {
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

// validServerName checks s against the grammar of Matrix server names. The
// host is a DNS name of letters, digits, '-' and '.' (a rule that also
// covers IPv4 addresses) or a bracketed IPv6 address. An optional port of 1
// to 5 digits may follow.
//
// NOTE: this is a local stand-in for the shared server name parser. It
// follows the grammar and does not add the stricter spelling rules of the
// allow-list parser, because signed historical events must keep verifying.
func validServerName(s string) bool {
	if s == "" || len(s) > MaxIDSize {
		return false
	}
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		host = s[:end+1]
		if rest := s[end+1:]; rest != "" {
			p, found := strings.CutPrefix(rest, ":")
			if !found {
				return false
			}
			port = p
		}
		if !validIPv6Host(host) {
			return false
		}
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return false
			}
		}
		if !validDNSName(host) {
			return false
		}
	}
	return port == "" || validPort(port)
}

func validDNSName(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		isAlnum := (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
		if !isAlnum && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// validIPv6Host reports whether host is "[" IPv6address "]" with 2 to 45
// characters of hex digits, ':' and '.' that parse as an IPv6 address.
func validIPv6Host(host string) bool {
	inner := host[1 : len(host)-1]
	if len(inner) < 2 || len(inner) > 45 {
		return false
	}
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		isHex := (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
		if !isHex && c != ':' && c != '.' {
			return false
		}
	}
	addr, err := netip.ParseAddr(inner)
	return err == nil && addr.Is6()
}

func validPort(port string) bool {
	if len(port) > 5 {
		return false
	}
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
	}
	return true
}
