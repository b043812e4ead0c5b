package store

import "testing"

func TestParseServerName(t *testing.T) {
	tests := []struct {
		name      string
		input     string
		allowGlob bool
		wantHost  string
		wantPort  string
		wantGlob  bool
	}{
		{"hostname", "matrix.org", false, "matrix.org", "", false},
		{"hostname with port", "matrix.org:8888", false, "matrix.org", "8888", false},
		{"upper case folded", "HS1.Example.ORG:8448", false, "hs1.example.org", "8448", false},
		{"single label", "localhost", false, "localhost", "", false},
		{"ipv4", "1.2.3.4", false, "1.2.3.4", "", false},
		{"ipv4 with port", "1.2.3.4:1234", false, "1.2.3.4", "1234", false},
		{"ipv6", "[1234:5678::abcd]", false, "[1234:5678::abcd]", "", false},
		{"ipv6 with port", "[1234:5678::abcd]:5678", false, "[1234:5678::abcd]", "5678", false},
		{"ipv6 loopback with port", "[::1]:8448", false, "[::1]", "8448", false},
		{"ipv6 with embedded ipv4", "[::ffff:1.2.3.4]", false, "[::ffff:1.2.3.4]", "", false},
		{"max port", "a.org:65535", false, "a.org", "65535", false},
		{"glob", "*.Example.org", true, "*.example.org", "", true},
		{"glob with port", "hs?.example.org:8448", true, "hs?.example.org", "8448", true},
		{"ipv4 glob", "10.0.*", true, "10.0.*", "", true},
		{"ipv6 glob", "[2001:db8::*]", true, "[2001:db8::*]", "", true},
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
				t.Errorf("port = %q, want %q", got.port, tt.wantPort)
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
		{"empty", "", false, "empty server name"},
		{"too long", string(long), false, "server name is 256 bytes, longer than 255"},
		{"empty host", ":8448", false, "empty host before ':'"},
		{"empty port", "a.org:", false, "empty port after ':'"},
		{"port zero", "a.org:0", false, `port "0" is out of range`},
		{"port too large", "a.org:65536", false, `port "65536" is out of range`},
		{"port five nines", "a.org:99999", false, `port "99999" is out of range`},
		{"port leading zero", "a.org:08448", false, `port "08448" has a leading zero`},
		{"port not numeric", "a.org:http", false, `invalid port "http"`},
		{"port with sign", "a.org:+80", false, `invalid port "+80"`},
		{"underscore", "hs_1.example.org", false, `invalid character '_' in host "hs_1.example.org"`},
		{"percent encoding", "hs%31.org", false, `invalid character '%' in host "hs%31.org"`},
		{"non-ascii", "bücher.example", false, `invalid character 'ü' in host "bücher.example"`},
		{"trailing dot", "example.org.", false, `host "example.org." has an empty label`},
		{"doubled dot", "example..org", false, `host "example..org" has an empty label`},
		{"leading dot", ".example.org", false, `host ".example.org" has an empty label`},
		{"ipv4 octet too large", "256.1.1.1", false, `invalid IPv4 address "256.1.1.1"`},
		{"ipv4 leading zero", "010.0.0.1", false, `invalid IPv4 address "010.0.0.1"`},
		{"ipv4 three octets", "1.2.3", false, `invalid IPv4 address "1.2.3"`},
		{"unbracketed ipv6", "::1", false, `IPv6 address ":" is not in brackets`},
		{"unbracketed ipv6 full", "2001:db8::1", false, `IPv6 address "2001:db8:" is not in brackets`},
		{"unclosed bracket", "[::1", false, `IPv6 address "[::1" has no closing ]`},
		{"empty brackets", "[]", false, "empty IPv6 address"},
		{"garbage after bracket", "[::1]x", false, `unexpected "x" after the IPv6 address`},
		{"empty port after bracket", "[::1]:", false, "empty port after ':'"},
		{"ipv4 in brackets", "[1.2.3.4]", false, `invalid IPv6 address "[1.2.3.4]"`},
		{"zone in brackets", "[fe80::1%eth0]", false, `invalid character '%' in IPv6 address "[fe80::1%eth0]"`},
		{"bad ipv6", "[1::2::3]", false, `invalid IPv6 address "[1::2::3]"`},
		{"glob not allowed", "*.example.org", false, `invalid character '*' in host "*.example.org"`},
		{"glob in port", "a.org:84*", true, `invalid port "84*"`},
		{"glob empty label", "*..org", true, `host "*..org" has an empty label`},
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
