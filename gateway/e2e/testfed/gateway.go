package testfed

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bordergate/bordergate/certs"
)

// gatewayStartTimeout bounds the wait, after bordergate starts, until its
// inbound listener responds.
const gatewayStartTimeout = 60 * time.Second

// ForbiddenEventType is the event type that the harness's policy data file
// lists in "denied_event_types".
const ForbiddenEventType = "com.example.forbidden"

// Gateway is a running bordergate in front of hs2.
type Gateway struct {
	// Addr is the inbound listener address, "127.0.0.1:8448".
	Addr string
	// URL is the inbound listener's base URL at hs2's server name,
	// "https://hs2.localhost:8448".
	URL string
	// Dir contains its configuration, certificates, state and logs.
	Dir string
	// ConfigFile is the bordergate configuration the harness wrote.
	ConfigFile string
	// AllowlistFile is the allow-list the configuration points to.
	AllowlistFile string
	// DecisionLog is the decision log file (JSON Lines).
	DecisionLog string
	// LogFile receives bordergate's standard output and error.
	LogFile string

	bin    string
	env    []string
	http   *http.Client
	proc   *process
	log    *slog.Logger
	starts int
}

// gatewaySpec is what the gateway configuration depends on.
type gatewaySpec struct {
	bin         string
	repoRoot    string
	serverName  string // hs2's server name
	listenAddr  string
	upstreamURL string // hs2's plain HTTP listener
	peerName    string // hs1's server name, the one allow-listed peer
	peerAddress string // hs1's federation address
	caFile      string
	certDirEnv  string
	dir         string
	logLevel    string
	httpClient  *http.Client
	ca          *certs.CA // issues the inbound listener's certificate
}

// gatewayConfig is the bordergate configuration file format, limited to the
// fields the harness sets.
type gatewayConfig struct {
	ServerNames []string `yaml:"server_names"`
	Inbound     struct {
		Listen string `yaml:"listen"`
		TLS    struct {
			CertFile string `yaml:"cert_file"`
			KeyFile  string `yaml:"key_file"`
		} `yaml:"tls"`
		MaxBodyBytes int `yaml:"max_body_bytes"`
	} `yaml:"inbound"`
	Homeserver struct {
		URL     string `yaml:"url"`
		Timeout string `yaml:"timeout"`
	} `yaml:"homeserver"`
	StateDir  string `yaml:"state_dir"`
	Allowlist struct {
		File string `yaml:"file"`
	} `yaml:"allowlist"`
	Keys struct {
		// AllowPrivateNetworks must be true: every peer is on 127.0.0.1.
		AllowPrivateNetworks bool `yaml:"allow_private_networks"`
		// CAFile verifies the certificates of the servers whose keys
		// the gateway fetches.
		CAFile        string `yaml:"ca_file"`
		NotaryServers []any  `yaml:"notary_servers"`
		FetchTimeout  string `yaml:"fetch_timeout"`
	} `yaml:"keys"`
	Policy struct {
		Paths    []string `yaml:"paths"`
		DataFile string   `yaml:"data_file"`
	} `yaml:"policy"`
	DecisionLog struct {
		File string `yaml:"file"`
	} `yaml:"decision_log"`
	Log struct {
		Level string `yaml:"level"`
	} `yaml:"log"`
}

// allowlistFile is the allow-list file format, limited to the fields the
// harness sets.
type allowlistFile struct {
	Servers []allowlistEntry `yaml:"servers"`
}

type allowlistEntry struct {
	ServerName     string   `yaml:"server_name"`
	Administration string   `yaml:"administration"`
	Address        string   `yaml:"address"`
	Endpoints      []string `yaml:"endpoints"`
}

// startGateway writes the gateway's files and starts it.
func startGateway(ctx context.Context, spec gatewaySpec, log *slog.Logger) (*Gateway, error) {
	gw := &Gateway{
		Addr:          spec.listenAddr,
		URL:           "https://" + spec.serverName,
		Dir:           spec.dir,
		ConfigFile:    filepath.Join(spec.dir, "bordergate.yaml"),
		AllowlistFile: filepath.Join(spec.dir, "allowlist.yaml"),
		DecisionLog:   filepath.Join(spec.dir, "decisions.jsonl"),
		LogFile:       filepath.Join(spec.dir, "bordergate.log"),
		bin:           spec.bin,
		// The gateway fetches hs1's keys over HTTPS and must trust the
		// test CA only.
		env:  []string{"SSL_CERT_FILE=" + spec.caFile, "SSL_CERT_DIR=" + spec.certDirEnv},
		http: spec.httpClient,
		log:  log.With("process", "bordergate"),
	}
	if err := gw.writeFiles(spec); err != nil {
		return nil, fmt.Errorf("start bordergate: %w", err)
	}
	if err := gw.Start(ctx); err != nil {
		return nil, err
	}
	return gw, nil
}

func (gw *Gateway) writeFiles(spec gatewaySpec) error {
	if err := os.MkdirAll(filepath.Join(spec.dir, "state"), 0o755); err != nil {
		return err
	}
	certFile, keyFile, err := writeServerCert(spec.ca, spec.dir, "tls", mustHost(spec.serverName))
	if err != nil {
		return err
	}

	dataFile := filepath.Join(spec.dir, "policy-data.json")
	data, err := json.Marshal(map[string]any{"denied_event_types": []string{ForbiddenEventType}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		return fmt.Errorf("write policy data: %w", err)
	}

	allowlist := allowlistFile{Servers: []allowlistEntry{{
		ServerName:     spec.peerName,
		Administration: "Test administration one",
		Address:        spec.peerAddress,
		Endpoints:      []string{"*"},
	}}}
	if err := writeYAML(gw.AllowlistFile, allowlist); err != nil {
		return fmt.Errorf("write allow-list: %w", err)
	}

	var config gatewayConfig
	config.ServerNames = []string{spec.serverName}
	config.Inbound.Listen = spec.listenAddr
	config.Inbound.TLS.CertFile = certFile
	config.Inbound.TLS.KeyFile = keyFile
	config.Inbound.MaxBodyBytes = 8 << 20
	config.Homeserver.URL = spec.upstreamURL
	config.Homeserver.Timeout = "60s"
	config.StateDir = filepath.Join(spec.dir, "state")
	config.Allowlist.File = gw.AllowlistFile
	config.Keys.AllowPrivateNetworks = true
	config.Keys.CAFile = spec.caFile
	config.Keys.NotaryServers = []any{}
	config.Keys.FetchTimeout = "10s"
	config.Policy.Paths = []string{filepath.Join(spec.repoRoot, "rego")}
	config.Policy.DataFile = dataFile
	config.DecisionLog.File = gw.DecisionLog
	config.Log.Level = spec.logLevel
	if err := writeYAML(gw.ConfigFile, config); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// Start starts bordergate with the written configuration and waits until
// its inbound listener responds to an HTTPS request at hs2's server name.
// It fails if the gateway is already running.
func (gw *Gateway) Start(ctx context.Context) error {
	if gw.proc != nil {
		select {
		case <-gw.proc.exited():
		default:
			return fmt.Errorf("start bordergate: already running with pid %d", gw.proc.cmd.Process.Pid)
		}
	}
	gw.starts++
	name := fmt.Sprintf("bordergate (start %d)", gw.starts)
	proc, err := startProcess(name, gw.Dir, gw.LogFile, gw.env, gw.log, gw.bin, "serve", "--config", gw.ConfigFile)
	if err != nil {
		return fmt.Errorf("start bordergate: %w", err)
	}
	gw.proc = proc

	waitCtx, cancel := context.WithTimeout(ctx, gatewayStartTimeout)
	defer cancel()
	if err := proc.waitUntil(waitCtx, "bordergate inbound listener", gw.ready); err != nil {
		_ = proc.stop()
		return fmt.Errorf("start bordergate: %w", err)
	}
	gw.log.Info("gateway ready", "url", gw.URL)
	return nil
}

// ready returns nil once the listener completes a TLS handshake with the
// hs2 certificate and returns any HTTP response to GET
// /_matrix/federation/v1/version, whatever its status: the policy decides
// about that endpoint, not the harness.
func (gw *Gateway) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/_matrix/federation/v1/version", nil)
	if err != nil {
		return err
	}
	resp, err := gw.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// Stop stops bordergate (SIGTERM, then SIGKILL after ten seconds).
func (gw *Gateway) Stop() error {
	if gw.proc == nil {
		return nil
	}
	return gw.proc.stop()
}

func writeYAML(path string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
