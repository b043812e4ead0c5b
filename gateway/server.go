// Package gateway is the bordergate server: it authenticates, verifies and
// decides every inbound federation request, PDU and EDU, records each
// decision, and forwards what is allowed to the local homeserver.
package gateway

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/decisionlog/ship"
	"github.com/bordergate/bordergate/gateway/egress"
	"github.com/bordergate/bordergate/gateway/internal/lograte"
	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/gateway/telemetry"
)

// keyRing is what the pipeline needs of the key ring.
type keyRing interface {
	keys.Lookup
	// RefreshServer refetches the keys of serverName.
	RefreshServer(ctx context.Context, serverName string) error
}

// Gateway is the inbound federation gateway. It is an http.Handler for
// the inbound listener.
type Gateway struct {
	cfg       *Config
	log       *slog.Logger
	store     *store.Store
	keys      keyRing
	decisions *decisionlog.Writer
	// shipper sends the committed records to a decision-log service; nil
	// without decision_log.ship.
	shipper *ship.Shipper
	forward *forwarder
	tls     *tls.Config
	now     func() time.Time
	// slots bounds the requests in progress; each holds one token.
	slots chan struct{}
	// local caches the local homeserver's verify keys.
	local *localKeys
	// reloader rereads the inbound certificate files and client CA bundle;
	// nil with ACME, which renews certificates itself.
	reloader *certs.Reloader
	// acme manages the inbound certificate when it comes from ACME.
	acme *certs.ACMEManager
	// egress sends outbound requests to peers, and interceptor mints the
	// certificates the outbound listeners present to the homeserver; both
	// are nil without an outbound listener.
	egress      *egress.Client
	interceptor *certs.Interceptor
	// clientCert returns the gateway's client certificate for peers that
	// require mutual TLS, for key fetches and outbound requests alike; nil
	// without outbound.client_tls.
	clientCert func() (*tls.Certificate, error)
	// wellKnown fetches peers' .well-known/matrix/server for the
	// homeserver, and delegations remembers what those answers delegated.
	wellKnown   *http.Client
	delegations delegationMap
	// handshakeRecords bounds the records of refused TLS handshakes.
	handshakeRecords *recordLimiter
	// resign is the homeserver's signing key for re-signed outbound
	// transactions; nil keeps the key out of the gateway.
	resign *signingKey
	// metrics creates the gateway's counters and serves their values.
	metrics *telemetry.Metrics
	// logCounters count mask failures and shipped and dropped records;
	// maskFailureLog limits the log entries of mask failures.
	logCounters    decisionLogCounters
	maskFailureLog lograte.Limiter

	// policies is the policy set in force. Each exchange loads it once;
	// reloads publish a new set, serialized by reloadMu.
	policies atomic.Pointer[policySet]
	reloadMu sync.Mutex
	// enforcedSource and shadowSource load the enforced and the shadow
	// policy; shadowSource is nil without policy.shadow.
	enforcedSource, shadowSource *policySource
	counters                     policyCounters
	// background runs the file watcher and the bundle pollers until
	// stopBackground is called.
	background     sync.WaitGroup
	stopBackground context.CancelFunc
	// admin serves the admin listener; adminAuth authenticates its API
	// requests. adminTLS and adminReloader are nil when it serves plain
	// HTTP.
	admin         *admin.Handler
	adminAuth     *admin.Authenticator
	adminTLS      *tls.Config
	adminReloader *certs.Reloader
	// signedLists keep the signed federation lists fresh, in the
	// background.
	signedLists []*signedListSource
	// sourceContent maps each allow-list source that applyAllowlist put
	// in force to the hash of its entries. reloadMu guards it.
	sourceContent map[string]string
}

// New builds a gateway from a validated configuration: it loads the
// allow-list, the rooms table and the policy, opens the decision log, and
// starts watching the policy and allow-list files and polling the bundle
// servers until ctx ends or Close is called.
func New(ctx context.Context, cfg *Config, log *slog.Logger) (*Gateway, error) {
	return newWithClock(ctx, cfg, log, time.Now)
}

// newWithClock is New with the gateway's clock, which tests set before
// the background work starts reading it.
func newWithClock(ctx context.Context, cfg *Config, log *slog.Logger, now func() time.Time) (*Gateway, error) {
	g := &Gateway{cfg: cfg, log: log, now: now, slots: make(chan struct{}, cfg.Inbound.MaxConcurrentRequests)}
	g.local = &localKeys{g: g}
	g.handshakeRecords = &recordLimiter{log: func(n int) {
		log.Warn("refused TLS handshakes not recorded, over the rate", keyCount, n)
	}}
	if err := g.open(ctx); err != nil {
		g.Close()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) open(ctx context.Context) error {
	var err error
	if g.metrics, err = telemetry.New(); err != nil {
		return err
	}
	g.counters = newPolicyCounters(g.metrics)
	g.logCounters = newDecisionLogCounters(g.metrics)
	g.maskFailureLog.Interval = maskFailureLogInterval
	if g.store, err = openStore(g.cfg, g.log); err != nil {
		return err
	}
	if g.enforcedSource, g.shadowSource, err = newPolicySources(g.cfg); err != nil {
		return err
	}
	if g.cfg.Allowlist.File != "" {
		if err := g.reloadAllowlistFile(ctx, triggerStart); err != nil {
			return err
		}
	}
	if g.clientCert, err = loadClientCertificate(g.cfg.Outbound.ClientTLS, g.log); err != nil {
		return err
	}
	ring, err := newKeyRing(g.cfg, g.store, g.clientCert, g.log)
	if err != nil {
		return err
	}
	g.keys = ring
	if g.cfg.Outbound.ProxyListen != "" || g.cfg.Outbound.TransparentListen != "" {
		if g.egress, err = newEgress(g.cfg, ring, g.store, g.clientCert, g.log); err != nil {
			return err
		}
		if g.interceptor, err = newInterceptor(g.cfg.Outbound.InterceptCA); err != nil {
			return err
		}
		if g.wellKnown, err = newWellKnownClient(g.cfg, ring); err != nil {
			return err
		}
		if file := g.cfg.Outbound.SigningKeyFile; file != "" {
			if g.resign, err = loadSigningKey(file); err != nil {
				return fmt.Errorf("outbound.signing_key_file: %w", err)
			}
			g.log.Warn("outbound re-signing enabled: the gateway holds the homeserver's signing key", keyFile, file)
		}
	}
	if err := g.loadInitialPolicies(ctx); err != nil {
		return err
	}
	if g.shipper, err = g.openShipper(); err != nil {
		return err
	}
	if g.decisions, err = g.openDecisionLog(); err != nil {
		return err
	}
	if g.forward, err = newForwarder(g.cfg.Homeserver); err != nil {
		return err
	}
	if err := g.openInboundTLS(ctx); err != nil {
		return fmt.Errorf("inbound tls: %w", err)
	}
	if err := g.openSignedLists(ctx); err != nil {
		return err
	}
	if err := g.openAdmin(); err != nil {
		return err
	}
	background, stop := context.WithCancel(ctx)
	g.stopBackground = stop
	g.startSignedLists(background)
	return g.startPolicyUpdates(background)
}

// openStore opens the store and seeds its rooms table. The allow-list is
// loaded by the policy sources.
func openStore(cfg *Config, log *slog.Logger) (*store.Store, error) {
	st, err := store.New(store.Options{StateDir: cfg.StateDir, Logger: log.With(keyComponent, "store")})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if cfg.Rooms.SeedFile != "" {
		if err := st.SeedRooms(cfg.Rooms.SeedFile); err != nil {
			st.Close()
			return nil, fmt.Errorf("seed rooms: %w", err)
		}
	}
	return st, nil
}

// recordLabels are the labels of every decision record: the gateway
// instance (its host name) and the local server it guards.
func recordLabels(cfg *Config) map[string]string {
	labels := map[string]string{"server_name": cfg.ServerNames[0]}
	if host, err := os.Hostname(); err == nil {
		labels["id"] = host
	}
	return labels
}

func newKeyRing(cfg *Config, st *store.Store, clientCert func() (*tls.Certificate, error), log *slog.Logger) (*keys.Ring, error) {
	notaries, err := notaryConfig(cfg.Keys.NotaryServers)
	if err != nil {
		return nil, err
	}
	var allowed []netip.Prefix
	for _, p := range cfg.Keys.AllowedNetworks {
		allowed = append(allowed, netip.MustParsePrefix(p))
	}
	ringCfg := keys.Config{
		Entries:           newKeyEntryCache(st).lookup,
		Notaries:          notaries,
		AllowPrivate:      cfg.Keys.AllowPrivateNetworks,
		AllowedNetworks:   allowed,
		FetchTimeout:      cfg.Keys.FetchTimeout,
		ClientCertificate: clientCert,
		Logger:            log.With(keyComponent, "keys"),
	}
	if cfg.Keys.CAFile != "" {
		if ringCfg.RootCAs, err = certs.LoadCertPool(cfg.Keys.CAFile); err != nil {
			return nil, fmt.Errorf("keys.ca_file: %w", err)
		}
	}
	ring, err := keys.NewRing(ringCfg)
	if err != nil {
		return nil, fmt.Errorf("key ring: %w", err)
	}
	return ring, nil
}

func notaryConfig(list []NotaryConfig) ([]keys.Notary, error) {
	out := make([]keys.Notary, 0, len(list))
	for i, n := range list {
		notary := keys.Notary{ServerName: n.ServerName, Address: n.Address, Keys: map[string]ed25519.PublicKey{}}
		for id, encoded := range n.Keys {
			pub, err := decodePublicKey(encoded)
			if err != nil {
				return nil, bad(fmt.Sprintf("keys.notary_servers[%d].keys[%s]", i, id), err.Error(),
					"write the 43-character unpadded base64 key from the notary's /_matrix/key/v2/server")
			}
			notary.Keys[id] = pub
		}
		out = append(out, notary)
	}
	return out, nil
}

// Serve runs the inbound listener and the configured outbound listeners
// until ctx ends or one of them fails, then shuts them all down
// gracefully.
func (g *Gateway) Serve(ctx context.Context) error {
	type listener struct {
		addr  string
		serve func(context.Context, net.Listener) error
	}
	all := []listener{{g.cfg.Inbound.Listen, g.ServeListener}, {g.cfg.Admin.Listen, g.ServeAdmin}}
	if a := g.cfg.Outbound.ProxyListen; a != "" {
		all = append(all, listener{a, g.ServeProxy})
	}
	if a := g.cfg.Outbound.TransparentListen; a != "" {
		all = append(all, listener{a, g.ServeTransparent})
	}
	lns := make([]net.Listener, 0, len(all))
	for _, l := range all {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, open := range lns {
				open.Close()
			}
			return fmt.Errorf("listen on %s: %w", l.addr, err)
		}
		lns = append(lns, ln)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(all))
	for i, l := range all {
		go func() { errs <- l.serve(ctx, lns[i]) }()
	}
	var first error
	for range all {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// ServeListener runs the inbound listener on ln until ctx ends.
func (g *Gateway) ServeListener(ctx context.Context, ln net.Listener) error {
	srv := g.httpServer(ctx, g, "http")
	srv.TLSConfig = g.tls
	return g.runServer(ctx, srv, ln, true, "inbound listener")
}

func (g *Gateway) httpServer(ctx context.Context, h http.Handler, component string) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: g.cfg.Inbound.ReadHeaderTimeout,
		ReadTimeout:       g.cfg.Inbound.ReadTimeout,
		IdleTimeout:       g.cfg.Inbound.IdleTimeout,
		// net/http reports failed TLS handshakes here, such as a client
		// certificate from an untrusted CA, which never reach a handler
		// and so have no decision record.
		ErrorLog:    slog.NewLogLogger(g.log.With(keyComponent, component).Handler(), slog.LevelInfo),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
}

// runServer serves srv on ln until ctx ends, then shuts it down
// gracefully.
func (g *Gateway) runServer(ctx context.Context, srv *http.Server, ln net.Listener, useTLS bool, name string) error {
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	g.log.Info("listener started", keyListener, name, keyAddress, ln.Addr().String(), keyServerNames, g.cfg.ServerNames)
	var err error
	if useTLS {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		<-done
		g.log.Info("listener stopped", keyListener, name, keyAddress, ln.Addr().String())
		return nil
	}
	return fmt.Errorf("%s: %w", name, err)
}

// Close stops the file watcher and the bundle pollers, and releases the
// decision log and the store.
func (g *Gateway) Close() error {
	if g.stopBackground != nil {
		g.stopBackground()
	}
	g.background.Wait()
	var errs []error
	if g.decisions != nil {
		errs = append(errs, g.decisions.Close())
	}
	if g.shipper != nil {
		// After the decision log, whose last batches it takes.
		errs = append(errs, g.shipper.Close())
	}
	if g.acme != nil {
		g.acme.Close()
	}
	if g.store != nil {
		errs = append(errs, g.store.Close())
	}
	errs = append(errs, g.metrics.Shutdown(context.Background()))
	return errors.Join(errs...)
}

// openInboundTLS builds the inbound listener's TLS configuration: the
// server certificate from files, reread when they change, or from ACME,
// and client certificates verified against the client CA bundle.
func (g *Gateway) openInboundTLS(ctx context.Context) error {
	tlsCfg := g.cfg.Inbound.TLS
	if acme := tlsCfg.ACME; acme != nil {
		mgr, err := certs.NewACMEManager(ctx, certs.ACMEConfig{
			CAURL: acme.CAURL, CARootFile: acme.CARootFile, Email: acme.Email, Domains: acme.Domains,
			StorageDir: filepath.Join(g.cfg.StateDir, "acme"), HTTPChallengeAddr: acme.HTTPChallengeListen,
			TLSALPNOnInbound: acme.TLSALPNOnInbound, Logger: g.log.With(keyComponent, "acme"),
			TLSALPNChallengeAddr: tlsALPNAddr(g.cfg),
		})
		if err != nil {
			return err
		}
		g.acme, g.tls = mgr, mgr.TLSConfig()
		if tlsCfg.ClientCAFile != "" {
			pool, err := certs.LoadCertPool(tlsCfg.ClientCAFile)
			if err != nil {
				return err
			}
			g.tls.ClientCAs, g.tls.ClientAuth = pool, tls.VerifyClientCertIfGiven
		}
	} else {
		config, reloader, err := certs.ServerTLSConfigReloading(tlsCfg.CertFile, tlsCfg.KeyFile, tlsCfg.ClientCAFile,
			certs.ServerTLSOptions{ReloadOptions: certs.ReloadOptions{OnError: func(err error) {
				g.log.Error("certificate file not reloaded, the previous one stays in use", keyErr, err)
			}}})
		if err != nil {
			return err
		}
		g.tls, g.reloader = config, reloader
	}
	if tlsCfg.RequireClientCertificate {
		g.requireClientCertificates()
	}
	return nil
}

// requireClientCertificates makes every handshake of the inbound listener
// end without a client certificate, recorded, on top of whatever per
// connection configuration the listener already derives.
func (g *Gateway) requireClientCertificates() {
	base := g.tls.Clone()
	derive := base.GetConfigForClient
	g.tls.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		conn := base
		if derive != nil {
			derived, err := derive(hello)
			if err != nil {
				return nil, err
			}
			if derived != nil {
				conn = derived
			}
		}
		conn = conn.Clone()
		conn.GetConfigForClient = nil
		remote := hello.Conn.RemoteAddr().String()
		conn.VerifyConnection = func(cs tls.ConnectionState) error { return g.requireClientCertificate(cs, remote) }
		return conn, nil
	}
}

// tlsALPNAddr is where TLS-ALPN-01 challenges are answered when the
// inbound listener answers them itself.
func tlsALPNAddr(cfg *Config) string {
	if cfg.Inbound.TLS.ACME == nil || !cfg.Inbound.TLS.ACME.TLSALPNOnInbound {
		return ""
	}
	return cfg.Inbound.Listen
}
