package store

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxServerNameLen is the maximum length of a server name in bytes, the
// length limit of the dns-name rule in the Matrix server name grammar.
const maxServerNameLen = 255

// serverName is a server name, or an allow-list pattern, split at its port.
type serverName struct {
	host string // DNS name, IPv4 address or bracketed IPv6 address, in lower case
	port string // decimal port, empty when the name has none
	glob bool   // host contains '*' or '?'
}

// key returns the lower-case name in server_name form.
func (n serverName) key() string {
	if n.port == "" {
		return n.host
	}
	return n.host + ":" + n.port
}

// parseServerName checks s against the Matrix server name grammar and splits
// it into host and port. With allowGlob, the host may also contain '*' and '?'.
//
// The parser is stricter than the grammar, so that one name does not get two
// spellings. The host may not have an empty label, which rules out a leading,
// trailing or doubled dot. A host of only digits and dots must be an IPv4
// address with four octets from 0 to 255 and no leading zeros. A port must be
// 1 to 65535 without leading zeros. Underscores and percent-encoding are
// rejected, as in the grammar.
func parseServerName(s string, allowGlob bool) (serverName, error) {
	if s == "" {
		return serverName{}, errors.New("empty server name")
	}
	if len(s) > maxServerNameLen {
		return serverName{}, fmt.Errorf("server name is %d bytes, longer than %d", len(s), maxServerNameLen)
	}

	host, port, err := splitHostPort(s)
	if err != nil {
		return serverName{}, err
	}
	if port != "" {
		if err := checkPort(port); err != nil {
			return serverName{}, err
		}
	}

	glob := allowGlob && hasWildcard(host)
	if strings.HasPrefix(host, "[") {
		err = checkIPv6Host(host, glob)
	} else {
		err = checkHost(host, glob)
	}
	if err != nil {
		return serverName{}, err
	}
	return serverName{host: strings.ToLower(host), port: port, glob: glob}, nil
}

// splitHostPort splits s at the colon before the port. For a bracketed IPv6
// host that is the colon after ']'. It does not validate host or port.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("IPv6 address %q has no closing ]", s)
		}
		host, rest := s[:end+1], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if rest[0] != ':' {
			return "", "", fmt.Errorf("unexpected %q after the IPv6 address", rest)
		}
		if rest == ":" {
			return "", "", errors.New("empty port after ':'")
		}
		return host, rest[1:], nil
	}

	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, "", nil
	}
	host, port = s[:i], s[i+1:]
	if strings.Contains(host, ":") {
		return "", "", fmt.Errorf("IPv6 address %q is not in brackets", host)
	}
	if host == "" {
		return "", "", errors.New("empty host before ':'")
	}
	if port == "" {
		return "", "", errors.New("empty port after ':'")
	}
	return host, port, nil
}

// checkPort accepts a decimal port from 1 to 65535 without leading zeros.
func checkPort(port string) error {
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return fmt.Errorf("invalid port %q", port)
		}
	}
	if len(port) > 1 && port[0] == '0' {
		return fmt.Errorf("port %q has a leading zero", port)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is out of range", port)
	}
	return nil
}

// checkIPv6Host accepts "[" IPv6 address "]". A glob host may contain '*'
// and '?' among the address characters and is not parsed as an address.
func checkIPv6Host(host string, glob bool) error {
	inner := host[1 : len(host)-1]
	if inner == "" {
		return errors.New("empty IPv6 address")
	}
	for _, c := range inner {
		if isHexDigit(c) || c == ':' || c == '.' || (glob && (c == '*' || c == '?')) {
			continue
		}
		return fmt.Errorf("invalid character %q in IPv6 address %q", c, host)
	}
	if glob {
		return nil
	}
	addr, err := netip.ParseAddr(inner)
	if err != nil || !addr.Is6() {
		return fmt.Errorf("invalid IPv6 address %q", host)
	}
	return nil
}

// checkHost accepts a DNS name or an IPv4 address.
func checkHost(host string, glob bool) error {
	digitsAndDots := true
	for _, c := range host {
		switch {
		case '0' <= c && c <= '9', c == '.':
		case isLetter(c), c == '-':
			digitsAndDots = false
		case glob && (c == '*' || c == '?'):
			digitsAndDots = false
		default:
			return fmt.Errorf("invalid character %q in host %q", c, host)
		}
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" {
			return fmt.Errorf("host %q has an empty label", host)
		}
	}
	if digitsAndDots {
		return checkIPv4(host)
	}
	return nil
}

// checkIPv4 accepts four decimal octets from 0 to 255 without leading zeros,
// which netip.ParseAddr also enforces.
func checkIPv4(host string) error {
	addr, err := netip.ParseAddr(host)
	if err != nil || !addr.Is4() {
		return fmt.Errorf("invalid IPv4 address %q", host)
	}
	return nil
}

func isHexDigit(c rune) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isLetter(c rune) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
