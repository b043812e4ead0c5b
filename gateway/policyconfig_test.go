package gateway

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const bundlePolicy = `policy:
  bundle:
    url: https://bundles.example.org/bordergate.tar.gz
    ca_file: bundle-ca.pem
    token_file: token
    signing:
      keys:
        - {key_id: policy-a, algorithm: EdDSA, public_key_file: keys/a.pem}
  shadow:
    packages: [bordergate.pdu]
    paths: [candidate]
    data_file: candidate.yaml
`

func TestParsePolicyConfig(t *testing.T) {
	text := strings.Replace(minimalConfig, "policy:\n  paths: [rego]\n", bundlePolicy, 1)
	text = strings.Replace(text, "allowlist:\n  file: allowlist.yaml\n", "allowlist:\n  from_bundle: true\n", 1)
	cfg, err := ParseConfig([]byte(text), "/etc/bordergate")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	b := cfg.Policy.Bundle
	checks := []struct {
		name      string
		got, want any
	}{
		{"poll_interval", b.PollInterval, DefaultBundlePollInterval},
		{"timeout", b.Timeout, DefaultBundleTimeout},
		{"max_bytes", b.MaxBytes, int64(32 << 20)},
		{"ca_file", b.CAFile, "/etc/bordergate/bundle-ca.pem"},
		{"token_file", b.TokenFile, "/etc/bordergate/token"},
		{"public_key_file", b.Signing.Keys[0].PublicKeyFile, "/etc/bordergate/keys/a.pem"},
		{"shadow.paths", cfg.Policy.Shadow.Paths[0], "/etc/bordergate/candidate"},
		{"shadow.data_file", cfg.Policy.Shadow.DataFile, "/etc/bordergate/candidate.yaml"},
		{"reload.debounce", cfg.Reload.Debounce, DefaultReloadDebounce},
		{"reload.watch", cfg.Reload.watching(), true},
		{"shadow kinds", len(cfg.Policy.Shadow.kinds()), 1},
		{"shadow.timeout", cfg.Policy.Shadow.Timeout, DefaultShadowTimeout},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !cfg.Policy.Shadow.kinds()["pdu"] {
		t.Errorf("shadow kinds = %v, want pdu", cfg.Policy.Shadow.kinds())
	}
}

func TestParsePolicyConfigErrors(t *testing.T) {
	files := "policy:\n  paths: [rego]\n"
	tests := []struct {
		name      string
		policy    string
		allowlist string
		extra     string
		want      string
	}{
		{"no source", "policy: {}\n", "", "",
			"policy.paths: missing; list the .rego files or directories of the policy, or configure policy.bundle"},
		{"files and bundle", "policy:\n  paths: [rego]\n  bundle: {url: https://b.example.org/b.tar.gz}\n", "", "",
			"policy.bundle: set together with paths or data_file; take the policy from files or from a bundle, not both"},
		{"bad url", "policy:\n  bundle: {url: ftp://b.example.org/b.tar.gz}\n", "", "",
			`policy.bundle.url: "ftp://b.example.org/b.tar.gz" is not an http or https URL`},
		{"unsigned bundle over plain http", "policy:\n  bundle: {url: http://b.example.org/b.tar.gz}\n", "", "",
			`policy.bundle.url: "http://b.example.org/b.tar.gz" is plain http to another host and the bundle is not signed, so anyone on the network path could replace the policy; use https, or configure policy.bundle.signing`},
		{"token over plain http", "policy:\n  bundle:\n    url: http://b.example.org/b.tar.gz\n    token_file: token\n    signing: {keys: [{key_id: a, algorithm: EdDSA, public_key_file: a.pem}]}\n", "", "",
			`policy.bundle.token_file: the token would travel in clear to b.example.org over plain http; use an https URL`},
		{"short interval", "policy:\n  bundle: {url: https://b.example.org/b.tar.gz, poll_interval: 10ms}\n", "", "",
			`policy.bundle.poll_interval: 10ms is shorter than 1s; write a duration such as "60s"`},
		{"small max", "policy:\n  bundle: {url: https://b.example.org/b.tar.gz, max_bytes: 10}\n", "", "",
			"policy.bundle.max_bytes: 10 is too small; write at least 1024"},
		{"no keys", "policy:\n  bundle: {url: https://b.example.org/b.tar.gz, signing: {keys: []}}\n", "", "",
			"policy.bundle.signing.keys: missing; list the public keys that bundles are signed with, or remove signing"},
		{"key without id", "policy:\n  bundle:\n    url: https://b.example.org/b.tar.gz\n    signing: {keys: [{algorithm: EdDSA, public_key_file: a.pem}]}\n", "", "",
			"policy.bundle.signing.keys[0].key_id: missing"},
		{"key without file", "policy:\n  bundle:\n    url: https://b.example.org/b.tar.gz\n    signing: {keys: [{key_id: a, algorithm: EdDSA}]}\n", "", "",
			"policy.bundle.signing.keys[0].public_key_file: missing; name the PEM public key file"},
		{"from bundle without bundle", files, "allowlist:\n  from_bundle: true\n", "",
			"allowlist.from_bundle: set without policy.bundle; configure policy.bundle, or name allowlist.file"},
		{"from bundle and file", "policy:\n  bundle: {url: https://b.example.org/b.tar.gz}\n", "allowlist:\n  file: a.yaml\n  from_bundle: true\n", "",
			"allowlist.file: set together with allowlist.from_bundle; take the allow-list from the file or from the bundle, not both"},
		{"no allow-list", files, "allowlist: {}\n", "",
			"allowlist.file: missing; name the YAML allow-list of federated servers, or set allowlist.from_bundle"},
		{"shadow without source", files + "  shadow: {packages: [bordergate.pdu]}\n", "", "",
			"policy.shadow.paths: missing; list the .rego files or directories of the policy, or configure policy.shadow.bundle"},
		{"unknown package", files + "  shadow: {paths: [c], packages: [bordergate.room]}\n", "", "",
			`policy.shadow.packages[0]: unknown package "bordergate.room"; write bordergate.request, bordergate.pdu or bordergate.edu`},
		{"package twice", files + "  shadow: {paths: [c], packages: [bordergate.pdu, bordergate.pdu]}\n", "", "",
			`policy.shadow.packages[1]: package "bordergate.pdu" is listed twice; list it once`},
		{"negative debounce", files, "", "reload: {debounce: -1s}\n", `reload.debounce: negative duration`},
		{"negative shadow timeout", files + "  shadow: {paths: [c], timeout: -1s}\n", "", "",
			`policy.shadow.timeout: negative duration; write a duration such as "100ms"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(minimalConfig, "policy:\n  paths: [rego]\n", tc.policy, 1)
			if tc.allowlist != "" {
				text = strings.Replace(text, "allowlist:\n  file: allowlist.yaml\n", tc.allowlist, 1)
			}
			_, err := ParseConfig([]byte(text+tc.extra), "")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("ParseConfig error = %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestPolicySourceFileErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "empty-token", "\n")
	writeFile(t, dir, "private.pem", "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----\n")
	base := BundleConfig{URL: "https://b.example.org/b.tar.gz", Timeout: time.Second, PollInterval: time.Second, MaxBytes: 1 << 20}
	tests := []struct {
		name   string
		change func(*BundleConfig)
		want   string
	}{
		{"missing CA file", func(b *BundleConfig) { b.CAFile = filepath.Join(dir, "absent.pem") }, "policy.bundle.ca_file: "},
		{"missing token file", func(b *BundleConfig) { b.TokenFile = filepath.Join(dir, "absent") }, "policy.bundle.token_file: open "},
		{"empty token", func(b *BundleConfig) { b.TokenFile = filepath.Join(dir, "empty-token") }, "policy.bundle.token_file: " + filepath.Join(dir, "empty-token") + " is empty; write the bearer token in it"},
		{"missing key file", func(b *BundleConfig) {
			b.Signing = &SigningConfig{Keys: []SigningKeyConfig{{KeyID: "a", Algorithm: "EdDSA", PublicKeyFile: filepath.Join(dir, "absent.pem")}}}
		}, "policy.bundle.signing.keys[0].public_key_file: open "},
		{"private key", func(b *BundleConfig) {
			b.Signing = &SigningConfig{Keys: []SigningKeyConfig{{KeyID: "a", Algorithm: "EdDSA", PublicKeyFile: filepath.Join(dir, "private.pem")}}}
		}, `policy.bundle.signing.keys[0] (a): PEM block is "PRIVATE KEY"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base
			tc.change(&b)
			_, err := newPolicySource(roleEnforced, nil, "", &b, "policy.bundle", "")
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("newPolicySource error = %v, want prefix %q", err, tc.want)
			}
		})
	}
}

func TestStartWithoutBundle(t *testing.T) {
	// A bundle server that is not running and no saved bundle: the
	// gateway does not start.
	tg := startGateway(t, gatewayOptions{})
	config, err := os.ReadFile(filepath.Join(tg.dir, "bordergate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(config), "allowlist: {file: allowlist.yaml}\n", "allowlist: {from_bundle: true}\n", 1)
	text = strings.Replace(text, "policy: {paths: ["+`"`+regoDir(t)+`"`+"], data_file: policy-data.json}\n",
		"policy:\n  bundle: {url: \"http://127.0.0.1:1/bundle.tar.gz\", timeout: 2s}\n", 1)
	text = strings.Replace(text, "state_dir: state", "state_dir: other-state", 1)
	writeFile(t, tg.dir, "no-bundle.yaml", text)
	cfg, err := LoadConfig(filepath.Join(tg.dir, "no-bundle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	want := "load policy bundle: fetch bundle: Get \"http://127.0.0.1:1/bundle.tar.gz\": dial tcp 127.0.0.1:1: connect: connection refused; no saved bundle to start on: read saved bundle: open "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("New error = %v, want prefix %q", err, want)
	}
}

func TestParsePolicyConfigPlainHTTPOnLoopback(t *testing.T) {
	for _, url := range []string{"http://127.0.0.1:8181/b.tar.gz", "http://[::1]:8181/b.tar.gz", "http://localhost:8181/b.tar.gz"} {
		text := strings.Replace(minimalConfig, "policy:\n  paths: [rego]\n", "policy:\n  bundle: {url: \""+url+"\", token_file: token}\n", 1)
		if _, err := ParseConfig([]byte(text), ""); err != nil {
			t.Errorf("ParseConfig with an unsigned bundle from %s: %v, want it accepted on loopback", url, err)
		}
	}
}
