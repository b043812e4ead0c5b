package gateway

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/servername"
)

// Defaults applied by [LoadConfig] to fields left unset.
const (
	DefaultInboundListen     = "0.0.0.0:8448"
	DefaultMaxBodyBytes      = 8 << 20
	DefaultHomeserverTimeout = 60 * time.Second
	DefaultKeyFetchTimeout   = 10 * time.Second
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultMaxConcurrent     = 256
	DefaultIdleTimeout       = 120 * time.Second
	DefaultStateDir          = "/var/lib/bordergate"
	DefaultDecisionLog       = "/var/log/bordergate/decisions.jsonl"
)

// Config is the gateway configuration, read from YAML. Relative paths are
// taken relative to the directory of the configuration file. Every field is
// described, with its default and unit, in docs/configuration.md.
type Config struct {
	// ServerNames are the local homeserver's server names: the X-Matrix
	// destinations the gateway accepts.
	ServerNames []string `yaml:"server_names"`
	// Inbound is the public federation listener.
	Inbound InboundConfig `yaml:"inbound"`
	// Homeserver is the destination of allowed inbound requests.
	Homeserver HomeserverConfig `yaml:"homeserver"`
	// Outbound carries the local homeserver's own federation requests.
	Outbound OutboundConfig `yaml:"outbound"`
	// StateDir holds what the gateway learns and keeps across restarts.
	StateDir string `yaml:"state_dir"`
	// Allowlist names the allow-list file.
	Allowlist AllowlistConfig `yaml:"allowlist"`
	// Rooms seeds the rooms table.
	Rooms RoomsConfig `yaml:"rooms"`
	// Keys configures how remote verify keys are found.
	Keys KeysConfig `yaml:"keys"`
	// Policy names the Rego policy.
	Policy PolicyConfig `yaml:"policy"`
	// Reload configures how changed policy and allow-list files are
	// noticed.
	Reload ReloadConfig `yaml:"reload"`
	// DecisionLog configures the decision records.
	DecisionLog DecisionLogConfig `yaml:"decision_log"`
	// Log configures the gateway's own log on standard error.
	Log LogConfig `yaml:"log"`
	// Admin is the admin listener: health, readiness, metrics and the
	// allow-list API.
	Admin AdminConfig `yaml:"admin"`

	// dir is the directory of the configuration file.
	dir string
}

// InboundConfig is the public federation listener.
type InboundConfig struct {
	// Listen is the host:port to listen on. Default 0.0.0.0:8448.
	Listen string `yaml:"listen"`
	// TLS holds the server certificate and the client CA bundle.
	TLS TLSConfig `yaml:"tls"`
	// MaxBodyBytes caps request bodies, in bytes. Default 8 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included, so that a
	// slow client cannot hold a connection open. Default 60s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxConcurrentRequests bounds the requests handled at once; more get
	// 503 with Retry-After, so that a flood cannot exhaust memory.
	// Default 256.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// IdleTimeout bounds idle keep-alive connections. Default 120s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
}

// TLSConfig names certificate files.
type TLSConfig struct {
	// CertFile is the PEM certificate chain of the listener.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of CAs that client certificates are
	// verified against. Empty means client certificates are not requested.
	ClientCAFile string `yaml:"client_ca_file"`
	// ACME obtains and renews the server certificate from an ACME CA
	// instead of CertFile and KeyFile.
	ACME *ACMEConfig `yaml:"acme"`
	// RequireClientCertificate refuses, during the TLS handshake, every
	// client that presents no certificate from ClientCAFile, and records
	// the refusal. For a listener that only peer gateways with a bilateral
	// agreement reach. Default false: a certificate is verified when sent,
	// and required only by allow-list entries with require_mtls.
	RequireClientCertificate bool `yaml:"require_client_certificate"`
}

// OutboundConfig is the listeners that carry the local homeserver's
// federation requests to peers. Both listeners are off when their address
// is empty.
type OutboundConfig struct {
	// ProxyListen is the host:port of the HTTP forward proxy (CONNECT with
	// TLS interception, and absolute-URI requests). Keep it on an address
	// only the homeserver reaches.
	ProxyListen string `yaml:"proxy_listen"`
	// TransparentListen is the host:port of a TLS listener that takes the
	// destination from SNI, for homeservers that cannot use a proxy.
	TransparentListen string `yaml:"transparent_listen"`
	// InterceptCA is the internal CA whose leaf certificates the gateway
	// presents to the homeserver; the homeserver must trust it.
	InterceptCA KeyPairConfig `yaml:"intercept_ca"`
	// ClientTLS is the gateway's client certificate, presented to peers
	// whose allow-list entry sets require_mtls.
	ClientTLS KeyPairConfig `yaml:"client_tls"`
	// FederationCAFile is a PEM bundle that peers' certificates are
	// verified against. Empty means the system roots.
	FederationCAFile string `yaml:"federation_ca_file"`
	// Timeout bounds one onward request until its response headers.
	// Default 60s.
	Timeout time.Duration `yaml:"timeout"`
	// SigningKeyFile is the local homeserver's signing key (Synapse's
	// "ed25519 <version> <seed>" file or Dendrite's PEM). When set, an
	// outbound transaction with refused items goes out re-signed with only
	// its allowed items, instead of being withheld whole. Empty (the
	// default) keeps the key out of the gateway: see docs/outbound.md for
	// what holding it means.
	SigningKeyFile string `yaml:"signing_key_file"`
}

// AdminConfig is the admin listener.
type AdminConfig struct {
	// Listen is the host:port of the admin listener. Default
	// 127.0.0.1:9448. An address that is not loopback needs TLS and
	// authentication.
	Listen string `yaml:"listen"`
	// TokenFile lists the bearer tokens of the allow-list API, by name
	// and SHA-256. Empty means no token is accepted.
	TokenFile string `yaml:"token_file"`
	// TLS serves the admin listener over TLS, and verifies client
	// certificates against ClientCAFile when it is set.
	TLS TLSFilesConfig `yaml:"tls"`
}

// TLSFilesConfig names a listener's certificate, key and client CA
// bundle.
type TLSFilesConfig struct {
	// CertFile is the PEM certificate chain of the listener.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
	// ClientCAFile is a PEM bundle of CAs that client certificates are
	// verified against. Empty means client certificates are not requested.
	ClientCAFile string `yaml:"client_ca_file"`
}

// KeyPairConfig names a PEM certificate and its private key.
type KeyPairConfig struct {
	// CertFile is the PEM certificate.
	CertFile string `yaml:"cert_file"`
	// KeyFile is the PEM private key of CertFile.
	KeyFile string `yaml:"key_file"`
}

// ACMEConfig obtains the inbound certificate from an ACME CA, such as an
// administration's own. Certificates are kept under state_dir/acme and
// renewed while the gateway runs.
type ACMEConfig struct {
	// CAURL is the CA's directory URL. There is no default.
	CAURL string `yaml:"ca_url"`
	// CARootFile is a PEM bundle that the CA's own TLS certificate is
	// verified against. Empty means the system roots.
	CARootFile string `yaml:"ca_root_file"`
	// Email is the ACME account's contact address.
	Email string `yaml:"email"`
	// Domains are the names the certificate covers.
	Domains []string `yaml:"domains"`
	// HTTPChallengeListen is the address that serves HTTP-01 challenges,
	// such as ":80". Empty turns HTTP-01 off.
	HTTPChallengeListen string `yaml:"http_challenge_listen"`
	// TLSALPNOnInbound serves TLS-ALPN-01 challenges on the inbound
	// listener itself, whose port must then be 443 for the CA to reach it.
	TLSALPNOnInbound bool `yaml:"tls_alpn_on_inbound"`
}

// HomeserverConfig is the local homeserver's federation endpoint.
type HomeserverConfig struct {
	// URL is the base URL of the homeserver's federation listener, http or
	// https, without a path.
	URL string `yaml:"url"`
	// CAFile is a PEM bundle that the homeserver's certificate is verified
	// against when URL is https. Empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// Timeout bounds one forwarded request, headers and body. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
}

// AllowlistConfig names the allow-list.
type AllowlistConfig struct {
	// File is the YAML allow-list of federated servers.
	File string `yaml:"file"`
	// FromBundle takes the allow-list from the policy bundle, under
	// bordergate/allowlist, instead of File.
	FromBundle bool `yaml:"from_bundle"`
	// SignedLists are signed federation lists whose entries join the
	// allow-list as sources signed:NAME.
	SignedLists []SignedListConfig `yaml:"signed_lists"`
}

// Modes of SignedListConfig.OnExpiry.
const (
	OnExpiryFailClosed = "fail_closed"
	OnExpiryFailStatic = "fail_static"
)

// SignedListConfig is one signed federation list.
type SignedListConfig struct {
	// Name names the list; its entries form the source signed:NAME.
	Name string `yaml:"name"`
	// URL is the https URL the list is fetched from.
	URL string `yaml:"url"`
	// File is a local file the list is read from, instead of URL.
	File string `yaml:"file"`
	// CAFile is a PEM bundle that the server of URL is verified against.
	// Empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// KeysFile is the JWK Set of the keys that may sign the list.
	KeysFile string `yaml:"keys_file"`
	// RefreshInterval is how often the list is fetched or reread.
	// Default 5m.
	RefreshInterval time.Duration `yaml:"refresh_interval"`
	// Timeout bounds one fetch. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// OnExpiry is what happens when the list in force expires and no
	// newer one can be had: fail_closed (default) withdraws its entries,
	// fail_static keeps them and raises an alert.
	OnExpiry string `yaml:"on_expiry"`
}

// Defaults of SignedListConfig.
const (
	DefaultSignedListRefresh = 5 * time.Minute
	DefaultSignedListTimeout = 10 * time.Second
)

// RoomsConfig seeds the rooms table.
type RoomsConfig struct {
	// SeedFile is an optional YAML or JSON list of room IDs and versions
	// for rooms that existed before the gateway.
	SeedFile string `yaml:"seed_file"`
}

// KeysConfig configures how remote verify keys are found.
type KeysConfig struct {
	// AllowPrivateNetworks lets key fetches that follow server discovery
	// dial loopback, private and link-local addresses. Default false.
	AllowPrivateNetworks bool `yaml:"allow_private_networks"`
	// AllowedNetworks lists CIDR prefixes that discovery may dial even
	// though they are private.
	AllowedNetworks []string `yaml:"allowed_networks"`
	// CAFile is a PEM bundle that remote key servers' certificates are
	// verified against. Empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// NotaryServers are trusted notaries, asked when a server's own key
	// server cannot be reached.
	NotaryServers []NotaryConfig `yaml:"notary_servers"`
	// FetchTimeout bounds one key fetch. Default 10s.
	FetchTimeout time.Duration `yaml:"fetch_timeout"`
}

// NotaryConfig is one trusted notary server.
type NotaryConfig struct {
	// ServerName is the notary's server name.
	ServerName string `yaml:"server_name"`
	// Address is the notary's host:port. Empty means server discovery.
	Address string `yaml:"address"`
	// Keys are the notary's verify keys, key ID to unpadded base64.
	Keys map[string]string `yaml:"keys"`
}

// LogConfig configures the process log on standard error.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is json or text. Default json.
	Format string `yaml:"format"`
}

// LoadConfig reads, completes and validates the configuration file at
// path. Its errors name the file, the field and what to write instead.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig parses YAML configuration; relative paths are resolved
// against dir.
func ParseConfig(data []byte, dir string) (*Config, error) {
	cfg := &Config{dir: dir}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		msg := goTypeNames.ReplaceAllString(err.Error(), "$1")
		return nil, fmt.Errorf("invalid YAML: %s", strings.ReplaceAll(msg, "\n  ", " "))
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.resolvePaths()
	return cfg, nil
}

func (c *Config) setDefaults() {
	setDefault(&c.Inbound.Listen, DefaultInboundListen)
	if c.Inbound.MaxBodyBytes == 0 {
		c.Inbound.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.Inbound.MaxConcurrentRequests == 0 {
		c.Inbound.MaxConcurrentRequests = DefaultMaxConcurrent
	}
	setDefaultDuration(&c.Inbound.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefaultDuration(&c.Inbound.ReadTimeout, DefaultReadTimeout)
	setDefaultDuration(&c.Inbound.IdleTimeout, DefaultIdleTimeout)
	setDefaultDuration(&c.Homeserver.Timeout, DefaultHomeserverTimeout)
	setDefaultDuration(&c.Outbound.Timeout, DefaultHomeserverTimeout)
	setDefaultDuration(&c.Keys.FetchTimeout, DefaultKeyFetchTimeout)
	setDefault(&c.StateDir, DefaultStateDir)
	setDefault(&c.DecisionLog.File, DefaultDecisionLog)
	c.DecisionLog.setDefaults()
	setDefault(&c.Log.Level, "info")
	setDefault(&c.Log.Format, "json")
	c.setPolicyDefaults()
	setDefault(&c.Admin.Listen, admin.DefaultListen)
	for i := range c.Allowlist.SignedLists {
		list := &c.Allowlist.SignedLists[i]
		setDefaultDuration(&list.RefreshInterval, DefaultSignedListRefresh)
		setDefaultDuration(&list.Timeout, DefaultSignedListTimeout)
		setDefault(&list.OnExpiry, OnExpiryFailClosed)
	}
}

func setDefault(field *string, value string) {
	if *field == "" {
		*field = value
	}
}

func setDefaultDuration(field *time.Duration, value time.Duration) {
	if *field == 0 {
		*field = value
	}
}

// fieldError is a configuration error on one field.
type fieldError struct {
	field, problem, fix string
}

func (e *fieldError) Error() string {
	return fmt.Sprintf("%s: %s; %s", e.field, e.problem, e.fix)
}

func bad(field, problem, fix string) error {
	return &fieldError{field: field, problem: problem, fix: fix}
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	checks := []func() error{
		c.validateServerNames,
		c.validateInbound,
		c.validateHomeserver,
		c.validateKeys,
		c.validateOutbound,
		c.validatePolicy,
		c.validateEnums,
		c.validateShip,
		c.validateAdmin,
		c.validateSignedLists,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) validateServerNames() error {
	if len(c.ServerNames) == 0 {
		return bad("server_names", "missing", `list the local server names, such as ["example.org"]`)
	}
	for i, name := range c.ServerNames {
		if err := servername.Validate(name); err != nil {
			return bad(fmt.Sprintf("server_names[%d]", i), err.Error(), "write a Matrix server name such as example.org or example.org:8448")
		}
	}
	return nil
}

func (c *Config) validateInbound() error {
	if err := validateHostPort(c.Inbound.Listen); err != nil {
		return bad("inbound.listen", err.Error(), `write host:port, such as "0.0.0.0:8448"`)
	}
	if acme := c.Inbound.TLS.ACME; acme != nil {
		if c.Inbound.TLS.CertFile != "" || c.Inbound.TLS.KeyFile != "" {
			return bad("inbound.tls.acme", "set together with cert_file or key_file", "use either ACME or certificate files")
		}
		if acme.CAURL == "" {
			return bad("inbound.tls.acme.ca_url", "missing", "write the ACME CA's directory URL; there is no default CA")
		}
		if len(acme.Domains) == 0 {
			return bad("inbound.tls.acme.domains", "missing", "list the names the certificate must cover")
		}
		if acme.Email == "" {
			return bad("inbound.tls.acme.email", "missing", "write the contact address of the ACME account")
		}
		if acme.HTTPChallengeListen == "" && !acme.TLSALPNOnInbound {
			return bad("inbound.tls.acme", "no challenge enabled",
				`set http_challenge_listen (such as ":80") or tls_alpn_on_inbound: true`)
		}
	} else {
		if c.Inbound.TLS.CertFile == "" {
			return bad("inbound.tls.cert_file", "missing", "name the PEM certificate file of the listener, or configure inbound.tls.acme")
		}
		if c.Inbound.TLS.KeyFile == "" {
			return bad("inbound.tls.key_file", "missing", "name the PEM private key file of the listener")
		}
	}
	if c.Inbound.TLS.RequireClientCertificate && c.Inbound.TLS.ClientCAFile == "" {
		return bad("inbound.tls.require_client_certificate", "set without inbound.tls.client_ca_file",
			"name the CA bundle that client certificates are verified against")
	}
	if c.Inbound.MaxBodyBytes < 64<<10 {
		return bad("inbound.max_body_bytes", fmt.Sprintf("%d is too small", c.Inbound.MaxBodyBytes),
			"write at least 65536 (one maximum-size event); the default is 8388608")
	}
	if c.Inbound.MaxConcurrentRequests < 1 {
		return bad("inbound.max_concurrent_requests", fmt.Sprintf("%d is not positive", c.Inbound.MaxConcurrentRequests),
			"write at least 1; the default is 256")
	}
	timeouts := []struct {
		field string
		value time.Duration
	}{
		{"inbound.read_header_timeout", c.Inbound.ReadHeaderTimeout},
		{"inbound.read_timeout", c.Inbound.ReadTimeout},
		{"inbound.idle_timeout", c.Inbound.IdleTimeout},
	}
	for _, t := range timeouts {
		if t.value < 0 {
			return bad(t.field, "negative duration", `write a positive duration such as "10s"`)
		}
	}
	return nil
}

func (c *Config) validateHomeserver() error {
	if c.Homeserver.URL == "" {
		return bad("homeserver.url", "missing", `write the homeserver's federation URL, such as "http://127.0.0.1:8008"`)
	}
	u, err := url.Parse(c.Homeserver.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad("homeserver.url", fmt.Sprintf("%q is not an http or https URL", c.Homeserver.URL),
			`write a URL such as "http://127.0.0.1:8008"`)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return bad("homeserver.url", fmt.Sprintf("%q has a path, query or user", c.Homeserver.URL),
			"write only scheme, host and port")
	}
	if c.Homeserver.Timeout < 0 {
		return bad("homeserver.timeout", "negative duration", `write a positive duration such as "60s"`)
	}
	return nil
}

func (c *Config) validateKeys() error {
	for i, prefix := range c.Keys.AllowedNetworks {
		if _, err := netip.ParsePrefix(prefix); err != nil {
			return bad(fmt.Sprintf("keys.allowed_networks[%d]", i), fmt.Sprintf("%q is not a CIDR prefix", prefix),
				`write a prefix such as "10.20.0.0/16"`)
		}
	}
	for i, n := range c.Keys.NotaryServers {
		field := fmt.Sprintf("keys.notary_servers[%d]", i)
		if err := servername.Validate(n.ServerName); err != nil {
			return bad(field+".server_name", err.Error(), "write the notary's Matrix server name")
		}
		if n.Address != "" {
			if err := validateHostPort(n.Address); err != nil {
				return bad(field+".address", err.Error(), `write host:port, such as "notary.example.org:8448"`)
			}
		}
		if len(n.Keys) == 0 {
			return bad(field+".keys", "missing", "pin at least one verify key of the notary, key ID to base64")
		}
		for id, encoded := range n.Keys {
			if _, err := decodePublicKey(encoded); err != nil {
				return bad(fmt.Sprintf("%s.keys[%s]", field, id), err.Error(),
					"write the 43-character unpadded base64 key from the notary's /_matrix/key/v2/server")
			}
		}
	}
	if c.Keys.FetchTimeout < 0 {
		return bad("keys.fetch_timeout", "negative duration", `write a positive duration such as "10s"`)
	}
	return nil
}

func (c *Config) validateOutbound() error {
	o := c.Outbound
	for _, l := range []struct{ field, value string }{
		{"outbound.proxy_listen", o.ProxyListen},
		{"outbound.transparent_listen", o.TransparentListen},
	} {
		if l.value == "" {
			continue
		}
		if err := validateHostPort(l.value); err != nil {
			return bad(l.field, err.Error(), `write host:port, such as "127.0.0.1:3128"`)
		}
		if o.InterceptCA.CertFile == "" || o.InterceptCA.KeyFile == "" {
			return bad("outbound.intercept_ca", "missing", "name the internal CA's cert_file and key_file; bordergate certs init-ca creates them")
		}
	}
	if (o.ClientTLS.CertFile == "") != (o.ClientTLS.KeyFile == "") {
		return bad("outbound.client_tls", "only one of cert_file and key_file is set", "name both, or neither")
	}
	if o.Timeout < 0 {
		return bad("outbound.timeout", "negative duration", `write a positive duration such as "60s"`)
	}
	return nil
}

func (c *Config) validateEnums() error {
	if err := c.DecisionLog.validate(); err != nil {
		return err
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", fmt.Sprintf("unknown level %q", c.Log.Level), "write debug, info, warn or error")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		return bad("log.format", fmt.Sprintf("unknown format %q", c.Log.Format), "write json or text")
	}
	return nil
}

// goTypeNames matches the Go type names that the YAML decoder puts in its
// messages ("field x not found in type gateway.Config"), which mean
// nothing to an operator.
var goTypeNames = regexp.MustCompile(`(not found) in type [\w.]+`)

// decodePublicKey decodes a padded or unpadded base64 Ed25519 public key.
func decodePublicKey(encoded string) (ed25519.PublicKey, error) {
	pub, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(encoded, "="))
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, errors.New("not a base64 Ed25519 public key")
	}
	return pub, nil
}

func validateHostPort(hostport string) error {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q is not host:port", hostport)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q of %q is not between 1 and 65535", port, hostport)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q of %q is invalid", host, hostport)
	}
	return nil
}

func (c *Config) resolvePaths() {
	for _, p := range []*string{
		&c.Inbound.TLS.CertFile, &c.Inbound.TLS.KeyFile, &c.Inbound.TLS.ClientCAFile,
		&c.Homeserver.CAFile, &c.StateDir, &c.Allowlist.File, &c.Rooms.SeedFile,
		&c.Keys.CAFile, &c.DecisionLog.File, &c.DecisionLog.SigningKeyFile,
		&c.Outbound.InterceptCA.CertFile, &c.Outbound.InterceptCA.KeyFile,
		&c.Outbound.ClientTLS.CertFile, &c.Outbound.ClientTLS.KeyFile, &c.Outbound.FederationCAFile,
		&c.Outbound.SigningKeyFile,
		&c.Admin.TokenFile, &c.Admin.TLS.CertFile, &c.Admin.TLS.KeyFile, &c.Admin.TLS.ClientCAFile,
	} {
		*p = c.resolve(*p)
	}
	for _, p := range append(c.policyPaths(), c.shipPaths()...) {
		*p = c.resolve(*p)
	}
	for i := range c.Allowlist.SignedLists {
		list := &c.Allowlist.SignedLists[i]
		list.File, list.CAFile, list.KeysFile = c.resolve(list.File), c.resolve(list.CAFile), c.resolve(list.KeysFile)
	}
	if c.Inbound.TLS.ACME != nil {
		c.Inbound.TLS.ACME.CARootFile = c.resolve(c.Inbound.TLS.ACME.CARootFile)
	}
}

func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.dir == "" {
		return p
	}
	return filepath.Join(c.dir, p)
}

func (c *Config) validateAdmin() error {
	a := c.Admin
	if err := validateHostPort(a.Listen); err != nil {
		return bad("admin.listen", err.Error(), `write host:port, such as "`+admin.DefaultListen+`"`)
	}
	tlsFiles := a.TLS
	if (tlsFiles.CertFile == "") != (tlsFiles.KeyFile == "") {
		return bad("admin.tls", "only one of cert_file and key_file is set", "name both, or neither")
	}
	if tlsFiles.ClientCAFile != "" && tlsFiles.CertFile == "" {
		return bad("admin.tls.client_ca_file", "set without cert_file and key_file",
			"name the admin listener's certificate and key: client certificates need TLS")
	}
	if isLoopback(a.Listen) {
		return nil
	}
	if tlsFiles.CertFile == "" {
		return bad("admin.listen", fmt.Sprintf("%q is not a loopback address, and admin.tls is not set", a.Listen),
			"listen on 127.0.0.1, or set admin.tls.cert_file and key_file so that tokens do not cross the network in clear")
	}
	if a.TokenFile == "" && tlsFiles.ClientCAFile == "" {
		return bad("admin.listen", fmt.Sprintf("%q is not a loopback address, and no authentication is configured", a.Listen),
			"listen on 127.0.0.1, or set admin.token_file or admin.tls.client_ca_file")
	}
	return nil
}

// isLoopback reports whether the host of hostport is a loopback address
// or localhost.
func isLoopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// signedListName is the syntax of a signed list's name, which is also part
// of a source name and of a file name in the state directory.
var signedListName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func (c *Config) validateSignedLists() error {
	seen := make(map[string]bool)
	for i, list := range c.Allowlist.SignedLists {
		field := fmt.Sprintf("allowlist.signed_lists[%d]", i)
		if !signedListName.MatchString(list.Name) {
			return bad(field+".name", fmt.Sprintf("invalid name %q", list.Name),
				"write 1 to 64 characters of a-z, 0-9, '.', '_' and '-', such as \"federation\"")
		}
		if seen[list.Name] {
			return bad(field+".name", fmt.Sprintf("duplicate name %q", list.Name), "give each signed list its own name")
		}
		seen[list.Name] = true
		if (list.URL == "") == (list.File == "") {
			return bad(field, "needs exactly one of url and file", "name the https URL of the list, or a local file")
		}
		if list.URL != "" {
			u, err := url.Parse(list.URL)
			if err != nil || u.Scheme != "https" || u.Host == "" {
				return bad(field+".url", fmt.Sprintf("%q is not an https URL", list.URL), `write a URL such as "https://lists.example.org/federation.jws"`)
			}
		}
		if list.KeysFile == "" {
			return bad(field+".keys_file", "missing", "name the JWK Set file of the keys that sign the list")
		}
		if list.RefreshInterval < time.Second {
			return bad(field+".refresh_interval", fmt.Sprintf("%s is too short", list.RefreshInterval), `write at least "1s"; the default is "5m"`)
		}
		if list.Timeout <= 0 {
			return bad(field+".timeout", "not positive", `write a duration such as "10s"`)
		}
		switch list.OnExpiry {
		case OnExpiryFailClosed, OnExpiryFailStatic:
		default:
			return bad(field+".on_expiry", fmt.Sprintf("unknown mode %q", list.OnExpiry), "write fail_closed or fail_static")
		}
	}
	return nil
}
