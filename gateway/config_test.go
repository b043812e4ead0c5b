package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimalConfig = `
server_names: ["hs2.example.org"]
inbound:
  tls:
    cert_file: tls/cert.pem
    key_file: tls/key.pem
homeserver:
  url: http://127.0.0.1:8008
allowlist:
  file: allowlist.yaml
policy:
  paths: [rego]
`

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimalConfig), "/etc/bordergate")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"inbound.listen", cfg.Inbound.Listen, DefaultInboundListen},
		{"inbound.max_body_bytes", cfg.Inbound.MaxBodyBytes, int64(DefaultMaxBodyBytes)},
		{"homeserver.timeout", cfg.Homeserver.Timeout, DefaultHomeserverTimeout},
		{"keys.fetch_timeout", cfg.Keys.FetchTimeout, DefaultKeyFetchTimeout},
		{"state_dir", cfg.StateDir, DefaultStateDir},
		{"decision_log.file", cfg.DecisionLog.File, DefaultDecisionLog},
		{"decision_log.sync", cfg.DecisionLog.Sync, "always"},
		{"decision_log.signing_key_file", cfg.DecisionLog.SigningKeyFile, ""},
		{"decision_log.checkpoint.records", cfg.DecisionLog.Checkpoint.Records, DefaultCheckpointRecords},
		{"decision_log.checkpoint.interval", cfg.DecisionLog.Checkpoint.Interval, DefaultCheckpointInterval},
		{"decision_log.rotate.max_bytes", cfg.DecisionLog.Rotate.MaxBytes, int64(0)},
		{"decision_log.rotate.max_age", cfg.DecisionLog.Rotate.MaxAge, time.Duration(0)},
		{"log.level", cfg.Log.Level, "info"},
		{"cert_file resolved", cfg.Inbound.TLS.CertFile, "/etc/bordergate/tls/cert.pem"},
		{"allowlist resolved", cfg.Allowlist.File, "/etc/bordergate/allowlist.yaml"},
		{"policy path resolved", cfg.Policy.Paths[0], "/etc/bordergate/rego"},
		{"empty path kept", cfg.Rooms.SeedFile, ""},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseConfigDurations(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimalConfig+"keys:\n  fetch_timeout: 3s\n"), "")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	if cfg.Keys.FetchTimeout != 3*time.Second {
		t.Errorf("keys.fetch_timeout = %v, want 3s", cfg.Keys.FetchTimeout)
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		replace [2]string
		extra   string
		want    string
	}{
		{"unknown field", [2]string{}, "colour: blue\n", "invalid YAML: yaml: unmarshal errors: line 13: field colour not found"},
		{"missing server names", [2]string{`server_names: ["hs2.example.org"]`, ""}, "",
			`server_names: missing; list the local server names, such as ["example.org"]`},
		{"bad server name", [2]string{`"hs2.example.org"`, `"hs_2.example.org"`}, "", "server_names[0]: "},
		{"missing cert", [2]string{"cert_file: tls/cert.pem", ""}, "",
			"inbound.tls.cert_file: missing; name the PEM certificate file of the listener"},
		{"bad homeserver url", [2]string{"http://127.0.0.1:8008", "ftp://127.0.0.1"}, "",
			`homeserver.url: "ftp://127.0.0.1" is not an http or https URL; write a URL such as "http://127.0.0.1:8008"`},
		{"homeserver path", [2]string{"http://127.0.0.1:8008", "http://127.0.0.1:8008/x"}, "",
			`homeserver.url: "http://127.0.0.1:8008/x" has a path, query or user; write only scheme, host and port`},
		{"bad listen port", [2]string{}, "", ""},
		{"bad sync", [2]string{}, "decision_log:\n  sync: sometimes\n",
			`decision_log.sync: unknown mode "sometimes"; write "always" or "none"`},
		{"negative checkpoint records", [2]string{}, "decision_log:\n  checkpoint:\n    records: -5\n",
			"decision_log.checkpoint.records: -5 is not positive; write the number of records between checkpoints; the default is 10000"},
		{"negative checkpoint interval", [2]string{}, "decision_log:\n  checkpoint:\n    interval: -1s\n",
			`decision_log.checkpoint.interval: negative duration; write a positive duration such as "1m"`},
		{"tiny rotation size", [2]string{}, "decision_log:\n  rotate:\n    max_bytes: 1000\n",
			"decision_log.rotate.max_bytes: 1000 is too small; write 0 to turn rotation by size off, or at least 65536, such as 1073741824 (1 GiB)"},
		{"short rotation age", [2]string{}, "decision_log:\n  rotate:\n    max_age: 10s\n",
			`decision_log.rotate.max_age: 10s is too short; write 0 to turn rotation by age off, or at least "1m", such as "24h"`},
		{"compress without rotation", [2]string{}, "decision_log:\n  rotate:\n    compress: true\n",
			"decision_log.rotate.compress: set without max_bytes or max_age; set max_bytes or max_age too; files rotated by an external tool are compressed by that tool"},
		{"bad level", [2]string{}, "log:\n  level: loud\n", `log.level: unknown level "loud"; write debug, info, warn or error`},
		{"bad network", [2]string{}, "keys:\n  allowed_networks: [10.0.0.0]\n",
			`keys.allowed_networks[0]: "10.0.0.0" is not a CIDR prefix; write a prefix such as "10.20.0.0/16"`},
		{"notary without keys", [2]string{}, "keys:\n  notary_servers:\n    - server_name: notary.example.org\n",
			"keys.notary_servers[0].keys: missing; pin at least one verify key of the notary, key ID to base64"},
		{"small body cap", [2]string{"inbound:\n", "inbound:\n  max_body_bytes: 100\n"}, "",
			"inbound.max_body_bytes: 100 is too small; write at least 65536"},
		{"missing policy", [2]string{"policy:\n  paths: [rego]\n", ""}, "",
			"policy.paths: missing; list the .rego files or directories of the policy"},
		{"negative cache size", [2]string{"policy:\n  paths: [rego]\n", "policy:\n  paths: [rego]\n  decision_cache_size: -2\n"}, "",
			"policy.decision_cache_size: invalid value -2; write a number of decisions, 0 for the default or -1 to turn the cache off"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := minimalConfig
			if tc.replace[0] != "" {
				text = strings.Replace(text, tc.replace[0], tc.replace[1], 1)
			}
			if tc.name == "bad listen port" {
				text = strings.Replace(text, "inbound:\n", "inbound:\n  listen: 127.0.0.1:99999\n", 1)
				tc.want = `inbound.listen: port "99999" of "127.0.0.1:99999" is not between 1 and 65535`
			}
			_, err := ParseConfig([]byte(text+tc.extra), "")
			if err == nil {
				t.Fatal("ParseConfig succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bordergate.yaml")
	if err := os.WriteFile(path, []byte("server_names: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.HasPrefix(err.Error(), path+": server_names: missing") {
		t.Errorf("LoadConfig error = %v, want it to start with the file name and field", err)
	}
}

func TestParseConfigCheckedAtLoad(t *testing.T) {
	tests := []struct {
		name, extra, want string
	}{
		{"negative read timeout", "inbound:\n  read_timeout: -1s\n", "inbound.read_timeout: negative duration"},
		{"bad notary key", "keys:\n  notary_servers:\n    - server_name: notary.example.org\n      keys: {\"ed25519:a\": \"short\"}\n",
			"keys.notary_servers[0].keys[ed25519:a]: not a base64 Ed25519 public key"},
		{"bad mask pointer", "decision_log:\n  mask: [\"input/pdu\"]\n", "decision_log.mask: "},
		{"no Go type names", "inbound:\n  colour: blue\n", "field colour not found;"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := minimalConfig + tc.extra
			if strings.HasPrefix(tc.extra, "inbound:") {
				text = strings.Replace(minimalConfig, "inbound:\n", tc.extra, 1)
			}
			_, err := ParseConfig([]byte(text), "")
			if err == nil {
				t.Fatal("ParseConfig succeeded, want an error")
			}
			msg := err.Error() + ";"
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(msg, "gateway.") {
				t.Errorf("error %q names a Go type", err)
			}
		})
	}
}
