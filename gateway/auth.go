package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/xmatrix"
	"github.com/bordergate/bordergate/policy"
)

// authenticate verifies the X-Matrix signatures of the request over its
// raw request target and parsed body.
//
// Keys are only looked up for servers on the allow-list, so that an
// unknown origin cannot make the gateway fetch keys from wherever it
// names; such a request stays unauthenticated. The request policy gets
// it marked so, and the pipeline rejects it if the policy does not.
func (g *Gateway) authenticate(ctx context.Context, ex *exchange) error {
	if err := g.checkClientCertificate(ex); err != nil {
		return err
	}
	if !ex.listed && ex.flow() == policy.DirectionInbound {
		return nil
	}
	var content *canonicaljson.Value
	if ex.hasContent {
		content = &ex.content
	}
	verified := 0
	for _, c := range ex.creds {
		err := g.verifyCredentials(ctx, ex, c, content)
		if errors.Is(err, keys.ErrUnknownKey) && len(ex.creds) > 1 {
			continue
		}
		if err != nil {
			return err
		}
		verified++
	}
	if verified == 0 {
		return newError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("no Authorization header could be verified with a known key of %s", ex.origin))
	}
	ex.authenticated = true
	return nil
}

// verifyCredentials checks one X-Matrix header. A signature that fails
// with a cached key is checked once more after refetching the origin's
// keys, because servers that regenerate keys sometimes reuse key IDs.
func (g *Gateway) verifyCredentials(ctx context.Context, ex *exchange, c xmatrix.Credentials, content *canonicaljson.Value) error {
	key, err := g.requestKey(ctx, ex, c.KeyID)
	if err != nil {
		return err
	}
	destinations := g.cfg.ServerNames
	if ex.flow() == policy.DirectionOutbound {
		destinations = []string{ex.destination}
	}
	if c.Destination != "" {
		destinations = []string{c.Destination}
	}
	dest, err := verifyAny(c, ex.r.Method, rawTarget(ex.r), destinations, content, key)
	if errors.Is(err, xmatrix.ErrBadSignature) && key.Source != keys.SourcePinned && ex.flow() == policy.DirectionInbound {
		if refreshErr := g.keys.RefreshServer(ctx, ex.origin); refreshErr == nil {
			if key, err = g.requestKey(ctx, ex, c.KeyID); err != nil {
				return err
			}
			dest, err = verifyAny(c, ex.r.Method, rawTarget(ex.r), destinations, content, key)
		}
	}
	if err != nil {
		return wrapError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("invalid X-Matrix signature from %s with key %s", ex.origin, c.KeyID), err)
	}
	ex.keyID, ex.keySource, ex.destination = c.KeyID, key.Source, dest
	c.Destination = dest
	header, err := xmatrix.FormatAuthorization(c)
	if err != nil {
		return wrapError(http.StatusBadRequest, codeUnauthorized, "malformed Authorization header: "+err.Error(), err)
	}
	ex.authHeaders = append(ex.authHeaders, header)
	return nil
}

// verifyAny verifies c as signed for one of destinations and returns the
// one it was signed for.
func verifyAny(c xmatrix.Credentials, method, uri string, destinations []string, content *canonicaljson.Value, key keys.VerifyKey) (string, error) {
	var err error
	for _, dest := range destinations {
		if err = xmatrix.Verify(c, method, uri, dest, content, key.Public); err == nil {
			return dest, nil
		}
	}
	return "", err
}

// requestKey finds a key of the exchange's origin that may verify a
// request made now: a peer's for inbound requests, the local homeserver's
// for outbound ones.
func (g *Gateway) requestKey(ctx context.Context, ex *exchange, keyID string) (keys.VerifyKey, error) {
	origin := ex.origin
	var key keys.VerifyKey
	var err error
	if ex.flow() == policy.DirectionOutbound {
		key, err = g.local.lookup(ctx, origin, keyID)
	} else {
		key, err = g.keys.LookupKey(ctx, origin, keyID)
	}
	switch {
	case errors.Is(err, keys.ErrRevokedKey):
		return key, wrapError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("key %s of %s is revoked", keyID, origin), err)
	case errors.Is(err, keys.ErrUnknownKey):
		return key, wrapError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("unknown key %s of %s", keyID, origin), err)
	case err != nil:
		return key, wrapError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("could not obtain key %s of %s", keyID, origin), err)
	}
	if !key.ValidForRequestAt(g.now()) {
		return key, newError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("key %s of %s is expired", keyID, origin))
	}
	return key, nil
}

// checkClientCertificate requires a client certificate, when one was
// sent, to name the X-Matrix origin.
func (g *Gateway) checkClientCertificate(ex *exchange) error {
	if ex.clientCert == nil {
		return nil
	}
	ex.tls.MatchesOrigin = certs.MatchesServerName(ex.clientCert, ex.origin)
	if !ex.tls.MatchesOrigin {
		return newError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("client certificate does not name the origin %s", ex.origin))
	}
	return nil
}

// requireClientCertificate ends a TLS handshake in which the client sent
// no certificate, and records the refusal: the client never gets to send
// a request, so this is the only record of it. A certificate that was sent
// has already been verified against the client CA bundle.
func (g *Gateway) requireClientCertificate(cs tls.ConnectionState, remote string) error {
	if len(cs.PeerCertificates) > 0 {
		return nil
	}
	if !g.handshakeRecords.allow(g.now()) {
		// A client retrying without a certificate must not turn every
		// attempt into a synced write. Refusals over the rate are counted
		// and logged once a second instead.
		return errors.New("client certificate required")
	}
	reason := "TLS handshake refused: no client certificate; this listener requires one"
	policies := g.currentPolicies()
	rec := decisionlog.NewRecord(policies.enforced.Path(policy.KindRequest))
	rec.Timestamp = g.now().UTC()
	rec.Bundles = policies.bundles()
	rec.Matrix = &decisionlog.Matrix{Direction: string(policy.DirectionInbound), Destination: cs.ServerName, Endpoint: "tls_handshake"}
	rec.Action, rec.Error = actionRejected, reason
	rec.Result = map[string]any{"allow": false, "reasons": []string{reason}}
	rec.Input = map[string]any{"tls": map[string]any{"client_certificate": false, "server_name": cs.ServerName, "remote_address": remote}}
	ctx := context.Background()
	if err := g.decisions.Write(ctx, rec); err != nil {
		g.log.Error("decision record not written", keyDecisionID, rec.DecisionID, keyErr, err)
	}
	g.log.Info("TLS handshake refused", keyReason, "no client certificate", keyServerName, cs.ServerName,
		keyAddress, remote, keyDecisionID, rec.DecisionID)
	return errors.New("client certificate required")
}

// maxHandshakeRecordsPerSecond bounds the decision records of refused
// handshakes, which clients can cause without authenticating.
const maxHandshakeRecordsPerSecond = 20

// recordLimiter allows a bounded number of records per second and counts
// the ones it suppresses.
type recordLimiter struct {
	mu         sync.Mutex // guards the fields below
	second     time.Time
	count      int
	suppressed int
	log        func(suppressed int)
}

// allow reports whether a record may be written at now.
func (l *recordLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	second := now.Truncate(time.Second)
	if !second.Equal(l.second) {
		if l.suppressed > 0 && l.log != nil {
			l.log(l.suppressed)
		}
		l.second, l.count, l.suppressed = second, 0, 0
	}
	if l.count >= maxHandshakeRecordsPerSecond {
		l.suppressed++
		return false
	}
	l.count++
	return true
}
