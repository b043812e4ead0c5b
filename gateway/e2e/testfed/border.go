package testfed

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bordergate/bordergate/certs"
)

// SecretEventType is the event type that gateway 1's policy data lists in
// "denied_event_types" in the two-gateway topology, so that hs1's events of
// this type never leave through it.
const SecretEventType = "com.example.secret"

// Addresses of the two-gateway topology. Each transparent listener has the
// port of the peer's server name, and an address of its own, which the
// homeservers' hosts file gives to the peer's host name.
const (
	gateway1InboundAddr     = "127.0.0.3:8481"
	gateway1TransparentAddr = "127.0.0.11:8448"
	gateway2InboundAddr     = "127.0.0.2:8448"
	gateway2TransparentAddr = "127.0.0.12:8481"
)

// startTwoGateways starts hs1 and hs2, each behind a gateway of its own
// that carries its inbound and its outbound federation.
func (fed *Federation) startTwoGateways(ctx context.Context, opts Options, env dendriteEnv) error {
	intercept1, err := certs.NewCA("bordergate e2e interception CA of gateway 1", certValidity)
	if err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	intercept2, err := certs.NewCA("bordergate e2e interception CA of gateway 2", certValidity)
	if err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	// The homeservers verify every peer certificate against this bundle:
	// the test CA, and the CAs that sign what the transparent listeners
	// present.
	env.caFile = filepath.Join(opts.Dir, "homeserver-trust.pem")
	bundle := append(append(fed.CA.CertPEM(), intercept1.CertPEM()...), intercept2.CertPEM()...)
	if err := os.WriteFile(env.caFile, bundle, 0o644); err != nil {
		return fmt.Errorf("start federation: write trust bundle: %w", err)
	}

	// Each homeserver resolves the other's name to its own gateway's
	// transparent listener. The gateways run with the namespace's hosts
	// file, and their allow-list addresses spare them any lookup.
	fed.hostsView, err = newHostsView(ctx, map[string]string{
		mustHost(HS2ServerName): mustHost(gateway1TransparentAddr),
		mustHost(HS1ServerName): mustHost(gateway2TransparentAddr),
	})
	if err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	env.launcher = fed.hostsView.launcher()

	hs1 := homeserverSpec{name: "hs1", serverName: HS1ServerName, httpAddr: hs1HTTPAddr}
	hs2 := homeserverSpec{name: "hs2", serverName: HS2ServerName, httpAddr: hs2HTTPAddr}
	if fed.HS1, err = startHomeserver(ctx, env, hs1, filepath.Join(opts.Dir, "hs1")); err != nil {
		return err
	}
	if fed.HS2, err = startHomeserver(ctx, env, hs2, filepath.Join(opts.Dir, "hs2")); err != nil {
		return err
	}

	common := gatewaySpec{
		bin:             opts.BordergateBin,
		repoRoot:        opts.RepoRoot,
		peerRequireMTLS: true,
		// Each gateway's inbound listener refuses, in the TLS handshake,
		// every client without a certificate from the test CA.
		requireClientCert: true,
		caFile:            fed.CAFile,
		clientCAFile:      fed.CAFile,
		certDirEnv:        env.certDirEnv,
		logLevel:          opts.gatewayLogLevel(),
		ca:                fed.CA,
	}
	spec2 := common
	spec2.name = "gateway2"
	spec2.serverName, spec2.listenAddr, spec2.upstreamURL = HS2ServerName, gateway2InboundAddr, "http://"+hs2HTTPAddr
	spec2.peerName, spec2.peerAddress = HS1ServerName, gateway1InboundAddr
	spec2.outbound = &outboundSpec{transparentListen: gateway2TransparentAddr, interceptCA: intercept2}
	spec2.dir = filepath.Join(opts.Dir, "gateway2")
	spec2.configOverlay = opts.GatewayConfig
	fed.Gateway, err = startGateway(ctx, spec2, fed.log)
	if fed.Gateway != nil {
		fed.GatewayLog = fed.Gateway.DecisionLog
	}
	if err != nil {
		return err
	}

	spec1 := common
	spec1.name = "gateway1"
	spec1.serverName, spec1.listenAddr, spec1.upstreamURL = HS1ServerName, gateway1InboundAddr, "http://"+hs1HTTPAddr
	spec1.peerName, spec1.peerAddress = HS2ServerName, gateway2InboundAddr
	spec1.peerAdministration = "Test administration two"
	spec1.outbound = &outboundSpec{transparentListen: gateway1TransparentAddr, interceptCA: intercept1}
	spec1.deniedEventTypes = []string{SecretEventType}
	spec1.dir = filepath.Join(opts.Dir, "gateway1")
	fed.Gateway1, err = startGateway(ctx, spec1, fed.log)
	return err
}
