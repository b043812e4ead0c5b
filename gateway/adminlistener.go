package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/store"
)

// openAdmin builds the admin listener's handler, authenticator and TLS
// configuration.
func (g *Gateway) openAdmin() error {
	cfg := g.cfg.Admin
	var tokens []admin.Token
	if cfg.TokenFile != "" {
		var err error
		if tokens, err = admin.LoadTokens(cfg.TokenFile); err != nil {
			return fmt.Errorf("admin.token_file: %w", err)
		}
	}
	auth, err := admin.NewAuthenticator(tokens, cfg.TLS.ClientCAFile != "")
	if err != nil {
		return fmt.Errorf("admin.token_file: %w", err)
	}
	g.adminAuth = auth
	if err := checkAdminCA(g.cfg); err != nil {
		return err
	}
	if cfg.TLS.CertFile != "" {
		config, reloader, err := certs.ServerTLSConfigReloading(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile,
			certs.ServerTLSOptions{ReloadOptions: certs.ReloadOptions{OnError: func(err error) {
				g.log.Error("admin certificate file not reloaded, the previous one stays in use", keyErr, err)
			}}})
		if err != nil {
			return fmt.Errorf("admin.tls: %w", err)
		}
		g.adminTLS, g.adminReloader = config, reloader
	}
	g.admin = admin.NewHandler(admin.Options{
		Allowlist:        adminAllowlist{g},
		Auth:             auth,
		Checks:           g.readinessChecks(),
		Metrics:          g.metrics.Handler(),
		MetricsNeedAuth:  !isLoopback(cfg.Listen),
		LocalServerNames: g.cfg.ServerNames,
		SignedLists:      g.signedListStatus,
		AuthFailures:     g.metrics.Counter("bordergate_admin_auth_failures", "Admin API requests rejected for missing or invalid authentication, by reason."),
		Logger:           g.log.With(keyComponent, "admin"),
	})
	return nil
}

// checkAdminCA rejects an admin client CA bundle that shares a CA with a
// bundle that verifies federation peers. Every peer gateway's client
// certificate would then authenticate to the allow-list API.
//
// NOTE: the check runs at start and in bordergate check. A CA added to
// the admin bundle later is taken at the next certificate reload unchecked.
func checkAdminCA(cfg *Config) error {
	adminCA := cfg.Admin.TLS.ClientCAFile
	if adminCA == "" {
		return nil
	}
	for _, federation := range []struct{ field, path string }{
		{"inbound.tls.client_ca_file", cfg.Inbound.TLS.ClientCAFile},
		{"outbound.federation_ca_file", cfg.Outbound.FederationCAFile},
	} {
		if federation.path == "" {
			continue
		}
		shared, err := certs.SharedCAs(adminCA, federation.path)
		if err != nil {
			return fmt.Errorf("admin.tls.client_ca_file: compare with %s: %w", federation.field, err)
		}
		if len(shared) > 0 {
			return fmt.Errorf("admin.tls.client_ca_file: %s shares the CA %q with %s %s, so every peer gateway's client certificate would authenticate to the admin API (give admin clients a CA of their own)",
				adminCA, shared[0], federation.field, federation.path)
		}
	}
	return nil
}

// readinessChecks are the checks of /readyz: the policy, the allow-list
// file and the decision log are loaded, and every signed list has a valid
// list in force or has been withdrawn as configured.
func (g *Gateway) readinessChecks() map[string]admin.Check {
	checks := map[string]admin.Check{
		"policy": func(context.Context) error {
			if current := g.currentPolicies(); current == nil || current.enforced == nil {
				return errors.New("policy not loaded")
			}
			return nil
		},
		"allowlist": func(context.Context) error {
			source, what := store.SourceNameFile, "allow-list file"
			if g.cfg.Allowlist.FromBundle {
				source, what = store.SourcePrefixBundle, "allow-list of the policy bundle"
			}
			if _, ok := g.store.SourceEntries(source); !ok {
				return fmt.Errorf("%s not loaded", what)
			}
			return nil
		},
		"decision_log": func(context.Context) error {
			if g.decisions == nil {
				return errors.New("decision log not open")
			}
			return nil
		},
	}
	for _, list := range g.signedLists {
		checks[list.source] = func(context.Context) error { return list.ready() }
	}
	return checks
}

// ServeAdmin runs the admin listener on ln until ctx ends.
func (g *Gateway) ServeAdmin(ctx context.Context, ln net.Listener) error {
	srv := g.httpServer(ctx, g.admin, "admin")
	srv.TLSConfig = g.adminTLS
	return g.runServer(ctx, srv, ln, g.adminTLS != nil, "admin listener")
}

// reloadAdmin rereads the admin token file and TLS files.
func (g *Gateway) reloadAdmin(ctx context.Context) error {
	var errs []error
	if file := g.cfg.Admin.TokenFile; file != "" {
		tokens, err := admin.LoadTokens(file)
		if err == nil {
			err = g.adminAuth.SetTokens(tokens)
		}
		if err != nil {
			g.log.ErrorContext(ctx, "admin tokens not reloaded, the previous ones stay in use", keyFile, file, keyErr, err)
			errs = append(errs, fmt.Errorf("reload admin tokens: %w", err))
		} else {
			g.log.InfoContext(ctx, "admin tokens reloaded", keyFile, file, keyCount, len(tokens))
		}
	}
	if g.adminReloader != nil {
		if err := g.adminReloader.Reload(); err != nil {
			g.log.ErrorContext(ctx, "admin certificates not reloaded, the previous ones stay in use", keyErr, err)
			errs = append(errs, fmt.Errorf("reload admin certificates: %w", err))
		}
	}
	return errors.Join(errs...)
}

// loadAllowlistFile reads the allow-list file and stamps its entries with
// the file's path and modification time, the closest the gateway has to
// who changed them and when.
func loadAllowlistFile(path string) ([]store.Entry, error) {
	entries, err := store.LoadAllowlist(path)
	if err != nil {
		return nil, err
	}
	var changedAt *time.Time
	if info, err := os.Stat(path); err == nil {
		modified := info.ModTime().UTC().Truncate(time.Second)
		changedAt = &modified
	}
	for i := range entries {
		entries[i].ChangedBy, entries[i].ChangedAt = path, changedAt
	}
	return entries, nil
}

// adminAllowlist is the store as the admin API changes it: each change
// also publishes the new revision for decision records.
type adminAllowlist struct {
	g *Gateway
}

var _ admin.Allowlist = adminAllowlist{}

func (a adminAllowlist) List() store.Listing { return a.g.store.List() }

func (a adminAllowlist) Revision() string { return a.g.store.Revision() }

func (a adminAllowlist) AddEntry(e store.Entry, by string) (store.Entry, error) {
	defer a.g.allowlistChanged()
	return a.g.store.AddEntry(e, by)
}

func (a adminAllowlist) PutEntry(e store.Entry, by string) (store.Entry, bool, error) {
	defer a.g.allowlistChanged()
	return a.g.store.PutEntry(e, by)
}

func (a adminAllowlist) RemoveEntry(serverName, by string) (store.Entry, error) {
	defer a.g.allowlistChanged()
	return a.g.store.RemoveEntry(serverName, by)
}

func (a adminAllowlist) ImportSource(source string, entries []store.Entry, by string) error {
	defer a.g.allowlistChanged()
	return a.g.store.ImportSource(source, entries, by)
}

func (a adminAllowlist) DeleteSource(source, by string) error {
	defer a.g.allowlistChanged()
	return a.g.store.DeleteSource(source, by)
}
