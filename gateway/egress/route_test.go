package egress

import (
	"net/url"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/keys"
)

func TestOriginForm(t *testing.T) {
	tests := []struct {
		target  string
		want    string
		wantErr string
	}{
		{target: "/", want: "/"},
		{target: "/_matrix/federation/v1/event/$a%2Fb", want: "/_matrix/federation/v1/event/$a%2Fb"},
		{target: "/_matrix/federation/v1/event/$ä?x=ü", want: "/_matrix/federation/v1/event/$ä?x=ü"},
		{target: "/path?", want: "/path?"},
		{target: "https://hs.test:8448/_matrix/key/v2/server", want: "/_matrix/key/v2/server"},
		{target: "HTTPS://hs.test/a%2Fb?c", want: "/a%2Fb?c"},
		{target: "http://[::1]:8448/x", want: "/x"},
		{target: "https://hs.test", want: "/"},
		{target: "https://hs.test?q=1", want: "/?q=1"},
		{target: "https://hs.test//x", wantErr: "starts with //"},
		{target: "//hs.test/x", wantErr: "starts with //"},
		{target: "*", wantErr: "not in origin form"},
		{target: "ftp://hs.test/x", wantErr: "not in origin form"},
		{target: "hs.test:8448", wantErr: "not in origin form"},
		{target: "/a b", wantErr: "contains byte 0x20"},
		{target: "/a\r\nHost: x", wantErr: "contains byte 0x0d"},
		{target: "/a\x00", wantErr: "contains byte 0x00"},
		{target: "/a\x7f", wantErr: "contains byte 0x7f"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			got, err := originForm(tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("originForm(%q) error = %v, want %q in it", tt.target, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("originForm(%q): %v", tt.target, err)
			}
			if got != tt.want {
				t.Errorf("originForm(%q) = %q, want %q", tt.target, got, tt.want)
			}
		})
	}
}

// FuzzOriginForm checks that an accepted target comes out of net/url, which
// writes the request line, exactly as originForm returned it, and that a
// target in origin form is kept as it is.
func FuzzOriginForm(f *testing.F) {
	for _, seed := range []string{
		"/", "/_matrix/federation/v1/event/$ä", "/a%2Fb?c=d%20e", "/x?", "https://hs.test/p?q",
		"//x", "*", "/a b", "http://h", "https://h?x", "/%zz", "/\xff\xfe",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got, err := originForm(target)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") {
			t.Fatalf("originForm(%q) = %q, not in origin form", target, got)
		}
		if strings.HasPrefix(target, "/") && got != target {
			t.Fatalf("originForm(%q) = %q, want the target unchanged", target, got)
		}
		u := url.URL{Scheme: "https", Host: "hs.test", Opaque: got}
		if sent := u.RequestURI(); sent != got {
			t.Fatalf("URL with Opaque %q writes request target %q", got, sent)
		}
	})
}

func TestTLSServerName(t *testing.T) {
	tests := []struct {
		name    string
		target  keys.Target
		want    string
		wantErr string
	}{
		{"dns name", keys.Target{Addr: "t.test:8448", TLSServerName: "hs.test"}, "hs.test", ""},
		{"ipv4 literal", keys.Target{Addr: "127.0.0.1:8448"}, "127.0.0.1", ""},
		{"ipv6 literal", keys.Target{Addr: "[::1]:8448"}, "::1", ""},
		{"host name without tls name", keys.Target{Addr: "t.test:8448"}, "", "neither a TLS server name nor an IP address"},
		{"address without port", keys.Target{Addr: "127.0.0.1"}, "", "invalid discovered address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tlsServerName(tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("tlsServerName error = %v, want %q in it", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("tlsServerName: %v", err)
			}
			if got != tt.want {
				t.Errorf("tlsServerName = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPinnedTarget(t *testing.T) {
	tests := []struct {
		serverName string
		address    string
		want       keys.Target
	}{
		{"hs.test", "10.0.0.5:8448", keys.Target{Addr: "10.0.0.5:8448", Host: "hs.test", TLSServerName: "hs.test"}},
		{"hs.test:8449", "gw.internal:443", keys.Target{Addr: "gw.internal:443", Host: "hs.test:8449", TLSServerName: "hs.test"}},
		{"127.0.0.1:8448", "127.0.0.1:9000", keys.Target{Addr: "127.0.0.1:9000", Host: "127.0.0.1:8448", TLSServerName: "127.0.0.1"}},
		{"[::1]:8448", "[::1]:9000", keys.Target{Addr: "[::1]:9000", Host: "[::1]:8448", TLSServerName: "::1"}},
	}
	for _, tt := range tests {
		t.Run(tt.serverName, func(t *testing.T) {
			got, err := pinnedTarget(tt.serverName, tt.address)
			if err != nil {
				t.Fatalf("pinnedTarget: %v", err)
			}
			if got != tt.want {
				t.Errorf("pinnedTarget = %+v, want %+v", got, tt.want)
			}
		})
	}
}
