package certs

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ACMEConfig configures [NewACMEManager]: the ACME CA to use, the names to
// obtain a certificate for and the addresses where challenges are solved.
//
// Two challenge types can be enabled, each by setting its address: HTTP-01
// (the CA fetches a token over plain HTTP on port 80 of the domain) and
// TLS-ALPN-01 (the CA opens a TLS connection to port 443 of the domain with
// ALPN protocol "acme-tls/1"). DNS-01 is not offered, so wildcard names cannot
// be obtained. When both are enabled, the ACME client picks one per
// authorization.
type ACMEConfig struct {
	// CAURL is the ACME directory URL of the CA, an https URL. It is
	// required: there is no default CA.
	CAURL string

	// CARootFile is an optional PEM file of root certificates that the ACME
	// client trusts for the CA's HTTPS endpoint, for a private ACME CA. Empty
	// means the system roots.
	CARootFile string

	// Email is the contact address of the ACME account. It is required,
	// because certmagic prompts for one on standard input when it is missing.
	Email string

	// Domains are the DNS names of the certificate, one certificate per name.
	Domains []string

	// StorageDir is the directory of certmagic's file storage: the ACME
	// account key, the certificates and their private keys. It belongs under
	// the gateway's state directory.
	StorageDir string

	// HTTPChallengeAddr is the host:port on which certmagic listens for the
	// HTTP-01 challenge while one is pending. The CA connects to port 80 of
	// the domain, so that port must reach this address. Empty disables
	// HTTP-01. An empty host listens on all interfaces.
	HTTPChallengeAddr string

	// TLSALPNChallengeAddr is the host:port on which TLS-ALPN-01 challenge
	// connections arrive. The CA connects to port 443 of the domain, so that
	// port must reach this address. Empty disables TLS-ALPN-01. When both
	// challenge addresses are set, their hosts must be equal, because
	// certmagic binds both challenge listeners to one host.
	TLSALPNChallengeAddr string

	// TLSALPNOnInbound states that the inbound listener, which uses
	// [ACMEManager.TLSConfig], listens on TLSALPNChallengeAddr. TLSConfig then
	// offers the "acme-tls/1" protocol, so the inbound listener solves the
	// challenges of renewals. The first certificate is obtained on a
	// short-lived listener that certmagic binds to TLSALPNChallengeAddr
	// itself, so the inbound listener must be bound only after
	// [NewACMEManager] returns. certmagic treats an address already in use as
	// served by a listener that solves the challenge.
	TLSALPNOnInbound bool

	// RenewCheckInterval is how often certmagic checks whether a certificate
	// is due for renewal. Zero means certmagic's default (10 minutes in
	// v0.25.6).
	RenewCheckInterval time.Duration

	// Logger receives certmagic's log entries. Nil discards them.
	//
	// NOTE: certmagic v0.25.6 writes a few messages of its file storage
	// (stale or damaged lock files) and of its challenge listeners through
	// its own package-level loggers to standard error, not to Logger.
	Logger *slog.Logger
}

// acmeTLSALPNProtocol is the ALPN protocol of the TLS-ALPN-01 challenge
// (RFC 8737, section 6).
const acmeTLSALPNProtocol = "acme-tls/1"

// ACMEManager obtains, renews and serves the inbound server certificate from
// an ACME CA through certmagic. Renewed certificates replace the old ones in
// its cache, so a listener built once from [ACMEManager.TLSConfig] serves
// each renewed certificate without a restart.
type ACMEManager struct {
	magic     *certmagic.Config
	cache     *certmagic.Cache
	offerALPN bool
	closeOnce sync.Once
}

// NewACMEManager checks cfg, loads the certificates of cfg.Domains from
// storage or obtains them from the CA, and starts certmagic's renewal checks.
// It returns when every domain has a certificate, or with the first error.
// ctx bounds the initial obtain only. Call [ACMEManager.Close] to stop the
// renewal checks.
func NewACMEManager(ctx context.Context, cfg ACMEConfig) (*ACMEManager, error) {
	challenges, err := checkACMEConfig(cfg)
	if err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	zapLogger := zap.New(&slogCore{handler: logger.Handler()})

	// TestCA stays empty, so retries after a failure use CAURL as well:
	// certmagic fills in a staging CA only when CA is Let's Encrypt's
	// production URL.
	template := certmagic.ACMEIssuer{
		CA:                      cfg.CAURL,
		Email:                   cfg.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    challenges.httpPort == 0,
		DisableTLSALPNChallenge: challenges.tlsALPNPort == 0,
		ListenHost:              challenges.host,
		AltHTTPPort:             challenges.httpPort,
		AltTLSALPNPort:          challenges.tlsALPNPort,
		Logger:                  zapLogger,
	}
	if cfg.CARootFile != "" {
		template.TrustedRoots, err = LoadCertPool(cfg.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("ACME config: CA root file: %w", err)
		}
	}

	m := &ACMEManager{offerALPN: cfg.TLSALPNOnInbound}
	m.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			return m.magic, nil
		},
		RenewCheckInterval: cfg.RenewCheckInterval,
		Logger:             zapLogger,
	})
	// A non-nil Issuers slice keeps certmagic.New from adding its default
	// issuer, which points at a public CA. DefaultServerName selects the
	// certificate of the first domain for a client that sends no SNI name.
	m.magic = certmagic.New(m.cache, certmagic.Config{
		Issuers:           []certmagic.Issuer{},
		Storage:           &certmagic.FileStorage{Path: cfg.StorageDir},
		DefaultServerName: cfg.Domains[0],
		Logger:            zapLogger,
	})
	m.magic.Issuers = []certmagic.Issuer{certmagic.NewACMEIssuer(m.magic, template)}

	if err := m.magic.ManageSync(ctx, cfg.Domains); err != nil {
		m.cache.Stop()
		return nil, fmt.Errorf("ACME: obtain certificate from %s: %w", cfg.CAURL, err)
	}
	return m, nil
}

// TLSConfig returns a new TLS configuration whose GetCertificate serves the
// managed certificate for the SNI name of each handshake. TLS 1.2 is the
// minimum version.
//
// NextProtos contains "acme-tls/1" only with [ACMEConfig.TLSALPNOnInbound],
// and is empty otherwise. The caller adds its application protocols, as
// [net/http.Server.ServeTLS] does with "h2" and "http/1.1". While NextProtos
// contains only "acme-tls/1", Go's TLS server rejects every client that
// offers ALPN protocols other than that one.
func (m *ACMEManager) TLSConfig() *tls.Config {
	config := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: m.magic.GetCertificate,
	}
	if m.offerALPN {
		config.NextProtos = []string{acmeTLSALPNProtocol}
	}
	return config
}

// Close stops certmagic's renewal checks. It does not wait for a renewal in
// progress, whose context certmagic cancels. Close may be called more than
// once.
func (m *ACMEManager) Close() {
	m.closeOnce.Do(m.cache.Stop)
}

// acmeChallenges is the parsed challenge part of an [ACMEConfig]. A zero
// port means the challenge type is disabled.
type acmeChallenges struct {
	host        string
	httpPort    int
	tlsALPNPort int
}

// checkACMEConfig rejects an incomplete or invalid configuration before any
// network access, and returns the parsed challenge addresses.
func checkACMEConfig(cfg ACMEConfig) (acmeChallenges, error) {
	var none acmeChallenges
	if cfg.CAURL == "" {
		return none, errors.New("ACME config: CA URL is missing: set the ACME directory URL of the CA")
	}
	caURL, err := url.Parse(cfg.CAURL)
	if err != nil || caURL.Scheme != "https" || caURL.Host == "" {
		return none, fmt.Errorf("ACME config: CA URL %q is invalid: expected an https URL of an ACME directory", cfg.CAURL)
	}
	if cfg.Email == "" {
		return none, errors.New("ACME config: email is missing: set the contact address of the ACME account")
	}
	if len(cfg.Domains) == 0 {
		return none, errors.New("ACME config: no domains given: set at least one DNS name for the certificate")
	}
	for _, domain := range cfg.Domains {
		if err := checkACMEDomain(domain); err != nil {
			return none, fmt.Errorf("ACME config: %w", err)
		}
	}
	if cfg.StorageDir == "" {
		return none, errors.New("ACME config: storage directory is missing")
	}
	if cfg.RenewCheckInterval < 0 {
		return none, fmt.Errorf("ACME config: renewal check interval %s is negative", cfg.RenewCheckInterval)
	}
	return parseACMEChallenges(cfg)
}

// checkACMEDomain rejects names that the enabled challenge types cannot
// validate (wildcards need DNS-01) and names with a port or a path.
func checkACMEDomain(domain string) error {
	switch {
	case domain == "":
		return errors.New("empty domain")
	case strings.Contains(domain, "*"):
		return fmt.Errorf("domain %q is a wildcard: wildcards need the DNS-01 challenge, which is not supported", domain)
	case strings.ContainsAny(domain, ":/@[] \\"):
		return fmt.Errorf("domain %q is not a DNS name: pass the host name only, without port", domain)
	}
	return nil
}

func parseACMEChallenges(cfg ACMEConfig) (acmeChallenges, error) {
	var challenges acmeChallenges
	if cfg.HTTPChallengeAddr == "" && cfg.TLSALPNChallengeAddr == "" {
		return challenges, errors.New("ACME config: no challenge enabled: set the HTTP challenge address, the TLS-ALPN challenge address or both")
	}
	if cfg.TLSALPNOnInbound && cfg.TLSALPNChallengeAddr == "" {
		return challenges, errors.New("ACME config: TLS-ALPN challenge on the inbound listener needs the TLS-ALPN challenge address")
	}
	var httpHost, tlsALPNHost string
	var err error
	if cfg.HTTPChallengeAddr != "" {
		httpHost, challenges.httpPort, err = splitChallengeAddr(cfg.HTTPChallengeAddr)
		if err != nil {
			return challenges, fmt.Errorf("ACME config: HTTP challenge address: %w", err)
		}
		challenges.host = httpHost
	}
	if cfg.TLSALPNChallengeAddr != "" {
		tlsALPNHost, challenges.tlsALPNPort, err = splitChallengeAddr(cfg.TLSALPNChallengeAddr)
		if err != nil {
			return challenges, fmt.Errorf("ACME config: TLS-ALPN challenge address: %w", err)
		}
		challenges.host = tlsALPNHost
	}
	if cfg.HTTPChallengeAddr != "" && cfg.TLSALPNChallengeAddr != "" && httpHost != tlsALPNHost {
		return challenges, fmt.Errorf("ACME config: HTTP challenge host %q and TLS-ALPN challenge host %q differ: certmagic listens on one host for both", httpHost, tlsALPNHost)
	}
	return challenges, nil
}

func splitChallengeAddr(addr string) (host string, port int, err error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not a host:port address: %w", addr, err)
	}
	port, err = strconv.Atoi(portText)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q has an invalid port: expected a number from 1 to 65535", addr)
	}
	return host, port, nil
}

// slogCore is a zapcore.Core that passes certmagic's zap entries to an slog
// handler. The zap logger name (such as "obtain" or "maintenance") becomes
// the attribute "logger", and zap's "error" field becomes "err".
type slogCore struct {
	handler slog.Handler
}

func (c *slogCore) Enabled(level zapcore.Level) bool {
	return c.handler.Enabled(context.Background(), slogLevel(level))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{handler: c.handler.WithAttrs(zapFieldsToAttrs(fields))}
}

func (c *slogCore) Check(entry zapcore.Entry, checked *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(entry.Level) {
		return checked.AddCore(entry, c)
	}
	return checked
}

func (c *slogCore) Write(entry zapcore.Entry, fields []zapcore.Field) error {
	record := slog.NewRecord(entry.Time, slogLevel(entry.Level), entry.Message, 0)
	if entry.LoggerName != "" {
		record.AddAttrs(slog.String("logger", entry.LoggerName))
	}
	record.AddAttrs(zapFieldsToAttrs(fields)...)
	return c.handler.Handle(context.Background(), record)
}

func (c *slogCore) Sync() error {
	return nil
}

func slogLevel(level zapcore.Level) slog.Level {
	switch {
	case level <= zapcore.DebugLevel:
		return slog.LevelDebug
	case level == zapcore.InfoLevel:
		return slog.LevelInfo
	case level == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// zapFieldsToAttrs encodes fields with zap's map encoder and returns them as
// attributes sorted by key.
func zapFieldsToAttrs(fields []zapcore.Field) []slog.Attr {
	encoder := zapcore.NewMapObjectEncoder()
	for _, field := range fields {
		field.AddTo(encoder)
	}
	keys := make([]string, 0, len(encoder.Fields))
	for key := range encoder.Fields {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	attrs := make([]slog.Attr, 0, len(keys))
	for _, key := range keys {
		name := key
		if name == "error" {
			name = "err"
		}
		attrs = append(attrs, slog.Any(name, encoder.Fields[key]))
	}
	return attrs
}
