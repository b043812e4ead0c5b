// Package testfed runs a small Matrix federation of two real Dendrite
// homeservers, optionally with bordergate in front of the second or of
// both, for end-to-end tests and demos.
//
// Everything runs on loopback addresses inside a network namespace that the
// harness creates ([RunInNetns], [ReexecInNetns]), whose /etc/hosts maps
// hs1.localhost and hs2.localhost to 127.0.0.1. Without the gateway, or with
// one gateway in front of hs2 (Options.Gateway):
//
//	hs1         server name hs1.localhost:8481
//	            federation HTTPS 127.0.0.1:8481, client API http://127.0.0.1:8081
//	hs2         server name hs2.localhost:8448
//	            HTTP 127.0.0.1:8082 (client API, and the federation API
//	            that the gateway forwards to)
//	bordergate  inbound HTTPS 127.0.0.1:8448, forwarding to http://127.0.0.1:8082
//
// hs1 reaches hs2 through the gateway, but hs2 reaches hs1 directly. Without
// the gateway, hs2 itself serves HTTPS on 127.0.0.1:8448.
//
// With a gateway in front of each homeserver (Options.TwoGateways), both
// homeservers serve plain HTTP only, and all their federation crosses both
// gateways, which talk to each other over mutual TLS:
//
//	hs1       HTTP 127.0.0.1:8081 (client and federation API)
//	hs2       HTTP 127.0.0.1:8082 (client and federation API)
//	gateway1  in front of hs1: inbound HTTPS 127.0.0.3:8481 forwarding to
//	          hs1, transparent outbound listener 127.0.0.11:8448
//	gateway2  in front of hs2: inbound HTTPS 127.0.0.2:8448 forwarding to
//	          hs2, transparent outbound listener 127.0.0.12:8481
//
// The homeservers run with a hosts file of their own, in which the peer's
// name resolves to the homeserver's own gateway: hs2.localhost to
// 127.0.0.11 for hs1, hs1.localhost to 127.0.0.12 for hs2. Each gateway's
// allow-list entry for the peer pins the peer gateway's inbound address and
// requires mutual TLS, so hs1 -> gateway1 -> gateway2 -> hs2, and back the
// same way. The gateways present client certificates that name their own
// homeserver, and the homeservers trust each gateway's interception CA.
//
// Every other TLS certificate comes from a CA that [Start] creates, and every
// process trusts only that CA and, for the homeservers, the interception CAs.
package testfed

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/bordergate/bordergate/certs"
)

// loopback is the address every listener binds to.
const loopback = "127.0.0.1"

// Server names and addresses of the topology.
const (
	HS1ServerName = "hs1.localhost:8481"
	HS2ServerName = "hs2.localhost:8448"

	hs1HTTPAddr  = "127.0.0.1:8081"
	hs1HTTPSAddr = "127.0.0.1:8481"
	hs2HTTPAddr  = "127.0.0.1:8082"
	// hs2HTTPSAddr is where hs2 serves HTTPS itself, in the topology without
	// the gateway.
	hs2HTTPSAddr = "127.0.0.1:8448"
	gatewayAddr  = "127.0.0.1:8448"
)

// LocalHosts are the host names that the namespace's hosts file maps to
// 127.0.0.1: the two homeservers and hs3.localhost, a server name for
// [KeyServer] peers that are not on the allow-list.
var LocalHosts = []string{"hs1.localhost", "hs2.localhost", "hs3.localhost"}

// Options configures [Start].
type Options struct {
	// Dir receives every file of the federation: configurations, keys,
	// databases and logs. Required. It should be empty, because Dendrite
	// databases left by an earlier run do not match the new signing keys.
	Dir string

	// Gateway puts bordergate in front of hs2. When both Gateway and
	// TwoGateways are false, hs1 and hs2 federate directly.
	Gateway bool

	// TwoGateways puts a bordergate in front of each homeserver, carrying
	// its inbound and outbound federation. Gateway is then implied.
	TwoGateways bool

	// BordergateBin is the bordergate binary. Required with Gateway or
	// TwoGateways.
	BordergateBin string

	// RepoRoot is the repository root, whose rego directory holds the
	// policy. Required with Gateway or TwoGateways.
	RepoRoot string

	// GatewayLogLevel is bordergate's log.level. Default "debug".
	GatewayLogLevel string

	// GatewayConfig holds configuration fields that are merged into the
	// configuration of the gateway in front of hs2, in the form the YAML
	// file has: nested mappings are map[string]any. A mapping is merged
	// key by key, and any other value replaces what the harness wrote,
	// e.g. {"reload": {"debounce": "100ms"}}.
	GatewayConfig map[string]any

	// DendriteBinDir holds the Dendrite binaries. Default: the cache
	// directory of [EnsureDendrite], installing them when missing.
	DendriteBinDir string

	// Logger receives the harness's own progress messages. Default: none.
	Logger *slog.Logger
}

// Federation is a running set of homeservers and, optionally, the gateway.
type Federation struct {
	// HS1 is the homeserver whose traffic to HS2 crosses the gateway.
	HS1 *Homeserver
	// HS2 is the homeserver behind the gateway.
	HS2 *Homeserver
	// Gateway is bordergate in front of HS2, or nil without it.
	Gateway *Gateway
	// GatewayLog is the decision log of Gateway, or "" without it.
	GatewayLog string
	// Gateway1 is bordergate in front of HS1 with Options.TwoGateways, or
	// nil.
	Gateway1 *Gateway

	// CA issued every certificate of the federation.
	CA *certs.CA
	// CAFile is the CA certificate in PEM form.
	CAFile string
	// Dir is Options.Dir.
	Dir string
	// HTTP is a client that trusts only CA, for requests to any listener
	// of the federation.
	HTTP *http.Client

	log        *slog.Logger
	keyServers []*KeyServer
	// hostsView is the homeservers' hosts file with Options.TwoGateways.
	hostsView *hostsView
}

// Start creates the CA, starts hs1 and hs2 and, with Options.Gateway or
// Options.TwoGateways, the gateways, and waits until each of them responds.
// It must run inside the network namespace, where the host names resolve.
// On error it stops what it started.
func Start(ctx context.Context, opts Options) (*Federation, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	binDir := opts.DendriteBinDir
	if binDir == "" {
		var err error
		if binDir, err = EnsureDendrite(ctx, log); err != nil {
			return nil, err
		}
	}

	fed := &Federation{Dir: opts.Dir, log: log}
	if err := fed.start(ctx, opts, binDir); err != nil {
		fed.Close()
		return nil, err
	}
	return fed, nil
}

func (opts Options) validate() error {
	if opts.Dir == "" {
		return errors.New("start federation: Options.Dir is required")
	}
	if (opts.Gateway || opts.TwoGateways) && (opts.BordergateBin == "" || opts.RepoRoot == "") {
		return errors.New("start federation: Options.BordergateBin and Options.RepoRoot are required with Gateway or TwoGateways")
	}
	if _, inside := CurrentNetns(); !inside {
		return errors.New("start federation: not inside an e2e network namespace; use RunInNetns or ReexecInNetns")
	}
	return nil
}

func (fed *Federation) start(ctx context.Context, opts Options, binDir string) error {
	var err error
	if err = os.MkdirAll(opts.Dir, 0o755); err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	fed.CA, fed.CAFile, err = newTestCA(opts.Dir)
	if err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	fed.HTTP = newHTTPClient(fed.CA)
	// An empty SSL_CERT_DIR keeps Go programs from also trusting the
	// machine's CA directory.
	certDir := filepath.Join(opts.Dir, "empty-cert-dir")
	if err := os.MkdirAll(certDir, 0o755); err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	env := dendriteEnv{
		binDir: binDir, ca: fed.CA, caFile: fed.CAFile, certDirEnv: certDir,
		httpClient: fed.HTTP, log: fed.log,
	}
	if opts.TwoGateways {
		return fed.startTwoGateways(ctx, opts, env)
	}

	hs1 := homeserverSpec{name: "hs1", serverName: HS1ServerName, httpAddr: hs1HTTPAddr, httpsAddr: hs1HTTPSAddr}
	hs2 := homeserverSpec{name: "hs2", serverName: HS2ServerName, httpAddr: hs2HTTPAddr}
	if !opts.Gateway {
		hs2.httpsAddr = hs2HTTPSAddr
	}
	if fed.HS1, err = startHomeserver(ctx, env, hs1, filepath.Join(opts.Dir, "hs1")); err != nil {
		return err
	}
	if fed.HS2, err = startHomeserver(ctx, env, hs2, filepath.Join(opts.Dir, "hs2")); err != nil {
		return err
	}
	if !opts.Gateway {
		return nil
	}

	gatewayDir := filepath.Join(opts.Dir, "bordergate")
	fed.Gateway, err = startGateway(ctx, gatewaySpec{
		bin:         opts.BordergateBin,
		repoRoot:    opts.RepoRoot,
		serverName:  HS2ServerName,
		listenAddr:  gatewayAddr,
		upstreamURL: "http://" + hs2HTTPAddr,
		peerName:    HS1ServerName,
		peerAddress: hs1HTTPSAddr,
		caFile:      fed.CAFile,
		certDirEnv:  certDir,
		dir:         gatewayDir,
		logLevel:    opts.gatewayLogLevel(),
		ca:          fed.CA,

		configOverlay: opts.GatewayConfig,
	}, fed.log)
	if fed.Gateway != nil {
		fed.GatewayLog = fed.Gateway.DecisionLog
	}
	return err
}

func (opts Options) gatewayLogLevel() string {
	if opts.GatewayLogLevel == "" {
		return "debug"
	}
	return opts.GatewayLogLevel
}

// StartKeyServer starts a [KeyServer] for serverName, whose host part must
// be one of [LocalHosts], with a certificate from the federation's CA.
// Close stops it.
func (fed *Federation) StartKeyServer(serverName string) (*KeyServer, error) {
	ks, err := StartKeyServer(serverName, fed.CA, fed.log)
	if err != nil {
		return nil, err
	}
	fed.keyServers = append(fed.keyServers, ks)
	return ks, nil
}

// Close stops the gateways, the homeservers and the key servers, removes
// the homeservers' hosts file, and returns every error. The logs stay in
// Dir: bordergate/bordergate.log (gateway1/ and gateway2/ with
// Options.TwoGateways), hs1/dendrite.log, hs2/dendrite.log.
func (fed *Federation) Close() error {
	var errs []error
	for _, gw := range []*Gateway{fed.Gateway1, fed.Gateway} {
		if gw != nil {
			errs = append(errs, gw.Stop())
		}
	}
	for _, hs := range []*Homeserver{fed.HS1, fed.HS2} {
		if hs != nil {
			errs = append(errs, hs.Stop())
		}
	}
	for _, ks := range fed.keyServers {
		errs = append(errs, ks.Close())
	}
	fed.keyServers = nil
	if fed.hostsView != nil {
		errs = append(errs, fed.hostsView.remove())
		fed.hostsView = nil
	}
	return errors.Join(errs...)
}

// LogFiles returns the log files of every process of the federation, for
// printing when a test fails.
func (fed *Federation) LogFiles() []string {
	var files []string
	for _, hs := range []*Homeserver{fed.HS1, fed.HS2} {
		if hs != nil {
			files = append(files, hs.LogFile)
		}
	}
	for _, gw := range []*Gateway{fed.Gateway1, fed.Gateway} {
		if gw != nil {
			files = append(files, gw.LogFile)
		}
	}
	return files
}
