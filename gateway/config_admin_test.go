package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
)

func TestParseConfigAdminAndSignedListDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(strings.Replace(minimalConfig, "  file: allowlist.yaml\n",
		"  file: allowlist.yaml\n  signed_lists: [{name: federation, url: \"https://lists.example.org/f.jws\", keys_file: keys.json}]\n", 1)), "/etc/bordergate")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	list := cfg.Allowlist.SignedLists[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"admin.listen", cfg.Admin.Listen, "127.0.0.1:9448"},
		{"refresh_interval", list.RefreshInterval, DefaultSignedListRefresh},
		{"timeout", list.Timeout, DefaultSignedListTimeout},
		{"on_expiry", list.OnExpiry, OnExpiryFailClosed},
		{"keys_file resolved", list.KeysFile, "/etc/bordergate/keys.json"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseConfigAdminErrors(t *testing.T) {
	tests := []struct {
		name, extra, want string
	}{
		{"public address without TLS", "admin: {listen: \"0.0.0.0:9448\", token_file: t.yaml}\n",
			`admin.listen: "0.0.0.0:9448" is not a loopback address, and admin.tls is not set; listen on 127.0.0.1, or set admin.tls.cert_file and key_file so that tokens do not cross the network in clear`},
		{"public address without authentication", "admin: {listen: \"10.0.0.5:9448\", tls: {cert_file: a.pem, key_file: a-key.pem}}\n",
			`admin.listen: "10.0.0.5:9448" is not a loopback address, and no authentication is configured; listen on 127.0.0.1, or set admin.token_file or admin.tls.client_ca_file`},
		{"client CA without certificate", "admin: {tls: {client_ca_file: ca.pem}}\n",
			"admin.tls.client_ca_file: set without cert_file and key_file; name the admin listener's certificate and key: client certificates need TLS"},
		{"certificate without key", "admin: {tls: {cert_file: a.pem}}\n",
			"admin.tls: only one of cert_file and key_file is set; name both, or neither"},
		{"bad listen", "admin: {listen: \"9448\"}\n",
			`admin.listen: "9448" is not host:port; write host:port, such as "127.0.0.1:9448"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(minimalConfig+tt.extra), "")
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseConfig() error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
	for _, ok := range []string{
		"admin: {listen: \"[::1]:9448\"}\n",
		"admin: {listen: \"localhost:9448\"}\n",
		"admin: {listen: \"0.0.0.0:9448\", token_file: t.yaml, tls: {cert_file: a.pem, key_file: a-key.pem}}\n",
		"admin: {listen: \"0.0.0.0:9448\", tls: {cert_file: a.pem, key_file: a-key.pem, client_ca_file: ca.pem}}\n",
	} {
		if _, err := ParseConfig([]byte(minimalConfig+ok), ""); err != nil {
			t.Errorf("ParseConfig(%s) = %v, want no error", strings.TrimSpace(ok), err)
		}
	}
}

func TestParseConfigSignedListErrors(t *testing.T) {
	withList := func(list string) string {
		return strings.Replace(minimalConfig, "  file: allowlist.yaml\n", "  file: allowlist.yaml\n  signed_lists: ["+list+"]\n", 1)
	}
	tests := []struct {
		name, list, want string
	}{
		{"bad name", `{name: "Fed List", file: f.jws, keys_file: k.json}`,
			`allowlist.signed_lists[0].name: invalid name "Fed List"; write 1 to 64 characters of a-z, 0-9, '.', '_' and '-', such as "federation"`},
		{"duplicate name", `{name: a, file: f.jws, keys_file: k.json}, {name: a, file: g.jws, keys_file: k.json}`,
			`allowlist.signed_lists[1].name: duplicate name "a"; give each signed list its own name`},
		{"url and file", `{name: a, url: "https://x/y", file: f.jws, keys_file: k.json}`,
			"allowlist.signed_lists[0]: needs exactly one of url and file; name the https URL of the list, or a local file"},
		{"plain http", `{name: a, url: "http://lists.example.org/f.jws", keys_file: k.json}`,
			`allowlist.signed_lists[0].url: "http://lists.example.org/f.jws" is not an https URL; write a URL such as "https://lists.example.org/federation.jws"`},
		{"no keys", `{name: a, file: f.jws}`,
			"allowlist.signed_lists[0].keys_file: missing; name the JWK Set file of the keys that sign the list"},
		{"unknown mode", `{name: a, file: f.jws, keys_file: k.json, on_expiry: keep}`,
			`allowlist.signed_lists[0].on_expiry: unknown mode "keep"; write fail_closed or fail_static`},
		{"short interval", `{name: a, file: f.jws, keys_file: k.json, refresh_interval: 10ms}`,
			`allowlist.signed_lists[0].refresh_interval: 10ms is too short; write at least "1s"; the default is "5m"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(withList(tt.list)), "")
			if err == nil || err.Error() != tt.want {
				t.Errorf("ParseConfig() error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

// An admin client CA bundle that shares a CA with a federation CA bundle
// lets every peer gateway's client certificate into the allow-list API, so
// the gateway refuses to start with it, and bordergate check reports it.
func TestAdminClientCAApartFromFederation(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	base, err := os.ReadFile(filepath.Join(tg.dir, "bordergate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(tg.dir, "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := certs.NewCA("bordergate test admin CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tg.dir, "admin-ca.pem", string(other.CertPEM()))
	writeFile(t, tg.dir, "bundle-ca.pem", string(other.CertPEM())+string(ca))

	tests := []struct{ name, adminCA, want string }{
		{"same file", "ca.pem", "admin.tls.client_ca_file: " + filepath.Join(tg.dir, "ca.pem") +
			` shares the CA "CN=bordergate test CA" with inbound.tls.client_ca_file ` + filepath.Join(tg.dir, "ca.pem") +
			", so every peer gateway's client certificate would authenticate to the admin API (give admin clients a CA of their own)"},
		{"bundle with the federation CA", "bundle-ca.pem", "admin.tls.client_ca_file: " + filepath.Join(tg.dir, "bundle-ca.pem") +
			` shares the CA "CN=bordergate test CA" with inbound.tls.client_ca_file ` + filepath.Join(tg.dir, "ca.pem") +
			", so every peer gateway's client certificate would authenticate to the admin API (give admin clients a CA of their own)"},
		{"own CA", "admin-ca.pem", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := strings.Replace(string(base), "admin: {token_file: admin-tokens.yaml}",
				"admin: {token_file: admin-tokens.yaml, tls: {cert_file: cert.pem, key_file: key.pem, client_ca_file: "+tt.adminCA+"}}", 1)
			config = strings.Replace(config, "state_dir: \"state\"", fmt.Sprintf("state_dir: %q", t.TempDir()), 1)
			writeFile(t, tg.dir, "admin-ca-test.yaml", config)
			cfg, err := LoadConfig(filepath.Join(tg.dir, "admin-ca-test.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			log := slog.New(slog.DiscardHandler)
			gotErr := func(err error) string {
				if err == nil {
					return ""
				}
				return err.Error()
			}
			if got := gotErr(Check(t.Context(), cfg, log)); got != tt.want {
				t.Errorf("Check() error:\n got %s\nwant %s", got, tt.want)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			gw, err := New(ctx, cfg, log)
			if gw != nil {
				defer gw.Close()
			}
			if got := gotErr(err); got != tt.want {
				t.Errorf("New() error:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}
