package gateway

import (
	"crypto/ed25519"
	"sync"
	"time"

	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/store"
)

// maxKeyEntries bounds the servers whose key ring view keyEntryCache keeps
// for one allow-list revision.
const maxKeyEntries = 4096

// keyEntryCache keeps what the key ring reads of allow-list entries: the
// pinned keys, decoded, the revoked keys and the address. The ring reads
// them for every signature it checks, and an allow-list match with its key
// decoding costs more than a tenth of the signature check itself.
//
// A kept result is reused while the allow-list revision stays the same and,
// when a deny entry decided it, until that entry expires. Entries change
// only with the revision, and time changes a match only when a deny entry
// that matched expires, so a reused result is the one the store returns.
type keyEntryCache struct {
	store *store.Store
	now   func() time.Time

	mu       sync.RWMutex // guards revision and entries
	revision string
	entries  map[string]keyEntry
}

// keyEntry is one kept result.
type keyEntry struct {
	info keys.EntryInfo
	ok   bool
	// until is the expiry of the deny entry that decided the result, zero
	// when the result lasts as long as the revision.
	until time.Time
}

func newKeyEntryCache(st *store.Store) *keyEntryCache {
	return &keyEntryCache{store: st, now: time.Now}
}

// lookup returns the key ring's view of the allow entry of serverName, and
// false when the server has none or a deny entry matches it.
func (c *keyEntryCache) lookup(serverName string) (keys.EntryInfo, bool) {
	revision := c.store.Revision()
	now := c.now()
	c.mu.RLock()
	entry, found := c.entries[serverName]
	current := c.revision == revision
	c.mu.RUnlock()
	if found && current && (entry.until.IsZero() || now.Before(entry.until)) {
		return entry.info, entry.ok
	}

	entry = keyEntryOf(c.store.Match(serverName))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.revision != revision || c.entries == nil {
		// The revision read before the match is the newest the match can
		// be from, so the result may be stale only for an older revision,
		// which the next lookup replaces.
		c.revision, c.entries = revision, make(map[string]keyEntry)
	}
	if len(c.entries) < maxKeyEntries {
		c.entries[serverName] = entry
	}
	return entry.info, entry.ok
}

// keyEntryOf converts an allow-list match to the key ring's view.
func keyEntryOf(m store.Match) keyEntry {
	if m.Deny != nil {
		var until time.Time
		if m.Deny.Expires != nil {
			until = *m.Deny.Expires
		}
		return keyEntry{until: until}
	}
	if m.Allow == nil {
		return keyEntry{}
	}
	e := m.Allow
	info := keys.EntryInfo{RevokedKeys: e.RevokedKeys, Address: e.Address, PinnedKeys: map[string]ed25519.PublicKey{}}
	for id := range e.PinnedKeys {
		if pub, ok := e.PinnedKey(id); ok {
			info.PinnedKeys[id] = pub
		}
	}
	return keyEntry{info: info, ok: true}
}
