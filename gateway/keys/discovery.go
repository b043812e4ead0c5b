package keys

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/bordergate/bordergate/gateway/servername"
)

// DefaultFederationPort is the IANA-registered Matrix federation port, used
// when neither the server name, its delegation nor an SRV record gives one.
const DefaultFederationPort = 8448

// Defaults and limits of [Discovery].
const (
	// DefaultWellKnownTimeout bounds one .well-known/matrix/server request,
	// redirects included, when DiscoveryConfig.Timeout is zero.
	DefaultWellKnownTimeout = 10 * time.Second

	// Cache periods of .well-known results. The Matrix specification
	// sets them to the Cache-Control lifetime, 24 hours without one, at
	// most 48 hours, and at most an hour for errors.
	wellKnownDefaultCache = 24 * time.Hour
	wellKnownMaxCache     = 48 * time.Hour
	wellKnownErrorCache   = time.Hour
	// wellKnownMinCache overrides shorter lifetimes, no-store included, so
	// that a server cannot make the gateway fetch its .well-known on every
	// request.
	wellKnownMinCache = 5 * time.Minute

	wellKnownMaxRedirects = 5
	wellKnownMaxBytes     = 64 << 10
	maxWellKnownEntries   = 4096
)

// Target is the connection address and TLS identity of a server name, the
// result of Matrix server discovery.
type Target struct {
	// Addr is the host:port or ip:port to dial.
	Addr string
	// Host is the value of the HTTP Host header.
	Host string
	// TLSServerName is the name the server's certificate must be valid
	// for, also sent as SNI. It is empty when Addr is an IP literal whose
	// certificate must carry that IP address, and which gets no SNI.
	TLSServerName string
}

// DiscoveryConfig configures [NewDiscovery].
type DiscoveryConfig struct {
	// Resolver looks up SRV records; nil means net.DefaultResolver.
	Resolver Resolver
	// Dialer connects to .well-known servers; nil means a Dialer that
	// rejects private addresses and resolves with Resolver.
	Dialer *Dialer
	// RootCAs verifies .well-known servers' certificates; nil means the
	// system roots.
	RootCAs *x509.CertPool
	// Timeout bounds one .well-known request; zero means
	// DefaultWellKnownTimeout.
	Timeout time.Duration
	// Now returns the current time for the .well-known cache; nil means
	// time.Now.
	Now func() time.Time
	// Logger receives debug records of discovery steps; nil discards them.
	Logger *slog.Logger
}

// Discovery resolves Matrix server names to connection targets, following
// the order of the Matrix specification: IP literal, explicit port,
// .well-known/matrix/server delegation, SRV _matrix-fed._tcp, the
// deprecated SRV _matrix._tcp, then port 8448. It caches .well-known
// results and is safe for concurrent use.
type Discovery struct {
	resolver Resolver
	client   *http.Client
	now      func() time.Time
	log      *slog.Logger

	// wellKnownPort replaces port 443 in .well-known URLs. Only tests set
	// it, so that their HTTPS servers need no privileged port.
	wellKnownPort int

	cache wellKnownCache
}

// NewDiscovery returns a Discovery configured by cfg.
func NewDiscovery(cfg DiscoveryConfig) *Discovery {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &Dialer{Resolver: cfg.Resolver}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultWellKnownTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	transport := &http.Transport{
		DialContext:            cfg.Dialer.DialContext,
		TLSClientConfig:        &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    cfg.Timeout,
		ResponseHeaderTimeout:  cfg.Timeout,
		MaxResponseHeaderBytes: wellKnownMaxBytes,
		DisableKeepAlives:      true,
	}
	return &Discovery{
		resolver: cfg.Resolver,
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: checkWellKnownRedirect,
			Timeout:       cfg.Timeout,
		},
		now:   cfg.Now,
		log:   cfg.Logger,
		cache: wellKnownCache{entries: map[string]wellKnownEntry{}},
	}
}

// Resolve returns the target for serverName. It fails when the name is
// invalid, or when an SRV lookup fails for another reason than a missing
// record. A missing or invalid .well-known only moves on to the next step.
func (d *Discovery) Resolve(ctx context.Context, serverName string) (Target, error) {
	host, port, err := servername.Split(serverName)
	if err != nil {
		return Target{}, err
	}

	// An IP literal or an explicit port is used as it is.
	if target, ok := directTarget(serverName, host, port); ok {
		return target, nil
	}

	if delegated, ok := d.wellKnown(ctx, host); ok {
		d.log.DebugContext(ctx, "server delegated", "server_name", serverName, "delegated", delegated)
		return d.resolveDelegated(ctx, delegated)
	}

	target, found, err := d.lookupSRVTarget(ctx, host)
	if err != nil || found {
		return target, err
	}
	return Target{
		Addr:          net.JoinHostPort(host, strconv.Itoa(DefaultFederationPort)),
		Host:          host,
		TLSServerName: host,
	}, nil
}

// directTarget returns the target of a server name that is an IP literal
// or has a port, for which no lookup other than A/AAAA is made.
func directTarget(name, host string, port int) (Target, bool) {
	if _, err := netip.ParseAddr(host); err == nil {
		if port == 0 {
			port = DefaultFederationPort
		}
		return Target{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Host: name}, true
	}
	if port != 0 {
		return Target{Addr: net.JoinHostPort(host, strconv.Itoa(port)), Host: name, TLSServerName: host}, true
	}
	return Target{}, false
}

// resolveDelegated resolves the m.server value of a .well-known response.
// The certificate must then be valid for the delegated host name.
func (d *Discovery) resolveDelegated(ctx context.Context, delegated string) (Target, error) {
	host, port, err := servername.Split(delegated)
	if err != nil {
		return Target{}, fmt.Errorf("delegated server name: %w", err)
	}
	if target, ok := directTarget(delegated, host, port); ok {
		return target, nil
	}
	target, found, err := d.lookupSRVTarget(ctx, host)
	if err != nil || found {
		return target, err
	}
	return Target{
		Addr:          net.JoinHostPort(host, strconv.Itoa(DefaultFederationPort)),
		Host:          host,
		TLSServerName: host,
	}, nil
}

// lookupSRVTarget tries SRV _matrix-fed._tcp.host, then the deprecated
// _matrix._tcp.host. The Host header and the certificate name stay host,
// not the SRV target.
func (d *Discovery) lookupSRVTarget(ctx context.Context, host string) (Target, bool, error) {
	for _, service := range []string{"matrix-fed", "matrix"} {
		addr, found, err := d.lookupSRV(ctx, service, host)
		if err != nil {
			return Target{}, false, err
		}
		if found {
			d.log.DebugContext(ctx, "server SRV record found", "server_name", host, "service", service, "address", addr)
			return Target{Addr: addr, Host: host, TLSServerName: host}, true, nil
		}
	}
	return Target{}, false, nil
}

// lookupSRV returns the first usable target:port of _service._tcp.host.
// Records whose target is "." (RFC 2782: the service is not available)
// are skipped.
//
// NOTE: only the first record is returned, so a caller does not fall back
// to lower-priority records when the first target is down.
func (d *Discovery) lookupSRV(ctx context.Context, service, host string) (string, bool, error) {
	_, records, err := d.resolver.LookupSRV(ctx, service, "tcp", host)
	if err != nil {
		if dnsErr, ok := errors.AsType[*net.DNSError](err); ok && dnsErr.IsNotFound {
			return "", false, nil
		}
		return "", false, fmt.Errorf("look up SRV _%s._tcp.%s: %w", service, host, err)
	}
	for _, r := range records {
		target := strings.TrimSuffix(r.Target, ".")
		if target == "" || r.Port == 0 {
			continue
		}
		return net.JoinHostPort(target, strconv.Itoa(int(r.Port))), true, nil
	}
	return "", false, nil
}
