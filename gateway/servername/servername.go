// Package servername validates Matrix server names and extracts them from
// Matrix identifiers.
//
// The grammar is the one in the appendices of the Matrix specification:
//
//	server_name = hostname [ ":" port ]
//	port        = 1*5DIGIT
//	hostname    = IPv4address / "[" IPv6address "]" / dns-name
//	IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
//	IPv6address = 2*45IPv6char
//	IPv6char    = DIGIT / %x41-46 / %x61-66 / ":" / "."
//	dns-name    = 1*255dns-char
//	dns-char    = DIGIT / ALPHA / "-" / "."
//
// The specification adds in prose that IPv4 octets are 0 to 255 and that an
// IPv6 address follows RFC 3513. Server names are case-sensitive identities,
// so [::] and [0:0:0:0:0:0:0:0] are two different server names.
//
// [Validate] is narrower than the ABNF in a few places. Each narrowing
// rejects a spelling that resolvers read in more than one way, or that names
// the same host as another spelling, and that no working homeserver uses:
//
//   - A port must be 1 to 65535 and is written without leading zeros.
//   - A DNS name has no empty labels, so a leading, trailing or doubled dot
//     is rejected. "example.org." and "example.org" reach the same DNS host
//     but would be two server names.
//   - IPv4 octets are written without leading zeros. inet_aton(3) reads
//     "010.0.0.1" as 8.0.0.1, Go's net.ParseIP rejects it, and a resolver
//     that falls back to DNS looks it up as a host name.
//   - A DNS name whose last label is all digits, or "0x" followed by hex
//     digits, must be a dotted-quad IPv4 address. Such a name is a number to
//     inet_aton(3) and to the WHATWG URL parser ("1.2.3" is 1.2.0.3), and no
//     top-level domain in use is numeric.
package servername

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Grammar limits from the Matrix specification.
const (
	maxDNSNameLen  = 255
	minIPv6Len     = 2
	maxIPv6Len     = 45
	maxPortDigits  = 5
	maxPortNumber  = 65535
	ipv4OctetCount = 4
)

// hostKind is the branch of the hostname rule that a host matched.
type hostKind uint8

const (
	hostDNS hostKind = iota
	hostIPv4
	hostIPv6
)

// parsed is a server name split into its parts. host excludes the brackets
// of an IPv6 literal. port is 0 when the name has none.
type parsed struct {
	host string
	port int
	kind hostKind
}

// Validate returns nil if name is a valid Matrix server name, and otherwise
// an error that quotes name and describes the problem. See the package
// documentation for where Validate is stricter than the ABNF.
func Validate(name string) error {
	_, err := parse(name)
	return err
}

// Split validates name and returns its host and port. The port is 0 when
// name has none. The host of an IPv6 literal is returned without brackets
// ("[::1]:8448" gives "::1" and 8448), so that it can be passed to
// [netip.ParseAddr] and [net.JoinHostPort]. Use [IsIPLiteral] to tell an IP
// literal from a DNS name.
func Split(name string) (host string, port int, err error) {
	p, err := parse(name)
	if err != nil {
		return "", 0, err
	}
	return p.host, p.port, nil
}

// IsIPLiteral reports whether name is a valid server name whose host is an
// IPv4 address or a bracketed IPv6 address, with or without a port.
func IsIPLiteral(name string) bool {
	p, err := parse(name)
	return err == nil && p.kind != hostDNS
}

// SplitPort splits name into its hostname as written, brackets of an IPv6
// literal included, and its port, which is 0 when name has none. Like
// [Validate], it rejects an invalid port, an empty hostname, an unclosed
// bracket and text between "]" and the port. It does not check the hostname
// itself, so "a_b:8448" gives "a_b" and 8448. It serves callers with a wider
// hostname syntax, such as allow-list patterns with wildcards. Use [Split]
// for a server name.
func SplitPort(name string) (hostname string, port int, err error) {
	if name == "" {
		return "", 0, fmt.Errorf("invalid server name %q: empty", name)
	}

	hostname, portText, hasPort, err := splitHostPort(name)
	if err != nil {
		return "", 0, fmt.Errorf("invalid server name %q: %w", name, err)
	}
	if hasPort {
		port, err = parsePort(portText)
		if err != nil {
			return "", 0, fmt.Errorf("invalid server name %q: %w", name, err)
		}
	}
	return hostname, port, nil
}

func parse(name string) (parsed, error) {
	hostname, port, err := SplitPort(name)
	if err != nil {
		return parsed{}, err
	}

	host, kind, err := parseHost(hostname)
	if err != nil {
		return parsed{}, fmt.Errorf("invalid server name %q: %w", name, err)
	}
	return parsed{host: host, port: port, kind: kind}, nil
}

// splitHostPort separates the hostname from the port text. A bracketed IPv6
// literal ends at its closing bracket. Any other hostname cannot contain a
// colon, so its first colon starts the port.
func splitHostPort(name string) (host, port string, hasPort bool, err error) {
	if name[0] == '[' {
		end := strings.IndexByte(name, ']')
		if end < 0 {
			return "", "", false, errors.New("missing ']' after IPv6 address")
		}
		host, rest := name[:end+1], name[end+1:]
		if rest == "" {
			return host, "", false, nil
		}
		if rest[0] != ':' {
			return "", "", false, fmt.Errorf("unexpected %q after IPv6 address", rest)
		}
		return host, rest[1:], true, nil
	}

	host, port, hasPort = strings.Cut(name, ":")
	if host == "" {
		return "", "", false, errors.New("empty host")
	}
	return host, port, hasPort, nil
}

func parsePort(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty port")
	}
	if len(s) > maxPortDigits {
		return 0, fmt.Errorf("port %q has more than %d digits", s, maxPortDigits)
	}
	port := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, fmt.Errorf("port %q: %s not allowed", s, describeByte(c))
		}
		port = port*10 + int(c-'0')
	}
	if s[0] == '0' && len(s) > 1 {
		return 0, fmt.Errorf("port %q has a leading zero", s)
	}
	if port < 1 || port > maxPortNumber {
		return 0, fmt.Errorf("port %d out of range 1-%d", port, maxPortNumber)
	}
	return port, nil
}

func parseHost(s string) (string, hostKind, error) {
	if s[0] == '[' {
		addr := s[1 : len(s)-1]
		if err := checkIPv6(addr); err != nil {
			return "", 0, err
		}
		return addr, hostIPv6, nil
	}

	if err := checkDNSChars(s); err != nil {
		return "", 0, err
	}
	if looksNumeric(lastLabel(s)) {
		if err := checkIPv4(s); err != nil {
			return "", 0, err
		}
		return s, hostIPv4, nil
	}
	if err := checkLabels(s); err != nil {
		return "", 0, err
	}
	return s, hostDNS, nil
}

func checkIPv6(addr string) error {
	if len(addr) < minIPv6Len || len(addr) > maxIPv6Len {
		return fmt.Errorf("IPv6 address must be %d to %d characters, got %d",
			minIPv6Len, maxIPv6Len, len(addr))
	}
	for i := 0; i < len(addr); i++ {
		c := addr[i]
		if !isHexDigit(c) && c != ':' && c != '.' {
			return fmt.Errorf("%s not allowed in IPv6 address", describeByte(c))
		}
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is6() {
		return fmt.Errorf("%q is not an IPv6 address", addr)
	}
	return nil
}

func checkDNSChars(s string) error {
	if len(s) > maxDNSNameLen {
		return fmt.Errorf("host is %d characters, more than %d", len(s), maxDNSNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDNSChar(c) {
			return fmt.Errorf("%s not allowed", describeByte(c))
		}
	}
	return nil
}

func checkLabels(s string) error {
	if s[0] == '.' {
		return errors.New("host starts with '.'")
	}
	if s[len(s)-1] == '.' {
		return errors.New("host ends with '.'")
	}
	if strings.Contains(s, "..") {
		return errors.New("host contains an empty label")
	}
	return nil
}

// checkIPv4 accepts exactly four decimal octets of 0 to 255 without leading
// zeros.
func checkIPv4(s string) error {
	octets := strings.Split(s, ".")
	if len(octets) != ipv4OctetCount {
		return fmt.Errorf("%q ends in a number but is not a dotted-quad IPv4 address", s)
	}
	for _, octet := range octets {
		if err := checkOctet(octet); err != nil {
			return fmt.Errorf("IPv4 address %q: %w", s, err)
		}
	}
	return nil
}

func checkOctet(octet string) error {
	if octet == "" || len(octet) > 3 {
		return fmt.Errorf("octet %q must be 1 to 3 digits", octet)
	}
	value := 0
	for i := 0; i < len(octet); i++ {
		if !isDigit(octet[i]) {
			return fmt.Errorf("octet %q is not decimal", octet)
		}
		value = value*10 + int(octet[i]-'0')
	}
	if octet[0] == '0' && len(octet) > 1 {
		return fmt.Errorf("octet %q has a leading zero", octet)
	}
	if value > 255 {
		return fmt.Errorf("octet %d out of range 0-255", value)
	}
	return nil
}

func lastLabel(s string) string {
	return s[strings.LastIndexByte(s, '.')+1:]
}

// looksNumeric reports whether a DNS label is a number to inet_aton(3): all
// decimal digits, or "0x"/"0X" followed by hex digits.
func looksNumeric(label string) bool {
	if label == "" {
		return false
	}
	if len(label) >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X') {
		return allBytes(label[2:], isHexDigit)
	}
	return allBytes(label, isDigit)
}

func allBytes(s string, accept func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !accept(s[i]) {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool {
	return '0' <= c && c <= '9'
}

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDNSChar(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '.'
}

// describeByte names a rejected byte for an error message: printable ASCII
// in quotes, anything else as a hex byte so that control characters and
// broken UTF-8 stay readable.
func describeByte(c byte) string {
	if c > ' ' && c < 0x7f {
		return fmt.Sprintf("character %q", c)
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
