package gateway

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/routes"
	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/gateway/xmatrix"
	"github.com/bordergate/bordergate/policy"
)

// maxResponseBytes caps homeserver responses that the gateway reads in full.
const maxResponseBytes = 64 << 20

// maxBodyValues caps the JSON values of one request body. A parsed value
// takes about 80 bytes, so a body at this cap costs about 20 MiB to parse.
// A transaction of 50 ordinary events contains a few thousand values.
const maxBodyValues = 1 << 18

// exchange is the state of one inbound request as it moves through the
// pipeline. Each step fills in what it verified.
type exchange struct {
	r     *http.Request
	match routes.Result
	// direction is the way the request travels: inbound from a peer, or
	// outbound from the local homeserver. Empty means inbound.
	direction policy.Direction

	// creds are the parsed X-Matrix headers; origin is their common origin.
	creds []xmatrix.Credentials
	// authHeaders are the verified creds written in their plain form, with
	// the destination they were signed for: the only Authorization headers
	// forwarded.
	authHeaders []string
	origin      string
	destination string
	entry       store.Entry
	listed      bool
	// denied is the deny entry that matches the peer, nil when none does;
	// listed is then false.
	denied *store.Entry
	// peerMatched is set once entry, listed and denied hold the peer's
	// allow-list match.
	peerMatched   bool
	keyID         string
	keySource     keys.Source
	authenticated bool

	tls policy.TLS
	// clientCert is the verified client certificate, nil when none was sent.
	clientCert *x509.Certificate

	body       []byte
	content    canonicaljson.Value
	hasContent bool

	// pending are room versions learned from the request, stored only once
	// the homeserver accepts it.
	pending []store.Room

	// request is the request decision's record, completed when the
	// exchange ends.
	request *decisionlog.Record
	// items are the records of PDU and EDU decisions.
	items []*decisionlog.Record

	// policies is the policy set that decides the whole exchange, taken
	// when it starts, so that a reload in the middle of it changes nothing
	// of it.
	policies *policySet
	// shadows are the shadow outcomes of the records, added to them when
	// they are written.
	shadows shadowOutcomes
}

// ServeHTTP runs the inbound pipeline on one federation request.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.serve(w, r, &exchange{r: r})
}

// serve runs the pipeline on the request of ex and writes the response.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, ex *exchange) {
	ex.policies = g.currentPolicies()
	var err error
	select {
	case g.slots <- struct{}{}:
		// The slot is released even when the handler aborts a relayed
		// response with a panic.
		defer func() { <-g.slots }()
		err = g.handle(r.Context(), ex, w)
	default:
		w.Header().Set("Retry-After", "1")
		err = newError(http.StatusServiceUnavailable, codeUnknown,
			fmt.Sprintf("gateway busy: %d requests in progress", cap(g.slots)))
	}
	if err == nil {
		return
	}
	me := asMatrixError(err)
	rec := g.requestRecord(ex)
	rec.Allow = false
	rec.Status = me.status
	if rec.Action == "" || rec.Action == actionForward {
		rec.Action = actionRejected
	}

	rec.Error = me.Error()
	if rec.Result == nil {
		rec.Result = map[string]any{"allow": false, "reasons": []string{me.message}}
	}
	if err := g.finish(r.Context(), ex); err != nil {
		// A refusal whose record is lost is not sent: the origin gets a
		// 503 and retries, and is decided again.
		me = asMatrixError(err)
	}
	level := slog.LevelInfo
	if me.status >= 500 {
		level = slog.LevelWarn
	}
	g.log.Log(r.Context(), level, "request rejected",
		keyOrigin, ex.origin, keyEndpoint, ex.endpointID(), keyStatus, me.status,
		keyErrcode, me.errcode, keyDecisionID, rec.DecisionID, keyErr, me)
	writeMatrixError(w, me, rec.DecisionID)
}

// handle runs the pipeline steps in order; the cheap ones come first.
func (g *Gateway) handle(ctx context.Context, ex *exchange, w http.ResponseWriter) error {
	if err := g.route(ex); err != nil {
		return err
	}
	if ex.flow() == policy.DirectionInbound {
		g.readTLS(ex)
	}
	xmatrixAuth := ex.match.Route.Auth == routes.AuthXMatrix
	if xmatrixAuth {
		if err := g.parseAuthorization(ex); err != nil {
			return err
		}
	} else if ex.flow() == policy.DirectionOutbound {
		if err := g.outboundUnsigned(ex); err != nil {
			return err
		}
	}
	// The body of an origin whose keys the gateway will not look up is
	// never read: the request is refused anyway, and parsing is the most
	// expensive step an unauthenticated sender could make the gateway do.
	if !xmatrixAuth || ex.listed || ex.flow() == policy.DirectionOutbound {
		if err := g.readBody(ex); err != nil {
			return err
		}
	}
	if xmatrixAuth {
		if err := g.authenticate(ctx, ex); err != nil {
			return err
		}
	}
	if err := g.decideRequest(ctx, ex); err != nil {
		return err
	}
	if xmatrixAuth && !ex.authenticated {
		return newError(http.StatusUnauthorized, codeUnauthorized,
			fmt.Sprintf("request from %s cannot be authenticated: the server is not on the allow-list", ex.origin))
	}
	if err := g.checkRequestIdentity(ex); err != nil {
		return err
	}
	switch ex.match.Route.BodyPDUs {
	case routes.PDUsTransaction:
		return g.handleTransaction(ctx, ex, w)
	case routes.PDUsNone:
		return g.forwardRequest(ctx, ex, w)
	default:
		return g.handleMembership(ctx, ex, w)
	}
}

// checkBodyNumbers requires canonical integers everywhere in a body except
// inside its PDUs, which follow their room version's rules, and a
// transaction's EDUs, which are checked one by one so that one bad EDU
// does not fail the envelope.
func checkBodyNumbers(body canonicaljson.Value, pdus routes.PDULocation) error {
	var skip []string
	switch pdus {
	case routes.PDUsBody, routes.PDUsInviteV1:
		return nil
	case routes.PDUsTransaction:
		skip = []string{"pdus", "edus"}
	case routes.PDUsInviteV2:
		skip = []string{"event", "invite_room_state"}
	}
	return body.Without(skip...).CheckStrictNumbers()
}

func (ex *exchange) endpointID() string {
	if ex.match.Route == nil {
		return ""
	}
	return ex.match.Route.ID
}

// route matches the raw request target against the federation endpoints.
func (g *Gateway) route(ex *exchange) error {
	m, err := routes.Match(ex.r.Method, ex.r.RequestURI)
	if err == nil {
		ex.match = m
		return nil
	}
	var methodErr *routes.MethodNotAllowedError
	if errors.As(err, &methodErr) {
		e := newError(http.StatusMethodNotAllowed, codeUnrecognized,
			fmt.Sprintf("method %s is not allowed on this endpoint", ex.r.Method))
		e.allow = methodErr.Allowed
		return e
	}
	return wrapError(http.StatusNotFound, codeUnrecognized, "unrecognized request", err)
}

// readTLS records what the TLS handshake established about the client.
func (g *Gateway) readTLS(ex *exchange) {
	state := ex.r.TLS
	if state == nil || len(state.PeerCertificates) == 0 {
		return
	}
	cert := state.PeerCertificates[0]
	ex.tls.ClientCertificate = true
	// The listener verifies any certificate a client sends against the
	// client CA bundle during the handshake, so a certificate seen here
	// with verified chains is trusted.
	ex.tls.Verified = len(state.VerifiedChains) > 0
	ex.tls.Subject = cert.Subject.String()
	ex.tls.DNSNames = certs.PeerNames(cert)
	if ex.tls.Verified {
		ex.clientCert = cert
	}
}

// readBody reads the request body within the size cap and parses it.
func (g *Gateway) readBody(ex *exchange) error {
	limit := g.cfg.Inbound.MaxBodyBytes
	if ex.r.ContentLength > limit {
		return newError(http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("request body of %d bytes exceeds the limit of %d", ex.r.ContentLength, limit))
	}
	body, err := io.ReadAll(io.LimitReader(ex.r.Body, limit+1))
	if err != nil {
		return wrapError(http.StatusBadRequest, codeUnknown, "reading the request body failed", err)
	}
	if int64(len(body)) > limit {
		return newError(http.StatusRequestEntityTooLarge, codeTooLarge,
			fmt.Sprintf("request body exceeds the limit of %d bytes", limit))
	}
	ex.body = body
	if len(body) == 0 {
		if ex.r.Method == http.MethodPut || ex.r.Method == http.MethodPost {
			return newError(http.StatusBadRequest, codeNotJSON, "request body is empty; a JSON object is required")
		}
		return nil
	}
	v, err := canonicaljson.ParseWith(body, canonicaljson.Options{MaxValues: maxBodyValues})
	if err != nil {
		return jsonErrorFor("request body", err)
	}
	if v.Kind() != canonicaljson.Object {
		return newError(http.StatusBadRequest, codeBadJSON, "request body must be a JSON object, not "+v.Kind().String())
	}
	if err := checkBodyNumbers(v, ex.match.Route.BodyPDUs); err != nil {
		return jsonErrorFor("request body", err)
	}
	ex.content, ex.hasContent = v, true
	return nil
}

// parseAuthorization parses the X-Matrix headers and checks the
// destination, before any key is looked up.
func (g *Gateway) parseAuthorization(ex *exchange) error {
	values := ex.r.Header.Values("Authorization")
	for _, v := range values {
		if s := authScheme(v); !strings.EqualFold(s, "X-Matrix") {
			return newError(http.StatusBadRequest, codeUnauthorized,
				fmt.Sprintf("Authorization scheme %q is not accepted; federation requests use X-Matrix", s))
		}
	}
	creds, err := xmatrix.ParseAuthorization(values)
	switch {
	case errors.Is(err, xmatrix.ErrMissing):
		return wrapError(http.StatusUnauthorized, codeUnauthorized, "missing X-Matrix Authorization header", err)
	case err != nil:
		return wrapError(http.StatusBadRequest, codeUnauthorized, "malformed Authorization header: "+err.Error(), err)
	}
	ex.creds = creds
	ex.origin = creds[0].Origin
	if ex.flow() == policy.DirectionOutbound {
		return g.checkOutboundParties(ex)
	}
	for _, c := range creds {
		if c.Destination == "" {
			continue
		}
		if !slices.Contains(g.cfg.ServerNames, c.Destination) {
			return newError(http.StatusUnauthorized, codeUnauthorized,
				fmt.Sprintf("destination %q in the Authorization header is not this server", c.Destination))
		}
		ex.destination = c.Destination
	}
	ex.matchPeer(g, ex.origin)
	return nil
}

// decideRequest evaluates the request policy and records its decision.
func (g *Gateway) decideRequest(ctx context.Context, ex *exchange) error {
	input := g.requestInput(ex)
	rec := g.requestRecord(ex)
	rec.Input = input
	decision, err := g.decide(ctx, ex, policy.KindRequest, input, rec)
	if err != nil {
		return wrapError(http.StatusInternalServerError, codeUnknown, "policy evaluation failed", err)
	}
	rec.Result = decisionResult(decision)
	rec.Allow = decision.Allow
	if !decision.Allow {
		rec.Action = actionDenied
		return newError(http.StatusForbidden, codeForbidden, "denied by policy: "+joinReasons(decision.Reasons))
	}
	if ex.denied != nil {
		// A deny entry wins whatever the policy decided.
		return newError(http.StatusForbidden, codeForbidden, denyMessage(ex.peer(), *ex.denied))
	}
	if ex.flow() == policy.DirectionInbound && ex.listed && ex.entry.RequireMTLS && !ex.tls.MatchesOrigin {
		return newError(http.StatusForbidden, codeForbidden,
			fmt.Sprintf("%s must present a client certificate naming it", ex.origin))
	}
	return nil
}

func joinReasons(reasons []string) string {
	if len(reasons) == 0 {
		return "no reason given"
	}
	return strings.Join(reasons, "; ")
}

func decisionResult(d policy.Decision) any {
	if d.Result != nil {
		return d.Result
	}
	return map[string]any{"allow": d.Allow, "reasons": d.Reasons}
}

// forwardRequest passes an allowed request to the homeserver and learns
// room versions from the responses that state them.
func (g *Gateway) forwardRequest(ctx context.Context, ex *exchange, w http.ResponseWriter) error {
	rec := g.requestRecord(ex)
	rec.Action = actionForward
	if err := g.commitItems(ctx, ex); err != nil {
		return err
	}
	inspect := learnsFromResponse(ex.match.Route.ID) || len(ex.match.Route.ResponsePDUs) > 0 || checksKeyResponse(ex) ||
		(ex.flow() == policy.DirectionOutbound && ex.endpointID() == "well_known")
	if !inspect {
		resp, cancel, err := g.upstreamFor(ex).send(ctx, ex, ex.body, ex.authHeaders)
		if err != nil {
			return err
		}
		defer cancel()
		defer resp.Body.Close()
		if err := g.delivered(ctx, ex, resp.StatusCode); err != nil {
			return err
		}
		relay(w, resp, rec.DecisionID)
		return nil
	}
	resp, err := fetch(ctx, g.upstreamFor(ex), ex, ex.body, ex.authHeaders, maxResponseBytes)
	if err != nil {
		return err
	}
	if err := g.inspectAnswer(ctx, ex, resp); err != nil {
		return err
	}
	if err := g.delivered(ctx, ex, resp.status); err != nil {
		return err
	}
	writeForwarded(w, resp, rec.DecisionID)
	return nil
}

// commitItems writes the PDU and EDU records of an exchange before its
// request is forwarded, so that nothing reaches the homeserver whose
// decision is not on disk: a decision log that cannot be written stops
// the request with 503. An item record with action "forward" therefore
// means the gateway sent the item on, and the request record, written once the
// homeserver has answered, has the homeserver's status. A request without
// items has its own record written now instead, without a status.
func (g *Gateway) commitItems(ctx context.Context, ex *exchange) error {
	if len(ex.items) == 0 {
		return g.finish(ctx, ex)
	}
	items := ex.items
	ex.items = nil
	ex.shadows.attach(items)
	return g.writeRecords(ctx, items)
}

// inspectAnswer checks a response the gateway reads before passing it on.
// Any success status is inspected, not only 200, and a redirect is
// refused: following it would fetch what the gateway never saw.
func (g *Gateway) inspectAnswer(ctx context.Context, ex *exchange, resp *forwardedResponse) error {
	switch {
	case resp.status >= 300 && resp.status < 400 && ex.endpointID() == "well_known":
		// The specification lets .well-known responses redirect; the
		// homeserver follows them, through the gateway again.
		return nil
	case resp.status >= 300 && resp.status < 400:
		return newError(http.StatusBadGateway, codeUnknown,
			fmt.Sprintf("response is a redirect (%d), which the gateway does not pass on for this endpoint", resp.status))
	case resp.status < 200 || resp.status >= 300:
		return nil
	}
	if learnsFromResponse(ex.endpointID()) {
		return g.inspectTemplate(ctx, ex, resp.body)
	}
	// The events of a response travel against the request: the local
	// homeserver's leave the administration, a peer's come in.
	filtered, err := g.filterResponse(ctx, ex, opposite(ex.flow()), ex.destinationName(g), resp.body)
	if err != nil {
		return err
	}
	resp.body = filtered
	if checksKeyResponse(ex) {
		if resp.body, err = g.checkKeyResponse(ctx, ex, resp.body); err != nil {
			return err
		}
	}
	// Only a response that passed every check teaches a delegation.
	if ex.flow() == policy.DirectionOutbound && ex.endpointID() == "well_known" {
		g.delegations.learn(ex.destination, resp.body)
	}
	return nil
}

// delivered completes an exchange whose request the homeserver answered
// with status: it stores what the request taught if the homeserver
// accepted it, and writes the request record, which is durable before the
// origin sees the answer. An origin that gets no answer retries, and the
// retry is decided and recorded again.
func (g *Gateway) delivered(ctx context.Context, ex *exchange, status int) error {
	if ex.request != nil {
		ex.request.Status = status
	}
	g.learnPending(ctx, ex, status)
	return g.finish(ctx, ex)
}

// authScheme returns the scheme of an Authorization value: its first
// token.
func authScheme(value string) string {
	value = strings.TrimLeft(value, " \t")
	if end := strings.IndexAny(value, " \t"); end >= 0 {
		return value[:end]
	}
	return value
}
