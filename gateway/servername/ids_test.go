package servername

import (
	"errors"
	"strings"
	"testing"
)

func TestFromID(t *testing.T) {
	tests := []struct {
		name       string
		id         string
		wantServer string
		wantErr    string // "" when id is valid
	}{
		{"user ID", "@alice:example.org", "example.org", ""},
		{"user ID with port", "@alice:example.org:8448", "example.org:8448", ""},
		{"user ID on ipv6 literal", "@alice:[::1]:8448", "[::1]:8448", ""},
		{"room ID v1 to v11", "!opaque:example.org", "example.org", ""},
		{"room alias", "#room:example.org", "example.org", ""},
		{"event ID v1 and v2", "$opaque:example.org", "example.org", ""},
		{"historical localpart", "@Alice!#$:example.org", "example.org", ""},

		{"room ID v12", "!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM", "",
			`room ID "!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM": identifier has no server part`},
		{"event ID v3", "$70O/oKlXzFbkfu0KE88USi98DjSWrOELrPj+8tisl8I", "",
			`event ID "$70O/oKlXzFbkfu0KE88USi98DjSWrOELrPj+8tisl8I": identifier has no server part`},
		{"user ID without server", "@alice", "",
			`invalid user ID "@alice": missing ':' before the server name`},
		{"alias without server", "#room", "",
			`invalid room alias "#room": missing ':' before the server name`},
		{"empty", "", "", `invalid identifier "": empty`},
		{"unknown sigil", "+group:example.org", "",
			`invalid identifier "+group:example.org": sigil must be '@', '!', '#' or '$'`},
		{"empty localpart", "@:example.org", "",
			`invalid user ID "@:example.org": empty part before ':'`},
		{"empty server", "@alice:", "",
			`invalid user ID "@alice:": invalid server name "": empty`},
		{"invalid server", "!room:a_b", "",
			`invalid room ID "!room:a_b": invalid server name "a_b": character '_' not allowed`},
		{"colon in server part is a port", "@a:b:c", "",
			`invalid user ID "@a:b:c": invalid server name "b:c": port "c": character 'c' not allowed`},
		{"too long", "@" + strings.Repeat("a", 249) + ":a.org", "",
			`invalid user ID "@` + strings.Repeat("a", 249) + `:a.org": 256 bytes, more than 255`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server, err := FromID(tt.id)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.wantErr {
				t.Errorf("FromID(%q) error = %q, want %q", tt.id, gotErr, tt.wantErr)
			}
			if server != tt.wantServer {
				t.Errorf("FromID(%q) = %q, want %q", tt.id, server, tt.wantServer)
			}
		})
	}
}

func TestFromIDNoServerSentinel(t *testing.T) {
	for _, id := range []string{"!abc", "$abc"} {
		if _, err := FromID(id); !errors.Is(err, ErrNoServer) {
			t.Errorf("FromID(%q) error = %v, want ErrNoServer", id, err)
		}
	}
	for _, id := range []string{"@abc", "#abc", "!a:b_c"} {
		if _, err := FromID(id); err == nil || errors.Is(err, ErrNoServer) {
			t.Errorf("FromID(%q) error = %v, want an error other than ErrNoServer", id, err)
		}
	}
}

func TestValidUserID(t *testing.T) {
	maxLen := "@" + strings.Repeat("a", 248) + ":a.org" // 255 bytes
	tests := []struct {
		name    string
		id      string
		wantErr string // "" when id is valid
	}{
		{"lower-case", "@alice:example.org", ""},
		{"new character set", "@a.b_c=d-e/f+g:example.org", ""},
		{"historical upper-case", "@Alice:example.org", ""},
		{"historical punctuation", "@!\"#$%&'()*;<>?[]^`{|}~:example.org", ""},
		{"port", "@alice:example.org:8448", ""},
		{"ipv6 server", "@alice:[::1]", ""},
		{"255 bytes", maxLen, ""},

		{"empty", "", `invalid user ID "": must start with '@'`},
		{"wrong sigil", "!alice:example.org", `invalid user ID "!alice:example.org": must start with '@'`},
		{"no colon", "@alice", `invalid user ID "@alice": missing ':' before the server name`},
		{"empty localpart", "@:example.org", `invalid user ID "@:example.org": empty localpart`},
		{"space in localpart", "@al ice:example.org", `invalid user ID "@al ice:example.org": byte 0x20 not allowed in localpart`},
		{"non-ascii localpart", "@é:example.org", `invalid user ID "@é:example.org": byte 0xc3 not allowed in localpart`},
		{"control character", "@a\x7f:example.org", `invalid user ID "@a\x7f:example.org": byte 0x7f not allowed in localpart`},
		{"invalid server", "@alice:exa_mple.org", `invalid user ID "@alice:exa_mple.org": invalid server name "exa_mple.org": character '_' not allowed`},
		{"empty server", "@alice:", `invalid user ID "@alice:": invalid server name "": empty`},
		{"256 bytes", maxLen + "a", `invalid user ID "` + maxLen + `a": 256 bytes, more than 255`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidUserID(tt.id)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr {
				t.Errorf("ValidUserID(%q) error = %q, want %q", tt.id, got, tt.wantErr)
			}
		})
	}
}

func TestSplitUserID(t *testing.T) {
	tests := []struct {
		id            string
		wantLocalpart string
		wantServer    string
	}{
		{"@alice:example.org", "alice", "example.org"},
		{"@alice:example.org:8448", "alice", "example.org:8448"},
		{"@Alice!#$:[::1]:8448", "Alice!#$", "[::1]:8448"},
		{"@a:1.2.3.4", "a", "1.2.3.4"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			localpart, server, err := SplitUserID(tt.id)
			if err != nil {
				t.Fatalf("SplitUserID(%q) error = %v", tt.id, err)
			}
			if localpart != tt.wantLocalpart {
				t.Errorf("SplitUserID(%q) localpart = %q, want %q", tt.id, localpart, tt.wantLocalpart)
			}
			if server != tt.wantServer {
				t.Errorf("SplitUserID(%q) server = %q, want %q", tt.id, server, tt.wantServer)
			}
		})
	}
}

func TestSplitUserIDInvalid(t *testing.T) {
	localpart, server, err := SplitUserID("@alice:example.org.")
	want := `invalid user ID "@alice:example.org.": invalid server name "example.org.": host ends with '.'`
	if err == nil || err.Error() != want {
		t.Errorf("SplitUserID error = %v, want %q", err, want)
	}
	if localpart != "" || server != "" {
		t.Errorf("SplitUserID = %q, %q, want empty parts with the error", localpart, server)
	}
}
