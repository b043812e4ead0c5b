package keys

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"github.com/bordergate/bordergate/gateway/internal/testdns"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// keyServer is a loopback HTTPS server that serves one key response at
// /_matrix/key/v2/server and counts requests.
type keyServer struct {
	addr string
	hits atomic.Int32

	mu     sync.Mutex // guards body, status and gate
	body   []byte
	status int
	gate   chan struct{}
}

func startKeyServer(t *testing.T, ca *testCA, certNames ...string) *keyServer {
	t.Helper()
	s := &keyServer{status: http.StatusOK}
	srv := startHTTPS(t, ca, s, certNames...)
	s.addr = srv.Listener.Addr().String()
	return s
}

func (s *keyServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != keyServerPath || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	s.hits.Add(1)
	s.mu.Lock()
	gate, body, status := s.gate, s.body, s.status
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *keyServer) publish(v canonicaljson.Value) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = canonicaljson.Encode(v)
	s.status = http.StatusOK
}

func (s *keyServer) fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

func (s *keyServer) hold() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	return s.gate
}

// signedResponse returns the key response of serverName with current
// keys, valid for a day after now and signed by every current key.
func signedResponse(serverName string, now time.Time, current ...testKey) canonicaljson.Value {
	v := keyResponse(serverName, now.Add(24*time.Hour), current...)
	for _, k := range current {
		v = sign(v, serverName, k)
	}
	return v
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestRing(t *testing.T, cfg Config) *Ring {
	t.Helper()
	r, err := NewRing(cfg)
	if err != nil {
		t.Fatalf("NewRing: %v", err)
	}
	return r
}

func entries(m map[string]EntryInfo) func(string) (EntryInfo, bool) {
	return func(name string) (EntryInfo, bool) {
		e, ok := m[name]
		return e, ok
	}
}

// closedAddress returns a loopback address where nothing listens.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRingFetchAndCache(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})

	for i := range 3 {
		k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if !bytes.Equal(k.Public, keyA.public()) {
			t.Errorf("lookup %d: Public = %x, want %x", i, k.Public, keyA.public())
		}
		if k.Source != SourceServer {
			t.Errorf("lookup %d: Source = %q, want %q", i, k.Source, SourceServer)
		}
		if want := clock.Now().Add(24 * time.Hour); !k.ValidUntil.Equal(want) {
			t.Errorf("lookup %d: ValidUntil = %v, want %v", i, k.ValidUntil, want)
		}
	}
	if n := ks.hits.Load(); n != 1 {
		t.Errorf("key server got %d requests, want 1", n)
	}
}

func TestRingValidityCappedAtSevenDays(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	v := sign(keyResponse(ks.addr, clock.Now().Add(30*24*time.Hour), keyA), ks.addr, keyA)
	ks.publish(v)
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})

	k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if want := clock.Now().Add(7 * 24 * time.Hour); !k.ValidUntil.Equal(want) {
		t.Errorf("ValidUntil = %v, want %v", k.ValidUntil, want)
	}
}

func TestRingPinnedKeyWins(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	pinned := newTestKey("ed25519:a", 42)
	r := newTestRing(t, Config{
		AllowPrivate: true,
		RootCAs:      ca.pool,
		Now:          clock.Now,
		Entries: entries(map[string]EntryInfo{
			ks.addr: {PinnedKeys: map[string]ed25519.PublicKey{"ed25519:a": pinned.public()}},
		}),
	})

	k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if !bytes.Equal(k.Public, pinned.public()) {
		t.Errorf("Public = %x, want the pinned %x", k.Public, pinned.public())
	}
	if k.Source != SourcePinned {
		t.Errorf("Source = %q, want %q", k.Source, SourcePinned)
	}
	if !k.ValidUntil.IsZero() {
		t.Errorf("ValidUntil = %v, want zero for a pinned key", k.ValidUntil)
	}
	if n := ks.hits.Load(); n != 0 {
		t.Errorf("key server got %d requests, want 0", n)
	}
}

func TestRingRevokedKeys(t *testing.T) {
	padded := keyA.publicBase64() + "="
	tests := []struct {
		name      string
		entry     EntryInfo
		wantFetch int32
	}{
		{"fetched key revoked by ID", EntryInfo{RevokedKeys: []string{"ed25519:a"}}, 0},
		{"fetched key revoked by public key", EntryInfo{RevokedKeys: []string{keyA.publicBase64()}}, 1},
		{"fetched key revoked by padded public key", EntryInfo{RevokedKeys: []string{padded}}, 1},
		{"pinned key revoked by ID", EntryInfo{
			PinnedKeys:  map[string]ed25519.PublicKey{"ed25519:a": keyA.public()},
			RevokedKeys: []string{"ed25519:a"},
		}, 0},
		{"pinned key revoked by public key", EntryInfo{
			PinnedKeys:  map[string]ed25519.PublicKey{"ed25519:a": keyA.public()},
			RevokedKeys: []string{keyA.publicBase64()},
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			ks := startKeyServer(t, ca, "127.0.0.1")
			clock := newFakeClock()
			ks.publish(signedResponse(ks.addr, clock.Now(), keyA, keyB))
			r := newTestRing(t, Config{
				AllowPrivate: true,
				RootCAs:      ca.pool,
				Now:          clock.Now,
				Entries:      entries(map[string]EntryInfo{ks.addr: tt.entry}),
			})

			_, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
			if !errors.Is(err, ErrRevokedKey) {
				t.Errorf("LookupKey(ed25519:a) = %v, want ErrRevokedKey", err)
			}
			if n := ks.hits.Load(); n != tt.wantFetch {
				t.Errorf("key server got %d requests, want %d", n, tt.wantFetch)
			}
			// The second key of the same server stays usable.
			k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:b")
			if err != nil {
				t.Fatalf("LookupKey(ed25519:b): %v", err)
			}
			if !bytes.Equal(k.Public, keyB.public()) {
				t.Errorf("ed25519:b Public = %x, want %x", k.Public, keyB.public())
			}
		})
	}
}

func TestRingUnknownKeyRefetchLimited(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		wait     time.Duration
	}{
		{"default interval", 0, time.Minute},
		{"configured interval", 10 * time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			ks := startKeyServer(t, ca, "127.0.0.1")
			clock := newFakeClock()
			ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
			r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now, RefetchInterval: tt.interval})
			ctx := context.Background()

			if _, err := r.LookupKey(ctx, ks.addr, "ed25519:a"); err != nil {
				t.Fatalf("LookupKey(ed25519:a): %v", err)
			}
			for i := range 5 {
				_, err := r.LookupKey(ctx, ks.addr, "ed25519:missing")
				if !errors.Is(err, ErrUnknownKey) {
					t.Fatalf("lookup %d of ed25519:missing = %v, want ErrUnknownKey", i, err)
				}
			}
			if n := ks.hits.Load(); n != 1 {
				t.Errorf("within the interval: %d requests, want 1", n)
			}

			clock.Advance(tt.wait - time.Second)
			_, _ = r.LookupKey(ctx, ks.addr, "ed25519:missing")
			if n := ks.hits.Load(); n != 1 {
				t.Errorf("a second before the interval ends: %d requests, want 1", n)
			}
			clock.Advance(time.Second)
			_, err := r.LookupKey(ctx, ks.addr, "ed25519:missing")
			if !errors.Is(err, ErrUnknownKey) {
				t.Errorf("after the interval: %v, want ErrUnknownKey", err)
			}
			if n := ks.hits.Load(); n != 2 {
				t.Errorf("after the interval: %d requests, want 2", n)
			}
		})
	}
}

func TestRingConcurrentLookupsShareFetch(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	gate := ks.hold()
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})

	const lookups = 32
	var wg sync.WaitGroup
	errs := make([]error, lookups)
	for i := range lookups {
		wg.Go(func() {
			_, errs[i] = r.LookupKey(context.Background(), ks.addr, "ed25519:a")
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for ks.hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // let the other lookups reach the wait
	close(gate)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Errorf("lookup %d: %v", i, err)
		}
	}
	if n := ks.hits.Load(); n != 1 {
		t.Errorf("key server got %d requests, want 1", n)
	}
}

func TestRingWaiterContextCanceled(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	gate := ks.hold()
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := r.LookupKey(ctx, ks.addr, "ed25519:a")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LookupKey with an expiring context = %v, want context.DeadlineExceeded", err)
	}

	// The shared fetch goes on without the canceled lookup and fills the
	// cache for the next one.
	close(gate)
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
		if err == nil {
			if !bytes.Equal(k.Public, keyA.public()) {
				t.Errorf("Public = %x, want %x", k.Public, keyA.public())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LookupKey after the fetch: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := ks.hits.Load(); n != 1 {
		t.Errorf("key server got %d requests, want 1", n)
	}
}

func TestRingExpiredKeyRefetched(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(sign(keyResponse(ks.addr, clock.Now().Add(time.Hour), keyA), ks.addr, keyA))
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})
	ctx := context.Background()

	first, err := r.LookupKey(ctx, ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("first LookupKey: %v", err)
	}

	// Past the validity, with the server down: the stale key comes back
	// and its ValidUntil shows that it is no longer valid for requests.
	clock.Advance(2 * time.Hour)
	ks.fail(http.StatusInternalServerError)
	stale, err := r.LookupKey(ctx, ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey with the server down: %v", err)
	}
	if !stale.ValidUntil.Equal(first.ValidUntil) {
		t.Errorf("stale ValidUntil = %v, want %v", stale.ValidUntil, first.ValidUntil)
	}
	if stale.ValidForRequestAt(clock.Now()) {
		t.Errorf("stale key is valid for requests at %v", clock.Now())
	}
	if n := ks.hits.Load(); n != 2 {
		t.Errorf("after expiry: %d requests, want 2", n)
	}

	clock.Advance(time.Minute)
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	fresh, err := r.LookupKey(ctx, ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey after recovery: %v", err)
	}
	if want := clock.Now().Add(24 * time.Hour); !fresh.ValidUntil.Equal(want) {
		t.Errorf("fresh ValidUntil = %v, want %v", fresh.ValidUntil, want)
	}
	if n := ks.hits.Load(); n != 3 {
		t.Errorf("after recovery: %d requests, want 3", n)
	}
}

func TestRingOldVerifyKey(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	expired := clock.Now().Add(-time.Hour)
	v := withOldKey(keyResponse(ks.addr, clock.Now().Add(24*time.Hour), keyA), keyB, expired)
	ks.publish(sign(v, ks.addr, keyA))
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})

	k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:b")
	if err != nil {
		t.Fatalf("LookupKey(ed25519:b): %v", err)
	}
	if !k.Expired.Equal(expired) {
		t.Errorf("Expired = %v, want %v", k.Expired, expired)
	}
	if k.ValidForRequestAt(clock.Now()) {
		t.Errorf("old key is valid for requests")
	}
	if !k.ValidForEventAt(expired.Add(-time.Minute), true) {
		t.Errorf("old key is not valid for an event before expired_ts")
	}
}

func TestRingRejectsBadKeyResponses(t *testing.T) {
	tests := []struct {
		name    string
		build   func(serverName string, now time.Time) canonicaljson.Value
		wantErr error
		wantMsg string
	}{
		{
			name: "server_name mismatch",
			build: func(_ string, now time.Time) canonicaljson.Value {
				return signedResponse("other.test", now, keyA)
			},
			wantMsg: `is for "other.test" instead of`,
		},
		{
			name: "self-signature fails",
			build: func(serverName string, now time.Time) canonicaljson.Value {
				v := signedResponse(serverName, now, keyA)
				return v.With("valid_until_ts", canonicaljson.IntValue(now.Add(48*time.Hour).UnixMilli()))
			},
			wantErr: ErrBadSignature,
		},
		{
			name: "signed by a key it does not list",
			build: func(serverName string, now time.Time) canonicaljson.Value {
				return sign(keyResponse(serverName, now.Add(time.Hour), keyA), serverName, keyB)
			},
			wantErr: ErrBadSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			ks := startKeyServer(t, ca, "127.0.0.1")
			clock := newFakeClock()
			ks.publish(tt.build(ks.addr, clock.Now()))
			var logs lockedBuffer
			r := newTestRing(t, Config{
				AllowPrivate: true,
				RootCAs:      ca.pool,
				Now:          clock.Now,
				Logger:       slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})

			_, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
			if !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("LookupKey = %v, want ErrUnknownKey", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("LookupKey = %v, want it to wrap %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("LookupKey = %q, want it to contain %q", err, tt.wantMsg)
			}
			wantLog := `level=WARN msg="key fetch failed" origin=` + ks.addr + " source=server err="
			if !strings.Contains(logs.String(), wantLog) {
				t.Errorf("log %q does not contain %q", logs.String(), wantLog)
			}
		})
	}
}

func TestRingRefreshServer(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	r := newTestRing(t, Config{AllowPrivate: true, RootCAs: ca.pool, Now: clock.Now})
	ctx := context.Background()

	if _, err := r.LookupKey(ctx, ks.addr, "ed25519:a"); err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	// The server generates a new key and reuses the key ID.
	regenerated := newTestKey("ed25519:a", 77)
	ks.publish(signedResponse(ks.addr, clock.Now(), regenerated))

	if err := r.RefreshServer(ctx, ks.addr); err != nil {
		t.Fatalf("RefreshServer within the interval: %v", err)
	}
	if n := ks.hits.Load(); n != 1 {
		t.Errorf("refresh within the interval: %d requests, want 1", n)
	}
	k, _ := r.LookupKey(ctx, ks.addr, "ed25519:a")
	if !bytes.Equal(k.Public, keyA.public()) {
		t.Errorf("Public before a refresh = %x, want the cached %x", k.Public, keyA.public())
	}

	clock.Advance(time.Minute)
	if err := r.RefreshServer(ctx, ks.addr); err != nil {
		t.Fatalf("RefreshServer: %v", err)
	}
	if n := ks.hits.Load(); n != 2 {
		t.Errorf("refresh after the interval: %d requests, want 2", n)
	}
	k, err := r.LookupKey(ctx, ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey after refresh: %v", err)
	}
	if !bytes.Equal(k.Public, regenerated.public()) {
		t.Errorf("Public after refresh = %x, want %x", k.Public, regenerated.public())
	}
}

func TestRingRefreshServerFails(t *testing.T) {
	r := newTestRing(t, Config{
		AllowPrivate: true,
		Entries:      entries(map[string]EntryInfo{"down.test": {Address: closedAddress(t)}}),
	})
	err := r.RefreshServer(context.Background(), "down.test")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("RefreshServer of a closed port = %v, want connection refused", err)
	}
}

func TestRingEntryAddressSkipsAddressCheck(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "keys.test")
	clock := newFakeClock()
	ks.publish(signedResponse("keys.test", clock.Now(), keyA))
	r := newTestRing(t, Config{
		RootCAs: ca.pool,
		Now:     clock.Now,
		Entries: entries(map[string]EntryInfo{"keys.test": {Address: ks.addr}}),
	})

	k, err := r.LookupKey(context.Background(), "keys.test", "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if !bytes.Equal(k.Public, keyA.public()) {
		t.Errorf("Public = %x, want %x", k.Public, keyA.public())
	}
}

func TestRingEntryAddressChecksCertificate(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "other.test")
	clock := newFakeClock()
	ks.publish(signedResponse("keys.test", clock.Now(), keyA))
	r := newTestRing(t, Config{
		RootCAs: ca.pool,
		Now:     clock.Now,
		Entries: entries(map[string]EntryInfo{"keys.test": {Address: ks.addr}}),
	})

	_, err := r.LookupKey(context.Background(), "keys.test", "ed25519:a")
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("LookupKey = %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), "certificate is valid for other.test, not keys.test") {
		t.Errorf("LookupKey = %q, want a certificate name error", err)
	}
	if n := ks.hits.Load(); n != 0 {
		t.Errorf("key server got %d requests, want 0", n)
	}
}

func TestRingDiscoveredAddressChecked(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	r := newTestRing(t, Config{RootCAs: ca.pool, Now: clock.Now})

	_, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("LookupKey = %v, want ErrUnknownKey", err)
	}
	if !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("LookupKey = %v, want it to wrap ErrForbiddenAddress", err)
	}
	if n := ks.hits.Load(); n != 0 {
		t.Errorf("key server got %d requests, want 0", n)
	}
}

func TestRingDiscoveryByName(t *testing.T) {
	tests := []struct {
		name      string
		certName  string
		wantError string
	}{
		{"certificate for the server name", "keys.test", ""},
		{"certificate for another name", "other.test", "certificate is valid for other.test, not keys.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			ks := startKeyServer(t, ca, tt.certName)
			_, port, _ := net.SplitHostPort(ks.addr)
			serverName := "keys.test:" + port
			dnsSrv := testdns.Start(t)
			dnsSrv.Add(t, "keys.test. 60 IN A 127.0.0.1")
			clock := newFakeClock()
			ks.publish(signedResponse(serverName, clock.Now(), keyA))
			r := newTestRing(t, Config{
				AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
				RootCAs:         ca.pool,
				Resolver:        dnsSrv.Resolver(),
				Now:             clock.Now,
			})

			k, err := r.LookupKey(context.Background(), serverName, "ed25519:a")
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("LookupKey = %v, want an error containing %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookupKey: %v", err)
			}
			if !bytes.Equal(k.Public, keyA.public()) {
				t.Errorf("Public = %x, want %x", k.Public, keyA.public())
			}
		})
	}
}

func TestNewRingRejectsInvalidNotary(t *testing.T) {
	tests := []struct {
		name   string
		notary Notary
		want   string
	}{
		{"invalid name", Notary{ServerName: "bad_name"}, "invalid server name"},
		{"name with trailing dot", Notary{ServerName: "notary.test."}, `invalid server name "notary.test.": host ends with '.'`},
		{"address without port", Notary{ServerName: "notary.test", Address: "127.0.0.1"}, "address of notary.test"},
		{"short key", Notary{ServerName: "notary.test", Keys: map[string]ed25519.PublicKey{"ed25519:n": make([]byte, 5)}}, "not an Ed25519 key"},
		{"other algorithm", Notary{ServerName: "notary.test", Keys: map[string]ed25519.PublicKey{"rsa:n": keyA.public()}}, "not an Ed25519 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewRing(Config{Notaries: []Notary{tt.notary}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRing = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// notaryServer is a loopback HTTPS notary that responds to
// /_matrix/key/v2/query with a fixed body and keeps the last request.
type notaryServer struct {
	addr string

	mu       sync.Mutex // guards response, request and hits
	response []byte
	request  []byte
	hits     int
}

func startNotary(t *testing.T, ca *testCA, name string) *notaryServer {
	t.Helper()
	n := &notaryServer{}
	srv := startHTTPS(t, ca, n, name)
	n.addr = srv.Listener.Addr().String()
	return n
}

func (n *notaryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != keyQueryPath || r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	n.mu.Lock()
	n.request = body
	n.hits++
	response := n.response
	n.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(response)
}

func (n *notaryServer) answerWith(items ...canonicaljson.Value) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.response = canonicaljson.Encode(canonicaljson.ObjectValue(member("server_keys", canonicaljson.ArrayValue(items...))))
}

func (n *notaryServer) hitCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hits
}

func (n *notaryServer) lastRequest() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.request
}

func TestRingNotary(t *testing.T) {
	notaryKey := newTestKey("ed25519:notary", 50)
	otherNotaryKey := newTestKey("ed25519:notary", 51)
	const origin = "origin.test"

	tests := []struct {
		name        string
		answer      func(now time.Time) []canonicaljson.Value
		notaryKeys  map[string]ed25519.PublicKey
		wantAccept  bool
		wantMessage string
	}{
		{
			name: "origin signature valid",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{signedResponse(origin, now, keyA)}
			},
			wantAccept: true,
		},
		{
			name: "origin signature invalid",
			answer: func(now time.Time) []canonicaljson.Value {
				v := signedResponse(origin, now, keyA)
				return []canonicaljson.Value{v.With("valid_until_ts", canonicaljson.IntValue(now.Add(48*time.Hour).UnixMilli()))}
			},
			wantMessage: "no valid key response for origin.test",
		},
		{
			name: "origin signature missing",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{sign(keyResponse(origin, now.Add(time.Hour), keyA), "notary.test", notaryKey)}
			},
			notaryKeys:  map[string]ed25519.PublicKey{notaryKey.id: notaryKey.public()},
			wantMessage: "no valid key response for origin.test",
		},
		{
			name: "answer for another server",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{signedResponse("other.test", now, keyA)}
			},
			wantMessage: "no valid key response for origin.test",
		},
		{
			name: "answer for another server beside a valid one",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{signedResponse("other.test", now, keyB), signedResponse(origin, now, keyA)}
			},
			wantAccept: true,
		},
		{
			name: "notary signature valid",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{sign(signedResponse(origin, now, keyA), "notary.test", notaryKey)}
			},
			notaryKeys: map[string]ed25519.PublicKey{notaryKey.id: notaryKey.public()},
			wantAccept: true,
		},
		{
			name: "notary signature missing",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{signedResponse(origin, now, keyA)}
			},
			notaryKeys:  map[string]ed25519.PublicKey{notaryKey.id: notaryKey.public()},
			wantMessage: "no valid key response for origin.test",
		},
		{
			name: "notary signature by another key",
			answer: func(now time.Time) []canonicaljson.Value {
				return []canonicaljson.Value{sign(signedResponse(origin, now, keyA), "notary.test", otherNotaryKey)}
			},
			notaryKeys:  map[string]ed25519.PublicKey{notaryKey.id: notaryKey.public()},
			wantMessage: "no valid key response for origin.test",
		},
		{
			name:        "empty answer",
			answer:      func(time.Time) []canonicaljson.Value { return nil },
			wantMessage: "no valid key response for origin.test",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ca := newTestCA(t)
			notary := startNotary(t, ca, "notary.test")
			clock := newFakeClock()
			notary.answerWith(tt.answer(clock.Now())...)
			r := newTestRing(t, Config{
				RootCAs: ca.pool,
				Now:     clock.Now,
				Entries: entries(map[string]EntryInfo{origin: {Address: closedAddress(t)}}),
				Notaries: []Notary{{
					ServerName: "notary.test",
					Address:    notary.addr,
					Keys:       tt.notaryKeys,
				}},
			})

			k, err := r.LookupKey(context.Background(), origin, "ed25519:a")
			if !tt.wantAccept {
				if !errors.Is(err, ErrUnknownKey) {
					t.Fatalf("LookupKey = %v, %v, want ErrUnknownKey", k, err)
				}
				if !strings.Contains(err.Error(), tt.wantMessage) {
					t.Errorf("LookupKey = %q, want it to contain %q", err, tt.wantMessage)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookupKey: %v", err)
			}
			if !bytes.Equal(k.Public, keyA.public()) {
				t.Errorf("Public = %x, want %x", k.Public, keyA.public())
			}
			if k.Source != SourceNotary {
				t.Errorf("Source = %q, want %q", k.Source, SourceNotary)
			}
			if k.ServerName != origin {
				t.Errorf("ServerName = %q, want %q", k.ServerName, origin)
			}
		})
	}
}

func TestRingNotaryRequest(t *testing.T) {
	ca := newTestCA(t)
	notary := startNotary(t, ca, "notary.test")
	clock := newFakeClock()
	notary.answerWith(signedResponse("origin.test", clock.Now(), keyA))
	r := newTestRing(t, Config{
		RootCAs:  ca.pool,
		Now:      clock.Now,
		Entries:  entries(map[string]EntryInfo{"origin.test": {Address: closedAddress(t)}}),
		Notaries: []Notary{{ServerName: "notary.test", Address: notary.addr}},
	})

	if _, err := r.LookupKey(context.Background(), "origin.test", "ed25519:a"); err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	want := `{"server_keys":{"origin.test":{"ed25519:a":{"minimum_valid_until_ts":` +
		formatMillis(clock.Now()) + `}}}}`
	if got := string(notary.lastRequest()); got != want {
		t.Errorf("notary request = %s, want %s", got, want)
	}
}

func formatMillis(t time.Time) string {
	return string(canonicaljson.Encode(canonicaljson.IntValue(t.UnixMilli())))
}

func TestRingNotaryFallback(t *testing.T) {
	ca := newTestCA(t)
	broken := startNotary(t, ca, "broken.test")
	broken.answerWith(signedResponse("other.test", time.Now(), keyA))
	good := startNotary(t, ca, "good.test")
	clock := newFakeClock()
	good.answerWith(signedResponse("origin.test", clock.Now(), keyA))
	r := newTestRing(t, Config{
		RootCAs: ca.pool,
		Now:     clock.Now,
		Entries: entries(map[string]EntryInfo{"origin.test": {Address: closedAddress(t)}}),
		Notaries: []Notary{
			{ServerName: "unreachable.test", Address: closedAddress(t)},
			{ServerName: "broken.test", Address: broken.addr},
			{ServerName: "good.test", Address: good.addr},
		},
	})

	k, err := r.LookupKey(context.Background(), "origin.test", "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if k.Source != SourceNotary {
		t.Errorf("Source = %q, want %q", k.Source, SourceNotary)
	}
	if n := broken.hitCount(); n != 1 {
		t.Errorf("broken notary got %d requests, want 1", n)
	}
}

func TestRingDirectBeforeNotary(t *testing.T) {
	ca := newTestCA(t)
	ks := startKeyServer(t, ca, "127.0.0.1")
	notary := startNotary(t, ca, "notary.test")
	clock := newFakeClock()
	ks.publish(signedResponse(ks.addr, clock.Now(), keyA))
	notary.answerWith(signedResponse(ks.addr, clock.Now(), keyA))
	r := newTestRing(t, Config{
		AllowPrivate: true,
		RootCAs:      ca.pool,
		Now:          clock.Now,
		Notaries:     []Notary{{ServerName: "notary.test", Address: notary.addr}},
	})

	k, err := r.LookupKey(context.Background(), ks.addr, "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if k.Source != SourceServer {
		t.Errorf("Source = %q, want %q", k.Source, SourceServer)
	}
	if n := notary.hitCount(); n != 0 {
		t.Errorf("notary got %d requests, want 0", n)
	}
}
