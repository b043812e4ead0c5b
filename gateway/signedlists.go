package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/internal/durable"
	"github.com/bordergate/bordergate/gateway/signedlist"
	"github.com/bordergate/bordergate/gateway/store"
)

// signedListAlertInterval is the time between two alert log lines about a
// signed list that stays in force after it expired.
const signedListAlertInterval = time.Minute

// signedListStateDir is the directory under state_dir that keeps the last
// valid copy of each signed list.
const signedListStateDir = "signed-lists"

// Reasons of a rejected signed list, the values of the reason attribute of
// bordergate_allowlist_signed_list_refresh_failures.
const (
	reasonFetch     = "fetch"
	reasonSignature = "signature"
	reasonPayload   = "payload"
	reasonWindow    = "window"
	reasonRollback  = "rollback"
	reasonApply     = "apply"
)

// errRollback is wrapped by the error for a list older than the one in
// force.
var errRollback = errors.New("older than the list in force")

// signedListSource keeps one signed list in force: it fetches the list,
// verifies it, replaces the entries of its source, and withdraws them or
// raises an alert when the list expires without a successor.
type signedListSource struct {
	g          *Gateway
	cfg        SignedListConfig
	source     string // "signed:NAME"
	client     *http.Client
	statePath  string // "" without a state directory
	trigger    chan struct{}
	alertEvery time.Duration

	failures metric.Int64Counter
	alerts   metric.Int64Counter
	expired  metric.Int64Gauge

	mu          sync.Mutex // guards the fields below
	keys        *signedlist.KeySet
	current     *signedlist.List
	raw         []byte
	etag        string
	pendingETag string
	withdrawn   bool
	loaded      bool
	lastAttempt time.Time
	lastSuccess time.Time
	lastError   string
	lastAlert   time.Time
}

// openSignedLists builds the configured signed lists and loads each one:
// the copy kept in the state directory first, then a fetch.
func (g *Gateway) openSignedLists(ctx context.Context) error {
	failures := g.metrics.Counter("bordergate_allowlist_signed_list_refresh_failures",
		"Signed lists that could not be fetched or were rejected, by list and reason.")
	alerts := g.metrics.Counter("bordergate_allowlist_signed_list_stale_alerts",
		"Alerts raised for a signed list kept in force after it expired (fail_static).")
	expired := g.metrics.Gauge("bordergate_allowlist_signed_list_expired",
		"1 while the signed list in force has expired without a successor, else 0.")
	for _, cfg := range g.cfg.Allowlist.SignedLists {
		list, err := newSignedListSource(g, cfg)
		if err != nil {
			return fmt.Errorf("allowlist.signed_lists %s: %w", cfg.Name, err)
		}
		list.failures, list.alerts, list.expired = failures, alerts, expired
		list.loadKept(ctx)
		list.refresh(ctx)
		g.signedLists = append(g.signedLists, list)
	}
	return nil
}

func newSignedListSource(g *Gateway, cfg SignedListConfig) (*signedListSource, error) {
	keys, err := signedlist.LoadKeys(cfg.KeysFile)
	if err != nil {
		return nil, fmt.Errorf("keys_file: %w", err)
	}
	l := &signedListSource{
		g: g, cfg: cfg, source: store.SourcePrefixSigned + cfg.Name, keys: keys,
		trigger: make(chan struct{}, 1), alertEvery: signedListAlertInterval,
	}
	if g.cfg.StateDir != "" {
		l.statePath = filepath.Join(g.cfg.StateDir, signedListStateDir, cfg.Name+".jws")
	}
	if cfg.URL != "" {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.Proxy = nil
		transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.CAFile != "" {
			if transport.TLSClientConfig.RootCAs, err = certs.LoadCertPool(cfg.CAFile); err != nil {
				return nil, fmt.Errorf("ca_file: %w", err)
			}
		}
		l.client = &http.Client{Transport: transport, Timeout: cfg.Timeout}
	}
	return l, nil
}

// startSignedLists refreshes every signed list in the background until ctx
// ends; Close waits for them.
func (g *Gateway) startSignedLists(ctx context.Context) {
	for _, list := range g.signedLists {
		g.background.Go(func() { list.run(ctx) })
	}
}

// refreshSignedLists asks every signed list to refresh now, without
// waiting for it.
func (g *Gateway) refreshSignedLists(context.Context) {
	for _, list := range g.signedLists {
		select {
		case list.trigger <- struct{}{}:
		default:
		}
	}
}

// reloadSignedListKeys rereads the keys_file of every signed list, as
// SIGHUP does.
func (g *Gateway) reloadSignedListKeys(ctx context.Context) error {
	var errs []error
	for _, list := range g.signedLists {
		errs = append(errs, list.reloadKeys(ctx))
	}
	return errors.Join(errs...)
}

// reloadKeys rereads keys_file. Invalid keys leave the ones in use. When
// the list in force does not verify with the new keys, because the key
// that signed it was removed, its entries are withdrawn and the list
// counts as not loaded, as it would after a restart.
func (l *signedListSource) reloadKeys(ctx context.Context) error {
	keys, err := signedlist.LoadKeys(l.cfg.KeysFile)
	if err != nil {
		l.g.log.ErrorContext(ctx, "signed list keys not reloaded, the previous ones stay in use",
			keySource, l.source, keyFile, l.cfg.KeysFile, keyErr, err)
		return fmt.Errorf("reload allowlist.signed_lists %s keys_file: %w", l.cfg.Name, err)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys = keys
	if l.current == nil {
		return nil
	}
	if _, err := signedlist.Verify(l.raw, keys); err == nil {
		return nil
	}
	if err := l.g.applySignedList(l.source, nil); err != nil {
		l.g.log.ErrorContext(ctx, "signed list of a removed key not withdrawn", keySource, l.source, keyErr, err)
		return fmt.Errorf("withdraw signed list %s: %w", l.cfg.Name, err)
	}
	l.g.log.ErrorContext(ctx, "signed list withdrawn, keys_file no longer has the key that signed it",
		keySource, l.source, "key_id", l.current.KeyID)
	l.current, l.raw, l.etag, l.withdrawn = nil, nil, "", false
	return nil
}

// run refreshes the list every refresh interval, and wakes at the expiry
// of the list in force and at each alert while it stays expired.
func (l *signedListSource) run(ctx context.Context) {
	timer := time.NewTimer(l.nextWake())
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-l.trigger:
			timer.Stop()
		}
		l.refresh(ctx)
		timer.Reset(l.nextWake())
	}
}

// nextWake returns the time until the next refresh.
func (l *signedListSource) nextWake() time.Duration {
	wait := l.cfg.RefreshInterval
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current == nil {
		return wait
	}
	untilExpiry := l.current.Expires.Sub(l.g.now())
	switch {
	case untilExpiry <= 0:
		wait = min(wait, l.alertEvery)
	case untilExpiry < wait:
		wait = untilExpiry
	}
	return max(wait, 10*time.Millisecond)
}

// loadKept applies the copy of the list kept in the state directory, so
// that a restart while the list's server is down starts with it. The copy
// is verified again, and an expired copy is applied only in fail_static
// mode.
func (l *signedListSource) loadKept(ctx context.Context) {
	if l.statePath == "" {
		return
	}
	raw, err := os.ReadFile(l.statePath)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = l.consider(ctx, raw, false)
	}
	if err != nil {
		l.g.log.ErrorContext(ctx, "kept signed list not loaded", keySource, l.source, keyFile, l.statePath, keyErr, err)
	}
}

// refresh fetches the list, applies it when it is new and valid, and then
// applies the expiry rule to the list in force.
func (l *signedListSource) refresh(ctx context.Context) {
	raw, unchanged, err := l.fetch(ctx)
	l.mu.Lock()
	l.lastAttempt = l.g.now()
	l.mu.Unlock()
	switch {
	case err != nil:
		l.fail(ctx, reasonFetch, err)
	case !unchanged:
		if err := l.consider(ctx, raw, true); err != nil {
			l.fail(ctx, rejectionReason(err), err)
		}
	default:
		l.mu.Lock()
		l.lastSuccess, l.lastError = l.g.now(), ""
		l.mu.Unlock()
	}
	l.checkExpiry(ctx)
}

func rejectionReason(err error) string {
	switch {
	case errors.Is(err, signedlist.ErrSignature):
		return reasonSignature
	case errors.Is(err, signedlist.ErrPayload):
		return reasonPayload
	case errors.Is(err, signedlist.ErrWindow):
		return reasonWindow
	case errors.Is(err, errRollback):
		return reasonRollback
	default:
		return reasonApply
	}
}

// fail records a refresh that failed; the list in force stays.
func (l *signedListSource) fail(ctx context.Context, reason string, err error) {
	l.mu.Lock()
	l.lastError = err.Error()
	l.mu.Unlock()
	l.failures.Add(ctx, 1, metric.WithAttributeSet(attribute.NewSet(
		attribute.String("list", l.cfg.Name), attribute.String("reason", reason))))
	l.g.log.ErrorContext(ctx, "signed list rejected, the list in force stays", keySource, l.source, keyReason, reason, keyErr, err)
}

// fetch returns the list from its URL or file, and whether it is the same
// as the one last read.
func (l *signedListSource) fetch(ctx context.Context) ([]byte, bool, error) {
	if l.cfg.File != "" {
		raw, err := readListFile(l.cfg.File)
		if err != nil {
			return nil, false, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		return raw, bytes.Equal(raw, l.raw), nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.cfg.URL, nil)
	if err != nil {
		return nil, false, err
	}
	l.mu.Lock()
	if l.etag != "" && l.raw != nil {
		req.Header.Set("If-None-Match", l.etag)
	}
	l.mu.Unlock()
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, true, nil
	case http.StatusOK:
	default:
		return nil, false, fmt.Errorf("GET %s: status %d", l.cfg.URL, resp.StatusCode)
	}
	raw, err := readList(resp.Body)
	if err != nil {
		return nil, false, fmt.Errorf("GET %s: read body: %w", l.cfg.URL, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	unchanged := bytes.Equal(raw, l.raw)
	if !unchanged {
		l.pendingETag = resp.Header.Get("ETag")
	}
	return raw, unchanged, nil
}

// readListFile reads a signed list from a file, as readList does.
func readListFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := readList(f)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return raw, nil
}

// readList reads a signed list, and stops with an error one byte past
// signedlist.MaxBytes, so that a runaway source cannot exhaust memory.
func readList(r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, signedlist.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(raw) > signedlist.MaxBytes {
		return nil, fmt.Errorf("larger than %d bytes", signedlist.MaxBytes)
	}
	return raw, nil
}

// consider verifies raw and, when it is valid, newer than the list in
// force and within its window, makes it the list in force. A kept copy is
// taken even when expired in fail_static mode, and is not written again.
func (l *signedListSource) consider(ctx context.Context, raw []byte, fetched bool) error {
	l.mu.Lock()
	keys := l.keys
	l.mu.Unlock()
	list, err := signedlist.Verify(raw, keys)
	if err != nil {
		return err
	}
	now := l.g.now()
	if err := list.CheckWindow(now); err != nil {
		expiredCopy := !fetched && errors.Is(err, signedlist.ErrExpired)
		if !expiredCopy || l.cfg.OnExpiry != OnExpiryFailStatic {
			return err
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.keys != keys {
		// SIGHUP replaced the keys during the verification, and may have
		// removed the one that signed this list. The next refresh, which
		// SIGHUP also asks for, verifies it with the new keys.
		return fmt.Errorf("%w: keys_file reloaded while the list was verified", signedlist.ErrSignature)
	}
	if l.current != nil {
		switch {
		case list.Issued.Before(l.current.Issued):
			return fmt.Errorf("issued %s, %w (issued %s); a list may not go back in time",
				list.Issued.Format(time.RFC3339), errRollback, l.current.Issued.Format(time.RFC3339))
		case list.Issued.Equal(l.current.Issued) && !bytes.Equal(list.Payload, l.current.Payload):
			return fmt.Errorf("issued %s like the list in force, but with other content: %w", list.Issued.Format(time.RFC3339), errRollback)
		}
	}
	entries := make([]store.Entry, len(list.Entries))
	for i, entry := range list.Entries {
		issued := list.Issued
		entry.ChangedBy, entry.ChangedAt = list.Issuer, &issued
		entries[i] = entry
	}
	if err := l.g.applySignedList(l.source, entries); err != nil {
		return err
	}
	l.current, l.raw, l.withdrawn, l.loaded = list, raw, false, true
	l.lastSuccess, l.lastError = now, ""
	if fetched {
		l.etag = l.pendingETag
		if err := l.keep(raw); err != nil {
			l.g.log.ErrorContext(ctx, "signed list not kept in the state directory", keySource, l.source, keyFile, l.statePath, keyErr, err)
		}
	}
	l.g.log.InfoContext(ctx, "signed list in force", keySource, l.source, "issuer", list.Issuer, "key_id", list.KeyID,
		"issued", list.Issued, "expires", list.Expires, keyCount, len(entries))
	return nil
}

// keep writes the list to the state directory, synced and renamed into
// place, so that a crash leaves the old copy or the new one.
func (l *signedListSource) keep(raw []byte) error {
	if l.statePath == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(l.statePath), 0o700); err != nil {
		return err
	}
	return durable.WriteFile(l.statePath, raw, 0o600)
}

// checkExpiry applies the expiry mode when the list in force has expired:
// fail_closed withdraws its entries once, fail_static keeps them and logs
// an alert at most once per alertEvery.
func (l *signedListSource) checkExpiry(ctx context.Context) {
	attrs := metric.WithAttributeSet(attribute.NewSet(attribute.String("list", l.cfg.Name)))
	now := l.g.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current == nil || now.Before(l.current.Expires) {
		l.expired.Record(ctx, 0, attrs)
		return
	}
	l.expired.Record(ctx, 1, attrs)
	if l.cfg.OnExpiry == OnExpiryFailClosed {
		if l.withdrawn {
			return
		}
		if err := l.g.applySignedList(l.source, nil); err != nil {
			l.g.log.ErrorContext(ctx, "expired signed list not withdrawn", keySource, l.source, keyErr, err)
			return
		}
		l.withdrawn = true
		l.g.log.ErrorContext(ctx, "signed list expired and could not be refreshed, its entries are withdrawn (fail_closed)",
			keySource, l.source, "expires", l.current.Expires, "last_error", l.lastError)
		return
	}
	if !l.lastAlert.IsZero() && now.Sub(l.lastAlert) < l.alertEvery {
		return
	}
	l.lastAlert = now
	l.alerts.Add(ctx, 1, attrs)
	l.g.log.ErrorContext(ctx, "signed list expired and could not be refreshed, its entries stay in force (fail_static)",
		keySource, l.source, "expires", l.current.Expires, "last_error", l.lastError)
}

// ready returns an error until a valid list has been in force once.
func (l *signedListSource) ready() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.loaded {
		return nil
	}
	if l.lastError != "" {
		return fmt.Errorf("no valid list loaded yet: %s", l.lastError)
	}
	return errors.New("no valid list loaded yet")
}

// signedListStatus is the state of one signed list, as the admin API
// shows it.
type signedListStatus struct {
	Name        string     `json:"name"`
	Source      string     `json:"source"`
	Location    string     `json:"location"`
	OnExpiry    string     `json:"on_expiry"`
	State       string     `json:"state"`
	Issuer      string     `json:"issuer,omitempty"`
	KeyID       string     `json:"key_id,omitempty"`
	Issued      *time.Time `json:"issued,omitempty"`
	NotBefore   *time.Time `json:"not_before,omitempty"`
	Expires     *time.Time `json:"expires,omitempty"`
	EntryCount  int        `json:"entry_count"`
	LastAttempt *time.Time `json:"last_attempt,omitempty"`
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// States of signedListStatus.State.
const (
	listStateNotLoaded = "not_loaded"
	listStateInForce   = "in_force"
	listStateStale     = "expired_in_force"
	listStateWithdrawn = "withdrawn"
)

// signedListStatus returns the state of every signed list.
func (g *Gateway) signedListStatus() any {
	out := make([]signedListStatus, 0, len(g.signedLists))
	for _, list := range g.signedLists {
		out = append(out, list.status())
	}
	return out
}

func (l *signedListSource) status() signedListStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	location := l.cfg.URL
	if location == "" {
		location = l.cfg.File
	}
	s := signedListStatus{
		Name: l.cfg.Name, Source: l.source, Location: location, OnExpiry: l.cfg.OnExpiry,
		State: listStateNotLoaded, LastError: l.lastError,
		LastAttempt: timePointer(l.lastAttempt), LastSuccess: timePointer(l.lastSuccess),
	}
	if c := l.current; c != nil {
		s.Issuer, s.KeyID, s.EntryCount = c.Issuer, c.KeyID, len(c.Entries)
		s.Issued, s.NotBefore, s.Expires = timePointer(c.Issued), timePointer(c.NotBefore), timePointer(c.Expires)
		switch {
		case l.withdrawn:
			s.State, s.EntryCount = listStateWithdrawn, 0
		case !l.g.now().Before(c.Expires):
			s.State = listStateStale
		default:
			s.State = listStateInForce
		}
	}
	return s
}

func timePointer(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// applySignedList puts the entries of a signed list in force.
func (g *Gateway) applySignedList(source string, entries []store.Entry) error {
	g.reloadMu.Lock()
	defer g.reloadMu.Unlock()
	return g.applyAllowlist(source, entries)
}
