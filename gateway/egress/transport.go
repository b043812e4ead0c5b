package egress

import (
	"container/list"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// maxTransports bounds the number of destinations with a transport and
	// so with idle connections. Beyond it, the least recently used
	// transport loses its idle connections and is dropped.
	maxTransports = 1024
	// maxResponseHeaderBytes bounds the response headers of a remote
	// server.
	// NOTE: both bounds are chosen, not measured. Federation responses
	// carry a few short headers, and each peer usually has one route.
	maxResponseHeaderBytes = 64 << 10
)

// newTransport returns the transport of rt. Every connection it opens goes
// to rt's address and is authenticated for rt's TLS server name, so a
// connection is reused only for requests with the same route: the same
// server name, address, certificate name and client certificate choice.
func (c *Client) newTransport(rt route) *http.Transport {
	tlsConfig := c.tlsConfig(rt)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	return &http.Transport{
		// The address argument is the URL host, which is the Host header
		// value and not necessarily the address to dial.
		DialTLSContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return c.dialTLS(ctx, rt, tlsConfig, network)
		},
		Protocols:              &protocols,
		MaxIdleConnsPerHost:    c.maxIdle,
		IdleConnTimeout:        c.idleTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// The homeserver receives the response body as the remote server
		// encoded it.
		DisableCompression: true,
	}
}

// tlsConfig returns the client TLS configuration of rt. It offers h2 and
// http/1.1 by ALPN, because the transport chooses HTTP/2 from the
// negotiated protocol of connections from DialTLSContext.
func (c *Client) tlsConfig(rt route) *tls.Config {
	cfg := &tls.Config{
		RootCAs:    c.rootCAs,
		ServerName: rt.tlsName,
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	if rt.presentCert {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, err := c.clientCert()
			if err != nil {
				return nil, fmt.Errorf("load client certificate: %w", err)
			}
			if cert == nil {
				return nil, errors.New("load client certificate: none configured")
			}
			return cert, nil
		}
	}
	return cfg
}

// dialTLS connects to the address of rt and completes the TLS handshake,
// within c.timeout. net/http dials apart from the request that needs the
// connection, so ctx carries no request deadline.
func (c *Client) dialTLS(ctx context.Context, rt route, tlsConfig *tls.Config, network string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	dialer := c.dialer
	if rt.pinned {
		dialer = c.pinnedDialer
	}
	raw, err := dialer.DialContext(ctx, network, rt.target.Addr)
	if err != nil {
		c.log.DebugContext(ctx, "remote server connection failed",
			"destination", rt.serverName, "address", rt.target.Addr, "err", err)
		if errors.Is(err, ErrForbiddenAddress) {
			return nil, fmt.Errorf("connect to %s: %w", rt.target.Addr, err)
		}
		return nil, fmt.Errorf("connect to %s: %w: %w", rt.target.Addr, ErrUnreachable, err)
	}

	conn := tls.Client(raw, tlsConfig)
	if err := conn.HandshakeContext(ctx); err != nil {
		raw.Close()
		c.log.DebugContext(ctx, "remote server TLS handshake failed",
			"destination", rt.serverName, "address", raw.RemoteAddr().String(), "err", err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("TLS handshake with %s at %s: %w: %w", rt.tlsName, rt.target.Addr, ErrUnreachable, err)
		}
		return nil, fmt.Errorf("TLS handshake with %s at %s: %w: %w", rt.tlsName, rt.target.Addr, ErrTLS, err)
	}

	c.log.DebugContext(ctx, "remote server connected",
		"destination", rt.serverName,
		"address", raw.RemoteAddr().String(),
		"tls_server_name", rt.tlsName,
		"protocol", conn.ConnectionState().NegotiatedProtocol,
		"client_certificate", rt.presentCert)
	return conn, nil
}

// transportCache maps routes to transports, least recently used first out.
type transportCache struct {
	max int

	mu      sync.Mutex // guards order and entries
	order   *list.List // of *cachedTransport, most recently used first
	entries map[route]*list.Element
}

type cachedTransport struct {
	route     route
	transport *http.Transport
}

func newTransportCache(max int) *transportCache {
	return &transportCache{max: max, order: list.New(), entries: map[route]*list.Element{}}
}

// get returns the transport of rt, created with newTransport when there is
// none yet.
func (tc *transportCache) get(rt route, newTransport func(route) *http.Transport) *http.Transport {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if e, ok := tc.entries[rt]; ok {
		tc.order.MoveToFront(e)
		return e.Value.(*cachedTransport).transport
	}

	for tc.order.Len() >= tc.max {
		oldest := tc.order.Back()
		evicted := tc.order.Remove(oldest).(*cachedTransport)
		delete(tc.entries, evicted.route)
		// Connections of requests in flight go back to the evicted
		// transport's idle pool and close after IdleConnTimeout.
		evicted.transport.CloseIdleConnections()
	}
	t := newTransport(rt)
	tc.entries[rt] = tc.order.PushFront(&cachedTransport{route: rt, transport: t})
	return t
}

func (tc *transportCache) closeIdle() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for e := tc.order.Front(); e != nil; e = e.Next() {
		e.Value.(*cachedTransport).transport.CloseIdleConnections()
	}
}
