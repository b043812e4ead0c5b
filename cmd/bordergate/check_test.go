package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
)

// writeCheckConfig writes a complete configuration with its files into
// dir and returns its path.
func writeCheckConfig(t *testing.T, dir, allowlist string) string {
	t.Helper()
	ca, err := certs.NewCA("check test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"hs2.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rego, err := filepath.Abs("../../rego")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"cert.pem":       string(certPEM),
		"key.pem":        string(keyPEM),
		"allowlist.yaml": allowlist,
		"bordergate.yaml": `server_names: ["hs2.test"]
inbound: {tls: {cert_file: cert.pem, key_file: key.pem}}
homeserver: {url: "http://127.0.0.1:8008"}
allowlist: {file: allowlist.yaml}
policy: {paths: ["` + rego + `"]}
`,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "bordergate.yaml")
}

func TestCheckValidConfig(t *testing.T) {
	path := writeCheckConfig(t, t.TempDir(), "servers:\n  - server_name: hs1.test\n    endpoints: [\"*\"]\n")
	out, err := runCommand(t, "", "check", "--config", path)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if want := path + ": configuration is valid\n"; out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
}

func TestCheckReportsAllowlistProblem(t *testing.T) {
	dir := t.TempDir()
	path := writeCheckConfig(t, dir, "servers:\n  - server_name: hs_1.test\n    endpoints: [\"*\"]\n")
	_, err := runCommand(t, "", "check", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "hs_1.test") {
		t.Fatalf("check error = %v, want one naming the bad server name", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "state")); !os.IsNotExist(statErr) {
		t.Errorf("check created state: %v", statErr)
	}
}
