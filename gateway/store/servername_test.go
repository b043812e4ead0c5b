package store

import "testing"

func TestParseServerName(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		allowGlob bool
		wantHost  string
		wantPort  int
		wantGlob  bool
	}{
		{"hostname", "matrix.org", false, "matrix.org", 0, false},
		{"hostname with port", "matrix.org:8888", false, "matrix.org", 8888, false},
		{"upper case folded", "HS1.Example.ORG:8448", false, "hs1.example.org", 8448, false},
		{"single label", "localhost", false, "localhost", 0, false},
		{"ipv4", "1.2.3.4", false, "1.2.3.4", 0, false},
		{"ipv4 with port", "1.2.3.4:1234", false, "1.2.3.4", 1234, false},
		{"ipv6", "[1234:5678::abcd]", false, "[1234:5678::abcd]", 0, false},
		{"ipv6 with port", "[1234:5678::abcd]:5678", false, "[1234:5678::abcd]", 5678, false},
		{"ipv6 loopback with port", "[::1]:8448", false, "[::1]", 8448, false},
		{"ipv6 with embedded ipv4", "[::ffff:1.2.3.4]", false, "[::ffff:1.2.3.4]", 0, false},
		{"max port", "a.org:65535", false, "a.org", 65535, false},
		{"glob", "*.Example.org", true, "*.example.org", 0, true},
		{"glob with port", "hs?.example.org:8448", true, "hs?.example.org", 8448, true},
		{"ipv4 glob", "10.0.*", true, "10.0.*", 0, true},
		{"ipv6 glob", "[2001:db8::*]", true, "[2001:db8::*]", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseServerName(tt.input, tt.allowGlob)
			if err != nil {
				t.Fatalf("parseServerName(%q) error: %v", tt.input, err)
			}
			if got.host != tt.wantHost {
				t.Errorf("host = %q, want %q", got.host, tt.wantHost)
			}
			if got.port != tt.wantPort {
				t.Errorf("port = %d, want %d", got.port, tt.wantPort)
			}
			if got.glob != tt.wantGlob {
				t.Errorf("glob = %v, want %v", got.glob, tt.wantGlob)
			}
		})
	}
}

func TestParseServerNameErrors(t *testing.T) {
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name      string
		input     string
		allowGlob bool
		want      string
	}{
		{"empty", "", false, `invalid server name "": empty`},
		{"too long", string(long), false, "invalid server name: 256 bytes, more than 255"},
		{"empty host", ":8448", false, `invalid server name ":8448": empty host`},
		{"empty port", "a.org:", false, `invalid server name "a.org:": empty port`},
		{"port zero", "a.org:0", false, `invalid server name "a.org:0": port 0 out of range 1-65535`},
		{"port too large", "a.org:65536", false, `invalid server name "a.org:65536": port 65536 out of range 1-65535`},
		{"port five nines", "a.org:99999", false, `invalid server name "a.org:99999": port 99999 out of range 1-65535`},
		{"port leading zero", "a.org:08448", false, `invalid server name "a.org:08448": port "08448" has a leading zero`},
		{"port not numeric", "a.org:http", false, `invalid server name "a.org:http": port "http": character 'h' not allowed`},
		{"port with sign", "a.org:+80", false, `invalid server name "a.org:+80": port "+80": character '+' not allowed`},
		{"underscore", "hs_1.example.org", false, `invalid server name "hs_1.example.org": character '_' not allowed`},
		{"percent encoding", "hs%31.org", false, `invalid server name "hs%31.org": character '%' not allowed`},
		{"non-ascii", "bücher.example", false, `invalid server name "bücher.example": byte 0xc3 not allowed`},
		{"trailing dot", "example.org.", false, `invalid server name "example.org.": host ends with '.'`},
		{"doubled dot", "example..org", false, `invalid server name "example..org": host contains an empty label`},
		{"leading dot", ".example.org", false, `invalid server name ".example.org": host starts with '.'`},
		{"ipv4 octet too large", "256.1.1.1", false, `invalid server name "256.1.1.1": IPv4 address "256.1.1.1": octet 256 out of range 0-255`},
		{"ipv4 leading zero", "010.0.0.1", false, `invalid server name "010.0.0.1": IPv4 address "010.0.0.1": octet "010" has a leading zero`},
		{"ipv4 three octets", "1.2.3", false, `invalid server name "1.2.3": "1.2.3" ends in a number but is not a dotted-quad IPv4 address`},
		{"unbracketed ipv6", "::1", false, `invalid server name "::1": empty host`},
		{"unbracketed ipv6 full", "2001:db8::1", false, `invalid server name "2001:db8::1": port "db8::1" has more than 5 digits`},
		{"unclosed bracket", "[::1", false, `invalid server name "[::1": missing ']' after IPv6 address`},
		{"empty brackets", "[]", false, `invalid server name "[]": IPv6 address must be 2 to 45 characters, got 0`},
		{"garbage after bracket", "[::1]x", false, `invalid server name "[::1]x": unexpected "x" after IPv6 address`},
		{"empty port after bracket", "[::1]:", false, `invalid server name "[::1]:": empty port`},
		{"ipv4 in brackets", "[1.2.3.4]", false, `invalid server name "[1.2.3.4]": "1.2.3.4" is not an IPv6 address`},
		{"zone in brackets", "[fe80::1%eth0]", false, `invalid server name "[fe80::1%eth0]": character '%' not allowed in IPv6 address`},
		{"bad ipv6", "[1::2::3]", false, `invalid server name "[1::2::3]": "1::2::3" is not an IPv6 address`},
		{"glob not allowed", "*.example.org", false, `invalid server name "*.example.org": character '*' not allowed`},
		{"glob in port", "a.org:84*", true, `invalid server name "a.org:84*": port "84*": character '*' not allowed`},
		{"glob empty label", "*..org", true, `invalid server name pattern "*..org": host "*..org" has an empty label`},
		{"numeric last label", "example.123", false, `invalid server name "example.123": "example.123" ends in a number but is not a dotted-quad IPv4 address`},
		{"hex last label", "example.0x7f", false, `invalid server name "example.0x7f": "example.0x7f" ends in a number but is not a dotted-quad IPv4 address`},
		{"hex ipv4", "0x7f.0.0.1", false, `invalid server name "0x7f.0.0.1": IPv4 address "0x7f.0.0.1": octet "0x7f" must be 1 to 3 digits`},
		{"numeric last label with glob allowed", "example.123", true, `invalid server name "example.123": "example.123" ends in a number but is not a dotted-quad IPv4 address`},
		{"glob underscore", "*.a_b.org", true, `invalid server name pattern "*.a_b.org": character '_' not allowed`},
		{"glob non-ascii", "*.bücher.example", true, `invalid server name pattern "*.bücher.example": character 'ü' not allowed`},
		{"ipv6 glob zone", "[fe80::*%eth0]", true, `invalid server name pattern "[fe80::*%eth0]": character '%' not allowed in IPv6 address pattern`},
		{"glob too long", "*." + string(long[:254]), true, "invalid server name: 256 bytes, more than 255"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseServerName(tt.input, tt.allowGlob)
			if err == nil {
				t.Fatalf("parseServerName(%q) succeeded, want error %q", tt.input, tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("parseServerName(%q) error = %q, want %q", tt.input, err, tt.want)
			}
		})
	}
}

func TestPatternMatches(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"hs1.example.org", "HS1.example.org", true},
		{"hs1.example.org", "hs1.example.org:8448", true},
		{"hs1.example.org:8448", "hs1.example.org", false},
		{"hs1.example.org:8448", "hs1.example.org:8449", false},
		{"*.example.org", "a.b.example.org:8448", true},
		{"*.example.org", "example.org", false},
		{"*.example.org:8448", "a.example.org", false},
		{"[2001:db8::1]", "[2001:db8:0::1]:8448", true},
		{"192.0.2.*", "[::ffff:192.0.2.9]", true},
		{"192.0.2.7", "[::ffff:192.0.2.8]", false},
		{"bad_name", "bad_name", false},
		{"hs1.example.org", "hs1.example.org.", false},
	}
	for _, tt := range tests {
		if got := PatternMatches(tt.pattern, tt.name); got != tt.want {
			t.Errorf("PatternMatches(%q, %q) = %t, want %t", tt.pattern, tt.name, got, tt.want)
		}
	}
}
