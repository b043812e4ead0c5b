package servername

import (
	"strconv"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	long := strings.Repeat("a", 251) + ".org" // 255 characters
	tests := []struct {
		name    string
		input   string
		wantErr string // "" when input is valid
	}{
		// Valid examples given by the Matrix specification.
		{"spec dns name", "matrix.org", ""},
		{"spec dns name with port", "matrix.org:8888", ""},
		{"spec ipv4", "1.2.3.4", ""},
		{"spec ipv4 with port", "1.2.3.4:1234", ""},
		{"spec ipv6", "[1234:5678::abcd]", ""},
		{"spec ipv6 with port", "[1234:5678::abcd]:5678", ""},

		{"single label", "localhost", ""},
		{"loopback ipv6 with port", "[::1]:8448", ""},
		{"ipv6 upper-case hex", "[ABCD::EF01]", ""},
		{"ipv6 with embedded ipv4", "[::ffff:1.2.3.4]", ""},
		{"ipv6 all zeros long form", "[0:0:0:0:0:0:0:0]", ""},
		{"upper-case dns name", "MATRIX.ORG", ""},
		{"hyphens", "my-server.example-domain.org", ""},
		{"digits in labels", "1host.2example.org", ""},
		{"hex-like label not last", "0x1.example.org", ""},
		{"numeric label not last", "123.example.org", ""},
		{"port 1", "example.org:1", ""},
		{"port 65535", "example.org:65535", ""},
		{"ipv4 zeros", "0.0.0.0", ""},
		{"ipv4 max octets", "255.255.255.255", ""},
		{"dns name of 255 characters", long, ""},

		{"empty", "", `invalid server name "": empty`},
		{"empty host with port", ":80", `invalid server name ":80": empty host`},
		{"underscore", "a_b", `invalid server name "a_b": character '_' not allowed`},
		{"percent", "a%2eb", `invalid server name "a%2eb": character '%' not allowed`},
		{"space", "a b", `invalid server name "a b": byte 0x20 not allowed`},
		{"tab", "a\tb", `invalid server name "a\tb": byte 0x09 not allowed`},
		{"trailing newline", "a.org\n", `invalid server name "a.org\n": byte 0x0a not allowed`},
		{"non-ascii", "bücher.de", `invalid server name "bücher.de": byte 0xc3 not allowed`},
		{"slash", "a.org/x", `invalid server name "a.org/x": character '/' not allowed`},
		{"at sign", "user@a.org", `invalid server name "user@a.org": character '@' not allowed`},
		{"trailing dot", "example.org.", `invalid server name "example.org.": host ends with '.'`},
		{"leading dot", ".example.org", `invalid server name ".example.org": host starts with '.'`},
		{"doubled dot", "example..org", `invalid server name "example..org": host contains an empty label`},
		{"only a dot", ".", `invalid server name ".": host starts with '.'`},
		{"dns name too long", long + "a", `invalid server name "` + long + `a": host is 256 characters, more than 255`},

		{"port 0", "example.org:0", `invalid server name "example.org:0": port 0 out of range 1-65535`},
		{"port 65536", "example.org:65536", `invalid server name "example.org:65536": port 65536 out of range 1-65535`},
		{"port 99999", "example.org:99999", `invalid server name "example.org:99999": port 99999 out of range 1-65535`},
		{"port six digits", "example.org:100000", `invalid server name "example.org:100000": port "100000" has more than 5 digits`},
		{"port plus sign", "example.org:+80", `invalid server name "example.org:+80": port "+80": character '+' not allowed`},
		{"port minus sign", "example.org:-1", `invalid server name "example.org:-1": port "-1": character '-' not allowed`},
		{"port leading zero", "example.org:08448", `invalid server name "example.org:08448": port "08448" has a leading zero`},
		{"empty port", "example.org:", `invalid server name "example.org:": empty port`},
		{"two ports", "example.org:80:81", `invalid server name "example.org:80:81": port "80:81": character ':' not allowed`},
		{"port with garbage", "example.org:80x", `invalid server name "example.org:80x": port "80x": character 'x' not allowed`},

		{"ipv4 octet 256", "1.2.3.256", `invalid server name "1.2.3.256": IPv4 address "1.2.3.256": octet 256 out of range 0-255`},
		{"ipv4 all leading zeros", "000.000.000.000", `invalid server name "000.000.000.000": IPv4 address "000.000.000.000": octet "000" has a leading zero`},
		{"ipv4 octal-looking", "010.0.0.1", `invalid server name "010.0.0.1": IPv4 address "010.0.0.1": octet "010" has a leading zero`},
		{"ipv4 four digit octet", "1.2.3.1234", `invalid server name "1.2.3.1234": IPv4 address "1.2.3.1234": octet "1234" must be 1 to 3 digits`},
		{"ipv4 three parts", "1.2.3", `invalid server name "1.2.3": "1.2.3" ends in a number but is not a dotted-quad IPv4 address`},
		{"ipv4 five parts", "1.2.3.4.5", `invalid server name "1.2.3.4.5": "1.2.3.4.5" ends in a number but is not a dotted-quad IPv4 address`},
		{"ipv4 trailing dot", "1.2.3.4.", `invalid server name "1.2.3.4.": host ends with '.'`},
		{"ipv4 empty octet", "1..3.4", `invalid server name "1..3.4": IPv4 address "1..3.4": octet "" must be 1 to 3 digits`},
		{"plain number", "1234", `invalid server name "1234": "1234" ends in a number but is not a dotted-quad IPv4 address`},
		{"numeric last label", "example.123", `invalid server name "example.123": "example.123" ends in a number but is not a dotted-quad IPv4 address`},
		{"hex last label", "example.0x7f", `invalid server name "example.0x7f": "example.0x7f" ends in a number but is not a dotted-quad IPv4 address`},
		{"hex ipv4", "0x7f.0.0.1", `invalid server name "0x7f.0.0.1": IPv4 address "0x7f.0.0.1": octet "0x7f" must be 1 to 3 digits`},

		{"ipv6 without brackets", "::1", `invalid server name "::1": empty host`},
		{"ipv6 without brackets with letters", "fe80::1", `invalid server name "fe80::1": port ":1": character ':' not allowed`},
		{"ipv6 missing close bracket", "[::1", `invalid server name "[::1": missing ']' after IPv6 address`},
		{"ipv6 empty brackets", "[]", `invalid server name "[]": IPv6 address must be 2 to 45 characters, got 0`},
		{"ipv6 invalid", "[1:2]", `invalid server name "[1:2]": "1:2" is not an IPv6 address`},
		{"ipv6 holding ipv4", "[1.2.3.4]", `invalid server name "[1.2.3.4]": "1.2.3.4" is not an IPv6 address`},
		{"ipv6 zone", "[fe80::1%25eth0]", `invalid server name "[fe80::1%25eth0]": character '%' not allowed in IPv6 address`},
		{"ipv6 non-hex letter", "[::g]", `invalid server name "[::g]": character 'g' not allowed in IPv6 address`},
		{"ipv6 too long", "[" + strings.Repeat("0", 46) + "]", `invalid server name "[` + strings.Repeat("0", 46) + `]": IPv6 address must be 2 to 45 characters, got 46`},
		{"ipv6 trailing garbage", "[::1]x", `invalid server name "[::1]x": unexpected "x" after IPv6 address`},
		{"ipv6 port 0", "[::1]:0", `invalid server name "[::1]:0": port 0 out of range 1-65535`},
		{"ipv6 empty port", "[::1]:", `invalid server name "[::1]:": empty port`},
		{"bracket inside dns name", "a[::1]", `invalid server name "a[::1]": port ":1]": character ':' not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.input)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("Validate(%q) error = %q, want %q", tt.input, got, tt.wantErr)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	tests := []struct {
		input    string
		wantHost string
		wantPort int
	}{
		{"matrix.org", "matrix.org", 0},
		{"matrix.org:8888", "matrix.org", 8888},
		{"1.2.3.4:1234", "1.2.3.4", 1234},
		{"[::1]:8448", "::1", 8448},
		{"[1234:5678::abcd]", "1234:5678::abcd", 0},
		{"localhost:65535", "localhost", 65535},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			host, port, err := Split(tt.input)
			if err != nil {
				t.Fatalf("Split(%q) error = %v", tt.input, err)
			}
			if host != tt.wantHost {
				t.Errorf("Split(%q) host = %q, want %q", tt.input, host, tt.wantHost)
			}
			if port != tt.wantPort {
				t.Errorf("Split(%q) port = %d, want %d", tt.input, port, tt.wantPort)
			}
		})
	}
}

func TestSplitInvalid(t *testing.T) {
	host, port, err := Split("a_b:80")
	if err == nil {
		t.Fatal("Split(\"a_b:80\") error = nil, want an error")
	}
	if host != "" || port != 0 {
		t.Errorf("Split(\"a_b:80\") = %q, %d, want \"\", 0", host, port)
	}
}

func TestSplitPort(t *testing.T) {
	tests := []struct {
		name         string
		input        string
		wantHostname string
		wantPort     int
		wantErr      string // "" when input splits
	}{
		{"dns name", "matrix.org", "matrix.org", 0, ""},
		{"dns name with port", "matrix.org:8888", "matrix.org", 8888, ""},
		{"ipv6 keeps brackets", "[::1]", "[::1]", 0, ""},
		{"ipv6 with port keeps brackets", "[::1]:8448", "[::1]", 8448, ""},
		{"hostname not checked", "a_b:80", "a_b", 80, ""},
		{"wildcard hostname not checked", "*.example.org:8448", "*.example.org", 8448, ""},
		{"bracketed wildcard not checked", "[2001:db8::*]", "[2001:db8::*]", 0, ""},
		{"empty brackets not checked", "[]", "[]", 0, ""},

		{"empty", "", "", 0, `invalid server name "": empty`},
		{"empty host", ":80", "", 0, `invalid server name ":80": empty host`},
		{"unclosed bracket", "[::1", "", 0, `invalid server name "[::1": missing ']' after IPv6 address`},
		{"text after bracket", "[::1]x", "", 0, `invalid server name "[::1]x": unexpected "x" after IPv6 address`},
		{"empty port", "a.org:", "", 0, `invalid server name "a.org:": empty port`},
		{"port 0", "a.org:0", "", 0, `invalid server name "a.org:0": port 0 out of range 1-65535`},
		{"port leading zero", "a.org:08448", "", 0, `invalid server name "a.org:08448": port "08448" has a leading zero`},
		{"wildcard in port", "a.org:84*", "", 0, `invalid server name "a.org:84*": port "84*": character '*' not allowed`},
		{"unbracketed ipv6", "fe80::1", "", 0, `invalid server name "fe80::1": port ":1": character ':' not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hostname, port, err := SplitPort(tt.input)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("SplitPort(%q) error = %q, want %q", tt.input, gotErr, tt.wantErr)
			}
			if hostname != tt.wantHostname {
				t.Errorf("SplitPort(%q) hostname = %q, want %q", tt.input, hostname, tt.wantHostname)
			}
			if port != tt.wantPort {
				t.Errorf("SplitPort(%q) port = %d, want %d", tt.input, port, tt.wantPort)
			}
		})
	}
}

func TestIsIPLiteral(t *testing.T) {
	tests := []struct {
		input string
		want  bool
	}{
		{"1.2.3.4", true},
		{"1.2.3.4:8448", true},
		{"[::1]", true},
		{"[::1]:8448", true},
		{"matrix.org", false},
		{"matrix.org:8448", false},
		{"1.2.3.4.example.org", false},
		{"1.2.3.256", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			if got := IsIPLiteral(tt.input); got != tt.want {
				t.Errorf("IsIPLiteral(%q) = %v, want %v", tt.input, got, tt.want)
			}
		})
	}
}

func FuzzValidate(f *testing.F) {
	for _, seed := range []string{
		"matrix.org", "matrix.org:8888", "1.2.3.4:1234", "[1234:5678::abcd]:5678",
		"[::ffff:1.2.3.4]", ":80", "a_b", "example.org.", "000.000.000.000",
		"example.org:99999", "[fe80::1%eth0]", "1.2.3", "example.0x7f",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := Validate(name)
		host, port, splitErr := Split(name)
		if (err == nil) != (splitErr == nil) {
			t.Fatalf("Validate(%q) = %v but Split error = %v", name, err, splitErr)
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), "invalid server name ") {
				t.Fatalf("Validate(%q) error %q lacks the common prefix", name, err)
			}
			return
		}

		// A valid name is the concatenation of its parts, so Split loses
		// nothing and a name has exactly one spelling per host and port.
		hostname := host
		if strings.Contains(host, ":") {
			hostname = "[" + host + "]"
		}
		rebuilt := hostname
		if port != 0 {
			rebuilt += ":" + strconv.Itoa(port)
		}
		if rebuilt != name {
			t.Fatalf("Split(%q) = %q, %d, which rebuilds to %q", name, host, port, rebuilt)
		}
		checkGMSLAgrees(t, name, host, port)

		// SplitPort differs from Split only in keeping the brackets.
		gotHostname, gotPort, err := SplitPort(name)
		if err != nil {
			t.Fatalf("SplitPort(%q) error = %v for a valid name", name, err)
		}
		if gotHostname != hostname || gotPort != port {
			t.Fatalf("SplitPort(%q) = %q, %d, want %q, %d", name, gotHostname, gotPort, hostname, port)
		}
	})
}
