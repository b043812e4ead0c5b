package store

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/bordergate/bordergate/gateway/servername"
)

// maxServerNameLen is the maximum length in bytes of a server_name or
// pattern in the allow-list and of a name passed to Lookup, port included.
// The Matrix server name grammar limits only the host to 255 characters,
// but a server name with a longer total cannot appear in a Matrix ID, which
// is at most 255 bytes.
const maxServerNameLen = 255

// serverName is a server name, or an allow-list pattern, split at its port.
type serverName struct {
	host string // DNS name, IPv4 address or bracketed IPv6 address, or a glob of one, in lower case
	port int    // 0 when the name has none
	glob bool   // host contains '*' or '?'
}

// key returns the lower-case name in server_name form.
func (n serverName) key() string {
	if n.port == 0 {
		return n.host
	}
	return n.host + ":" + strconv.Itoa(n.port)
}

// canonical returns n with an IP address host in one spelling: an IPv6
// address in the RFC 5952 form, and one that maps an IPv4 address
// ("[::ffff:192.0.2.7]") as that IPv4 address. Such spellings reach the
// same host. A DNS name or a glob is returned as it is.
func (n serverName) canonical() serverName {
	inner, ok := strings.CutPrefix(n.host, "[")
	if n.glob || !ok {
		return n
	}
	addr, err := netip.ParseAddr(strings.TrimSuffix(inner, "]"))
	if err != nil {
		return n
	}
	if addr.Is4In6() {
		n.host = addr.Unmap().String()
		return n
	}
	n.host = "[" + addr.String() + "]"
	return n
}

// parseServerName checks s and splits it into host and port. A name without
// '*' and '?' must pass [servername.Validate], which allows one spelling per
// name: no empty label, no leading zero in a port or octet, and no numeric
// last label outside a dotted-quad IPv4 address. With allowGlob, a host with
// '*' or '?' is checked by checkGlobHost instead, and its port still by
// servername.
func parseServerName(s string, allowGlob bool) (serverName, error) {
	if len(s) > maxServerNameLen {
		return serverName{}, fmt.Errorf("invalid server name: %d bytes, more than %d", len(s), maxServerNameLen)
	}

	hostname, port, err := servername.SplitPort(s)
	if err != nil {
		return serverName{}, err
	}
	name := serverName{host: strings.ToLower(hostname), port: port}
	if allowGlob && hasWildcard(hostname) {
		if err := checkGlobHost(hostname); err != nil {
			return serverName{}, fmt.Errorf("invalid server name pattern %q: %w", s, err)
		}
		name.glob = true
		return name, nil
	}
	if err := servername.Validate(s); err != nil {
		return serverName{}, err
	}
	return name, nil
}

// checkGlobHost checks the host of an allow-list pattern: a DNS name or
// IPv4 address in which '*' and '?' may stand for characters, or "[", the
// characters of an IPv6 address with '*' and '?', and "]", as
// [servername.SplitPort] returns it. A DNS pattern has no empty label. The
// pattern is not parsed as an address.
func checkGlobHost(host string) error {
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner = strings.TrimSuffix(inner, "]")
		for _, c := range inner {
			if !isHexDigit(c) && c != ':' && c != '.' && !isWildcard(c) {
				return fmt.Errorf("character %q not allowed in IPv6 address pattern", c)
			}
		}
		return nil
	}

	for _, c := range host {
		if !isLetter(c) && !isDigit(c) && c != '-' && c != '.' && !isWildcard(c) {
			return fmt.Errorf("character %q not allowed", c)
		}
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return fmt.Errorf("host %q has an empty label", host)
		}
	}
	return nil
}

func isWildcard(c rune) bool {
	return c == '*' || c == '?'
}

func isHexDigit(c rune) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c rune) bool {
	return '0' <= c && c <= '9'
}

func isLetter(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
