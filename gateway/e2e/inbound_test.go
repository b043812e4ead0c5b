package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// unlistedServerName is a server that is not on the gateway's allow-list.
// Its host part is in the namespace's hosts file, so the gateway could
// fetch its keys.
const unlistedServerName = "hs3.localhost:8483"

// TestInboundGateway runs hs1 -> bordergate -> hs2 federation: a
// conversation, a transaction withheld because of a denied event type, and
// requests with a forged signature and from a server missing from the
// allow-list.
func TestInboundGateway(t *testing.T) {
	testfed.RequireNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	bin, repoRoot := bordergateBinary(t, ctx)
	fed := startFederation(t, ctx, testfed.Options{Gateway: true, BordergateBin: bin, RepoRoot: repoRoot})
	t.Cleanup(func() {
		if t.Failed() {
			logDecisions(t, fed)
		}
	})

	conv, err := testfed.StartConversation(ctx, fed)
	if err != nil {
		t.Fatalf("conversation through the gateway: %v", err)
	}
	t.Run("allowed message forwarded", func(t *testing.T) {
		checkForwarded(t, fed, conv.AliceMessageID)
	})

	profileURL := fed.Gateway.URL + "/_matrix/federation/v1/query/profile?user_id=" + url.QueryEscape(conv.Bob.UserID)
	t.Run("valid signature accepted", func(t *testing.T) {
		resp, err := testfed.SendFederationRequest(ctx, fed.HTTP, fed.HS1.SigningKey, testfed.HS2ServerName,
			http.MethodGet, profileURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusOK {
			t.Errorf("status = %d, want 200; body %s", resp.Status, resp.Body)
		}
	})

	t.Run("forged signature rejected", func(t *testing.T) {
		// A fresh key under hs1's real key ID: the header is well formed
		// and names a key that exists, but the signature does not verify.
		forged, err := testfed.NewSigningKey(testfed.HS1ServerName, fed.HS1.SigningKey.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := testfed.SendFederationRequest(ctx, fed.HTTP, forged, testfed.HS2ServerName,
			http.MethodGet, profileURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkRejection(t, ctx, fed, resp, http.StatusUnauthorized, "M_UNAUTHORIZED", testfed.HS1ServerName)
	})

	t.Run("server not on allow-list rejected", func(t *testing.T) {
		// The key server makes the request correctly signed, so the only
		// reason to reject it is the allow-list.
		unlisted, err := fed.StartKeyServer(unlistedServerName)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := testfed.SendFederationRequest(ctx, fed.HTTP, unlisted.Key, testfed.HS2ServerName,
			http.MethodGet, profileURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkRejection(t, ctx, fed, resp, http.StatusForbidden, "M_FORBIDDEN", unlistedServerName)
	})

	result, err := testfed.SendForbidden(ctx, fed, conv)
	if err != nil {
		t.Fatalf("send forbidden event through the gateway: %v", err)
	}
	records, err := fed.Decisions()
	if err != nil {
		t.Fatal(err)
	}

	var forbidden decisionlog.Record
	t.Run("forbidden event denied", func(t *testing.T) {
		matches := pduRecords(records, result.ForbiddenEventID)
		if len(matches) == 0 {
			t.Fatalf("no PDU record for %s", result.ForbiddenEventID)
		}
		for _, rec := range matches {
			if rec.Allow {
				t.Errorf("record %s: allow = true, want false", rec.DecisionID)
			}
			if rec.Action == decisionlog.ActionForward {
				t.Errorf("record %s: action = %q, want anything but forward", rec.DecisionID, rec.Action)
			}
			if rec.Matrix.EventType != testfed.ForbiddenEventType {
				t.Errorf("record %s: event_type = %q, want %q", rec.DecisionID, rec.Matrix.EventType, testfed.ForbiddenEventType)
			}
			if rec.Matrix.Origin != testfed.HS1ServerName {
				t.Errorf("record %s: origin = %q, want %q", rec.DecisionID, rec.Matrix.Origin, testfed.HS1ServerName)
			}
			if rec.Matrix.Endpoint != "send" {
				t.Errorf("record %s: endpoint = %q, want send", rec.DecisionID, rec.Matrix.Endpoint)
			}
			if rec.Matrix.RoomID != conv.RoomID {
				t.Errorf("record %s: room_id = %q, want %q", rec.DecisionID, rec.Matrix.RoomID, conv.RoomID)
			}
		}
		forbidden = matches[0]
	})
	if forbidden.DecisionID == "" {
		t.FailNow()
	}

	t.Run("rest of transaction withheld", func(t *testing.T) {
		txnID := forbidden.Matrix.TxnID
		if txnID == "" {
			t.Fatalf("record %s of the forbidden event has no txn_id", forbidden.DecisionID)
		}
		batched := pduRecords(records, result.BatchedEventID)
		if len(batched) == 0 {
			t.Fatalf("no PDU record for %s, sent in the same transaction", result.BatchedEventID)
		}
		sameTxn := 0
		for _, rec := range records {
			if rec.Matrix == nil || rec.Matrix.TxnID != txnID || rec.Matrix.Origin != testfed.HS1ServerName ||
				rec.DecisionID == forbidden.DecisionID || !isItemRecord(rec) {
				continue
			}
			sameTxn++
			if rec.Action != decisionlog.ActionWithheld {
				t.Errorf("record %s (%s) in transaction %s: action = %q, want %q",
					rec.DecisionID, testfed.DecisionKind(rec), txnID, rec.Action, decisionlog.ActionWithheld)
			}
			if rec.WithheldBy != forbidden.DecisionID {
				t.Errorf("record %s: withheld_by = %q, want %q", rec.DecisionID, rec.WithheldBy, forbidden.DecisionID)
			}
		}
		if sameTxn == 0 {
			t.Errorf("no other item records in transaction %s, want at least the PDU %s", txnID, result.BatchedEventID)
		}
		withheld := false
		for _, rec := range batched {
			if rec.Matrix.TxnID == txnID && rec.Action == decisionlog.ActionWithheld {
				withheld = true
			}
		}
		if !withheld {
			t.Errorf("%s has no withheld record in transaction %s", result.BatchedEventID, txnID)
		}
		answered := false
		for _, rec := range records {
			if testfed.DecisionKind(rec) == "request" && rec.Matrix != nil && rec.Matrix.TxnID == txnID &&
				rec.Action == decisionlog.ActionAnswered && rec.Status == http.StatusOK {
				answered = true
			}
		}
		if !answered {
			t.Errorf("no request record says the gateway answered transaction %s itself with 200", txnID)
		}
	})

	t.Run("later message forwarded", func(t *testing.T) {
		checkForwarded(t, fed, result.LaterEventID)
	})

	t.Run("replay against a changed rule", func(t *testing.T) {
		checkReplayFlips(t, ctx, bin, repoRoot, fed)
	})
}

// isItemRecord reports whether a record is about one PDU or EDU rather than
// about the whole request.
func isItemRecord(rec decisionlog.Record) bool {
	kind := testfed.DecisionKind(rec)
	return kind == "pdu" || kind == "edu"
}

// pduRecords returns the PDU records of eventID.
func pduRecords(records []decisionlog.Record, eventID string) []decisionlog.Record {
	var matches []decisionlog.Record
	for _, rec := range records {
		if testfed.DecisionKind(rec) == "pdu" && rec.Matrix != nil && rec.Matrix.EventID == eventID {
			matches = append(matches, rec)
		}
	}
	return matches
}

// requirePDURecords returns the PDU records of eventID, which must be in
// the log already.
func requirePDURecords(t *testing.T, fed *testfed.Federation, eventID string) []decisionlog.Record {
	t.Helper()
	records, err := fed.Decisions()
	if err != nil {
		t.Fatal(err)
	}
	matches := pduRecords(records, eventID)
	if len(matches) == 0 {
		t.Fatalf("no PDU record for %s", eventID)
	}
	return matches
}

// checkForwarded checks that the gateway allowed and forwarded eventID.
func checkForwarded(t *testing.T, fed *testfed.Federation, eventID string) {
	t.Helper()
	for _, rec := range requirePDURecords(t, fed, eventID) {
		if !rec.Allow {
			t.Errorf("record %s: allow = false, want true; reasons %q", rec.DecisionID, testfed.DecisionReasons(rec))
		}
		if rec.Action != decisionlog.ActionForward {
			t.Errorf("record %s: action = %q, want %q", rec.DecisionID, rec.Action, decisionlog.ActionForward)
		}
	}
}

// checkRejection checks a gateway error response and the decision record
// that its decision_id names.
func checkRejection(t *testing.T, ctx context.Context, fed *testfed.Federation, resp *testfed.FederationResponse,
	wantStatus int, wantErrCode, wantOrigin string) {
	t.Helper()
	if resp.Status != wantStatus {
		t.Errorf("status = %d, want %d; body %s", resp.Status, wantStatus, resp.Body)
	}
	var body struct {
		ErrCode    string `json:"errcode"`
		Error      string `json:"error"`
		DecisionID string `json:"decision_id"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("error body %q is not JSON: %v", resp.Body, err)
	}
	if body.ErrCode != wantErrCode {
		t.Errorf("errcode = %q, want %q; error %q", body.ErrCode, wantErrCode, body.Error)
	}
	if body.DecisionID == "" {
		t.Fatalf("error body %s has no decision_id", resp.Body)
	}

	waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	rec, err := fed.WaitForDecision(waitCtx, func(rec decisionlog.Record) bool {
		return rec.DecisionID == body.DecisionID
	})
	if err != nil {
		t.Fatalf("decision_id %s of the error response: %v", body.DecisionID, err)
	}
	if rec.Allow {
		t.Errorf("record %s: allow = true, want false", rec.DecisionID)
	}
	if rec.Status != 0 && rec.Status != wantStatus {
		t.Errorf("record %s: status = %d, want %d", rec.DecisionID, rec.Status, wantStatus)
	}
	if rec.Matrix == nil || rec.Matrix.Origin != wantOrigin {
		t.Errorf("record %s: matrix = %+v, want origin %q", rec.DecisionID, rec.Matrix, wantOrigin)
	}
}

// logDecisions logs every decision record, one line each.
func logDecisions(t *testing.T, fed *testfed.Federation) {
	records, err := fed.Decisions()
	if err != nil {
		t.Logf("read decision log: %v", err)
		return
	}
	t.Logf("%d decision records in %s:", len(records), fed.GatewayLog)
	for _, rec := range records {
		t.Log(testfed.FormatDecision(rec))
	}
}
