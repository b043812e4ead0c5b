package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// Reload rereads the allow-list file and the inbound certificate files,
// and reopens the decision log file, as after log rotation, without
// stopping the listeners. An allow-list that
// fails to load or validate is rejected as a whole and the one in force
// stays; the error says why.
func (g *Gateway) Reload(ctx context.Context) error {
	var errs []error
	entries, err := store.LoadAllowlist(g.cfg.Allowlist.File)
	if err == nil {
		err = g.store.ReplaceAllowlist(entries)
	}
	if err != nil {
		g.log.ErrorContext(ctx, "allow-list not reloaded, the previous one stays in force", keyFile, g.cfg.Allowlist.File, keyErr, err)
		errs = append(errs, fmt.Errorf("reload allow-list: %w", err))
	} else {
		g.log.InfoContext(ctx, "allow-list reloaded", keyFile, g.cfg.Allowlist.File, keyCount, len(entries))
	}
	if g.reloader != nil {
		if err := g.reloader.Reload(); err != nil {
			g.log.ErrorContext(ctx, "certificates not reloaded, the previous ones stay in use", keyErr, err)
			errs = append(errs, fmt.Errorf("reload certificates: %w", err))
		}
	}
	if err := g.decisions.Reopen(); err != nil {
		g.log.ErrorContext(ctx, "decision log not reopened", keyFile, g.cfg.DecisionLog.File, keyErr, err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Check loads everything a configuration names, the allow-list, rooms seed
// file, policy, certificates and CA bundles, without listening, opening
// the decision log or writing state, and returns the first problem.
func Check(ctx context.Context, cfg *Config, log *slog.Logger) error {
	memCfg := *cfg
	memCfg.StateDir = ""
	st, err := openStore(&memCfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	clientCert, err := loadClientCertificate(cfg.Outbound.ClientTLS, log)
	if err != nil {
		return err
	}
	ring, err := newKeyRing(cfg, st, clientCert, log)
	if err != nil {
		return err
	}
	if cfg.Outbound.ProxyListen != "" || cfg.Outbound.TransparentListen != "" {
		if _, err := newEgress(cfg, ring, st, clientCert, log); err != nil {
			return err
		}
		if _, err := newInterceptor(cfg.Outbound.InterceptCA); err != nil {
			return err
		}
	}
	if file := cfg.Outbound.SigningKeyFile; file != "" {
		if _, err := loadSigningKey(file); err != nil {
			return fmt.Errorf("outbound.signing_key_file: %w", err)
		}
	}
	if _, err := policy.New(ctx, policy.Config{Paths: cfg.Policy.Paths, DataFile: cfg.Policy.DataFile, Logger: log}); err != nil {
		return fmt.Errorf("load policy: %w", err)
	}
	if _, err := newForwarder(cfg.Homeserver); err != nil {
		return err
	}
	tlsCfg := cfg.Inbound.TLS
	if tlsCfg.ACME != nil {
		// The certificate itself comes from the CA once the gateway runs.
		for _, file := range []string{tlsCfg.ACME.CARootFile, tlsCfg.ClientCAFile} {
			if file == "" {
				continue
			}
			if _, err := certs.LoadCertPool(file); err != nil {
				return fmt.Errorf("inbound tls: %w", err)
			}
		}
		return nil
	}
	if _, err := certs.ServerTLSConfig(tlsCfg.CertFile, tlsCfg.KeyFile, tlsCfg.ClientCAFile); err != nil {
		return fmt.Errorf("inbound tls: %w", err)
	}
	return nil
}
