package testfed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bordergate/bordergate/certs"
)

// homeserverStartTimeout bounds the wait, after a Dendrite starts, until its
// listeners respond.
const homeserverStartTimeout = 90 * time.Second

// Homeserver is a running Dendrite with its files in Dir.
type Homeserver struct {
	// Name is the short name used for its directory and logs, e.g. "hs1".
	Name string
	// ServerName is its Matrix server name, e.g. "hs1.localhost:8481".
	ServerName string
	// ClientURL is the base URL of its client-server API over plain HTTP.
	ClientURL string
	// HTTPAddr is the address of its plain HTTP listener, which serves the
	// client-server API and the federation API.
	HTTPAddr string
	// HTTPSAddr is the address of its HTTPS listener, or "" when it has none.
	HTTPSAddr string
	// Dir contains its configuration, keys, databases and log.
	Dir string
	// ConfigFile is its dendrite.yaml.
	ConfigFile string
	// LogFile receives its standard output and error.
	LogFile string
	// SigningKey is its server signing key, read from its key file.
	SigningKey SigningKey

	binDir string
	http   *http.Client
	proc   *process
	log    *slog.Logger
}

// homeserverSpec describes one Dendrite of the topology.
type homeserverSpec struct {
	name       string
	serverName string
	httpAddr   string
	// httpsAddr is "" for no HTTPS listener. Its certificate names the host
	// part of serverName.
	httpsAddr string
}

// dendriteEnv lists the files and settings a Dendrite needs from the
// federation: the binaries and the trust bundle.
type dendriteEnv struct {
	binDir     string
	ca         *certs.CA
	caFile     string
	certDirEnv string // an empty directory for SSL_CERT_DIR
	httpClient *http.Client
	log        *slog.Logger
	// launcher is put before the dendrite command line, for example to run
	// it with another hosts file. Empty runs dendrite directly.
	launcher []string
}

// startHomeserver generates the keys and configuration of spec in dir,
// starts Dendrite and waits until its listeners respond.
func startHomeserver(ctx context.Context, env dendriteEnv, spec homeserverSpec, dir string) (*Homeserver, error) {
	hs := &Homeserver{
		Name:       spec.name,
		ServerName: spec.serverName,
		ClientURL:  "http://" + spec.httpAddr,
		HTTPAddr:   spec.httpAddr,
		HTTPSAddr:  spec.httpsAddr,
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "dendrite.yaml"),
		LogFile:    filepath.Join(dir, "dendrite.log"),
		binDir:     env.binDir,
		http:       env.httpClient,
		log:        env.log.With("homeserver", spec.name),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	args, err := hs.prepare(ctx, env, spec)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}

	procEnv := []string{
		"SSL_CERT_FILE=" + env.caFile,
		"SSL_CERT_DIR=" + env.certDirEnv,
	}
	argv := append(slices.Clone(env.launcher), args...)
	hs.proc, err = startProcess(spec.name, dir, hs.LogFile, procEnv, hs.log, argv...)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, homeserverStartTimeout)
	defer cancel()
	if err := hs.proc.waitUntil(waitCtx, spec.name+" listeners", hs.ready); err != nil {
		_ = hs.proc.stop()
		return nil, fmt.Errorf("start %s: %w", spec.name, err)
	}
	hs.log.Info("homeserver ready", "server_name", hs.ServerName, "client_url", hs.ClientURL)
	return hs, nil
}

// prepare writes the signing key, the TLS certificate and the
// configuration, and returns the Dendrite command line.
func (hs *Homeserver) prepare(ctx context.Context, env dendriteEnv, spec homeserverSpec) ([]string, error) {
	keyFile := filepath.Join(hs.Dir, "matrix_key.pem")
	if err := hs.run(ctx, "generate-keys", "--private-key", keyFile); err != nil {
		return nil, err
	}
	key, err := readDendriteKey(keyFile, spec.serverName)
	if err != nil {
		return nil, err
	}
	hs.SigningKey = key

	generated, err := hs.output(ctx, "generate-config", "-ci", "-server", spec.serverName, "-dir", hs.Dir)
	if err != nil {
		return nil, err
	}
	config, err := dendriteConfig(generated, keyFile)
	if err != nil {
		return nil, fmt.Errorf("edit generated config: %w", err)
	}
	if err := os.WriteFile(hs.ConfigFile, config, 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}

	// Dendrite's default addresses (":8008", ":8448") listen on every
	// interface, so both addresses are always given.
	args := []string{
		filepath.Join(hs.binDir, "dendrite"),
		"--config", hs.ConfigFile,
		"--http-bind-address", spec.httpAddr,
	}
	if spec.httpsAddr == "" {
		// Without --tls-cert and --tls-key Dendrite starts no HTTPS
		// listener, but the address is still pinned to loopback.
		return append(args, "--https-bind-address", net.JoinHostPort(loopback, "0")), nil
	}
	certFile, keyPEMFile, err := writeServerCert(env.ca, hs.Dir, "tls", mustHost(spec.serverName))
	if err != nil {
		return nil, err
	}
	return append(args,
		"--https-bind-address", spec.httpsAddr,
		"--tls-cert", certFile,
		"--tls-key", keyPEMFile,
	), nil
}

// dendriteSettings are the values written over the output of
// `generate-config -ci` (Dendrite v0.13.8). Every key must already exist in
// the generated file, so a renamed key fails loudly instead of being ignored.
func dendriteSettings(keyFile, sharedSecret string) []configSetting {
	return []configSetting{
		{"global.private_key", keyFile},
		// No identity servers: the defaults are matrix.org and vector.im.
		{"global.trusted_third_party_id_servers", []string{}},
		{"global.report_stats.enabled", false},
		// Accounts come from create-account with the shared secret only.
		{"client_api.registration_disabled", true},
		{"client_api.registration_shared_secret", sharedSecret},
		{"client_api.guests_disabled", true},
		{"client_api.rate_limiting.enabled", false},
		// No notary: server keys are fetched from the servers themselves.
		// Without -ci, generate-config lists matrix.org here.
		{"federation_api.key_perspectives", []string{}},
		// Peers' certificates are checked against SSL_CERT_FILE.
		{"federation_api.disable_tls_validation", false},
		{"sync_api.search.enabled", false},
		// The generated level is "trace", which is too noisy to read.
		{"logging", []map[string]any{{"type": "std", "level": "info"}}},
	}
}

// configSetting is a dotted key path in the Dendrite YAML config and the
// value to set there.
type configSetting struct {
	key   string
	value any
}

// dendriteConfig applies dendriteSettings to the generated YAML.
func dendriteConfig(generated []byte, keyFile string) ([]byte, error) {
	var config map[string]any
	if err := yaml.Unmarshal(generated, &config); err != nil {
		return nil, fmt.Errorf("parse generated config: %w", err)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	for _, setting := range dendriteSettings(keyFile, hex.EncodeToString(secret)) {
		if err := setConfigKey(config, setting.key, setting.value); err != nil {
			return nil, err
		}
	}
	return yaml.Marshal(config)
}

// setConfigKey sets the value at a dotted path of existing mapping keys.
func setConfigKey(config map[string]any, path string, value any) error {
	parts := strings.Split(path, ".")
	node := config
	for i, part := range parts[:len(parts)-1] {
		child, ok := node[part].(map[string]any)
		if !ok {
			return fmt.Errorf("config key %s: %s is not a mapping in the generated config",
				path, strings.Join(parts[:i+1], "."))
		}
		node = child
	}
	last := parts[len(parts)-1]
	if _, ok := node[last]; !ok {
		return fmt.Errorf("config key %s not found in the generated config", path)
	}
	node[last] = value
	return nil
}

// ready returns nil once the client API responds and, when configured, the
// HTTPS listener serves the server's keys with a valid certificate.
func (hs *Homeserver) ready(ctx context.Context) error {
	if err := getOK(ctx, hs.http, hs.ClientURL+"/_matrix/client/versions"); err != nil {
		return err
	}
	if hs.HTTPSAddr == "" {
		return nil
	}
	return getOK(ctx, hs.http, hs.FederationURL()+"/_matrix/key/v2/server")
}

// FederationURL returns the base URL at which peers reach the server's own
// federation listener: HTTPS at its server name when it has an HTTPS
// listener, else its plain HTTP listener.
func (hs *Homeserver) FederationURL() string {
	if hs.HTTPSAddr == "" {
		return "http://" + hs.HTTPAddr
	}
	return "https://" + hs.ServerName
}

// UserID returns the user ID of localpart on this server.
func (hs *Homeserver) UserID(localpart string) string {
	return "@" + localpart + ":" + hs.ServerName
}

// CreateUser creates an account with create-account and the registration
// shared secret, then logs it in.
func (hs *Homeserver) CreateUser(ctx context.Context, localpart, password string) (*Client, error) {
	err := hs.run(ctx, "create-account",
		"-config", hs.ConfigFile,
		"-url", hs.ClientURL,
		"-username", localpart,
		"-password", password)
	if err != nil {
		return nil, fmt.Errorf("create user %s: %w", hs.UserID(localpart), err)
	}
	return hs.Login(ctx, localpart, password)
}

// Login logs localpart in with a password and returns the client.
func (hs *Homeserver) Login(ctx context.Context, localpart, password string) (*Client, error) {
	request := map[string]any{
		"type":       "m.login.password",
		"identifier": map[string]string{"type": "m.id.user", "user": localpart},
		"password":   password,
	}
	var resp struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	err := doJSON(ctx, hs.http, http.MethodPost, hs.ClientURL+"/_matrix/client/v3/login", nil, "", request, &resp)
	if err != nil {
		return nil, fmt.Errorf("log in %s: %w", hs.UserID(localpart), err)
	}
	return &Client{
		UserID:      resp.UserID,
		AccessToken: resp.AccessToken,
		DeviceID:    resp.DeviceID,
		baseURL:     hs.ClientURL,
		http:        hs.http,
	}, nil
}

// Stop stops the Dendrite process.
func (hs *Homeserver) Stop() error {
	if hs.proc == nil {
		return nil
	}
	return hs.proc.stop()
}

// run runs a Dendrite tool in the server's directory.
func (hs *Homeserver) run(ctx context.Context, tool string, args ...string) error {
	_, err := hs.output(ctx, tool, args...)
	return err
}

// output runs a Dendrite tool and returns its standard output.
func (hs *Homeserver) output(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(hs.binDir, tool), args...)
	cmd.Dir = hs.Dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// getOK returns nil when a GET of rawURL returns status 200.
func getOK(ctx context.Context, client *http.Client, rawURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", rawURL, resp.StatusCode)
	}
	return nil
}
