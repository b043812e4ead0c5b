package gateway

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/store"
)

func TestKeyEntryCacheFollowsChanges(t *testing.T) {
	clock := newTestClock()
	st, err := store.New(store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	cache := newKeyEntryCache(st)
	cache.now = clock.Now

	pub := ed25519.PublicKey(make([]byte, ed25519.PublicKeySize))
	pub[0] = 7
	allow := store.Entry{
		ServerName: "hs1.example",
		Endpoints:  []string{"*"},
		PinnedKeys: map[string]string{"ed25519:a": base64.RawStdEncoding.EncodeToString(pub)},
	}
	if err := st.ReplaceAllowlist([]store.Entry{allow}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		info, ok := cache.lookup("hs1.example")
		if !ok {
			t.Fatal("lookup(hs1.example) = not listed, want its entry")
		}
		if got := info.PinnedKeys["ed25519:a"]; !got.Equal(pub) {
			t.Fatalf("pinned key = %x, want %x", got, pub)
		}
	}

	// A deny entry, until it expires, is a change of revision.
	expires := clock.Now().Add(time.Hour)
	deny := store.Entry{ServerName: "hs1.example", Deny: true, Expires: &expires}
	if err := st.ReplaceSource("bundle", []store.Entry{deny}); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.lookup("hs1.example"); ok {
		t.Fatal("lookup after a deny entry = listed, want not listed")
	}
	clock.Advance(2 * time.Hour)
	if _, ok := cache.lookup("hs1.example"); !ok {
		t.Fatal("lookup after the deny entry expired = not listed, want listed")
	}

	if err := st.ReplaceSource("bundle", nil); err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceAllowlist(nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.lookup("hs1.example"); ok {
		t.Fatal("lookup after the entry was removed = listed, want not listed")
	}
}
