package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bordergate/bordergate/gateway/servername"
)

// Defaults of [Config].
const (
	// DefaultFetchTimeout bounds one fetch of a server's keys, the direct
	// request and every notary query together.
	DefaultFetchTimeout = 10 * time.Second
	// DefaultRefetchInterval is the shortest time between two fetches of
	// one server's keys.
	DefaultRefetchInterval = time.Minute
)

// errRefetchLimited reports that a fetch was skipped because the server's
// keys were fetched less than the refetch interval ago.
var errRefetchLimited = errors.New("keys fetched recently, refetch skipped")

// EntryInfo is the part of a server's allow-list entry that the ring uses.
type EntryInfo struct {
	// PinnedKeys are keys by key ID that are trusted without any fetch.
	PinnedKeys map[string]ed25519.PublicKey
	// RevokedKeys are key IDs ("ed25519:old") or unpadded base64 public
	// keys that are rejected wherever they come from.
	RevokedKeys []string
	// Address is a host:port to fetch keys from in place of discovery.
	// It is dialled without the private-address check, because the
	// operator configured it, and the certificate must be valid for the
	// host of the server name.
	Address string
}

// revokes reports whether the entry revokes the key keyID with public key
// pub; pub may be nil when only the ID is known.
func (e EntryInfo) revokes(keyID string, pub ed25519.PublicKey) bool {
	for _, revoked := range e.RevokedKeys {
		if revoked == keyID {
			return true
		}
		if pub == nil || strings.Contains(revoked, ":") {
			continue
		}
		if raw, err := decodeBase64(revoked); err == nil && bytes.Equal(raw, pub) {
			return true
		}
	}
	return false
}

// Notary is a trusted notary server, queried with POST
// /_matrix/key/v2/query when a server's own key server cannot be reached.
type Notary struct {
	// ServerName is the notary's Matrix server name.
	ServerName string
	// Address is a host:port to connect to in place of discovery. Like an
	// allow-list address, it is dialled without the private-address check
	// and the certificate must be valid for the host of ServerName.
	Address string
	// Keys are the notary's own keys by key ID. When set, every response
	// must carry a valid notary signature by one of them; when empty, only
	// TLS authenticates the notary.
	Keys map[string]ed25519.PublicKey
}

// Config configures [NewRing]. The zero Config is usable: no allow-list
// entries, no notaries, private addresses rejected, system roots.
type Config struct {
	// Entries returns the allow-list information of a server, and false
	// when the server has no entry. nil means no server has one.
	Entries func(serverName string) (EntryInfo, bool)
	// Notaries are asked in order when a server's own key server fails.
	Notaries []Notary
	// AllowPrivate lets discovery and key fetches connect to private,
	// loopback and other internal addresses.
	AllowPrivate bool
	// AllowedNetworks are internal ranges that discovery and key fetches
	// may connect to even without AllowPrivate.
	AllowedNetworks []netip.Prefix
	// RootCAs verifies key servers, .well-known servers and notaries; nil
	// means the system roots.
	RootCAs *x509.CertPool
	// ClientCertificate returns the gateway's client certificate, presented
	// to key servers that ask for one, as peer gateways requiring mutual
	// TLS do. Nil means none is presented.
	ClientCertificate func() (*tls.Certificate, error)
	// Resolver looks up DNS records; nil means net.DefaultResolver.
	Resolver Resolver
	// FetchTimeout bounds one fetch of a server's keys; zero means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	// RefetchInterval is the shortest time between two fetches of one
	// server's keys, however many unknown key IDs or refresh requests
	// arrive; zero means DefaultRefetchInterval.
	RefetchInterval time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Logger receives fetch records (debug) and failures (warn); nil
	// discards them.
	Logger *slog.Logger
}

// Ring finds verify keys of remote servers and implements [Lookup]. A key
// pinned in the server's allow-list entry wins. Otherwise the ring returns
// a cached key while it is valid, and fetches the server's keys from its
// own key server, then from the notaries, when the key is missing or its
// validity has ended. A key response is used only when its server_name is
// the server asked about and its self-signature verifies. A key revoked in
// the entry is rejected with [ErrRevokedKey] wherever it comes from.
// Pinned keys do not restrict other key IDs, which are still fetched.
//
// The ring is safe for concurrent use. Concurrent lookups for one server
// share one fetch, and a server's keys are fetched at most once per
// RefetchInterval, so unknown key IDs cannot cause a storm of fetches.
//
// NOTE: the cache has no size limit and keeps every key it fetched; callers
// bound it by looking up only allow-listed servers.
type Ring struct {
	entries         func(string) (EntryInfo, bool)
	notaries        []Notary
	rootCAs         *x509.CertPool
	clientCert      func() (*tls.Certificate, error)
	resolver        Resolver
	dialer          *Dialer
	discovery       *Discovery
	fetchTimeout    time.Duration
	refetchInterval time.Duration
	now             func() time.Time
	log             *slog.Logger

	mu      sync.Mutex // guards keys and servers
	keys    map[keyRef]VerifyKey
	servers map[string]*serverState
}

var _ Lookup = (*Ring)(nil)

// keyRef identifies a cached key.
type keyRef struct {
	server string
	keyID  string
}

// serverState is the fetch state of one server.
type serverState struct {
	// lastFetch is when the last fetch started, successful or not.
	lastFetch time.Time
	// inflight is the running fetch, or nil.
	inflight *fetchCall
}

// fetchCall is one fetch shared by every lookup that waits for it; err is
// written before done is closed.
type fetchCall struct {
	done chan struct{}
	err  error
}

// NewRing returns a Ring configured by cfg. It fails on an invalid notary.
func NewRing(cfg Config) (*Ring, error) {
	for i, n := range cfg.Notaries {
		if err := checkNotary(n); err != nil {
			return nil, fmt.Errorf("notary %d: %w", i, err)
		}
	}
	r := &Ring{
		entries:         cfg.Entries,
		notaries:        slices.Clone(cfg.Notaries),
		rootCAs:         cfg.RootCAs,
		clientCert:      cfg.ClientCertificate,
		resolver:        cfg.Resolver,
		fetchTimeout:    cfg.FetchTimeout,
		refetchInterval: cfg.RefetchInterval,
		now:             cfg.Now,
		log:             cfg.Logger,
		keys:            map[keyRef]VerifyKey{},
		servers:         map[string]*serverState{},
	}
	if r.entries == nil {
		r.entries = func(string) (EntryInfo, bool) { return EntryInfo{}, false }
	}
	if r.resolver == nil {
		r.resolver = net.DefaultResolver
	}
	if r.fetchTimeout <= 0 {
		r.fetchTimeout = DefaultFetchTimeout
	}
	if r.refetchInterval <= 0 {
		r.refetchInterval = DefaultRefetchInterval
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.dialer = &Dialer{
		AllowPrivate:    cfg.AllowPrivate,
		AllowedNetworks: slices.Clone(cfg.AllowedNetworks),
		Resolver:        r.resolver,
		Timeout:         r.fetchTimeout,
	}
	r.discovery = NewDiscovery(DiscoveryConfig{
		Resolver: r.resolver,
		Dialer:   r.dialer,
		RootCAs:  r.rootCAs,
		Timeout:  r.fetchTimeout,
		Now:      r.now,
		Logger:   r.log,
	})
	return r, nil
}

func checkNotary(n Notary) error {
	if err := servername.Validate(n.ServerName); err != nil {
		return err
	}
	if n.Address != "" {
		if _, _, err := net.SplitHostPort(n.Address); err != nil {
			return fmt.Errorf("address of %s: %w", n.ServerName, err)
		}
	}
	for keyID, pub := range n.Keys {
		if !strings.HasPrefix(keyID, ed25519Prefix) || len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("key %q of %s is not an Ed25519 key", keyID, n.ServerName)
		}
	}
	return nil
}

// Discovery returns the server discovery the ring uses, with its
// .well-known cache, so that other connections to remote servers can share
// it.
func (r *Ring) Discovery() *Discovery { return r.discovery }

// Dialer returns the address-checking dialer the ring uses for servers
// found by discovery.
func (r *Ring) Dialer() *Dialer { return r.dialer }

// LookupKey returns the key keyID of serverName. A cached key whose
// validity has ended is fetched again, and returned as it is when the
// fetch fails or is skipped, so that callers can still check events of
// room versions that ignore key validity. Callers must check the returned
// key with [VerifyKey.ValidForRequestAt] or [VerifyKey.ValidForEventAt].
// Errors wrap [ErrUnknownKey] or [ErrRevokedKey].
func (r *Ring) LookupKey(ctx context.Context, serverName, keyID string) (VerifyKey, error) {
	entry, _ := r.entries(serverName)
	if entry.revokes(keyID, nil) {
		return VerifyKey{}, fmt.Errorf("%w: %s of %s", ErrRevokedKey, keyID, serverName)
	}
	if pub, ok := entry.PinnedKeys[keyID]; ok {
		return checkRevoked(entry, VerifyKey{
			ServerName: serverName,
			KeyID:      keyID,
			Public:     pub,
			Source:     SourcePinned,
		})
	}

	k, cached := r.cachedKey(serverName, keyID)
	if cached && r.now().Before(k.ValidUntil) {
		return checkRevoked(entry, k)
	}

	fetchErr := r.fetch(ctx, serverName, keyID)
	if k, cached = r.cachedKey(serverName, keyID); cached {
		return checkRevoked(entry, k)
	}
	if fetchErr != nil {
		return VerifyKey{}, fmt.Errorf("%w: %s of %s: %w", ErrUnknownKey, keyID, serverName, fetchErr)
	}
	return VerifyKey{}, fmt.Errorf("%w: %s of %s: not published", ErrUnknownKey, keyID, serverName)
}

// RefreshServer fetches the keys of serverName again, replacing cached
// keys whose ID the server now publishes with a different public key. Call
// it once when a signature fails with a cached key, because servers reuse
// key IDs after generating a new key. When a fetch started less than
// RefetchInterval ago, it returns nil without fetching, so that a stream
// of bad signatures cannot cause a stream of fetches.
func (r *Ring) RefreshServer(ctx context.Context, serverName string) error {
	err := r.fetch(ctx, serverName, "")
	if errors.Is(err, errRefetchLimited) {
		return nil
	}
	return err
}

func checkRevoked(entry EntryInfo, k VerifyKey) (VerifyKey, error) {
	if entry.revokes(k.KeyID, k.Public) {
		return VerifyKey{}, fmt.Errorf("%w: %s of %s", ErrRevokedKey, k.KeyID, k.ServerName)
	}
	return k, nil
}

func (r *Ring) cachedKey(serverName, keyID string) (VerifyKey, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k, ok := r.keys[keyRef{serverName, keyID}]
	return k, ok
}

// fetch fetches and caches the keys of serverName, or waits for the fetch
// already running. keyID, when not empty, is the key the caller needs.
// It returns errRefetchLimited without fetching when the last fetch
// started less than the refetch interval ago.
func (r *Ring) fetch(ctx context.Context, serverName, keyID string) error {
	r.mu.Lock()
	st := r.servers[serverName]
	if st == nil {
		st = &serverState{}
		r.servers[serverName] = st
	}
	call := st.inflight
	if call == nil {
		now := r.now()
		if !st.lastFetch.IsZero() && now.Sub(st.lastFetch) < r.refetchInterval {
			r.mu.Unlock()
			r.log.DebugContext(ctx, "key refetch skipped", "origin", serverName, "key_id", keyID)
			return errRefetchLimited
		}
		call = &fetchCall{done: make(chan struct{})}
		st.inflight = call
		st.lastFetch = now
		keyIDs := r.requestedKeyIDsLocked(serverName, keyID)
		go r.runFetch(context.WithoutCancel(ctx), st, call, serverName, keyIDs)
	}
	r.mu.Unlock()

	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestedKeyIDsLocked returns keyID and the cached key IDs of serverName,
// the keys a notary query requests with a minimum validity. r.mu must be
// held.
func (r *Ring) requestedKeyIDsLocked(serverName, keyID string) []string {
	var keyIDs []string
	if keyID != "" {
		keyIDs = append(keyIDs, keyID)
	}
	for ref := range r.keys {
		if ref.server == serverName && ref.keyID != keyID {
			keyIDs = append(keyIDs, ref.keyID)
		}
	}
	slices.Sort(keyIDs)
	return keyIDs
}

// runFetch runs one shared fetch. ctx carries no cancellation of the
// lookup that started it, so that other waiting lookups are not cut off;
// the fetch timeout bounds it instead.
func (r *Ring) runFetch(ctx context.Context, st *serverState, call *fetchCall, serverName string, keyIDs []string) {
	ctx, cancel := context.WithTimeout(ctx, r.fetchTimeout)
	defer cancel()

	keys, err := r.fetchKeys(ctx, serverName, keyIDs)
	r.mu.Lock()
	if err == nil {
		for _, k := range keys {
			r.keys[keyRef{k.ServerName, k.KeyID}] = k
		}
	}
	st.inflight = nil
	r.mu.Unlock()

	call.err = err
	close(call.done)
}

// fetchKeys fetches the keys of serverName from its own key server, then
// from each notary in order until one succeeds.
func (r *Ring) fetchKeys(ctx context.Context, serverName string, keyIDs []string) ([]VerifyKey, error) {
	entry, _ := r.entries(serverName)
	keys, err := r.fetchDirect(ctx, serverName, entry)
	if err == nil {
		r.log.DebugContext(ctx, "keys fetched", "origin", serverName, "source", SourceServer, "key_count", len(keys))
		return keys, nil
	}
	r.log.WarnContext(ctx, "key fetch failed", "origin", serverName, "source", SourceServer, "err", err)
	if len(r.notaries) == 0 {
		return nil, err
	}

	errs := []error{err}
	for _, n := range r.notaries {
		keys, err := r.queryNotary(ctx, n, serverName, keyIDs)
		if err != nil {
			r.log.WarnContext(ctx, "key fetch failed",
				"origin", serverName, "source", SourceNotary, "notary", n.ServerName, "err", err)
			errs = append(errs, err)
			continue
		}
		r.log.DebugContext(ctx, "keys fetched",
			"origin", serverName, "source", SourceNotary, "notary", n.ServerName, "key_count", len(keys))
		return keys, nil
	}
	return nil, errors.Join(errs...)
}

// mergeKeys keeps one key per key ID, the one valid longest, in key ID
// order.
func mergeKeys(keys []VerifyKey) []VerifyKey {
	byID := map[string]VerifyKey{}
	for _, k := range keys {
		if prev, ok := byID[k.KeyID]; ok && !k.ValidUntil.After(prev.ValidUntil) {
			continue
		}
		byID[k.KeyID] = k
	}
	out := make([]VerifyKey, 0, len(byID))
	for _, keyID := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[keyID])
	}
	return out
}
