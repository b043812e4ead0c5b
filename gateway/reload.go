package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/signedlist"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// Reload rereads the allow-list file and the policy files, asks the
// bundle servers for newer bundles, rereads the inbound certificate files
// and the keys of the signed lists, and reopens the decision log file, as after log rotation, without
// stopping the listeners. SIGHUP calls it. An allow-list or policy that
// fails to load is rejected whole and the one in force stays; the error
// says why.
func (g *Gateway) Reload(ctx context.Context) error {
	var errs []error
	if g.cfg.Allowlist.File != "" {
		errs = append(errs, g.reloadAllowlistFile(ctx, triggerHangup))
	}
	for _, src := range []*policySource{g.enforcedSource, g.shadowSource} {
		if src != nil {
			errs = append(errs, g.reloadPolicy(ctx, src, triggerHangup))
		}
	}
	if g.reloader != nil {
		if err := g.reloader.Reload(); err != nil {
			g.log.ErrorContext(ctx, "certificates not reloaded, the previous ones stay in use", keyErr, err)
			errs = append(errs, fmt.Errorf("reload certificates: %w", err))
		}
	}
	if err := g.reloadAdmin(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := g.reloadSignedListKeys(ctx); err != nil {
		errs = append(errs, err)
	}
	g.refreshSignedLists(ctx)
	if err := g.decisions.Reopen(); err != nil {
		g.log.ErrorContext(ctx, "decision log not reopened", keyFile, g.cfg.DecisionLog.File, keyErr, err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReloadOnHangup calls Reload on each SIGHUP until ctx ends. Reload logs
// its own errors.
func (g *Gateway) ReloadOnHangup(ctx context.Context) {
	hangups := make(chan os.Signal, 1)
	signal.Notify(hangups, syscall.SIGHUP)
	defer signal.Stop(hangups)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hangups:
			_ = g.Reload(ctx)
		}
	}
}

// Check loads everything a configuration names, the allow-list, rooms seed
// file, policy, certificates and CA bundles, without listening, opening
// the decision log or writing state, and returns the first problem. A
// bundle is not fetched: Check reads its signing keys, CA file and token
// file only.
func Check(ctx context.Context, cfg *Config, log *slog.Logger) error {
	memCfg := *cfg
	memCfg.StateDir = ""
	st, err := openStore(&memCfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	if cfg.Allowlist.File != "" {
		entries, err := store.LoadAllowlist(cfg.Allowlist.File)
		if err == nil {
			err = st.ReplaceAllowlist(entries)
		}
		if err != nil {
			return fmt.Errorf("load allow-list: %w", err)
		}
	}
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
	if _, err := loadAuditSigner(cfg.DecisionLog.SigningKeyFile); err != nil {
		return err
	}
	if err := checkPolicies(ctx, &memCfg, log); err != nil {
		return err
	}
	if _, err := newForwarder(cfg.Homeserver); err != nil {
		return err
	}
	if err := checkAdminAndLists(cfg); err != nil {
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

// checkPolicies loads the enforced and shadow policies that come from
// files, and the keys, CA and token files of those that come from bundles.
func checkPolicies(ctx context.Context, cfg *Config, log *slog.Logger) error {
	enforced, shadow, err := newPolicySources(cfg)
	if err != nil {
		return err
	}
	for _, src := range []*policySource{enforced, shadow} {
		if src == nil || src.bundle != nil {
			continue
		}
		if _, err := policy.New(ctx, policy.Config{Paths: src.paths, DataFile: src.dataFile, Logger: log, DecisionCacheSize: cfg.Policy.DecisionCacheSize}); err != nil {
			if src.role == roleShadow {
				return fmt.Errorf("load shadow policy: %w", err)
			}
			return fmt.Errorf("load policy: %w", err)
		}
	}
	return nil
}

// checkAdminAndLists loads the admin token file and TLS files and the keys
// of every signed list.
func checkAdminAndLists(cfg *Config) error {
	if file := cfg.Admin.TokenFile; file != "" {
		if _, err := admin.LoadTokens(file); err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
	}
	if t := cfg.Admin.TLS; t.CertFile != "" {
		if _, err := certs.ServerTLSConfig(t.CertFile, t.KeyFile, t.ClientCAFile); err != nil {
			return fmt.Errorf("admin.tls: %w", err)
		}
	}
	if err := checkAdminCA(cfg); err != nil {
		return err
	}
	for _, list := range cfg.Allowlist.SignedLists {
		if _, err := signedlist.LoadKeys(list.KeysFile); err != nil {
			return fmt.Errorf("allowlist.signed_lists %s: keys_file: %w", list.Name, err)
		}
	}
	return nil
}
