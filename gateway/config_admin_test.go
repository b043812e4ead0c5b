package gateway

import (
	"strings"
	"testing"
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
