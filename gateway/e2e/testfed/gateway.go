package testfed

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
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

// Gateway is a running bordergate in front of one homeserver.
type Gateway struct {
	// Name is the short name used for its logs, e.g. "bordergate".
	Name string
	// ServerName is the server name of the homeserver it guards.
	ServerName string
	// Addr is the inbound listener address, e.g. "127.0.0.1:8448".
	Addr string
	// URL is the inbound listener's base URL at the guarded server's name,
	// e.g. "https://hs2.localhost:8448".
	URL string
	// TransparentAddr is the address of the transparent outbound listener,
	// or "" when the gateway carries no outbound traffic.
	TransparentAddr string
	// Dir contains its configuration, certificates, state and logs.
	Dir string
	// ConfigFile is the bordergate configuration the harness wrote.
	ConfigFile string
	// AllowlistFile is the allow-list the configuration points to.
	AllowlistFile string
	// PolicyDataFile is the policy data file the configuration points to
	// (policy.data_file), in JSON.
	PolicyDataFile string
	// AdminURL is the base URL of the admin listener, e.g.
	// "http://127.0.0.1:9448".
	AdminURL string
	// DecisionLog is the decision log file (JSON Lines).
	DecisionLog string
	// LogFile receives bordergate's standard output and error.
	LogFile string
	// ClientCertFile and ClientKeyFile are the client certificate that the
	// gateway presents to peers requiring mutual TLS, and its key. Both are
	// "" when the gateway carries no outbound traffic.
	ClientCertFile string
	ClientKeyFile  string
	// HTTP is a client that trusts the federation's CA and connects to
	// Addr whatever host a URL names, so that requests to URL reach this
	// gateway even where the hosts file maps the name elsewhere.
	HTTP *http.Client
	// probe checks readiness when the listener requires a client
	// certificate; nil means HTTP.
	probe *http.Client

	bin    string
	env    []string
	proc   *process
	log    *slog.Logger
	starts int
}

// gatewaySpec is what the gateway configuration depends on.
type gatewaySpec struct {
	// name is the short name for logs. Default "bordergate".
	name        string
	bin         string
	repoRoot    string
	serverName  string // the guarded homeserver's server name
	listenAddr  string
	upstreamURL string // the guarded homeserver's plain HTTP listener
	peerName    string // the other homeserver's server name, the one allow-listed peer
	peerAddress string // where the gateway connects to reach the peer
	// peerAdministration names the peer's administration in its entry.
	// Default "Test administration one".
	peerAdministration string
	// peerRequireMTLS sets require_mtls in the peer's allow-list entry.
	peerRequireMTLS bool
	caFile          string
	certDirEnv      string
	dir             string
	logLevel        string
	// deniedEventTypes is "denied_event_types" of the policy data. Nil
	// means [ForbiddenEventType] only.
	deniedEventTypes []string
	// clientCAFile, when set, makes the inbound listener verify client
	// certificates against it.
	clientCAFile string
	// requireClientCert sets inbound.tls.require_client_certificate; the
	// harness then probes the listener with the gateway's own client
	// certificate.
	requireClientCert bool
	// outbound, when set, makes the gateway carry the guarded homeserver's
	// outbound federation.
	outbound *outboundSpec
	// configOverlay is merged into the configuration file, see
	// Options.GatewayConfig.
	configOverlay map[string]any
	ca            *certs.CA // issues the inbound listener's and the client certificate
}

// outboundSpec configures the outbound half of a gateway.
type outboundSpec struct {
	// transparentListen is the address of the transparent listener.
	transparentListen string
	// interceptCA signs the certificates that the transparent listener
	// presents to the homeserver.
	interceptCA *certs.CA
}

// gatewayConfig is the bordergate configuration file format, limited to the
// fields the harness sets.
type gatewayConfig struct {
	ServerNames []string `yaml:"server_names"`
	Inbound     struct {
		Listen string `yaml:"listen"`
		TLS    struct {
			CertFile                 string `yaml:"cert_file"`
			KeyFile                  string `yaml:"key_file"`
			ClientCAFile             string `yaml:"client_ca_file,omitempty"`
			RequireClientCertificate bool   `yaml:"require_client_certificate,omitempty"`
		} `yaml:"tls"`
		MaxBodyBytes int `yaml:"max_body_bytes"`
	} `yaml:"inbound"`
	Homeserver struct {
		URL     string `yaml:"url"`
		Timeout string `yaml:"timeout"`
	} `yaml:"homeserver"`
	Outbound  *gatewayOutboundConfig `yaml:"outbound,omitempty"`
	StateDir  string                 `yaml:"state_dir"`
	Allowlist struct {
		File string `yaml:"file"`
	} `yaml:"allowlist"`
	Keys struct {
		// AllowPrivateNetworks must be true: every peer is on loopback.
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
	Admin struct {
		Listen string `yaml:"listen"`
	} `yaml:"admin"`
}

// gatewayOutboundConfig is the outbound section of the configuration.
type gatewayOutboundConfig struct {
	TransparentListen string       `yaml:"transparent_listen"`
	InterceptCA       keyPairFiles `yaml:"intercept_ca"`
	ClientTLS         keyPairFiles `yaml:"client_tls"`
	FederationCAFile  string       `yaml:"federation_ca_file"`
}

type keyPairFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
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
	RequireMTLS    bool     `yaml:"require_mtls,omitempty"`
	Endpoints      []string `yaml:"endpoints"`
}

// startGateway writes the gateway's files and starts it.
func startGateway(ctx context.Context, spec gatewaySpec, log *slog.Logger) (*Gateway, error) {
	name := spec.name
	if name == "" {
		name = "bordergate"
	}
	gw := &Gateway{
		Name:          name,
		ServerName:    spec.serverName,
		Addr:          spec.listenAddr,
		URL:           "https://" + spec.serverName,
		Dir:           spec.dir,
		ConfigFile:    filepath.Join(spec.dir, "bordergate.yaml"),
		AllowlistFile: filepath.Join(spec.dir, "allowlist.yaml"),
		DecisionLog:   filepath.Join(spec.dir, "decisions.jsonl"),
		LogFile:       filepath.Join(spec.dir, "bordergate.log"),
		HTTP:          newPinnedHTTPClient(spec.ca, spec.listenAddr),
		bin:           spec.bin,
		// The gateway fetches its peer's keys over HTTPS and must trust
		// the test CA only.
		env: []string{"SSL_CERT_FILE=" + spec.caFile, "SSL_CERT_DIR=" + spec.certDirEnv},
		log: log.With("process", name),
	}
	if spec.outbound != nil {
		gw.TransparentAddr = spec.outbound.transparentListen
		gw.ClientCertFile = filepath.Join(spec.dir, "client.pem")
		gw.ClientKeyFile = filepath.Join(spec.dir, "client-key.pem")
	}
	if err := gw.writeFiles(spec); err != nil {
		return nil, fmt.Errorf("start bordergate: %w", err)
	}
	if spec.requireClientCert && gw.ClientCertFile != "" {
		pair, err := tls.LoadX509KeyPair(gw.ClientCertFile, gw.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("start bordergate: %w", err)
		}
		gw.probe = newPinnedHTTPClient(spec.ca, spec.listenAddr)
		gw.probe.Transport.(*http.Transport).TLSClientConfig.Certificates = []tls.Certificate{pair}
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
	gw.PolicyDataFile = dataFile
	denied := spec.deniedEventTypes
	if denied == nil {
		denied = []string{ForbiddenEventType}
	}
	data, err := json.Marshal(map[string]any{"denied_event_types": denied})
	if err != nil {
		return err
	}
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		return fmt.Errorf("write policy data: %w", err)
	}

	administration := spec.peerAdministration
	if administration == "" {
		administration = "Test administration one"
	}
	allowlist := allowlistFile{Servers: []allowlistEntry{{
		ServerName:     spec.peerName,
		Administration: administration,
		Address:        spec.peerAddress,
		RequireMTLS:    spec.peerRequireMTLS,
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
	config.Inbound.TLS.ClientCAFile = spec.clientCAFile
	config.Inbound.TLS.RequireClientCertificate = spec.requireClientCert
	config.Inbound.MaxBodyBytes = 8 << 20
	config.Homeserver.URL = spec.upstreamURL
	config.Homeserver.Timeout = "60s"
	if spec.outbound != nil {
		if config.Outbound, err = gw.writeOutboundFiles(spec); err != nil {
			return err
		}
	}
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
	// Each gateway has a loopback address of its own, so each admin
	// listener takes the default port on its gateway's address.
	host, _, err := net.SplitHostPort(spec.listenAddr)
	if err != nil {
		return fmt.Errorf("inbound address %q: %w", spec.listenAddr, err)
	}
	config.Admin.Listen = net.JoinHostPort(host, "9448")
	gw.AdminURL = "http://" + config.Admin.Listen
	if err := writeConfig(gw.ConfigFile, config, spec.configOverlay); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// writeConfig writes config to path with overlay merged into it by
// [mergeConfig].
func writeConfig(path string, config gatewayConfig, overlay map[string]any) error {
	if len(overlay) == 0 {
		return writeYAML(path, config)
	}
	data, err := yaml.Marshal(config)
	if err != nil {
		return err
	}
	var merged map[string]any
	if err := yaml.Unmarshal(data, &merged); err != nil {
		return err
	}
	if err := mergeConfig(merged, overlay, ""); err != nil {
		return err
	}
	return writeYAML(path, merged)
}

// mergeConfig merges overlay into base: a mapping in both is merged key by
// key, and any other overlay value replaces the base value. A mapping of
// the harness that the overlay would replace by a scalar or a list is an
// error, because the overlay then most likely misspells a path. prefix is
// the dotted path of base, for errors.
func mergeConfig(base, overlay map[string]any, prefix string) error {
	for key, value := range overlay {
		path := prefix + key
		sub, isMap := value.(map[string]any)
		existing, exists := base[key]
		existingMap, existingIsMap := existing.(map[string]any)
		switch {
		case isMap && existingIsMap:
			if err := mergeConfig(existingMap, sub, path+"."); err != nil {
				return err
			}
		case exists && existingIsMap && !isMap:
			return fmt.Errorf("config overlay: %s replaces a mapping of the harness's configuration with %T", path, value)
		default:
			base[key] = value
		}
	}
	return nil
}

// writeOutboundFiles writes the interception CA and the client
// certificate, and returns the outbound section of the configuration.
func (gw *Gateway) writeOutboundFiles(spec gatewaySpec) (*gatewayOutboundConfig, error) {
	out := &gatewayOutboundConfig{
		TransparentListen: spec.outbound.transparentListen,
		InterceptCA: keyPairFiles{
			CertFile: filepath.Join(spec.dir, "intercept-ca.pem"),
			KeyFile:  filepath.Join(spec.dir, "intercept-ca-key.pem"),
		},
		ClientTLS:        keyPairFiles{CertFile: gw.ClientCertFile, KeyFile: gw.ClientKeyFile},
		FederationCAFile: spec.caFile,
	}
	if err := spec.outbound.interceptCA.WriteFiles(out.InterceptCA.CertFile, out.InterceptCA.KeyFile); err != nil {
		return nil, fmt.Errorf("write interception CA: %w", err)
	}
	certPEM, keyPEM, err := spec.ca.IssueClient(spec.serverName, certValidity)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(gw.ClientCertFile, gw.ClientKeyFile, certPEM, keyPEM); err != nil {
		return nil, fmt.Errorf("write client certificate: %w", err)
	}
	return out, nil
}

// Start starts bordergate with the written configuration and waits until
// its inbound listener responds to an HTTPS request at the guarded server's
// name. It fails if the gateway is already running.
func (gw *Gateway) Start(ctx context.Context) error {
	if gw.proc != nil {
		select {
		case <-gw.proc.exited():
		default:
			return fmt.Errorf("start bordergate: already running with pid %d", gw.proc.cmd.Process.Pid)
		}
	}
	gw.starts++
	name := fmt.Sprintf("%s (start %d)", gw.Name, gw.starts)
	proc, err := startProcess(name, gw.Dir, gw.LogFile, gw.env, gw.log, gw.bin, "serve", "--config", gw.ConfigFile)
	if err != nil {
		return fmt.Errorf("start bordergate: %w", err)
	}
	gw.proc = proc

	waitCtx, cancel := context.WithTimeout(ctx, gatewayStartTimeout)
	defer cancel()
	if err := proc.waitUntil(waitCtx, gw.Name+" inbound listener", gw.ready); err != nil {
		_ = proc.stop()
		return fmt.Errorf("start bordergate: %w", err)
	}
	gw.log.Info("gateway ready", "url", gw.URL)
	return nil
}

// ready returns nil once the listener completes a TLS handshake with the
// guarded server's certificate and returns any HTTP response to GET
// /_matrix/federation/v1/version, whatever its status: the policy decides
// about that endpoint, not the harness.
func (gw *Gateway) ready(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, gw.URL+"/_matrix/federation/v1/version", nil)
	if err != nil {
		return err
	}
	client := gw.HTTP
	if gw.probe != nil {
		client = gw.probe
	}
	resp, err := client.Do(req)
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

// Kill ends bordergate with SIGKILL, as a crash would, without the
// clean stop that writes a final checkpoint.
func (gw *Gateway) Kill() error {
	if gw.proc == nil {
		return nil
	}
	return gw.proc.kill()
}

func writeYAML(path string, v any) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
