package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/egress"
	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/servername"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// outboundTargetKey is the context key of the host that the local
// homeserver asked the proxy to reach (the CONNECT target, or the SNI of
// a transparent connection).
type outboundTargetKey struct{}

// checkOutboundParties checks an outbound request's X-Matrix parties: the
// origin must be a local server name, because the outbound listeners carry
// only the local homeserver's requests, and the destination is the peer
// whose allow-list entry applies.
func (g *Gateway) checkOutboundParties(ex *exchange) error {
	if !g.isLocal(ex.origin) {
		return newError(http.StatusForbidden, codeForbidden,
			fmt.Sprintf("origin %s is not this server; the outbound listener carries only the local homeserver's requests", ex.origin))
	}
	for _, c := range ex.creds {
		if c.Destination == "" {
			continue
		}
		if ex.destination != "" && c.Destination != ex.destination {
			return newError(http.StatusBadRequest, codeUnauthorized, "Authorization headers name different destinations")
		}
		ex.destination = c.Destination
	}
	if ex.destination == "" {
		ex.destination = outboundTarget(ex.r)
	}
	if err := servername.Validate(ex.destination); err != nil {
		return wrapError(http.StatusBadRequest, codeUnauthorized, "invalid destination", err)
	}
	ex.matchPeer(g, ex.destination)
	return nil
}

// outboundUnsigned names the parties of an outbound request that carries
// no signature, such as a key fetch: the local server, and the server its
// Host header names.
func (g *Gateway) outboundUnsigned(ex *exchange) error {
	switch ex.endpointID() {
	case "3pid_onbind", "openid_userinfo":
		// Identity servers and integrations call these, never a
		// homeserver's federation sender.
		return newError(http.StatusForbidden, codeForbidden,
			fmt.Sprintf("endpoint %s is not sent by homeservers, so the outbound listener does not carry it", ex.endpointID()))
	}
	ex.origin = g.cfg.ServerNames[0]
	ex.destination = outboundTarget(ex.r)
	if name, ok := g.delegations.serverFor(ex.destination); ok && ex.endpointID() != "well_known" {
		// A homeserver that learned a delegation addresses the delegated
		// host; the gateway decides about the server name behind it.
		ex.destination = name
	}
	if err := servername.Validate(ex.destination); err != nil {
		return wrapError(http.StatusBadRequest, codeUnrecognized, "invalid destination host", err)
	}
	ex.matchPeer(g, ex.destination)
	return nil
}

// outboundTarget returns the server name an outbound request goes to when
// it carries no X-Matrix destination: its Host header, which homeservers
// set to the server name, else the host the proxy was asked to reach.
func outboundTarget(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	target, _ := r.Context().Value(outboundTargetKey{}).(string)
	return target
}

// ServeOutbound runs the pipeline on one request of the local homeserver
// to a peer.
func (g *Gateway) ServeOutbound(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, &exchange{r: r, direction: policy.DirectionOutbound})
}

// egressSender sends outbound requests to peers.
type egressSender struct {
	client *egress.Client
	// wellKnown fetches /.well-known/matrix/server from a server name's
	// web host, port 443, which is not where its federation listener is.
	wellKnown *http.Client
}

// send sends the homeserver's request to the peer ex names, with its raw
// target and exact body.
func (s egressSender) send(ctx context.Context, ex *exchange, body []byte, auth []string) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithCancel(ctx)
	out, err := outboundRequest(ctx, ex, body, auth)
	if err != nil {
		cancel()
		return nil, nil, err
	}

	var resp *http.Response
	if ex.endpointID() == "well_known" {
		host, _, _ := servername.Split(ex.destination)
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		out.URL = &url.URL{Scheme: "https", Host: host, Opaque: out.URL.Opaque}
		out.Host = host
		resp, err = s.wellKnown.Do(out)
	} else {
		resp, err = s.client.Do(ctx, ex.destination, out)
	}
	if err != nil {
		cancel()
		return nil, nil, egressError(err)
	}
	return resp, cancel, nil
}

// outboundRequest builds the onward request: the homeserver's method, raw
// target and exact body, its end-to-end headers, and the verified
// Authorization headers only.
func outboundRequest(ctx context.Context, ex *exchange, body []byte, auth []string) (*http.Request, error) {
	in := ex.r
	out, err := http.NewRequestWithContext(ctx, in.Method, "https://"+ex.destination, bytes.NewReader(body))
	if err != nil {
		return nil, wrapError(http.StatusInternalServerError, codeUnknown, "building the outbound request failed", err)
	}
	out.URL.Opaque = rawTarget(in)

	out.Header = in.Header.Clone()
	for _, name := range in.Header.Values("Connection") {
		for _, field := range strings.Split(name, ",") {
			out.Header.Del(strings.TrimSpace(field))
		}
	}
	for _, name := range hopHeaders {
		out.Header.Del(name)
	}
	out.Header.Del("Content-Length")
	out.Header.Del("Authorization")
	for _, value := range auth {
		out.Header.Add("Authorization", value)
	}

	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body = http.NoBody
	}
	return out, nil
}

// rawTarget returns the origin-form request target of r, also for the
// absolute form that a plain forward-proxy request uses.
func rawTarget(r *http.Request) string {
	target := r.RequestURI
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		rest := target[strings.Index(target, "//")+2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return "/"
	}
	return target
}

// egressError maps a failed onward connection to the response the local
// homeserver gets: 502 so that it retries later, 504 on a timeout.
func egressError(err error) *matrixError {
	var netErr net.Error
	switch {
	case errors.Is(err, egress.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return wrapError(http.StatusGatewayTimeout, codeUnknown, "remote server timed out", err)
	case errors.Is(err, egress.ErrTLS):
		return wrapError(http.StatusBadGateway, codeUnknown, "TLS with the remote server failed", err)
	}
	return wrapError(http.StatusBadGateway, codeUnknown, "remote server unreachable", err)
}

// newEgress builds the onward client of the outbound listeners: server
// discovery and the private-range dialer are the key ring's, so that key
// fetches and outbound requests follow the same rules.
func newEgress(cfg *Config, ring *keys.Ring, st *store.Store, clientCert func() (*tls.Certificate, error), log *slog.Logger) (*egress.Client, error) {
	ecfg := egress.Config{
		Discovery: ring.Discovery(),
		Dialer:    ring.Dialer(),
		Pinned: func(serverName string) (string, bool, bool) {
			e, ok := st.Lookup(serverName)
			return e.Address, e.RequireMTLS, ok
		},
		Timeout:           cfg.Outbound.Timeout,
		ClientCertificate: clientCert,
		Logger:            log.With(keyComponent, "egress"),
	}
	if cfg.Outbound.FederationCAFile != "" {
		pool, err := certs.LoadCertPool(cfg.Outbound.FederationCAFile)
		if err != nil {
			return nil, fmt.Errorf("outbound.federation_ca_file: %w", err)
		}
		ecfg.RootCAs = pool
	}
	client, err := egress.New(ecfg)
	if err != nil {
		return nil, fmt.Errorf("outbound: %w", err)
	}
	return client, nil
}

// proxyHandler accepts the local homeserver's proxy requests: CONNECT
// tunnels, whose TLS the gateway terminates with a certificate minted for
// the requested host, and plain absolute-URI requests.
//
// A tunnel lives as long as its connection, so the requests inside it get
// the listener's context, ctx, not the CONNECT request's.
func (g *Gateway) proxyHandler(ctx context.Context) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			if r.URL.IsAbs() {
				// The signature covers the origin-form target, which the
				// pipeline routes on; the onward connection is HTTPS
				// whatever scheme the absolute form named.
				inner := r.WithContext(context.WithValue(r.Context(), outboundTargetKey{}, r.URL.Host))
				inner.RequestURI = rawTarget(r)
				if inner.Host == "" {
					inner.Host = r.URL.Host
				}
				g.ServeOutbound(w, inner)
				return
			}
			http.Error(w, "bordergate outbound proxy: send CONNECT or an absolute-URI request", http.StatusBadRequest)
			return
		}
		g.tunnel(ctx, w, r)
	})
}

// tunnel takes over a CONNECT request's connection and serves the
// homeserver's requests inside it.
func (g *Gateway) tunnel(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		http.Error(w, "connection cannot be taken over", http.StatusInternalServerError)
		return
	}
	conn, buffered, err := hijacker.Hijack()
	if err != nil {
		g.log.Warn("proxy connection not taken over", keyErr, err)
		return
	}
	if _, err := conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
		conn.Close()
		return
	}
	tlsConn := tls.Server(&bufferedConn{Conn: conn, r: buffered.Reader}, &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: g.interceptor.GetCertificateWithDefault(host),
	})
	g.serveConn(ctx, tlsConn, r.Host)
}

// ServeProxy runs the outbound forward proxy on ln until ctx ends.
func (g *Gateway) ServeProxy(ctx context.Context, ln net.Listener) error {
	srv := g.httpServer(ctx, g.proxyHandler(ctx), "outbound_proxy")
	return g.runServer(ctx, srv, ln, false, "outbound proxy")
}

// ServeTransparent runs the transparent outbound listener on ln until ctx
// ends: TLS is accepted for whatever host the SNI names, with a minted
// certificate, and the requests inside go to that host's server.
func (g *Gateway) ServeTransparent(ctx context.Context, ln net.Listener) error {
	srv := g.httpServer(ctx, http.HandlerFunc(g.ServeOutbound), "outbound_transparent")
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: g.interceptor.GetCertificate}
	return g.runServer(ctx, srv, ln, true, "transparent listener")
}

// serveConn serves HTTP on one intercepted connection until it closes.
func (g *Gateway) serveConn(ctx context.Context, conn net.Conn, target string) {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.ServeOutbound(w, r.WithContext(context.WithValue(r.Context(), outboundTargetKey{}, target)))
	})
	srv := g.httpServer(ctx, handler, "outbound_proxy")
	ln := newConnListener(conn)
	_ = srv.Serve(ln)
	<-ln.closed
}

// bufferedConn is a connection whose first bytes were read into a buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// connListener is a listener that yields one connection, then reports
// closed once that connection is closed.
type connListener struct {
	conn   net.Conn
	once   sync.Once
	closed chan struct{}
	addr   net.Addr
}

func newConnListener(conn net.Conn) *connListener {
	return &connListener{conn: conn, closed: make(chan struct{}), addr: conn.LocalAddr()}
}

func (l *connListener) Accept() (net.Conn, error) {
	var c net.Conn
	l.once.Do(func() { c = &notifyConn{Conn: l.conn, closed: l.closed} })
	if c != nil {
		return c, nil
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *connListener) Close() error   { return nil }
func (l *connListener) Addr() net.Addr { return l.addr }

// notifyConn closes a channel when the connection is closed.
type notifyConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { close(c.closed) })
	return err
}

// upstreamFor returns where the exchange's request goes.
func (g *Gateway) upstreamFor(ex *exchange) upstream {
	if ex.flow() == policy.DirectionOutbound {
		return egressSender{client: g.egress, wellKnown: g.wellKnown}
	}
	return homeserverSender{f: g.forward}
}

// opposite returns the other direction.
func opposite(d policy.Direction) policy.Direction {
	if d == policy.DirectionOutbound {
		return policy.DirectionInbound
	}
	return policy.DirectionOutbound
}

func newInterceptor(pair KeyPairConfig) (*certs.Interceptor, error) {
	ca, err := certs.LoadCA(pair.CertFile, pair.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("outbound.intercept_ca: %w", err)
	}
	return certs.NewInterceptor(ca, certs.InterceptorOptions{}), nil
}

// checksKeyResponse reports whether the exchange fetches keys from a peer
// for the local homeserver, whose response the gateway checks.
func checksKeyResponse(ex *exchange) bool {
	if ex.flow() != policy.DirectionOutbound {
		return false
	}
	switch ex.endpointID() {
	case "key_server", "key_query", "key_query_batch":
		return true
	}
	return false
}

// checkKeyResponse verifies the self-signatures of the key objects a peer
// returns to the local homeserver. A key server's own response must be
// self-signed by the server requested. Of a notary's response, only the
// objects whose server's own signature verifies are kept.
func (g *Gateway) checkKeyResponse(ctx context.Context, ex *exchange, body []byte) ([]byte, error) {
	if ex.endpointID() == "key_server" {
		sk, err := keys.ParseServerKeys(body)
		if err == nil && sk.ServerName != ex.destination {
			err = fmt.Errorf("key response names %q, not %q", sk.ServerName, ex.destination)
		}
		if err == nil {
			err = sk.VerifySelfSignature()
		}
		if err != nil {
			return nil, wrapError(http.StatusBadGateway, codeUnknown, "remote key response rejected", err)
		}
		return body, nil
	}
	v, err := canonicaljson.Parse(body)
	if err != nil {
		return nil, wrapError(http.StatusBadGateway, codeUnknown, "notary response is not acceptable JSON", err)
	}
	requested := requestedServers(ex)
	list, _ := v.Get("server_keys")
	kept := make([]canonicaljson.Value, 0, list.Len())
	for _, obj := range list.Items() {
		if err := g.checkNotaryObject(obj, requested); err != nil {
			g.log.WarnContext(ctx, "notary key object dropped", keyDestination, ex.destination, keyErr, err)
			continue
		}
		kept = append(kept, obj)
	}
	if len(kept) == list.Len() {
		return body, nil
	}
	return canonicaljson.Encode(v.With("server_keys", canonicaljson.ArrayValue(kept...))), nil
}

// loadClientCertificate loads the gateway's client certificate, reread
// when its files change so that a renewed certificate is presented
// without a restart. It returns nil when none is configured.
func loadClientCertificate(pair KeyPairConfig, log *slog.Logger) (func() (*tls.Certificate, error), error) {
	if pair.CertFile == "" {
		return nil, nil
	}
	kp, err := certs.NewReloadingKeyPair(pair.CertFile, pair.KeyFile, certs.ReloadOptions{OnError: func(err error) {
		log.Error("client certificate not reloaded, the previous one stays in use", keyErr, err)
	}})
	if err != nil {
		return nil, fmt.Errorf("outbound.client_tls: %w", err)
	}
	return func() (*tls.Certificate, error) { return kp.Certificate(), nil }, nil
}

// requestedServers returns the servers whose keys a notary request names.
func requestedServers(ex *exchange) map[string]bool {
	requested := map[string]bool{}
	if name := ex.match.Params["server_name"]; name != "" {
		requested[name] = true
		return requested
	}
	servers, _ := ex.content.Get("server_keys")
	for _, m := range servers.Members() {
		requested[m.Key] = true
	}
	return requested
}

// checkNotaryObject accepts a key object of a notary's response only when
// it is for a server the request named, is self-signed by that server,
// and agrees with every key the allow-list pins for it.
func (g *Gateway) checkNotaryObject(obj canonicaljson.Value, requested map[string]bool) error {
	sk, err := keys.ParseServerKeys(canonicaljson.Encode(obj))
	if err != nil {
		return err
	}
	if !requested[sk.ServerName] {
		return fmt.Errorf("keys of %s were not requested", sk.ServerName)
	}
	if err := sk.VerifySelfSignature(); err != nil {
		return err
	}
	entry, ok := g.store.Lookup(sk.ServerName)
	if !ok {
		return nil
	}
	for id, pub := range sk.VerifyKeys {
		if pinned, ok := entry.PinnedKey(id); ok && !bytes.Equal(pinned, pub) {
			return fmt.Errorf("key %s of %s differs from the allow-list's pinned key", id, sk.ServerName)
		}
	}
	return nil
}

// maxDelegations bounds the delegations the gateway remembers.
const maxDelegations = 4096

// delegationMap remembers, from the .well-known answers it passed to the
// homeserver, which server name each delegated host stands for.
type delegationMap struct {
	mu     sync.Mutex // guards byHost
	byHost map[string]string
}

// serverFor returns the server name that host was delegated from.
func (d *delegationMap) serverFor(host string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name, ok := d.byHost[host]
	return name, ok
}

// learn records the delegation of serverName stated in a .well-known
// answer, under the delegated host with and without its port.
func (d *delegationMap) learn(serverName string, body []byte) {
	var answer struct {
		Server string `json:"m.server"`
	}
	if json.Unmarshal(body, &answer) != nil || servername.Validate(answer.Server) != nil || answer.Server == serverName {
		return
	}
	host, _, _ := servername.Split(answer.Server)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.byHost == nil || len(d.byHost) >= maxDelegations {
		d.byHost = map[string]string{}
	}
	d.byHost[answer.Server] = serverName
	d.byHost[host] = serverName
}

// newWellKnownClient builds the client of the homeserver's .well-known
// lookups: the same private-range dialer and roots as other onward
// connections, no redirects followed (the homeserver follows them).
func newWellKnownClient(cfg *Config, ring *keys.Ring) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.Outbound.FederationCAFile != "" {
		pool, err := certs.LoadCertPool(cfg.Outbound.FederationCAFile)
		if err != nil {
			return nil, fmt.Errorf("outbound.federation_ca_file: %w", err)
		}
		tlsCfg.RootCAs = pool
	}
	return &http.Client{
		Transport: &http.Transport{
			DialContext:           ring.Dialer().DialContext,
			TLSClientConfig:       tlsCfg,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: cfg.Outbound.Timeout,
		},
		CheckRedirect: noRedirects,
	}, nil
}
