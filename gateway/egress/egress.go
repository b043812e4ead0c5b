// Package egress opens the gateway's onward connections to remote Matrix
// servers and sends the homeserver's outbound federation requests over
// them. It resolves each destination by Matrix server discovery or by an
// allow-list address, checks the remote certificate against the name the
// Matrix specification requires, presents the gateway's client certificate
// to servers that require mutual TLS, and reuses connections per
// destination.
package egress

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/servername"
)

// Defaults of [Config].
const (
	// DefaultTimeout bounds connecting to a remote server and waiting for
	// its response headers when Config.Timeout is zero.
	DefaultTimeout = 60 * time.Second
	// DefaultIdleConnTimeout is how long an idle connection stays open
	// when Config.IdleConnTimeout is zero.
	DefaultIdleConnTimeout = 90 * time.Second
	// DefaultMaxIdleConnsPerHost is the number of idle connections kept
	// per destination when Config.MaxIdleConnsPerHost is zero.
	DefaultMaxIdleConnsPerHost = 8
)

// Error classes of [Client.Do], for errors.Is. An error wraps at most one
// of ErrUnreachable, ErrTLS and ErrForbiddenAddress, and ErrTimeout when
// Config.Timeout ran out. Errors without a class are an invalid server
// name, request target or allow-list address, the end of the caller's
// context, and failures after the connection was established, such as a
// connection closed before the response.
var (
	// ErrUnreachable reports that no connection to the remote server could
	// be opened: a DNS lookup failed, the connection was refused or timed
	// out, or the TLS handshake did not finish within Config.Timeout.
	ErrUnreachable = errors.New("remote server unreachable")

	// ErrTLS reports that TLS with the remote server failed: its
	// certificate is not valid for the expected name or not issued by a
	// trusted CA, the handshake failed, or the server rejected the
	// gateway's client certificate or its absence. It is also returned
	// without any connection for a server that requires mutual TLS when
	// Config.ClientCertificate is nil.
	ErrTLS = errors.New("TLS with remote server failed")

	// ErrTimeout reports that the remote server did not send response
	// headers within Config.Timeout. Errors that wrap it also wrap
	// context.DeadlineExceeded, and ErrUnreachable as well when no
	// connection was established in time.
	ErrTimeout = errors.New("remote server timed out")

	// ErrForbiddenAddress is [keys.ErrForbiddenAddress]: the discovered
	// address is in a range that Config.Dialer rejects. It is wrapped
	// instead of ErrUnreachable, and wins when a host name resolves to
	// both rejected addresses and addresses that refused the connection.
	ErrForbiddenAddress = keys.ErrForbiddenAddress
)

// Config configures [New]. The zero Config is usable: it resolves
// destinations by discovery with the system resolver and roots, rejects
// private addresses and presents no client certificate.
type Config struct {
	// Discovery resolves server names without an allow-list address. Nil
	// means a discovery that uses Dialer and RootCAs for .well-known
	// requests.
	Discovery *keys.Discovery
	// Dialer connects to discovered addresses and rejects private ranges.
	// Nil means the zero keys.Dialer. Its Resolver and Timeout also serve
	// allow-list addresses, which are dialled without the range check.
	Dialer *keys.Dialer
	// RootCAs verifies remote server certificates; nil means the system
	// roots.
	RootCAs *x509.CertPool
	// ClientCertificate returns the gateway's client certificate. It is
	// called at each handshake that presents one, so the certificate can
	// be replaced while the gateway runs. Nil means the gateway has none,
	// and requests to servers that require mutual TLS fail with ErrTLS.
	ClientCertificate func() (*tls.Certificate, error)
	// AlwaysPresentClientCert presents the client certificate to every
	// server that requests one. By default it is presented only to servers
	// for which Pinned reports that they require mutual TLS.
	AlwaysPresentClientCert bool
	// Pinned looks up the allow-list entry of serverName. It returns ok
	// false for a server without an entry. A non-empty address (host:port)
	// replaces discovery and is dialled without the private-range check,
	// because the operator chose it. requireMTLS reports whether the
	// server requires a client certificate. Nil means no entries.
	Pinned func(serverName string) (address string, requireMTLS bool, ok bool)
	// Timeout bounds the time from the start of a request until the
	// response headers arrive, connecting and the TLS handshake included.
	// The response body is read under the caller's context only. Zero
	// means DefaultTimeout.
	Timeout time.Duration
	// IdleConnTimeout is how long an idle connection stays open; zero
	// means DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is the number of idle connections kept per
	// destination; zero means DefaultMaxIdleConnsPerHost.
	MaxIdleConnsPerHost int
	// Logger receives debug records of connections; nil discards them.
	Logger *slog.Logger
}

// Client sends requests to remote Matrix servers. It is safe for
// concurrent use.
type Client struct {
	discovery     *keys.Discovery
	dialer        *keys.Dialer
	pinnedDialer  *keys.Dialer
	rootCAs       *x509.CertPool
	clientCert    func() (*tls.Certificate, error)
	alwaysPresent bool
	pinned        func(string) (string, bool, bool)
	timeout       time.Duration
	idleTimeout   time.Duration
	maxIdle       int
	log           *slog.Logger

	transports *transportCache
}

// New returns a Client configured by cfg. It fails on a negative Timeout,
// IdleConnTimeout or MaxIdleConnsPerHost.
func New(cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Client{
		discovery: cfg.Discovery,
		dialer:    cfg.Dialer,
		// Allow-list addresses were chosen by the operator, so they may
		// be internal.
		pinnedDialer: &keys.Dialer{
			AllowPrivate: true,
			Resolver:     cfg.Dialer.Resolver,
			Timeout:      cfg.Dialer.Timeout,
		},
		rootCAs:       cfg.RootCAs,
		clientCert:    cfg.ClientCertificate,
		alwaysPresent: cfg.AlwaysPresentClientCert,
		pinned:        cfg.Pinned,
		timeout:       cfg.Timeout,
		idleTimeout:   cfg.IdleConnTimeout,
		maxIdle:       cfg.MaxIdleConnsPerHost,
		log:           cfg.Logger,
		transports:    newTransportCache(maxTransports),
	}, nil
}

func (cfg *Config) validate() error {
	if cfg.Timeout < 0 {
		return fmt.Errorf("invalid egress timeout %s: must not be negative", cfg.Timeout)
	}
	if cfg.IdleConnTimeout < 0 {
		return fmt.Errorf("invalid egress idle connection timeout %s: must not be negative", cfg.IdleConnTimeout)
	}
	if cfg.MaxIdleConnsPerHost < 0 {
		return fmt.Errorf("invalid egress max idle connections per host %d: must not be negative", cfg.MaxIdleConnsPerHost)
	}
	return nil
}

func (cfg *Config) setDefaults() {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dialer == nil {
		cfg.Dialer = &keys.Dialer{}
	}
	if cfg.Discovery == nil {
		cfg.Discovery = keys.NewDiscovery(keys.DiscoveryConfig{
			Resolver: cfg.Dialer.Resolver,
			Dialer:   cfg.Dialer,
			RootCAs:  cfg.RootCAs,
			Logger:   cfg.Logger,
		})
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.IdleConnTimeout == 0 {
		cfg.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if cfg.MaxIdleConnsPerHost == 0 {
		cfg.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
}

// Do sends req to the Matrix server serverName and returns its response,
// which the caller must close. Redirects are returned, not followed.
//
// The request goes out with scheme https, the URL host and Host header
// set to the destination's Host from discovery, and the request target
// byte for byte as the homeserver signed it. That target is
// req.RequestURI when set, as on a request a server received (an
// absolute-form target loses only its scheme and authority), else
// req.URL.Opaque with req.URL.RawQuery, else req.URL.RequestURI(), which
// re-encodes a path with raw non-ASCII bytes. req itself is not modified.
//
// ctx bounds the whole exchange, reading the body included. Errors carry
// the classes [ErrUnreachable], [ErrTLS], [ErrTimeout] and
// [ErrForbiddenAddress].
func (c *Client) Do(ctx context.Context, serverName string, req *http.Request) (*http.Response, error) {
	if err := servername.Validate(serverName); err != nil {
		return nil, fmt.Errorf("send request: %w", err)
	}
	target, err := requestTarget(req)
	if err != nil {
		return nil, fmt.Errorf("send request to %s: %w", serverName, err)
	}
	rt, err := c.route(ctx, serverName)
	if err != nil {
		return nil, fmt.Errorf("send request to %s: %w", serverName, err)
	}
	resp, err := c.roundTrip(ctx, rt, target, req)
	if err != nil {
		return nil, fmt.Errorf("send request to %s: %w", serverName, err)
	}
	return resp, nil
}

// CloseIdleConnections closes the idle connections to every destination.
// Connections in use stay open.
func (c *Client) CloseIdleConnections() {
	c.transports.closeIdle()
}

// roundTrip sends one request over the transport of rt. A timer cancels
// the request when no response headers arrive within c.timeout. After
// the headers, only ctx bounds reading the body, and closing the body
// releases the request's context.
func (c *Client) roundTrip(ctx context.Context, rt route, target string, req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	timeoutErr := fmt.Errorf("%w after %s: %w", ErrTimeout, c.timeout, context.DeadlineExceeded)
	timer := time.AfterFunc(c.timeout, func() { cancel(timeoutErr) })

	// connected records whether the transport obtained a connection, to
	// tell a connect timeout from a response timeout.
	var connected atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { connected.Store(true) },
	})

	out := outboundRequest(ctx, req, rt.target.Host, target)
	resp, err := c.transports.get(rt, c.newTransport).RoundTrip(out)

	// A stopped timer has not fired, so the response or error came before
	// the deadline. A fired one means the deadline passed, whichever error
	// the transport returned.
	if !timer.Stop() {
		if err == nil {
			resp.Body.Close()
		}
		cancel(timeoutErr)
		if !connected.Load() {
			return nil, fmt.Errorf("connect to %s: %w: %w", rt.target.Addr, ErrUnreachable, timeoutErr)
		}
		return nil, timeoutErr
	}
	if err != nil {
		cancel(err)
		return nil, classify(err)
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(errBodyClosed) }}
	return resp, nil
}
