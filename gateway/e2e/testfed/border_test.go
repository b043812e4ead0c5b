package testfed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bordergate/bordergate/certs"
)

func TestGatewayWriteFilesOutbound(t *testing.T) {
	dir := t.TempDir()
	ca, caFile, err := newTestCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	intercept, err := certs.NewCA("interception CA", certValidity)
	if err != nil {
		t.Fatal(err)
	}
	gwDir := filepath.Join(dir, "gateway1")
	spec := gatewaySpec{
		name: "gateway1", repoRoot: "/repo", serverName: HS1ServerName, listenAddr: gateway1InboundAddr,
		upstreamURL: "http://" + hs1HTTPAddr, peerName: HS2ServerName, peerAddress: gateway2InboundAddr,
		peerAdministration: "Test administration two", peerRequireMTLS: true,
		caFile: caFile, clientCAFile: caFile, dir: gwDir, logLevel: "info", ca: ca,
		deniedEventTypes: []string{SecretEventType},
		outbound:         &outboundSpec{transparentListen: gateway1TransparentAddr, interceptCA: intercept},
	}
	gw := &Gateway{
		ConfigFile:     filepath.Join(gwDir, "bordergate.yaml"),
		AllowlistFile:  filepath.Join(gwDir, "allowlist.yaml"),
		DecisionLog:    filepath.Join(gwDir, "decisions.jsonl"),
		ClientCertFile: filepath.Join(gwDir, "client.pem"),
		ClientKeyFile:  filepath.Join(gwDir, "client-key.pem"),
	}
	if err := gw.writeFiles(spec); err != nil {
		t.Fatalf("writeFiles: %v", err)
	}

	wantConfig := `server_names:
    - hs1.localhost:8481
inbound:
    listen: 127.0.0.3:8481
    tls:
        cert_file: ` + gwDir + `/tls.pem
        key_file: ` + gwDir + `/tls-key.pem
        client_ca_file: ` + caFile + `
    max_body_bytes: 8388608
homeserver:
    url: http://127.0.0.1:8081
    timeout: 60s
outbound:
    transparent_listen: 127.0.0.11:8448
    intercept_ca:
        cert_file: ` + gwDir + `/intercept-ca.pem
        key_file: ` + gwDir + `/intercept-ca-key.pem
    client_tls:
        cert_file: ` + gwDir + `/client.pem
        key_file: ` + gwDir + `/client-key.pem
    federation_ca_file: ` + caFile + `
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
    level: info
admin:
    listen: 127.0.0.3:9448
`
	if config := mustRead(t, gw.ConfigFile); string(config) != wantConfig {
		t.Errorf("config =\n%s\nwant\n%s", config, wantConfig)
	}

	wantAllowlist := `servers:
    - server_name: hs2.localhost:8448
      administration: Test administration two
      address: 127.0.0.2:8448
      require_mtls: true
      endpoints:
        - '*'
`
	if allowlist := mustRead(t, gw.AllowlistFile); string(allowlist) != wantAllowlist {
		t.Errorf("allow-list =\n%s\nwant\n%s", allowlist, wantAllowlist)
	}

	data := mustRead(t, filepath.Join(gwDir, "policy-data.json"))
	if want := `{"denied_event_types":["com.example.secret"]}`; string(data) != want {
		t.Errorf("policy data = %s, want %s", data, want)
	}

	if _, err := certs.LoadCA(filepath.Join(gwDir, "intercept-ca.pem"), filepath.Join(gwDir, "intercept-ca-key.pem")); err != nil {
		t.Errorf("load the written interception CA: %v", err)
	}
	checkClientCertificate(t, ca, gw.ClientCertFile, gw.ClientKeyFile)
}

// checkClientCertificate checks that the files hold a client certificate
// for hs1.localhost issued by ca, with its key.
func checkClientCertificate(t *testing.T, ca *certs.CA, certFile, keyFile string) {
	t.Helper()
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatalf("load client certificate: %v", err)
	}
	block, _ := pem.Decode(mustRead(t, certFile))
	if block == nil {
		t.Fatalf("%s holds no PEM block", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cert.DNSNames, []string{"hs1.localhost"}) {
		t.Errorf("client certificate DNS names = %q, want [hs1.localhost]", cert.DNSNames)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate())
	opts := x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := cert.Verify(opts); err != nil {
		t.Errorf("client certificate does not verify as a client certificate from the test CA: %v", err)
	}
	if info, err := os.Stat(keyFile); err != nil {
		t.Error(err)
	} else if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("client key mode = %o, want 600", mode)
	}
}
