package gateway

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/decisionlog/ship"
)

// shippingDir is the directory under state_dir that buffers the records
// waiting to be shipped.
const shippingDir = "decision-log-shipping"

// ShipConfig sends decision records to a decision-log service that speaks
// Open Policy Agent's decision log API. Every field is described in
// docs/configuration.md.
type ShipConfig struct {
	// URL is the service's base URL, http or https.
	URL string `yaml:"url"`
	// Resource is the path of the logs endpoint. Default "/logs".
	Resource string `yaml:"resource"`
	// CAFile is a PEM bundle that the service's certificate is verified
	// against. Empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate presented to the
	// service, reread when they change.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// TokenFile holds a bearer token, reread before each upload.
	TokenFile string `yaml:"token_file"`
	// Timeout bounds one upload. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// BatchMaxBytes bounds the uncompressed records of one upload.
	// Default 1 MiB.
	BatchMaxBytes int `yaml:"batch_max_bytes"`
	// FlushInterval is the longest time a record waits for its batch to
	// fill. Default 5s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BufferMaxBytes bounds the buffer on disk. Default 256 MiB.
	BufferMaxBytes int64 `yaml:"buffer_max_bytes"`
	// MinRetryDelay and MaxRetryDelay bound the delay before a failed
	// upload is tried again. Defaults 1s and 1m.
	MinRetryDelay time.Duration `yaml:"min_retry_delay"`
	MaxRetryDelay time.Duration `yaml:"max_retry_delay"`
}

// maxBatchBytes is the largest batch_max_bytes: the size of the largest
// record the decision log writes.
const maxBatchBytes = 64 << 20

// validateShip checks decision_log.ship.
func (c *Config) validateShip() error {
	s := c.DecisionLog.Ship
	if s == nil {
		return nil
	}
	const field = "decision_log.ship"
	u, err := url.Parse(s.URL)
	if s.URL == "" {
		return bad(field+".url", "missing", `write the decision-log service's URL, such as "https://collector.example.org:8443"`)
	}
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return bad(field+".url", fmt.Sprintf("%q is not an http or https URL without query or user", s.URL),
			`write a URL such as "https://collector.example.org:8443"`)
	}
	if s.Resource != "" && !strings.HasPrefix(s.Resource, "/") {
		return bad(field+".resource", fmt.Sprintf("%q does not start with /", s.Resource), `write a path such as "/logs"`)
	}
	if u.Scheme == "http" {
		for _, f := range []struct{ name, value string }{
			{"ca_file", s.CAFile}, {"cert_file", s.CertFile}, {"token_file", s.TokenFile},
		} {
			if f.value != "" {
				return bad(field+"."+f.name, "set with an http URL, which sends it in clear text or not at all",
					"use an https URL")
			}
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		return bad(field, "only one of cert_file and key_file is set", "name both, or neither")
	}
	return s.validateLimits(field)
}

// validateLimits checks the sizes and durations of s.
func (s *ShipConfig) validateLimits(field string) error {
	if s.BatchMaxBytes < 0 || s.BatchMaxBytes > maxBatchBytes {
		return bad(field+".batch_max_bytes", fmt.Sprintf("%d is not between 1 and %d", s.BatchMaxBytes, maxBatchBytes),
			"write a size in bytes; the default is 1048576")
	}
	if s.BufferMaxBytes < 0 || s.BufferMaxBytes > 0 && s.BufferMaxBytes < ship.MinBufferBytes {
		return bad(field+".buffer_max_bytes", fmt.Sprintf("%d is below the minimum of %d", s.BufferMaxBytes, ship.MinBufferBytes),
			"write a size in bytes; the default is 268435456")
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"timeout", s.Timeout}, {"flush_interval", s.FlushInterval},
		{"min_retry_delay", s.MinRetryDelay}, {"max_retry_delay", s.MaxRetryDelay},
	} {
		if d.value < 0 {
			return bad(field+"."+d.name, "negative duration", `write a positive duration such as "10s"`)
		}
	}
	minDelay, maxDelay := s.MinRetryDelay, s.MaxRetryDelay
	if minDelay == 0 {
		minDelay = ship.DefaultMinRetryDelay
	}
	if maxDelay == 0 {
		maxDelay = ship.DefaultMaxRetryDelay
	}
	if maxDelay < minDelay {
		return bad(field+".max_retry_delay", fmt.Sprintf("%s is below min_retry_delay %s", maxDelay, minDelay),
			"write a maximum at least as long as the minimum")
	}
	return nil
}

// shipPaths returns the file fields of decision_log.ship, for resolving
// relative paths.
func (c *Config) shipPaths() []*string {
	s := c.DecisionLog.Ship
	if s == nil {
		return nil
	}
	return []*string{&s.CAFile, &s.CertFile, &s.KeyFile, &s.TokenFile}
}

// openShipper starts shipping decision records, or returns nil without
// decision_log.ship.
func (g *Gateway) openShipper() (*ship.Shipper, error) {
	s := g.cfg.DecisionLog.Ship
	if s == nil {
		return nil, nil
	}
	const field = "decision_log.ship"
	cfg := ship.Config{
		URL:            s.URL,
		Resource:       s.Resource,
		Dir:            filepath.Join(g.cfg.StateDir, shippingDir),
		Sync:           g.cfg.DecisionLog.Sync == "always",
		MaxBufferBytes: s.BufferMaxBytes,
		MaxBatchBytes:  s.BatchMaxBytes,
		FlushInterval:  s.FlushInterval,
		Timeout:        s.Timeout,
		MinRetryDelay:  s.MinRetryDelay,
		MaxRetryDelay:  s.MaxRetryDelay,
		TokenFile:      s.TokenFile,
		Logger:         g.log,
		Metrics:        g.metrics,
	}
	if s.CAFile != "" {
		pool, err := certs.LoadCertPool(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
		cfg.RootCAs = pool
	}
	if s.CertFile != "" {
		kp, err := certs.NewReloadingKeyPair(s.CertFile, s.KeyFile, certs.ReloadOptions{OnError: func(err error) {
			g.log.Error("decision log shipping client certificate not reloaded, the previous one stays in use", keyErr, err)
		}})
		if err != nil {
			return nil, fmt.Errorf("%s.cert_file: %w", field, err)
		}
		cfg.ClientCertificate = func() (*tls.Certificate, error) { return kp.Certificate(), nil }
	}
	if s.TokenFile != "" {
		// Read once now, so that a missing or empty file stops the start
		// instead of failing every upload.
		if _, err := ship.ReadToken(s.TokenFile); err != nil {
			return nil, fmt.Errorf("%s.token_file: %w", field, err)
		}
	}
	return ship.New(cfg)
}
