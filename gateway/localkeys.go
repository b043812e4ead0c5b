package gateway

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/bordergate/bordergate/gateway/keys"
)

// localKeyRefetch is how often an unknown local key ID may trigger a fetch.
const localKeyRefetch = time.Minute

// localKeys caches the verify keys of the local homeserver, fetched from
// its own key server over homeserver.url. They verify the events of local
// users, which appear in the local homeserver's responses to peers and in
// the state that peers return.
type localKeys struct {
	g *Gateway

	mu        sync.Mutex // guards keys and fetchedAt
	keys      map[string]keys.VerifyKey
	fetchedAt time.Time
}

// lookup returns the local key keyID of serverName.
func (l *localKeys) lookup(ctx context.Context, serverName, keyID string) (keys.VerifyKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.g.now()
	if k, ok := l.keys[keyID]; ok && k.ServerName == serverName && (k.ValidUntil.IsZero() || now.Before(k.ValidUntil)) {
		return k, nil
	}
	if !l.fetchedAt.IsZero() && now.Sub(l.fetchedAt) < localKeyRefetch {
		if k, ok := l.keys[keyID]; ok && k.ServerName == serverName {
			return k, nil
		}
		return keys.VerifyKey{}, fmt.Errorf("local key %s of %s: %w", keyID, serverName, keys.ErrUnknownKey)
	}
	l.fetchedAt = now
	fetched, err := l.fetch(ctx, serverName)
	if err != nil {
		l.g.log.WarnContext(ctx, "local key fetch failed", keyOrigin, serverName, keyErr, err)
		return keys.VerifyKey{}, fmt.Errorf("fetch local keys of %s: %w", serverName, err)
	}
	l.keys = fetched
	if k, ok := fetched[keyID]; ok {
		return k, nil
	}
	return keys.VerifyKey{}, fmt.Errorf("local key %s of %s: %w", keyID, serverName, keys.ErrUnknownKey)
}

// fetch reads the homeserver's key response and checks that it is
// self-signed by serverName.
func (l *localKeys) fetch(ctx context.Context, serverName string) (map[string]keys.VerifyKey, error) {
	ctx, cancel := context.WithTimeout(ctx, l.g.cfg.Keys.FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.g.forward.base.String()+"/_matrix/key/v2/server", nil)
	if err != nil {
		return nil, err
	}
	req.Host = serverName
	resp, err := l.g.forward.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("homeserver key server responded with status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	sk, err := keys.ParseServerKeys(data)
	if err != nil {
		return nil, err
	}
	if sk.ServerName != serverName {
		return nil, fmt.Errorf("homeserver key response names %q, not %q", sk.ServerName, serverName)
	}
	if err := sk.VerifySelfSignature(); err != nil {
		return nil, err
	}
	out := map[string]keys.VerifyKey{}
	for _, k := range sk.Keys(l.g.now(), keys.SourceServer) {
		out[k.KeyID] = k
	}
	return out, nil
}
