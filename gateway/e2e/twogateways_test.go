package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// secretBody is the body of the event that gateway 1's policy keeps from
// leaving hs1. No record or client view outside hs1 may contain it.
const secretBody = "this event type never leaves hs1"

// TestTwoGateways runs federation with a bordergate in front of each
// homeserver: hs1 -> gateway 1 -> gateway 2 -> hs2 and back the same way,
// with mutual TLS between the gateways. It checks a conversation in both
// directions, an outbound event that gateway 1 denies, a peer without a
// client certificate, and an event that gateway 2 withholds from a
// transaction and later passes on redacted when hs2 fetches it.
func TestTwoGateways(t *testing.T) {
	testfed.RequireNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bin, repoRoot := bordergateBinary(t, ctx)
	fed := startFederation(t, ctx, testfed.Options{TwoGateways: true, BordergateBin: bin, RepoRoot: repoRoot})
	gw1, gw2 := fed.Gateway1, fed.Gateway
	t.Cleanup(func() {
		if t.Failed() {
			logGatewayDecisions(t, gw1)
			logGatewayDecisions(t, gw2)
		}
	})

	start := time.Now()
	conv, err := testfed.StartConversation(ctx, fed)
	if err != nil {
		t.Fatalf("conversation through both gateways: %v", err)
	}
	t.Logf("room, invite, join and two messages through both gateways took %s", time.Since(start).Round(time.Millisecond))

	t.Run("both directions cross both gateways", func(t *testing.T) {
		checkCrossings(t, gw1, gw2, conv)
	})

	var secretID string
	t.Run("outbound denied event stays home", func(t *testing.T) {
		secretID = checkSecretStaysHome(t, ctx, gw1, gw2, conv)
	})

	t.Run("peer without client certificate", func(t *testing.T) {
		checkMissingClientCertificate(t, ctx, fed, conv)
	})

	t.Run("withheld event pulled back redacted", func(t *testing.T) {
		checkPulledBackRedacted(t, ctx, fed, conv)
	})

	t.Run("secret content never crosses", func(t *testing.T) {
		if secretID == "" {
			t.Skip("the secret event was not sent")
		}
		checkSecretContent(t, ctx, gw2, conv, secretID)
	})
}

// crossing is one request or PDU that a gateway must have forwarded.
type crossing struct {
	name   string
	gw     *testfed.Gateway
	kind   string // "request" or "pdu"
	flow   string // matrix.direction of the record
	match  func(m *decisionlog.Matrix) bool
	origin string
	dest   string
	// mutualTLS is set for inbound request records, whose policy input
	// must show the peer gateway's client certificate.
	mutualTLS bool
}

// checkCrossings checks that the invite, the join and both messages of the
// conversation have an allowed, forwarded record on each gateway, outbound
// on the sender's and inbound on the receiver's.
func checkCrossings(t *testing.T, gw1, gw2 *testfed.Gateway, conv *testfed.Conversation) {
	hs1, hs2 := testfed.HS1ServerName, testfed.HS2ServerName
	endpoint := func(id string) func(m *decisionlog.Matrix) bool {
		return func(m *decisionlog.Matrix) bool { return m.Endpoint == id }
	}
	event := func(id string) func(m *decisionlog.Matrix) bool {
		return func(m *decisionlog.Matrix) bool { return m.Endpoint == "send" && m.EventID == id }
	}
	crossings := []crossing{
		{"invite leaves hs1", gw1, "request", "outbound", endpoint("invite_v2"), hs1, hs2, false},
		{"invite enters hs2", gw2, "request", "inbound", endpoint("invite_v2"), hs1, hs2, true},
		{"make_join leaves hs2", gw2, "request", "outbound", endpoint("make_join"), hs2, hs1, false},
		{"make_join enters hs1", gw1, "request", "inbound", endpoint("make_join"), hs2, hs1, true},
		{"send_join leaves hs2", gw2, "request", "outbound", endpoint("send_join_v2"), hs2, hs1, false},
		{"send_join enters hs1", gw1, "request", "inbound", endpoint("send_join_v2"), hs2, hs1, true},
		{"alice's message leaves hs1", gw1, "pdu", "outbound", event(conv.AliceMessageID), hs1, hs2, false},
		{"alice's message enters hs2", gw2, "pdu", "inbound", event(conv.AliceMessageID), hs1, hs2, false},
		{"bob's message leaves hs2", gw2, "pdu", "outbound", event(conv.BobMessageID), hs2, hs1, false},
		{"bob's message enters hs1", gw1, "pdu", "inbound", event(conv.BobMessageID), hs2, hs1, false},
	}
	for _, c := range crossings {
		t.Run(c.name, func(t *testing.T) {
			records, err := c.gw.Decisions()
			if err != nil {
				t.Fatal(err)
			}
			matches := findRecords(records, c.kind, c.flow, c.match)
			if len(matches) == 0 {
				t.Fatalf("%s has no %s %s record of this crossing", c.gw.Name, c.flow, c.kind)
			}
			for _, rec := range matches {
				if !rec.Allow {
					t.Errorf("record %s: allow = false, want true; reasons %q", rec.DecisionID, testfed.DecisionReasons(rec))
				}
				if rec.Action != decisionlog.ActionForward {
					t.Errorf("record %s: action = %q, want %q", rec.DecisionID, rec.Action, decisionlog.ActionForward)
				}
				if rec.Matrix.Origin != c.origin {
					t.Errorf("record %s: origin = %q, want %q", rec.DecisionID, rec.Matrix.Origin, c.origin)
				}
				if rec.Matrix.Destination != c.dest {
					t.Errorf("record %s: destination = %q, want %q", rec.DecisionID, rec.Matrix.Destination, c.dest)
				}
				if c.kind == "pdu" {
					checkTransactionForwarded(t, records, rec)
				}
				if c.mutualTLS {
					checkMutualTLS(t, rec)
				}
			}
		})
	}
}

// checkTransactionForwarded checks that the request record of the
// transaction that carried an allowed PDU has action forward and the
// receiver's status 200.
func checkTransactionForwarded(t *testing.T, records []decisionlog.Record, pdu decisionlog.Record) {
	t.Helper()
	txnID := pdu.Matrix.TxnID
	if txnID == "" {
		t.Fatalf("record %s has no txn_id", pdu.DecisionID)
	}
	requests := findRecords(records, "request", pdu.Matrix.Direction, func(m *decisionlog.Matrix) bool {
		return m.Endpoint == "send" && m.TxnID == txnID && m.Origin == pdu.Matrix.Origin
	})
	if len(requests) == 0 {
		t.Fatalf("no %s request record of transaction %s", pdu.Matrix.Direction, txnID)
	}
	for _, rec := range requests {
		if rec.Action != decisionlog.ActionForward {
			t.Errorf("request record %s of transaction %s: action = %q, want %q", rec.DecisionID, txnID, rec.Action, decisionlog.ActionForward)
		}
		if rec.Status != http.StatusOK {
			t.Errorf("request record %s of transaction %s: status = %d, want 200", rec.DecisionID, txnID, rec.Status)
		}
	}
}

// checkMutualTLS checks that the policy input of an inbound request record
// shows a verified client certificate that names the origin.
func checkMutualTLS(t *testing.T, rec decisionlog.Record) {
	t.Helper()
	input, _ := rec.Input.(map[string]any)
	state, ok := input["tls"].(map[string]any)
	if !ok {
		t.Fatalf("record %s has no input.tls", rec.DecisionID)
	}
	for _, field := range []string{"client_certificate", "verified", "matches_origin"} {
		if state[field] != true {
			t.Errorf("record %s: input.tls.%s = %v, want true", rec.DecisionID, field, state[field])
		}
	}
}

// checkSecretStaysHome has alice send an event of the type that gateway
// 1's policy denies, and checks that gateway 1 responds to hs1 itself,
// that gateway 2 has no record of the event and that bob cannot read it.
// It returns the event ID.
func checkSecretStaysHome(t *testing.T, ctx context.Context, gw1, gw2 *testfed.Gateway, conv *testfed.Conversation) string {
	secretID, err := conv.Alice.Send(ctx, conv.RoomID, testfed.SecretEventType, map[string]any{"body": secretBody})
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	denied, err := gw1.WaitForDecision(waitCtx, func(rec decisionlog.Record) bool {
		return testfed.DecisionKind(rec) == "pdu" && rec.Matrix != nil && rec.Matrix.EventID == secretID
	})
	if err != nil {
		t.Fatalf("gateway 1's decision on %s: %v", secretID, err)
	}
	if denied.Matrix.Direction != "outbound" {
		t.Errorf("record %s: direction = %q, want outbound", denied.DecisionID, denied.Matrix.Direction)
	}
	if denied.Allow {
		t.Errorf("record %s: allow = true, want false", denied.DecisionID)
	}
	if denied.Action != decisionlog.ActionDenied {
		t.Errorf("record %s: action = %q, want %q", denied.DecisionID, denied.Action, decisionlog.ActionDenied)
	}
	if denied.Matrix.Endpoint != "send" {
		t.Errorf("record %s: endpoint = %q, want send", denied.DecisionID, denied.Matrix.Endpoint)
	}
	wantReason := "event type " + testfed.SecretEventType + " denied"
	if reasons := testfed.DecisionReasons(denied); !slices.Contains(reasons, wantReason) {
		t.Errorf("record %s: reasons = %q, want them to contain %q", denied.DecisionID, reasons, wantReason)
	}

	// Gateway 1 responds to hs1's transaction itself, with 200 and an
	// error for each PDU, so that hs1 does not send it again.
	txnID := denied.Matrix.TxnID
	answer, err := gw1.WaitForDecision(waitCtx, func(rec decisionlog.Record) bool {
		return testfed.DecisionKind(rec) == "request" && rec.Matrix != nil && rec.Matrix.Direction == "outbound" &&
			rec.Matrix.Endpoint == "send" && rec.Matrix.TxnID == txnID
	})
	if err != nil {
		t.Fatalf("gateway 1's request record of transaction %q: %v", txnID, err)
	}
	if answer.Action != decisionlog.ActionAnswered {
		t.Errorf("request record %s: action = %q, want %q", answer.DecisionID, answer.Action, decisionlog.ActionAnswered)
	}
	if answer.Status != http.StatusOK {
		t.Errorf("request record %s: status = %d, want 200", answer.DecisionID, answer.Status)
	}
	if answer.WithheldBy != denied.DecisionID {
		t.Errorf("request record %s: withheld_by = %q, want %q", answer.DecisionID, answer.WithheldBy, denied.DecisionID)
	}

	// A message from bob that alice receives crosses both gateways after
	// hs1 handled the secret event.
	if _, err := sendAndWait(ctx, conv.Bob, conv.Alice, conv.RoomID, "message from bob after the secret event"); err != nil {
		t.Fatal(err)
	}
	records, err := gw2.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range records {
		if rec.Matrix != nil && rec.Matrix.EventID == secretID {
			t.Errorf("gateway 2 has record %s of %s: %s", rec.DecisionID, secretID, testfed.FormatDecision(rec))
		}
	}
	ev, err := conv.Bob.Event(ctx, conv.RoomID, secretID)
	var matrixErr *testfed.MatrixError
	switch {
	case err == nil:
		t.Errorf("bob can read %s: type %s, content %s", secretID, ev.Type, ev.Content)
	case !errors.As(err, &matrixErr) || matrixErr.Status != http.StatusNotFound:
		t.Errorf("bob's request for %s: %v, want 404", secretID, err)
	}
	return secretID
}

// checkMissingClientCertificate sends a request signed by hs1 to gateway
// 2's inbound listener without a client certificate, although gateway 2's
// allow-list entry for hs1 requires mutual TLS, and then the same request
// with gateway 1's client certificate.
func checkMissingClientCertificate(t *testing.T, ctx context.Context, fed *testfed.Federation, conv *testfed.Conversation) {
	gw2 := fed.Gateway
	profileURL := gw2.URL + "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape(conv.Bob.UserID)

	// Gateway 2's inbound listener requires a client certificate
	// (inbound.tls.require_client_certificate), so the refusal comes in
	// the TLS handshake, which the client sees as an error, and leaves a
	// record with allow false.
	sentAt := time.Now()
	resp, err := testfed.SendFederationRequest(ctx, gw2.HTTP, fed.HS1.SigningKey, testfed.HS2ServerName,
		http.MethodGet, profileURL, nil)
	if err == nil {
		t.Errorf("request without a client certificate got status %d, want a refused TLS handshake; body %s", resp.Status, resp.Body)
	} else {
		t.Logf("request without a client certificate failed at the TLS layer: %v", err)
		waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		rec, waitErr := gw2.WaitForDecision(waitCtx, func(rec decisionlog.Record) bool {
			return rec.Matrix != nil && rec.Matrix.Endpoint == "tls_handshake" && !rec.Timestamp.Before(sentAt.Add(-time.Second))
		})
		if waitErr != nil {
			t.Fatalf("request failed (%v), and gateway 2 has no record of a refused handshake: %v", err, waitErr)
		}
		if rec.Allow {
			t.Errorf("record %s: allow = true, want false", rec.DecisionID)
		}
	}

	pair, err := tls.LoadX509KeyPair(fed.Gateway1.ClientCertFile, fed.Gateway1.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	transport := gw2.HTTP.Transport.(*http.Transport).Clone()
	transport.TLSClientConfig.Certificates = []tls.Certificate{pair}
	withCert := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	defer transport.CloseIdleConnections()
	resp, err = testfed.SendFederationRequest(ctx, withCert, fed.HS1.SigningKey, testfed.HS2ServerName,
		http.MethodGet, profileURL, nil)
	if err != nil {
		t.Fatalf("request with gateway 1's client certificate: %v", err)
	}
	if resp.Status != http.StatusOK {
		t.Errorf("with gateway 1's client certificate: status = %d, want 200; body %s", resp.Status, resp.Body)
	}
}

// checkPulledBackRedacted has alice send an event of the type that gateway
// 2's policy denies, in one transaction with an allowed message, and then
// another message alone. Gateway 2 withholds the first transaction. When
// hs2 fetches the missing events from hs1, through gateway 2's outbound
// path, gateway 2 passes the denied event on redacted.
func checkPulledBackRedacted(t *testing.T, ctx context.Context, fed *testfed.Federation, conv *testfed.Conversation) {
	gw2 := fed.Gateway
	result, err := testfed.SendForbidden(ctx, fed, conv)
	if err != nil {
		t.Fatalf("send forbidden event through both gateways: %v", err)
	}
	records, err := gw2.Decisions()
	if err != nil {
		t.Fatal(err)
	}

	withheld := findRecords(records, "pdu", "inbound", func(m *decisionlog.Matrix) bool {
		return m.Endpoint == "send" && m.EventID == result.ForbiddenEventID
	})
	if len(withheld) == 0 {
		t.Errorf("gateway 2 has no inbound send record of %s", result.ForbiddenEventID)
	}
	for _, rec := range withheld {
		if rec.Allow || rec.Action != decisionlog.ActionDenied {
			t.Errorf("send record %s: allow = %t, action = %q; want false, %q", rec.DecisionID, rec.Allow, rec.Action, decisionlog.ActionDenied)
		}
	}

	pulled := findRecords(records, "pdu", "inbound", func(m *decisionlog.Matrix) bool {
		return m.Endpoint != "send" && m.EventID == result.ForbiddenEventID
	})
	if len(pulled) == 0 {
		t.Fatalf("gateway 2 has no inbound record of %s in a response", result.ForbiddenEventID)
	}
	for _, rec := range pulled {
		t.Logf("gateway 2 decided %s in the response to %s", result.ForbiddenEventID, rec.Matrix.Endpoint)
		checkOutboundRequest(t, records, rec.Matrix.Endpoint)
		if rec.Allow {
			t.Errorf("response record %s: allow = true, want false", rec.DecisionID)
		}
		if rec.Action != decisionlog.ActionRedacted {
			t.Errorf("response record %s: action = %q, want %q", rec.DecisionID, rec.Action, decisionlog.ActionRedacted)
		}
		if rec.Matrix.Origin != testfed.HS1ServerName {
			t.Errorf("response record %s: origin = %q, want %q", rec.DecisionID, rec.Matrix.Origin, testfed.HS1ServerName)
		}
	}

	// Gateway 1's policy allows the event, so it passes it on whole in
	// its response to hs2's request.
	records1, err := fed.Gateway1.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	sent := findRecords(records1, "pdu", "outbound", func(m *decisionlog.Matrix) bool {
		return m.Endpoint != "send" && m.EventID == result.ForbiddenEventID
	})
	if len(sent) == 0 {
		t.Errorf("gateway 1 has no outbound record of %s in a response", result.ForbiddenEventID)
	}
	for _, rec := range sent {
		if !rec.Allow || rec.Action != decisionlog.ActionForward {
			t.Errorf("gateway 1's response record %s: allow = %t, action = %q; want true, %q", rec.DecisionID, rec.Allow, rec.Action, decisionlog.ActionForward)
		}
	}

	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ev, err := waitForEvent(waitCtx, conv.Bob, conv.RoomID, result.ForbiddenEventID)
	if err != nil {
		t.Fatalf("bob's copy of %s: %v", result.ForbiddenEventID, err)
	}
	if ev.Type != testfed.ForbiddenEventType {
		t.Errorf("bob's copy of %s: type = %q, want %q", ev.EventID, ev.Type, testfed.ForbiddenEventType)
	}
	if !emptyContent(ev.Content) {
		t.Errorf("bob's copy of %s: content = %s, want {} (redacted)", ev.EventID, ev.Content)
	}
}

// checkOutboundRequest checks that gateway 2 allowed and forwarded one of
// hs2's requests to endpoint on hs1.
func checkOutboundRequest(t *testing.T, records []decisionlog.Record, endpoint string) {
	t.Helper()
	requests := findRecords(records, "request", "outbound", func(m *decisionlog.Matrix) bool {
		return m.Endpoint == endpoint && m.Origin == testfed.HS2ServerName && m.Destination == testfed.HS1ServerName
	})
	for _, rec := range requests {
		// The gateway writes the record of a request without PDUs before
		// sending it, so its status stays 0 (unknown).
		if rec.Allow && rec.Action == decisionlog.ActionForward && (rec.Status == 0 || rec.Status == http.StatusOK) {
			return
		}
	}
	t.Errorf("gateway 2 has no outbound %s request record with allow true and action forward (%d records of that endpoint)",
		endpoint, len(requests))
}

// checkSecretContent checks that the content of the secret event never
// reached hs2. Later events reference it, so hs2 may fetch it through the
// gateways, and gateway 1 then passes it on redacted. The body must still
// be missing from gateway 2's records and from bob's view.
func checkSecretContent(t *testing.T, ctx context.Context, gw2 *testfed.Gateway, conv *testfed.Conversation, secretID string) {
	records, err := gw2.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range records {
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(line), secretBody) {
			t.Errorf("gateway 2's record %s contains the secret body: %s", rec.DecisionID, testfed.FormatDecision(rec))
		}
		if rec.Matrix != nil && rec.Matrix.EventID == secretID {
			t.Logf("gateway 2 has a record of %s: %s", secretID, testfed.FormatDecision(rec))
		}
	}

	ev, err := conv.Bob.Event(ctx, conv.RoomID, secretID)
	var matrixErr *testfed.MatrixError
	switch {
	case errors.As(err, &matrixErr) && matrixErr.Status == http.StatusNotFound:
		t.Logf("bob has no copy of %s", secretID)
	case err != nil:
		t.Errorf("bob's request for %s: %v", secretID, err)
	case !emptyContent(ev.Content):
		t.Errorf("bob's copy of %s: content = %s, want {} (redacted) or no copy", secretID, ev.Content)
	default:
		t.Logf("bob has %s in redacted form, type %s", secretID, ev.Type)
	}
}

// waitForEvent polls GET /rooms/{roomId}/event/{eventId} until the event
// is there, because an event that the homeserver fetched to fill a gap
// may never appear in /sync.
func waitForEvent(ctx context.Context, client *testfed.Client, roomID, eventID string) (testfed.Event, error) {
	for {
		ev, err := client.Event(ctx, roomID, eventID)
		if err == nil {
			return ev, nil
		}
		select {
		case <-ctx.Done():
			return testfed.Event{}, err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// sendAndWait sends a text message as from and waits until to has it.
func sendAndWait(ctx context.Context, from, to *testfed.Client, roomID, body string) (string, error) {
	eventID, err := from.SendText(ctx, roomID, body)
	if err != nil {
		return "", err
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := to.WaitForEventID(waitCtx, roomID, eventID); err != nil {
		return "", err
	}
	return eventID, nil
}

func emptyContent(content json.RawMessage) bool {
	var fields map[string]any
	return json.Unmarshal(content, &fields) == nil && len(fields) == 0
}

// findRecords returns the records of one kind and direction whose Matrix
// identifiers match.
func findRecords(records []decisionlog.Record, kind, direction string, match func(m *decisionlog.Matrix) bool) []decisionlog.Record {
	var found []decisionlog.Record
	for _, rec := range records {
		if testfed.DecisionKind(rec) == kind && rec.Matrix != nil && rec.Matrix.Direction == direction && match(rec.Matrix) {
			found = append(found, rec)
		}
	}
	return found
}

// logGatewayDecisions logs every decision record of gw, one line each.
func logGatewayDecisions(t *testing.T, gw *testfed.Gateway) {
	if gw == nil {
		return
	}
	records, err := gw.Decisions()
	if err != nil {
		t.Logf("read decision log of %s: %v", gw.Name, err)
		return
	}
	t.Logf("%d decision records of %s in %s:", len(records), gw.Name, gw.DecisionLog)
	for _, rec := range records {
		direction := ""
		if rec.Matrix != nil {
			direction = rec.Matrix.Direction
		}
		t.Logf("%s %-8s %s", gw.Name, direction, testfed.FormatDecision(rec))
	}
}
