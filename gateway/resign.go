package gateway

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/xmatrix"
	"github.com/bordergate/bordergate/policy"
)

// signingKey is the local homeserver's signing key, which lets the gateway
// re-sign an outbound transaction with its denied items removed.
type signingKey struct {
	keyID string
	priv  ed25519.PrivateKey
}

// loadSigningKey reads a homeserver signing key: Synapse's one-line form
// ("ed25519 <version> <unpadded base64 seed>") or Dendrite's PEM block
// "MATRIX PRIVATE KEY" with a Key-ID header.
func loadSigningKey(path string) (*signingKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	if block, _ := pem.Decode(data); block != nil {
		keyID := block.Headers["Key-ID"]
		if block.Type != "MATRIX PRIVATE KEY" || !strings.HasPrefix(keyID, "ed25519:") || len(block.Bytes) != ed25519.SeedSize {
			return nil, fmt.Errorf("%s: not a MATRIX PRIVATE KEY block with an ed25519 Key-ID and a 32-byte seed", path)
		}
		return &signingKey{keyID: keyID, priv: ed25519.NewKeyFromSeed(block.Bytes)}, nil
	}
	fields := strings.Fields(string(data))
	if len(fields) != 3 || fields[0] != "ed25519" {
		return nil, fmt.Errorf("%s: expected \"ed25519 <version> <base64 seed>\" or a PEM block", path)
	}
	seed, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(fields[2], "="))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: the seed is not 32 bytes of base64", path)
	}
	return &signingKey{keyID: "ed25519:" + fields[1], priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// canResign reports whether an outbound transaction with refused items
// may go out re-signed with only its allowed items: re-signing is
// configured, something is left to send, and the configured key is one
// the local homeserver publishes, so that the peer accepts the signature.
func (g *Gateway) canResign(ctx context.Context, ex *exchange, outcomes []*itemOutcome) bool {
	if g.resign == nil || ex.flow() != policy.DirectionOutbound {
		return false
	}
	allowed := false
	for _, o := range outcomes {
		allowed = allowed || o.allowed
	}
	if !allowed {
		return false
	}
	published, err := g.local.lookup(ctx, ex.origin, g.resign.keyID)
	if err != nil || !bytes.Equal(published.Public, g.resign.priv.Public().(ed25519.PublicKey)) {
		g.log.WarnContext(ctx, "signing key not published by the homeserver, transaction withheld instead",
			keyOrigin, ex.origin, keyErr, errors.Join(err, errors.New("public key differs")))
		return false
	}
	return true
}

// resignTransaction sends the peer a new transaction that holds only the
// allowed items, signed as the local homeserver, and answers the
// homeserver with the peer's results for those and an error for each
// refused PDU.
func (g *Gateway) resignTransaction(ctx context.Context, ex *exchange, w http.ResponseWriter, txn *transaction, outcomes []*itemOutcome) error {
	var pdus, edus []canonicaljson.Value
	for _, o := range outcomes {
		switch {
		case !o.allowed:
		case o.edu:
			edus = append(edus, o.raw)
		default:
			pdus = append(pdus, o.raw)
		}
	}
	body := ex.content.With("pdus", canonicaljson.ArrayValue(pdus...))
	if len(edus) > 0 {
		body = body.With("edus", canonicaljson.ArrayValue(edus...))
	} else {
		body = body.Without("edus")
	}
	encoded := canonicaljson.Encode(body)
	creds := xmatrix.Sign(g.resign.priv, g.resign.keyID, ex.r.Method, rawTarget(ex.r), ex.origin, ex.destination, &body)
	header, err := xmatrix.FormatAuthorization(creds)
	if err != nil {
		return wrapError(http.StatusInternalServerError, codeUnknown, "re-signing the transaction failed", err)
	}
	for _, o := range outcomes {
		if o.allowed {
			o.record.Action = actionForward
		}
	}
	rec := g.requestRecord(ex)
	rec.Action = actionForward
	rec.Error = appendNote(rec.Error, fmt.Sprintf("re-signed with %s without %d refused items", g.resign.keyID, len(outcomes)-len(pdus)-len(edus)))
	if err := g.commitItems(ctx, ex); err != nil {
		return err
	}
	resp, err := fetch(ctx, g.upstreamFor(ex), ex, encoded, []string{header}, maxResponseBytes)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		// The homeserver retries the whole transaction, which is decided
		// again.
		if err := g.delivered(ctx, ex, resp.status); err != nil {
			return err
		}
		writeForwarded(w, resp, rec.DecisionID)
		return nil
	}
	merged := mergeResults(resp.body, outcomes)
	if err := g.delivered(ctx, ex, resp.status); err != nil {
		return err
	}
	w.Header().Set(headerDecisionID, rec.DecisionID)
	writeJSON(w, http.StatusOK, map[string]any{"pdus": merged})
	return nil
}

// mergeResults combines the peer's per-PDU results with the gateway's
// errors for the PDUs it removed.
func mergeResults(peerBody []byte, outcomes []*itemOutcome) map[string]any {
	var peer struct {
		PDUs map[string]any `json:"pdus"`
	}
	_ = json.Unmarshal(peerBody, &peer)
	merged := map[string]any{}
	for id, result := range peer.PDUs {
		merged[id] = result
	}
	for _, o := range outcomes {
		if !o.allowed && !o.edu && o.eventID != "" {
			merged[o.eventID] = map[string]string{"error": o.reason, "decision_id": o.record.DecisionID}
		}
	}
	return merged
}
