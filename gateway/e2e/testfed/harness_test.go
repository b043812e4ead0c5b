package testfed

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

func TestSetConfigKey(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		wantErr string
	}{
		{"top level", "logging", ""},
		{"nested", "client_api.registration_disabled", ""},
		{"missing leaf", "client_api.registration_closed", "config key client_api.registration_closed not found in the generated config"},
		{"missing parent", "clients.registration_disabled", "config key clients.registration_disabled: clients is not a mapping in the generated config"},
		{"scalar parent", "logging.level", "config key logging.level: logging is not a mapping in the generated config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := map[string]any{
				"logging":    []any{},
				"client_api": map[string]any{"registration_disabled": false},
			}
			err := setConfigKey(config, tt.path, "new")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("setConfigKey(%q) error = %v, want nil", tt.path, err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("setConfigKey(%q) error = %v, want %q", tt.path, err, tt.wantErr)
			}
		})
	}
}

// TestDendriteConfigGenerated applies the harness settings to the output of
// the installed generate-config, so a key that Dendrite does not generate
// fails here rather than being ignored at start-up.
func TestDendriteConfigGenerated(t *testing.T) {
	binDir, err := FindDendrite()
	if err != nil {
		t.Skipf("dendrite not installed: %v", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(binDir, "generate-config"), "-ci", "-server", HS1ServerName, "-dir", dir)
	generated, err := cmd.Output()
	if err != nil {
		t.Fatalf("generate-config: %v", err)
	}
	data, err := dendriteConfig(generated, "/keys/matrix_key.pem")
	if err != nil {
		t.Fatalf("dendriteConfig: %v", err)
	}

	var config struct {
		Global struct {
			ServerName                 string                 `yaml:"server_name"`
			PrivateKey                 string                 `yaml:"private_key"`
			TrustedThirdPartyIDServers []string               `yaml:"trusted_third_party_id_servers"`
			ReportStats                struct{ Enabled bool } `yaml:"report_stats"`
		} `yaml:"global"`
		ClientAPI struct {
			RegistrationDisabled bool   `yaml:"registration_disabled"`
			SharedSecret         string `yaml:"registration_shared_secret"`
		} `yaml:"client_api"`
		FederationAPI struct {
			KeyPerspectives      []any `yaml:"key_perspectives"`
			DisableTLSValidation bool  `yaml:"disable_tls_validation"`
		} `yaml:"federation_api"`
	}
	if err := yaml.Unmarshal(data, &config); err != nil {
		t.Fatal(err)
	}
	if config.Global.ServerName != HS1ServerName {
		t.Errorf("server_name = %q, want %q", config.Global.ServerName, HS1ServerName)
	}
	if config.Global.PrivateKey != "/keys/matrix_key.pem" {
		t.Errorf("private_key = %q, want /keys/matrix_key.pem", config.Global.PrivateKey)
	}
	if len(config.Global.TrustedThirdPartyIDServers) != 0 {
		t.Errorf("trusted_third_party_id_servers = %q, want none", config.Global.TrustedThirdPartyIDServers)
	}
	if config.Global.ReportStats.Enabled {
		t.Error("report_stats.enabled = true, want false")
	}
	if !config.ClientAPI.RegistrationDisabled {
		t.Error("registration_disabled = false, want true")
	}
	if len(config.ClientAPI.SharedSecret) != 32 || config.ClientAPI.SharedSecret == "complement" {
		t.Errorf("registration_shared_secret = %q, want 32 random hex digits", config.ClientAPI.SharedSecret)
	}
	if len(config.FederationAPI.KeyPerspectives) != 0 {
		t.Errorf("key_perspectives = %v, want none", config.FederationAPI.KeyPerspectives)
	}
	if config.FederationAPI.DisableTLSValidation {
		t.Error("federation_api.disable_tls_validation = true, want false")
	}
}

func TestReadDendriteKey(t *testing.T) {
	dir := t.TempDir()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = byte(i)
	}
	valid := filepath.Join(dir, "valid.pem")
	writePEM(t, valid, &pem.Block{Type: "MATRIX PRIVATE KEY", Headers: map[string]string{"Key-ID": "ed25519:abc"}, Bytes: seed})
	noID := filepath.Join(dir, "no-id.pem")
	writePEM(t, noID, &pem.Block{Type: "MATRIX PRIVATE KEY", Bytes: seed})
	short := filepath.Join(dir, "short.pem")
	writePEM(t, short, &pem.Block{Type: "MATRIX PRIVATE KEY", Headers: map[string]string{"Key-ID": "ed25519:abc"}, Bytes: seed[:8]})

	key, err := readDendriteKey(valid, "hs1.localhost:8481")
	if err != nil {
		t.Fatal(err)
	}
	if key.KeyID != "ed25519:abc" || key.ServerName != "hs1.localhost:8481" {
		t.Errorf("key = %s %s, want hs1.localhost:8481 ed25519:abc", key.ServerName, key.KeyID)
	}
	if !slices.Equal(key.Private.Seed(), seed) {
		t.Error("seed differs from the file's")
	}

	for path, want := range map[string]string{
		noID:  "signing key file " + noID + ": no Key-ID header",
		short: "signing key file " + short + ": seed is 8 bytes, want 32",
	} {
		if _, err := readDendriteKey(path, "x"); err == nil || err.Error() != want {
			t.Errorf("readDendriteKey(%s) error = %v, want %q", filepath.Base(path), err, want)
		}
	}
}

func writePEM(t *testing.T, path string, block *pem.Block) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestDecisionKind(t *testing.T) {
	tests := []struct{ path, want string }{
		{"bordergate/pdu/decision", "pdu"},
		{"bordergate/request/decision", "request"},
		{"other/policy", "other/policy"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := DecisionKind(decisionlog.Record{Path: tt.path}); got != tt.want {
			t.Errorf("DecisionKind(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestFormatDecision(t *testing.T) {
	rec := decisionlog.Record{
		Timestamp: time.Date(2026, 3, 14, 9, 26, 53, 589_000_000, time.Local),
		Path:      "bordergate/pdu/decision",
		Allow:     false,
		Action:    "rejected",
		Status:    200,
		Matrix: &decisionlog.Matrix{
			Origin: "hs1.localhost:8481", Endpoint: "send", TxnID: "17", RoomID: "!r:hs1",
			EventID: "$e", EventType: "com.example.forbidden",
		},
		Result: map[string]any{"allow": false, "reasons": []any{"event type denied", "second"}},
	}
	want := `09:26:53.589 pdu      deny  rejected  origin=hs1.localhost:8481 endpoint=send txn=17 room=!r:hs1 ` +
		`event=$e type=com.example.forbidden status=200 reasons="event type denied; second"`
	if got := FormatDecision(rec); got != want {
		t.Errorf("FormatDecision() =\n%s\nwant\n%s", got, want)
	}

	minimal := decisionlog.Record{Timestamp: rec.Timestamp, Path: "bordergate/request/decision", Allow: true, Error: "x"}
	wantMinimal := "09:26:53.589 request  allow           error=x"
	if got := FormatDecision(minimal); got != wantMinimal {
		t.Errorf("FormatDecision(minimal) = %q, want %q", got, wantMinimal)
	}
}

func TestFollowDecisionsPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var seen []string
	done := make(chan error, 1)
	go func() {
		done <- FollowDecisions(ctx, path, func(rec decisionlog.Record) error {
			mu.Lock()
			seen = append(seen, rec.DecisionID)
			mu.Unlock()
			return nil
		})
	}()

	appendFile(t, path, `{"decision_id":"a","path":"p","allow":true}`+"\n"+`{"decision_id":"b","pa`)
	waitForSeen(t, &mu, &seen, []string{"a"})
	appendFile(t, path, `th":"p","allow":false}`+"\n")
	waitForSeen(t, &mu, &seen, []string{"a", "b"})

	cancel()
	if err := <-done; err != nil {
		t.Errorf("FollowDecisions returned %v after cancel, want nil", err)
	}
}

func appendFile(t *testing.T, path, data string) {
	t.Helper()
	file, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := file.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

func waitForSeen(t *testing.T, mu *sync.Mutex, seen *[]string, want []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(*seen)
		mu.Unlock()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("records seen = %q, want %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDeclaresModule(t *testing.T) {
	goMod := "// comment\nmodule github.com/bordergate/bordergate\n\ngo 1.26.8\n"
	if !declaresModule([]byte(goMod), bordergateModule) {
		t.Error("declaresModule = false for the bordergate go.mod")
	}
	if declaresModule([]byte(strings.Replace(goMod, "bordergate/bordergate", "other/x", 1)), bordergateModule) {
		t.Error("declaresModule = true for another module")
	}
}

// newGatewayFixture returns the spec of the gateway in front of hs2, with
// a new test CA, and a Gateway whose files go to the spec's directory, as
// startGateway prepares them.
func newGatewayFixture(t *testing.T) (spec gatewaySpec, gw *Gateway, caFile string) {
	t.Helper()
	dir := t.TempDir()
	ca, caFile, err := newTestCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	gwDir := filepath.Join(dir, "bordergate")
	spec = gatewaySpec{
		repoRoot: "/repo", serverName: HS2ServerName, listenAddr: gatewayAddr,
		upstreamURL: "http://" + hs2HTTPAddr, peerName: HS1ServerName, peerAddress: hs1HTTPSAddr,
		caFile: caFile, dir: gwDir, logLevel: "debug", ca: ca,
	}
	gw = &Gateway{
		ConfigFile:    filepath.Join(gwDir, "bordergate.yaml"),
		AllowlistFile: filepath.Join(gwDir, "allowlist.yaml"),
		DecisionLog:   filepath.Join(gwDir, "decisions.jsonl"),
	}
	return spec, gw, caFile
}

func TestGatewayWriteFiles(t *testing.T) {
	spec, gw, caFile := newGatewayFixture(t)
	gwDir := spec.dir
	if err := gw.writeFiles(spec); err != nil {
		t.Fatalf("writeFiles: %v", err)
	}

	config, err := os.ReadFile(gw.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	wantConfig := `server_names:
    - hs2.localhost:8448
inbound:
    listen: 127.0.0.1:8448
    tls:
        cert_file: ` + gwDir + `/tls.pem
        key_file: ` + gwDir + `/tls-key.pem
    max_body_bytes: 8388608
homeserver:
    url: http://127.0.0.1:8082
    timeout: 60s
state_dir: ` + gwDir + `/state
allowlist:
    file: ` + gwDir + `/allowlist.yaml
keys:
    allow_private_networks: true
    ca_file: ` + caFile + `
    notary_servers: []
    fetch_timeout: 10s
policy:
    paths:
        - /repo/rego
    data_file: ` + gwDir + `/policy-data.json
decision_log:
    file: ` + gwDir + `/decisions.jsonl
log:
    level: debug
admin:
    listen: 127.0.0.1:9448
`
	if string(config) != wantConfig {
		t.Errorf("config =\n%s\nwant\n%s", config, wantConfig)
	}

	allowlist, err := os.ReadFile(gw.AllowlistFile)
	if err != nil {
		t.Fatal(err)
	}
	wantAllowlist := `servers:
    - server_name: hs1.localhost:8481
      administration: Test administration one
      address: 127.0.0.1:8481
      endpoints:
        - '*'
`
	if string(allowlist) != wantAllowlist {
		t.Errorf("allow-list =\n%s\nwant\n%s", allowlist, wantAllowlist)
	}

	data, err := os.ReadFile(filepath.Join(gwDir, "policy-data.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"denied_event_types":["com.example.forbidden"]}`; string(data) != want {
		t.Errorf("policy data = %s, want %s", data, want)
	}

	block, _ := pem.Decode(mustRead(t, filepath.Join(gwDir, "tls.pem")))
	if block == nil {
		t.Fatal("tls.pem holds no PEM block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.DNSNames, []string{"hs2.localhost"}) {
		t.Errorf("gateway certificate DNS names = %q, want [hs2.localhost]", cert.DNSNames)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
