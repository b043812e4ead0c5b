package keys

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxDNSNameLength is the longest dns-name the Matrix server name grammar
// allows.
const maxDNSNameLength = 255

// SplitServerName splits a Matrix server name, hostname [ ":" port ], and
// checks it against the grammar of the Matrix specification. The returned
// host has no brackets around an IPv6 literal, and port is 0 when the name
// has none. It rejects what the grammar leaves open but no server can use:
// an empty host, a port of 0 or above 65535, and IPv6 literals with a zone.
// IPv4 literals must be in the dotted form netip accepts, without leading
// zeros; other all-digit names are treated as DNS names.
func SplitServerName(name string) (host string, port int, err error) {
	if name == "" {
		return "", 0, fmt.Errorf("invalid server name: empty")
	}
	if strings.HasPrefix(name, "[") && !strings.Contains(name, "]") {
		return "", 0, fmt.Errorf("invalid server name %q: unterminated IPv6 literal", name)
	}
	hostPart, portPart, hasPort := cutPort(name)
	if hasPort {
		port, err = parsePort(portPart)
		if err != nil {
			return "", 0, fmt.Errorf("invalid server name %q: %w", name, err)
		}
	}

	if strings.HasPrefix(hostPart, "[") {
		if !strings.HasSuffix(hostPart, "]") {
			return "", 0, fmt.Errorf("invalid server name %q: text after the IPv6 literal", name)
		}
		literal := hostPart[1 : len(hostPart)-1]
		if !isIPv6Literal(literal) {
			return "", 0, fmt.Errorf("invalid server name %q: invalid IPv6 literal", name)
		}
		return literal, port, nil
	}
	if addr, err := netip.ParseAddr(hostPart); err == nil && addr.Is4() {
		return hostPart, port, nil
	}
	if err := checkDNSName(hostPart); err != nil {
		return "", 0, fmt.Errorf("invalid server name %q: %w", name, err)
	}
	return hostPart, port, nil
}

// cutPort splits off the part after the last colon that follows any IPv6
// literal.
func cutPort(name string) (host, port string, found bool) {
	i := strings.LastIndexByte(name, ':')
	if i < 0 || i < strings.LastIndexByte(name, ']') {
		return name, "", false
	}
	return name[:i], name[i+1:], true
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %q is not 1 to 5 digits", s)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is outside 1 to 65535", n)
	}
	return n, nil
}

func isIPv6Literal(s string) bool {
	if len(s) < 2 || len(s) > 45 || strings.Trim(s, "0123456789abcdefABCDEF:.") != "" {
		return false
	}
	addr, err := netip.ParseAddr(s)
	return err == nil && addr.Is6()
}

func checkDNSName(s string) error {
	if s == "" {
		return fmt.Errorf("empty host")
	}
	if len(s) > maxDNSNameLength {
		return fmt.Errorf("host is %d characters, more than %d", len(s), maxDNSNameLength)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		isAlnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !isAlnum && c != '-' && c != '.' {
			return fmt.Errorf("host contains %q, which is not a letter, digit, '-' or '.'", c)
		}
	}
	return nil
}
