package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/bundle"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// policyRole is the part a policy plays in the gateway.
type policyRole string

const (
	// roleEnforced is the policy whose decisions the gateway applies.
	roleEnforced policyRole = "policy"
	// roleShadow is the candidate policy that is only evaluated and
	// recorded.
	roleShadow policyRole = "shadow"
)

// Triggers of a reload, logged with its outcome.
const (
	triggerStart  = "start"
	triggerWatch  = "watch"
	triggerHangup = "sighup"
	triggerPoll   = "poll"
)

// policySource loads one policy, enforced or shadow, from files or from a
// bundle server.
type policySource struct {
	role     policyRole
	paths    []string
	dataFile string
	// bundle is nil for a policy from files.
	bundle *bundleSource
	// kinds are the kinds of decision that a shadow policy covers.
	kinds map[policy.Kind]bool
}

// name is the source label of logs and counters, such as "policy_files".
func (src *policySource) name() string {
	if src.bundle != nil {
		return string(src.role) + "_bundle"
	}
	return string(src.role) + "_files"
}

// bundleSource is a bundle server and what the gateway keeps of it.
type bundleSource struct {
	url      string
	client   *bundle.Client
	verifier *bundle.Verifier
	maxBytes int64
	interval time.Duration
	// savePath keeps the last verified archive, empty to keep none.
	savePath string

	// mu serializes refreshes of this source and guards the fields below.
	mu sync.Mutex
	// etag is the entity tag of the bundle in force. failedETag is that of
	// the last rejected bundle. It is sent instead, so that a rejected
	// bundle is not fetched and rejected again until it changes.
	etag, failedETag string
}

// newPolicySource builds the source of one policy from its configuration.
// field is the configuration field, for errors, such as "policy.bundle".
func newPolicySource(role policyRole, paths []string, dataFile string, cfg *BundleConfig, field, stateDir string) (*policySource, error) {
	src := &policySource{role: role, paths: paths, dataFile: dataFile}
	if cfg == nil {
		return src, nil
	}
	b := &bundleSource{url: cfg.URL, maxBytes: cfg.MaxBytes, interval: cfg.PollInterval}
	if stateDir != "" {
		b.savePath = filepath.Join(stateDir, "bundles", string(role)+".tar.gz")
	}
	clientCfg := bundle.ClientConfig{URL: cfg.URL, Timeout: cfg.Timeout, MaxBytes: cfg.MaxBytes}
	if cfg.CAFile != "" {
		pool, err := certs.LoadCertPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%s.ca_file: %w", field, err)
		}
		clientCfg.RootCAs = pool
	}
	if cfg.TokenFile != "" {
		token, err := os.ReadFile(cfg.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("%s.token_file: %w", field, err)
		}
		if clientCfg.Token = strings.TrimSpace(string(token)); clientCfg.Token == "" {
			return nil, fmt.Errorf("%s.token_file: %s is empty; write the bearer token in it", field, cfg.TokenFile)
		}
	}
	var err error
	if b.client, err = bundle.NewClient(clientCfg); err != nil {
		return nil, fmt.Errorf("%s.url: %w", field, err)
	}
	if b.verifier, err = newVerifier(cfg.Signing, field); err != nil {
		return nil, err
	}
	src.bundle = b
	return src, nil
}

// newVerifier reads the signing keys of a bundle configuration; nil
// signing gives a nil verifier, which accepts unsigned bundles only.
func newVerifier(signing *SigningConfig, field string) (*bundle.Verifier, error) {
	if signing == nil {
		return nil, nil
	}
	keys := make([]bundle.Key, 0, len(signing.Keys))
	for i, k := range signing.Keys {
		pem, err := os.ReadFile(k.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s.signing.keys[%d].public_key_file: %w", field, i, err)
		}
		keys = append(keys, bundle.Key{ID: k.KeyID, Algorithm: k.Algorithm, PEM: pem})
	}
	verifier, err := bundle.NewVerifier(keys, signing.Scope)
	if err != nil {
		return nil, fmt.Errorf("%s.signing.%w", field, err)
	}
	return verifier, nil
}

// newPolicySources builds the enforced and shadow sources of cfg. The
// shadow source is nil without policy.shadow.
func newPolicySources(cfg *Config) (enforced, shadow *policySource, err error) {
	p := cfg.Policy
	if enforced, err = newPolicySource(roleEnforced, p.Paths, p.DataFile, p.Bundle, "policy.bundle", cfg.StateDir); err != nil {
		return nil, nil, err
	}
	if s := p.Shadow; s != nil {
		if shadow, err = newPolicySource(roleShadow, s.Paths, s.DataFile, s.Bundle, "policy.shadow.bundle", cfg.StateDir); err != nil {
			return nil, nil, err
		}
		shadow.kinds = s.kinds()
	}
	return enforced, shadow, nil
}

// loadInitialPolicies puts the enforced and shadow policies in force at
// start. A bundle that cannot be fetched or is rejected is replaced by the
// last verified bundle saved in the state directory. Without an enforced
// policy the gateway does not start. A shadow policy that does not load is
// logged, and loaded again on the next change, poll or SIGHUP.
func (g *Gateway) loadInitialPolicies(ctx context.Context) error {
	if err := g.loadPolicy(ctx, g.enforcedSource, triggerStart); err != nil {
		return err
	}
	if src := g.shadowSource; src != nil {
		if err := g.loadPolicy(ctx, src, triggerStart); err != nil {
			g.log.ErrorContext(ctx, "shadow policy not loaded; records carry no shadow outcome until it loads",
				keySource, src.name(), keyErr, err)
		}
	}
	return nil
}

// loadPolicy loads the policy of src at start.
func (g *Gateway) loadPolicy(ctx context.Context, src *policySource, trigger string) error {
	if src.bundle == nil {
		return g.reloadPolicyFiles(ctx, src, trigger)
	}
	fetchErr := g.refreshBundle(ctx, src, trigger)
	if fetchErr == nil || src.bundle.savePath == "" {
		return fetchErr
	}
	raw, err := bundle.LoadSaved(src.bundle.savePath)
	if err != nil {
		return fmt.Errorf("%w; no saved bundle to start on: %w", fetchErr, err)
	}
	if err := g.installBundle(ctx, src, raw, "", trigger, false); err != nil {
		return fmt.Errorf("%w; saved bundle %s: %w", fetchErr, src.bundle.savePath, err)
	}
	g.log.WarnContext(ctx, "starting on the saved bundle; the bundle server's is not in force",
		keySource, src.name(), keyFile, src.bundle.savePath, keyURL, src.bundle.url)
	return nil
}

// reloadPolicy reloads the policy of src: it rereads the files, or
// requests a newer bundle from the bundle server.
func (g *Gateway) reloadPolicy(ctx context.Context, src *policySource, trigger string) error {
	if src.bundle == nil {
		return g.reloadPolicyFiles(ctx, src, trigger)
	}
	return g.refreshBundle(ctx, src, trigger)
}

// reloadPolicyFiles loads the policy files of src and puts the policy in
// force unless it is the one in force already.
func (g *Gateway) reloadPolicyFiles(ctx context.Context, src *policySource, trigger string) error {
	engine, err := policy.New(ctx, policy.Config{
		Paths: src.paths, DataFile: src.dataFile, Logger: g.policyLog(), DecisionCacheSize: g.cfg.Policy.DecisionCacheSize,
	})
	if err != nil {
		return g.reloadFailed(ctx, src.name(), string(policy.Stage(err)), trigger, err)
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	g.installEngine(ctx, src, engine, trigger)
	return nil
}

// refreshBundle fetches the bundle of src with the entity tag of the
// bundle in force, and puts a new one in force once it is verified.
func (g *Gateway) refreshBundle(ctx context.Context, src *policySource, trigger string) error {
	b := src.bundle
	b.mu.Lock()
	defer b.mu.Unlock()
	etag := b.etag
	if b.failedETag != "" {
		etag = b.failedETag
	}
	resp, err := b.client.Fetch(ctx, etag)
	if err != nil {
		return g.reloadFailed(ctx, src.name(), "fetch", trigger, err)
	}
	if resp.NotModified {
		g.log.DebugContext(ctx, "bundle not modified", keySource, src.name(), keyURL, b.url)
		return nil
	}
	if err := g.installBundle(ctx, src, resp.Body, resp.ETag, trigger, true); err != nil {
		b.failedETag = resp.ETag
		return err
	}
	return nil
}

// installBundle verifies the archive raw, compiles its policy and puts
// the policy, and for the enforced policy with allowlist.from_bundle the
// allow-list, in force. save is set for a bundle from the bundle server,
// which is kept for restarts. b.mu must be held.
func (g *Gateway) installBundle(ctx context.Context, src *policySource, raw []byte, etag, trigger string, save bool) error {
	b := src.bundle
	parsed, err := bundle.Read(raw, b.verifier, b.maxBytes)
	if err != nil {
		var bundleErr *bundle.Error
		reason := string(bundle.ReasonMalformed)
		if errors.As(err, &bundleErr) {
			reason = string(bundleErr.Reason)
		}
		return g.reloadFailed(ctx, src.name(), reason, trigger, err)
	}
	engine, err := policy.NewFromModules(ctx, policy.ModulesConfig{
		Modules: parsed.Modules, Data: parsed.Config, Revision: parsed.Revision, Logger: g.policyLog(),
		DecisionCacheSize: g.cfg.Policy.DecisionCacheSize,
	})
	if err != nil {
		return g.reloadFailed(ctx, src.name(), string(policy.Stage(err)), trigger, err)
	}
	fromBundle := src.role == roleEnforced && g.cfg.Allowlist.FromBundle
	switch {
	case fromBundle && !parsed.HasAllowlist:
		return g.reloadFailed(ctx, src.name(), string(bundle.ReasonAllowlist), trigger,
			errors.New("the bundle has no allow-list under bordergate/allowlist, and allowlist.from_bundle is set; add the allow-list to the bundle"))
	case src.role == roleEnforced && !fromBundle && parsed.HasAllowlist:
		return g.reloadFailed(ctx, src.name(), string(bundle.ReasonAllowlist), trigger,
			errors.New("the bundle carries an allow-list under bordergate/allowlist, but allowlist.from_bundle is not set; set it, or leave the allow-list out of the bundle"))
	}

	g.reloadMu.Lock()
	if fromBundle && !g.sourceUnchanged(store.SourcePrefixBundle, parsed.Allowlist) {
		if err := g.applyAllowlist(store.SourcePrefixBundle, parsed.Allowlist); err != nil {
			g.reloadMu.Unlock()
			return g.reloadFailed(ctx, src.name(), string(bundle.ReasonAllowlist), trigger, err)
		}
	}
	g.installEngine(ctx, src, engine, trigger, keyKeyID, parsed.KeyID)
	g.reloadMu.Unlock()

	b.etag = etag
	if save {
		// A bundle from the saved file leaves the entity tag of a server
		// bundle rejected at start in place, so polls do not fetch it again.
		b.failedETag = ""
	}
	if save && b.savePath != "" {
		if err := bundle.Save(b.savePath, raw); err != nil {
			g.log.WarnContext(ctx, "bundle not saved; a restart while the bundle server is down starts on an older one",
				keySource, src.name(), keyErr, err)
		}
	}
	return nil
}

// installEngine publishes engine in the role of src unless an engine
// with the same revision is in force, and logs the change with the extra
// attributes attrs. reloadMu must be held.
func (g *Gateway) installEngine(ctx context.Context, src *policySource, engine *policy.Engine, trigger string, attrs ...any) {
	current := g.currentPolicies()
	var old *policy.Engine
	if current != nil {
		old = current.enforced
		if src.role == roleShadow {
			old = current.shadow
		}
	}
	if old != nil && old.Revision() == engine.Revision() {
		g.log.DebugContext(ctx, "policy unchanged", keySource, src.name(), keyTrigger, trigger, keyRevision, engine.Revision())
		return
	}
	g.updatePolicies(func(s *policySet) {
		if src.role == roleShadow {
			s.shadow, s.shadowKinds = engine, src.kinds
			return
		}
		s.enforced = engine
	})
	oldRevision := ""
	if old != nil {
		oldRevision = old.Revision()
	}
	g.warnWithoutMaskRule(ctx, src, engine)
	g.log.InfoContext(ctx, "policy in force",
		append([]any{keyRole, string(src.role), keySource, src.name(), keyTrigger, trigger,
			keyOldRevision, oldRevision, keyNewRevision, engine.Revision()}, attrs...)...)
	g.counters.reloads.Add(ctx, 1, sourceAttribute(src.name()))
}

// reloadAllowlistFile loads the allow-list file and puts it in force
// unless it holds the entries in force already.
func (g *Gateway) reloadAllowlistFile(ctx context.Context, trigger string) error {
	const source = "allowlist_file"
	file := g.cfg.Allowlist.File
	entries, err := loadAllowlistFile(file)
	if err != nil {
		return g.reloadFailed(ctx, source, string(bundle.ReasonAllowlist), trigger, err)
	}
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	oldRevision := g.allowlistInForce()
	if g.sourceUnchanged(store.SourceNameFile, entries) {
		g.log.DebugContext(ctx, "allow-list unchanged", keyFile, file, keyTrigger, trigger)
		return nil
	}
	if err := g.applyAllowlist(store.SourceNameFile, entries); err != nil {
		return g.reloadFailed(ctx, source, string(bundle.ReasonAllowlist), trigger, err)
	}
	g.log.InfoContext(ctx, "allow-list in force", keyFile, file, keyCount, len(entries), keyTrigger, trigger,
		keyOldRevision, oldRevision, keyNewRevision, g.allowlistInForce())
	g.counters.reloads.Add(ctx, 1, sourceAttribute(source))
	return nil
}

// reloadFailed logs and counts an update that was rejected, and returns
// err wrapped with its source.
func (g *Gateway) reloadFailed(ctx context.Context, source, reason, trigger string, err error) error {
	if reason == "" {
		reason = "other"
	}
	g.log.ErrorContext(ctx, "update rejected, the one in force stays",
		keySource, source, keyReason, reason, keyTrigger, trigger, keyErr, err)
	g.counters.reloadFailures.Add(ctx, 1, sourceAttribute(source), reasonAttribute(reason))
	verb := "reload"
	if trigger == triggerStart {
		verb = "load"
	}
	return fmt.Errorf("%s %s: %w", verb, sourceNames[source], err)
}

// sourceNames are the names of the sources in error messages.
var sourceNames = map[string]string{
	"policy_files":   "policy",
	"policy_bundle":  "policy bundle",
	"shadow_files":   "shadow policy",
	"shadow_bundle":  "shadow policy bundle",
	"allowlist_file": "allow-list",
}

func (g *Gateway) policyLog() *slog.Logger {
	return g.log.With(keyComponent, "policy")
}
