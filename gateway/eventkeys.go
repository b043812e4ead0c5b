package gateway

import (
	"context"
	"fmt"

	"github.com/bordergate/bordergate/gateway/keys"
)

// listedKeys is the key lookup used to verify event signatures. Events
// can name any server as their sender, so it only looks up keys of the
// local server (from the local homeserver) and of servers on the
// allow-list: an event from elsewhere cannot make the gateway fetch keys
// from a server of its choosing, and its signature counts as made with an
// unknown key.
type listedKeys struct {
	g *Gateway
}

// LookupKey returns the key of an allow-listed server.
func (l listedKeys) LookupKey(ctx context.Context, serverName, keyID string) (keys.VerifyKey, error) {
	if l.g.isLocal(serverName) {
		return l.g.local.lookup(ctx, serverName, keyID)
	}
	if _, ok := l.g.store.Lookup(serverName); !ok {
		return keys.VerifyKey{}, fmt.Errorf("%s is not on the allow-list, so its keys are not fetched: %w",
			serverName, keys.ErrUnknownKey)
	}
	return l.g.keys.LookupKey(ctx, serverName, keyID)
}
