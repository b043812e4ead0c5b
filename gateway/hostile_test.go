package gateway

// Attack cases against the inbound pipeline. Each subtest sends what a
// hostile peer or an unauthenticated client could send and asserts the
// secure outcome: the exact status and errcode, and that the homeserver
// stand-in received nothing that should not pass.

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

// Identifiers used by the attack cases, besides those of harness_test.go.
const (
	localUser    = "@bob:" + localName
	remoteUser   = "@alice:" + remoteName
	otherRoomID  = "!other:hs1.test:8481"
	edgeEventID  = "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	sendTarget   = "/_matrix/federation/v1/send/"
	pduRecord    = "bordergate/pdu/decision"
	eduRecord    = "bordergate/edu/decision"
	badHashValue = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

// parseEvent parses an event template given as JSON text.
func parseEvent(t *testing.T, text string) canonicaljson.Value {
	t.Helper()
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		t.Fatalf("event template is not JSON: %v\n%s", err, text)
	}
	return v
}

func roomVersion(t *testing.T, version string) *events.RoomVersion {
	t.Helper()
	rv, ok := events.LookupRoomVersion(version)
	if !ok {
		t.Fatalf("room version %q is not known to the events package", version)
	}
	return rv
}

// signedPDU signs the event template text for room version version with
// the remote server's key.
func (tg *testGateway) signedPDU(version, text string) canonicaljson.Value {
	tg.t.Helper()
	signed, err := events.SignEvent(parseEvent(tg.t, text), roomVersion(tg.t, version), remoteName, remoteKeyID, tg.key)
	if err != nil {
		tg.t.Fatal(err)
	}
	return signed
}

func pduEventID(t *testing.T, v canonicaljson.Value, version string) string {
	t.Helper()
	id, err := events.EventID(v, roomVersion(t, version))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// messageJSON is an m.room.message template of room roomID sent by sender.
func messageJSON(roomID, sender, body string) string {
	return fmt.Sprintf(`{"room_id":%q,"sender":%q,"type":"m.room.message","content":{"body":%q,"msgtype":"m.text"},"origin_server_ts":%d,"depth":5,"prev_events":[%q],"auth_events":[%q],"hashes":{},"signatures":{}}`,
		roomID, sender, body, time.Now().UnixMilli(), edgeEventID, edgeEventID)
}

// memberJSON is an m.room.member template.
func memberJSON(roomID, sender, stateKey, content string) string {
	return fmt.Sprintf(`{"room_id":%q,"sender":%q,"type":"m.room.member","state_key":%q,"content":%s,"origin_server_ts":%d,"depth":7,"prev_events":[%q],"auth_events":[%q],"hashes":{},"signatures":{}}`,
		roomID, sender, stateKey, content, time.Now().UnixMilli(), edgeEventID, edgeEventID)
}

// createJSON is an m.room.create template of room roomID, without a
// room_id member when roomID is empty (room version 12).
func createJSON(roomID, content string) string {
	room := ""
	if roomID != "" {
		room = fmt.Sprintf(`"room_id":%q,`, roomID)
	}
	return fmt.Sprintf(`{%s"sender":%q,"type":"m.room.create","state_key":"","content":%s,"origin_server_ts":%d,"depth":1,"prev_events":[],"auth_events":[],"hashes":{},"signatures":{}}`,
		room, remoteUser, content, time.Now().UnixMilli())
}

// signedHeader returns an X-Matrix header value signed by the remote
// server for the request.
func (tg *testGateway) signedHeader(method, uri string, body []byte) string {
	tg.t.Helper()
	var content *canonicaljson.Value
	if len(body) > 0 {
		v, err := canonicaljson.Parse(body)
		if err != nil {
			tg.t.Fatalf("test body is not JSON: %v", err)
		}
		content = &v
	}
	header, err := xmatrix.FormatAuthorization(xmatrix.Sign(tg.key, remoteKeyID, method, uri, remoteName, localName, content))
	if err != nil {
		tg.t.Fatal(err)
	}
	return header
}

// sendTransaction sends a signed /send transaction.
func (tg *testGateway) sendTransaction(txnID string, pdus []canonicaljson.Value, edus string) (*http.Response, map[string]any) {
	tg.t.Helper()
	return tg.request(http.MethodPut, sendTarget+txnID, transactionBody(pdus, edus))
}

func expectNothingForwarded(t *testing.T, tg *testGateway) {
	t.Helper()
	if got := tg.hs.received(); len(got) != 0 {
		t.Errorf("homeserver received %d requests, want none; first: %s %s", len(got), got[0].method, got[0].uri)
	}
}

func expectForwardedOnce(t *testing.T, tg *testGateway) stubRequest {
	t.Helper()
	got := tg.hs.received()
	if len(got) != 1 {
		t.Fatalf("homeserver received %d requests, want 1", len(got))
	}
	return got[0]
}

// expectError checks a Matrix error answer and that its decision_id names a
// record of the decision.
func expectError(t *testing.T, tg *testGateway, resp *http.Response, answer map[string]any, status int, errcode string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Errorf("status = %d, want %d; answer %v", resp.StatusCode, status, answer)
	}
	if answer["errcode"] != errcode {
		t.Errorf("errcode = %v, want %s; answer %v", answer["errcode"], errcode, answer)
	}
	id, _ := answer["decision_id"].(string)
	if id == "" {
		t.Fatalf("answer %v has no decision_id", answer)
	}
	if resp.Header.Get(headerDecisionID) != id {
		t.Errorf("%s header = %q, want %q", headerDecisionID, resp.Header.Get(headerDecisionID), id)
	}
	tg.record(id)
}

// expectPDURefused checks a /send answered by the gateway itself with an
// error for the PDU eventID.
func expectPDURefused(t *testing.T, resp *http.Response, answer map[string]any, eventID string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 with per-PDU errors; answer %v", resp.StatusCode, answer)
	}
	results, _ := answer["pdus"].(map[string]any)
	result, _ := results[eventID].(map[string]any)
	if msg, _ := result["error"].(string); msg == "" {
		t.Errorf("answer for %s = %v, want an error", eventID, result)
	}
}

// expectEDURefused checks that the gateway answered a /send itself and
// recorded a refused EDU.
func expectEDURefused(t *testing.T, tg *testGateway, resp *http.Response, answer map[string]any) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 from the gateway; answer %v", resp.StatusCode, answer)
	}
	for _, rec := range tg.records() {
		if rec.Path == eduRecord && !rec.Allow {
			return
		}
	}
	t.Error("no refused EDU record")
}

func expectRoomUnknown(t *testing.T, tg *testGateway, roomID string) {
	t.Helper()
	if room, ok := tg.gw.store.RoomVersion(roomID); ok {
		t.Errorf("gateway learned room %s as version %s from %s, want it unknown", roomID, room.Version, room.Source)
	}
}

// authRecorder is a homeserver stand-in that keeps every Authorization
// value of every forwarded request.
type authRecorder struct {
	mu     sync.Mutex
	values [][]string
}

func (a *authRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	a.values = append(a.values, r.Header.Values("Authorization"))
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"pdus":{}}`)
}

func (a *authRecorder) received() [][]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([][]string(nil), a.values...)
}

// startWithAuthRecorder starts a gateway whose homeserver is an
// authRecorder.
func startWithAuthRecorder(t *testing.T) (*testGateway, *authRecorder) {
	t.Helper()
	recorder := &authRecorder{}
	server := httptest.NewServer(recorder)
	t.Cleanup(server.Close)
	return startGateway(t, gatewayOptions{homeserverURL: server.URL}), recorder
}

// commaSplitOrigin returns the origin that Synapse's _parse_auth_header
// (synapse/federation/transport/server/_base.py) reads from an
// Authorization value. Synapse takes any value that starts with
// "X-Matrix", splits the parameters on every comma, quoted or not, and
// keeps the last parameter of each name. ok is false for a value that does
// not start with "X-Matrix".
func commaSplitOrigin(value string) (origin string, ok bool) {
	if !strings.HasPrefix(value, "X-Matrix") {
		return "", false
	}
	_, params, _ := strings.Cut(value, " ")
	for param := range strings.SplitSeq(params, ",") {
		name, v, _ := strings.Cut(param, "=")
		if strings.EqualFold(strings.TrimSpace(name), "origin") {
			origin = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return origin, true
}

// expectOnlyRemoteOrigin fails when any forwarded Authorization value would
// make a comma-splitting homeserver authenticate another origin than the
// one the gateway verified.
func expectOnlyRemoteOrigin(t *testing.T, recorder *authRecorder) {
	t.Helper()
	for i, values := range recorder.received() {
		for _, v := range values {
			if origin, ok := commaSplitOrigin(v); ok && origin != remoteName {
				t.Errorf("request %d forwarded Authorization %q, which a homeserver reads as origin %q", i, v, origin)
			}
		}
	}
}

func TestHostileAuthorization(t *testing.T) {
	uri := sendTarget + "auth"
	body := func(tg *testGateway) []byte {
		return transactionBody([]canonicaljson.Value{tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)}, "")
	}
	send := func(tg *testGateway, headers ...string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPut, tg.url, bytes.NewReader(body(tg)))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = uri
		for _, h := range headers {
			req.Header.Add("Authorization", h)
		}
		resp, err := tg.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var answer map[string]any
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &answer)
		return resp, answer
	}

	t.Run("second header forged with same key", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		_, stranger, _ := ed25519.GenerateKey(rand.Reader)
		b := body(tg)
		v, _ := canonicaljson.Parse(b)
		forged, err := xmatrix.FormatAuthorization(xmatrix.Sign(stranger, remoteKeyID, http.MethodPut, uri, remoteName, localName, &v))
		if err != nil {
			t.Fatal(err)
		}
		resp, answer := send(tg, tg.signedHeader(http.MethodPut, uri, b), forged)
		expectError(t, tg, resp, answer, http.StatusUnauthorized, codeUnauthorized)
		expectNothingForwarded(t, tg)
	})

	t.Run("signature for another method", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		b := body(tg)
		header := tg.signedHeader(http.MethodPost, uri, b)
		resp, answer := tg.raw(http.MethodPut, uri, b, map[string]string{"Authorization": header})
		expectError(t, tg, resp, answer, http.StatusUnauthorized, codeUnauthorized)
		expectNothingForwarded(t, tg)
	})

	t.Run("signature for another destination", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		b := body(tg)
		v, _ := canonicaljson.Parse(b)
		creds := xmatrix.Sign(tg.key, remoteKeyID, http.MethodPut, uri, remoteName, "elsewhere.test", &v)
		header := fmt.Sprintf(`X-Matrix origin="%s",key="%s",sig="%s"`, creds.Origin, creds.KeyID, creds.Signature)
		resp, answer := tg.raw(http.MethodPut, uri, b, map[string]string{"Authorization": header})
		expectError(t, tg, resp, answer, http.StatusUnauthorized, codeUnauthorized)
		expectNothingForwarded(t, tg)
	})

	t.Run("lowercase scheme accepted", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		b := body(tg)
		header := "x-matrix" + strings.TrimPrefix(tg.signedHeader(http.MethodPut, uri, b), "X-Matrix")
		resp, answer := tg.raw(http.MethodPut, uri, b, map[string]string{"Authorization": header})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200: RFC 9110 schemes are case-insensitive; answer %v", resp.StatusCode, answer)
		}
		expectForwardedOnce(t, tg)
	})

	t.Run("second header with another origin", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		b := body(tg)
		other := `X-Matrix origin="elsewhere.test",key="ed25519:x",sig="` + strings.Repeat("A", 86) + `"`
		resp, answer := send(tg, tg.signedHeader(http.MethodPut, uri, b), other)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeUnauthorized)
		expectNothingForwarded(t, tg)
	})

	t.Run("non-UTF-8 origin", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		b := body(tg)
		header := `X-Matrix origin="hs1.test:8481` + "\xff" + `",key="ed25519:test1",sig="` + strings.Repeat("A", 86) + `"`
		resp, answer := tg.raw(http.MethodPut, uri, b, map[string]string{"Authorization": header})
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeUnauthorized)
		expectNothingForwarded(t, tg)
	})

	t.Run("non-UTF-8 signature", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		b := body(tg)
		header := `X-Matrix origin="hs1.test:8481",key="ed25519:test1",sig="` + strings.Repeat("A", 85) + "\xff" + `"`
		resp, answer := tg.raw(http.MethodPut, uri, b, map[string]string{"Authorization": header})
		expectError(t, tg, resp, answer, http.StatusUnauthorized, codeUnauthorized)
		expectNothingForwarded(t, tg)
	})

	t.Run("extra header with scheme prefix", func(t *testing.T) {
		// The gateway skips "X-MatrixZ" as another scheme, but a homeserver
		// that matches the "X-Matrix" prefix reads it as credentials of
		// evil.test, whose key the sender owns.
		tg, recorder := startWithAuthRecorder(t)
		b := body(tg)
		_, evilKey, _ := ed25519.GenerateKey(rand.Reader)
		v, _ := canonicaljson.Parse(b)
		evil := xmatrix.Sign(evilKey, "ed25519:e", http.MethodPut, uri, "evil.test", localName, &v)
		smuggled := fmt.Sprintf(`X-MatrixZ origin="evil.test",destination="%s",key="ed25519:e",sig="%s"`, localName, evil.Signature)
		resp, answer := send(tg, tg.signedHeader(http.MethodPut, uri, b), smuggled)
		if resp.StatusCode == http.StatusOK {
			expectOnlyRemoteOrigin(t, recorder)
			return
		}
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeUnauthorized)
		if n := len(recorder.received()); n != 0 {
			t.Errorf("homeserver received %d requests, want none", n)
		}
	})

	t.Run("quoted comma smuggles origin", func(t *testing.T) {
		// RFC 9110 allows a comma inside a quoted value, and the gateway
		// skips the unknown parameter "note". A homeserver that splits on
		// every comma reads origin=evil.test from inside it.
		tg, recorder := startWithAuthRecorder(t)
		b := body(tg)
		header := tg.signedHeader(http.MethodPut, uri, b) + `,note="x,origin=evil.test,key=ed25519:e,sig=` + strings.Repeat("B", 86) + `"`
		resp, answer := send(tg, header)
		if resp.StatusCode == http.StatusOK {
			expectOnlyRemoteOrigin(t, recorder)
			return
		}
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeUnauthorized)
		if n := len(recorder.received()); n != 0 {
			t.Errorf("homeserver received %d requests, want none", n)
		}
	})

	t.Run("no destination with two server names", func(t *testing.T) {
		const altName = "hs2-alt.test"
		tg := startGateway(t, gatewayOptions{altServerName: altName})
		b := body(tg)
		v, _ := canonicaljson.Parse(b)
		creds := xmatrix.Sign(tg.key, remoteKeyID, http.MethodPut, uri, remoteName, altName, &v)
		header := fmt.Sprintf(`X-Matrix origin="%s",key="%s",sig="%s"`, creds.Origin, creds.KeyID, creds.Signature)
		resp, answer := tg.raw(http.MethodPut, uri, b, map[string]string{"Authorization": header})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		id := resp.Header.Get(headerDecisionID)
		if rec := tg.record(id); rec.Matrix.Destination != altName {
			t.Errorf("record destination = %q, want %q, the name the signature covers", rec.Matrix.Destination, altName)
		}
	})
}

// rawHTTP sends request bytes over a new TLS connection to the gateway and
// reads one response.
func (tg *testGateway) rawHTTP(request string) (*http.Response, map[string]any) {
	tg.t.Helper()
	config := tg.client.Transport.(*http.Transport).TLSClientConfig.Clone()
	config.NextProtos = []string{"http/1.1"}
	conn, err := tls.Dial("tcp", strings.TrimPrefix(tg.url, "https://"), config)
	if err != nil {
		tg.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		tg.t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		tg.t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var answer map[string]any
	_ = json.Unmarshal(data, &answer)
	return resp, answer
}

func TestHostileRequestTarget(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
	txn := transactionBody([]canonicaljson.Value{pdu}, "")

	notFound := []struct{ name, uri string }{
		{"doubled leading slash", "//_matrix/federation/v1/send/t1"},
		{"encoded dot segment", "/_matrix/federation/v1/send/%2e%2e"},
		{"dot segment in room", "/_matrix/federation/v1/state_ids/%2E"},
		{"encoded literal", "/_matrix/federation/v1/%73end/t1"},
		{"trailing slash", "/_matrix/federation/v1/send/t1/"},
		{"encoded slash in literal", "/_matrix/federation%2Fv1/send/t1"},
		{"upper-case prefix", "/_MATRIX/federation/v1/send/t1"},
		{"encoded control character", "/_matrix/federation/v1/send/t%0a1"},
	}
	for _, tc := range notFound {
		t.Run(tc.name, func(t *testing.T) {
			resp, answer := tg.raw(http.MethodPut, tc.uri, txn, map[string]string{"Authorization": tg.signedHeader(http.MethodPut, tc.uri, txn)})
			expectError(t, tg, resp, answer, http.StatusNotFound, codeUnrecognized)
		})
	}

	t.Run("absolute form", func(t *testing.T) {
		request := "GET https://hs2.test/_matrix/federation/v1/version HTTP/1.1\r\nHost: hs2.test\r\nConnection: close\r\n\r\n"
		resp, answer := tg.rawHTTP(request)
		expectError(t, tg, resp, answer, http.StatusNotFound, codeUnrecognized)
	})

	t.Run("fragment", func(t *testing.T) {
		request := "GET /_matrix/federation/v1/version#x HTTP/1.1\r\nHost: hs2.test\r\nConnection: close\r\n\r\n"
		resp, answer := tg.rawHTTP(request)
		expectError(t, tg, resp, answer, http.StatusNotFound, codeUnrecognized)
	})

	t.Run("head on a GET endpoint", func(t *testing.T) {
		resp, _ := tg.raw(http.MethodHead, "/_matrix/federation/v1/version", nil, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status = %d, want 405", resp.StatusCode)
		}
		if resp.Header.Get(headerDecisionID) == "" {
			t.Errorf("405 answer has no %s header", headerDecisionID)
		}
	})

	expectNothingForwarded(t, tg)

	forwarded := []struct{ name, uri string }{
		{"trailing question mark", sendTarget + "t2?"},
		{"raw non-ASCII query", sendTarget + "t3?note=\u00e9t\u00e9"},
		{"long transaction ID", sendTarget + strings.Repeat("x", 64<<10)},
		{"encoded slash in transaction ID", sendTarget + "a%2Fb"},
	}
	for _, tc := range forwarded {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tg.hs.received())
			resp, answer := tg.request(http.MethodPut, tc.uri, txn)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
			}
			got := tg.hs.received()
			if len(got) != before+1 {
				t.Fatalf("homeserver received %d new requests, want 1", len(got)-before)
			}
			if got[before].uri != tc.uri {
				t.Errorf("forwarded target = %.80q, want the signed %.80q", got[before].uri, tc.uri)
			}
		})
	}

	t.Run("signed target differs from sent", func(t *testing.T) {
		// The origin signed ".../t4" but the request line has ".../t4?".
		uri := sendTarget + "t4?"
		header := tg.signedHeader(http.MethodPut, sendTarget+"t4", txn)
		before := len(tg.hs.received())
		resp, answer := tg.raw(http.MethodPut, uri, txn, map[string]string{"Authorization": header})
		expectError(t, tg, resp, answer, http.StatusUnauthorized, codeUnauthorized)
		if n := len(tg.hs.received()) - before; n != 0 {
			t.Errorf("homeserver received %d new requests, want none", n)
		}
	})

	queries := []struct{ name, uri string }{
		{"duplicate user_id", "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test%3A8448&user_id=%40carol%3Aelsewhere.test"},
		{"semicolon separator", "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test%3A8448;user_id=%40carol%3Aelsewhere.test"},
		{"encoded parameter name", "/_matrix/federation/v1/query/profile?user%5Fid=%40carol%3Aelsewhere.test"},
		{"encoded query type", "/_matrix/federation/v1/query/%70rofile?user_id=%40carol%3Aelsewhere.test"},
	}
	for _, tc := range queries {
		t.Run(tc.name, func(t *testing.T) {
			before := len(tg.hs.received())
			resp, answer := tg.request(http.MethodGet, tc.uri, nil)
			if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusNotFound {
				t.Errorf("status = %d, want 403 (or 404 for an unroutable target); answer %v", resp.StatusCode, answer)
			}
			if n := len(tg.hs.received()) - before; n != 0 {
				t.Errorf("homeserver received %d new requests, want none", n)
			}
		})
	}
}

func TestHostileBody(t *testing.T) {
	uri := sendTarget + "body"
	sendBytes := func(tg *testGateway, body []byte) (*http.Response, map[string]any) {
		t.Helper()
		// The signature covers the parsed body, so it is computed from
		// the part of body that parses, where there is one.
		header := ""
		if v, err := canonicaljson.Parse(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf"))); err == nil {
			creds := xmatrix.Sign(tg.key, remoteKeyID, http.MethodPut, uri, remoteName, localName, &v)
			header, _ = xmatrix.FormatAuthorization(creds)
		} else {
			creds := xmatrix.Sign(tg.key, remoteKeyID, http.MethodPut, uri, remoteName, localName, nil)
			header, _ = xmatrix.FormatAuthorization(creds)
		}
		return tg.raw(http.MethodPut, uri, body, map[string]string{"Authorization": header})
	}
	envelope := func(pdus string) []byte {
		return []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1700000000000,"pdus":[%s]}`, remoteName, pdus))
	}

	t.Run("byte order mark", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		resp, answer := sendBytes(tg, append([]byte("\xef\xbb\xbf"), envelope("")...))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeNotJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("invalid UTF-8", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1,"pdus":[],"x":"`+"\xc3\x28"+`"}`, remoteName))
		resp, answer := sendBytes(tg, body)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeNotJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("trailing whitespace forwarded unchanged", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := append(envelope(""), " \r\n\t"...)
		resp, answer := sendBytes(tg, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		if got := expectForwardedOnce(t, tg); !bytes.Equal(got.body, body) {
			t.Errorf("forwarded body %q, want %q", got.body, body)
		}
	})

	t.Run("escaped key equal to another key", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := []byte(fmt.Sprintf(`{"origin":%q,"orig\u0069n":"evil.test","origin_server_ts":1,"pdus":[]}`, remoteName))
		resp, answer := sendBytes(tg, body)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("duplicate key inside a PDU", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		pdu := string(canonicaljson.Encode(tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)))
		pdu = strings.Replace(pdu, `"type":"m.room.message"`, `"type":"m.room.message","type":"com.example.forbidden"`, 1)
		resp, answer := sendBytes(tg, envelope(pdu))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("nesting beyond the limit", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		deep := strings.Repeat(`{"a":`, canonicaljson.DefaultMaxDepth) + "1" + strings.Repeat("}", canonicaljson.DefaultMaxDepth)
		body := []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1,"pdus":[],"x":%s}`, remoteName, deep))
		resp, answer := sendBytes(tg, body)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("exponent in envelope timestamp", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1e400,"pdus":[]}`, remoteName))
		resp, answer := sendBytes(tg, body)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("fraction in envelope member", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1700000000000,"pdus":[],"extra":{"n":-0.0}}`, remoteName))
		resp, answer := sendBytes(tg, body)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("negative zero in EDU", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		edu := `[{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":"@alice:hs1.test:8481","typing":true,"n":-0}}]`
		resp, answer := tg.sendTransaction("z", nil, edu)
		expectEDURefused(t, tg, resp, answer)
		expectNothingForwarded(t, tg)
	})

	t.Run("exponent in room version 10 PDU", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text","n":1e400}`, 5)
		resp, answer := tg.sendTransaction("e", []canonicaljson.Value{pdu}, "")
		expectPDURefused(t, resp, answer, eventID(t, pdu))
		expectNothingForwarded(t, tg)
	})

	t.Run("unsigned added after signing forwarded", func(t *testing.T) {
		// unsigned is outside the event signature but inside the
		// X-Matrix signature, so the origin alone can add it.
		tg := startGateway(t, gatewayOptions{})
		pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
		pdu = pdu.With("unsigned", parseEvent(t, `{"age":1,"redacted_because":{"type":"m.room.redaction"}}`))
		resp, answer := tg.sendTransaction("u", []canonicaljson.Value{pdu}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		expectForwardedOnce(t, tg)
	})

	t.Run("unauthenticated body parse memory", func(t *testing.T) {
		// An origin that is not on the allow-list cannot be authenticated,
		// yet its body is parsed in full. An 8 MiB array of zeros must not
		// cost the gateway many times its size.
		tg := startGateway(t, gatewayOptions{})
		size := int(tg.gw.cfg.Inbound.MaxBodyBytes)
		var b bytes.Buffer
		b.WriteString(`{"x":[0`)
		for b.Len() < size-4 {
			b.WriteString(",0")
		}
		b.WriteString("]}")
		body := b.Bytes()
		header := `X-Matrix origin="stranger.test",key="ed25519:x",sig="` + strings.Repeat("A", 86) + `"`
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp, answer := tg.raw(http.MethodPut, sendTarget+"mem", body, map[string]string{"Authorization": header})
		runtime.ReadMemStats(&after)
		expectError(t, tg, resp, answer, http.StatusForbidden, codeForbidden)
		allocated := after.TotalAlloc - before.TotalAlloc
		// The body is read once by the client and once by the gateway,
		// with buffer growth, so 8 times its size leaves room for both.
		if limit := uint64(8 * len(body)); allocated > limit {
			t.Errorf("request of %d bytes from an unlisted origin allocated %d MiB, more than %d MiB", len(body), allocated>>20, limit>>20)
		}
		expectNothingForwarded(t, tg)
	})
}

func TestHostileTransaction(t *testing.T) {
	t.Run("body origin in other case", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := []byte(`{"origin":"HS1.test:8481","origin_server_ts":1,"pdus":[]}`)
		resp, answer := tg.request(http.MethodPut, sendTarget+"case", body)
		expectError(t, tg, resp, answer, http.StatusForbidden, codeForbidden)
		expectNothingForwarded(t, tg)
	})

	t.Run("edus not an array", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		resp, answer := tg.sendTransaction("edus", nil, `{"edu_type":"m.typing"}`)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("pdus missing", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		body := []byte(fmt.Sprintf(`{"origin":%q,"origin_server_ts":1}`, remoteName))
		resp, answer := tg.request(http.MethodPut, sendTarget+"nopdus", body)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("limits of 50 PDUs and 100 EDUs", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		pdus := make([]canonicaljson.Value, maxTransactionPDUs)
		for i := range pdus {
			pdus[i] = tg.event("m.room.message", fmt.Sprintf(`{"body":"m%d","msgtype":"m.text"}`, i), 5+i)
		}
		edu := `{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":"@alice:hs1.test:8481","typing":true}}`
		edus := "[" + strings.TrimSuffix(strings.Repeat(edu+",", maxTransactionEDUs), ",") + "]"
		resp, answer := tg.sendTransaction("limits", pdus, edus)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		expectForwardedOnce(t, tg)
	})

	t.Run("101 EDUs", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		edu := `{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":"@alice:hs1.test:8481","typing":true}}`
		edus := "[" + strings.TrimSuffix(strings.Repeat(edu+",", maxTransactionEDUs+1), ",") + "]"
		resp, answer := tg.sendTransaction("edus101", nil, edus)
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeBadJSON)
		expectNothingForwarded(t, tg)
	})

	t.Run("sender of unlisted server", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
		rv := roomVersion(t, "10")
		pdu, err := events.SignEvent(parseEvent(t, messageJSON(testRoomID, "@mallory:stranger.test", "hi")), rv, "stranger.test", "ed25519:s", strangerKey)
		if err != nil {
			t.Fatal(err)
		}
		good := tg.event("m.room.message", `{"body":"ok","msgtype":"m.text"}`, 5)
		resp, answer := tg.sendTransaction("stranger", []canonicaljson.Value{good, pdu}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, pdu, "10"))
		expectNothingForwarded(t, tg)
	})

	t.Run("sender of listed server signed by origin", func(t *testing.T) {
		third := `  - server_name: "hs3.test"
    pinned_keys: {"ed25519:test1": "REMOTE_KEY"}
    endpoints: ["*"]
`
		// hs3.test is on the allow-list, so only the missing signature of
		// hs3.test can refuse this event that hs1 signed.
		tg := startGateway(t, gatewayOptions{extraAllowlist: third})
		pdu := tg.signedPDU("10", messageJSON(testRoomID, "@carol:hs3.test", "hi"))
		resp, answer := tg.sendTransaction("relay", []canonicaljson.Value{pdu}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, pdu, "10"))
		expectNothingForwarded(t, tg)
	})

	t.Run("unknown room among allowed", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		good := tg.event("m.room.message", `{"body":"ok","msgtype":"m.text"}`, 5)
		unknown := tg.signedPDU("10", messageJSON("!unknown:hs1.test:8481", remoteUser, "hi"))
		resp, answer := tg.sendTransaction("unknown", []canonicaljson.Value{good, unknown}, "")
		// The PDU of the unknown room has no computable event ID, so only
		// the allowed one is named in the answer.
		expectPDURefused(t, resp, answer, eventID(t, good))
		expectNothingForwarded(t, tg)
		for _, rec := range tg.records() {
			if rec.Path == pduRecord && rec.Matrix.EventID == eventID(t, good) && rec.Action != actionWithheld {
				t.Errorf("allowed PDU record action = %q, want %q", rec.Action, actionWithheld)
			}
		}
	})

	t.Run("room version 12 create and message", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		create := tg.signedPDU("12", createJSON("", `{"room_version":"12"}`))
		roomID := "!" + strings.TrimPrefix(pduEventID(t, create, "12"), "$")
		message := tg.signedPDU("12", strings.Replace(messageJSON(roomID, remoteUser, "hi"), edgeEventID, pduEventID(t, create, "12"), 1))
		resp, answer := tg.sendTransaction("v12", []canonicaljson.Value{create, message}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		expectForwardedOnce(t, tg)
		if room, ok := tg.gw.store.RoomVersion(roomID); !ok || room.Version != "12" {
			t.Errorf("room %s learned as %+v, want version 12", roomID, room)
		}
	})

	t.Run("room version 12 message of unknown room", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		roomID := "!" + strings.Repeat("Q", 43)
		message := tg.signedPDU("12", messageJSON(roomID, remoteUser, "hi"))
		resp, answer := tg.sendTransaction("v12u", []canonicaljson.Value{message}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200 from the gateway; answer %v", resp.StatusCode, answer)
		}
		expectNothingForwarded(t, tg)
	})

	t.Run("room version 12 create with room_id", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		roomID := "!" + strings.Repeat("R", 43)
		create := tg.signedPDU("12", createJSON(roomID, `{"room_version":"12"}`))
		resp, answer := tg.sendTransaction("v12r", []canonicaljson.Value{create}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, create, "12"))
		expectNothingForwarded(t, tg)
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("create claiming unknown version", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		roomID := "!v13:hs1.test:8481"
		create := tg.signedPDU("11", createJSON(roomID, `{"room_version":"13"}`))
		resp, answer := tg.sendTransaction("v13", []canonicaljson.Value{create}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200 from the gateway; answer %v", resp.StatusCode, answer)
		}
		expectNothingForwarded(t, tg)
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("create changing known version", func(t *testing.T) {
		// The seed file gives version 10, but the create event claims 11
		// and is checked as version 11.
		tg := startGateway(t, gatewayOptions{})
		create := tg.signedPDU("11", createJSON(testRoomID, `{"room_version":"11"}`))
		resp, answer := tg.sendTransaction("recreate", []canonicaljson.Value{create}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, create, "11"))
		expectNothingForwarded(t, tg)
	})

	t.Run("create with numeric room version", func(t *testing.T) {
		// A room_version that is not a string makes the gateway assume
		// version 1, which a homeserver does not.
		tg := startGateway(t, gatewayOptions{})
		roomID := "!numeric:hs1.test:8481"
		text := fmt.Sprintf(`{"event_id":"$c1:hs1.test:8481","room_id":%q,"sender":%q,"type":"m.room.create","state_key":"","content":{"creator":%q,"room_version":10},"origin_server_ts":%d,"depth":1,"prev_events":[],"auth_events":[],"hashes":{},"signatures":{}}`,
			roomID, remoteUser, remoteUser, time.Now().UnixMilli())
		create := tg.signedPDU("1", text)
		resp, answer := tg.sendTransaction("numeric", []canonicaljson.Value{create}, "")
		expectPDURefused(t, resp, answer, "$c1:hs1.test:8481")
		expectNothingForwarded(t, tg)
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("create of another server's room", func(t *testing.T) {
		// In room versions 1 to 11 a room ID names the server of its
		// creator. Here hs1 claims a room of this server and picks its
		// version.
		tg := startGateway(t, gatewayOptions{})
		roomID := "!victim:" + localName
		create := tg.signedPDU("10", createJSON(roomID, `{"room_version":"10","creator":"@alice:hs1.test:8481"}`))
		resp, answer := tg.sendTransaction("victim", []canonicaljson.Value{create}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, create, "10"))
		expectNothingForwarded(t, tg)
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("withheld create teaches version", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		roomID := "!withheld:hs1.test:8481"
		create := tg.signedPDU("10", createJSON(roomID, `{"room_version":"10","creator":"@alice:hs1.test:8481"}`))
		denied := tg.event("com.example.forbidden", `{}`, 5)
		resp, answer := tg.sendTransaction("withheld", []canonicaljson.Value{create, denied}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, create, "10"))
		expectNothingForwarded(t, tg)
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("third-party invite with bad hash unsigned", func(t *testing.T) {
		// In room version 10 redaction strips third_party_invite, so an
		// event whose content hash fails is a plain invite, which needs
		// the sender's signature. This one has none and names a local
		// sender.
		tg := startGateway(t, gatewayOptions{})
		content := fmt.Sprintf(`{"membership":"invite","third_party_invite":{"display_name":"carol","signed":{"mxid":"@carol:%s","token":"t","signatures":{}}}}`, localName)
		text := memberJSON(testRoomID, localUser, "@carol:"+localName, content)
		text = strings.Replace(text, `"hashes":{}`, `"hashes":{"sha256":"`+badHashValue+`"}`, 1)
		pdu := parseEvent(t, text)
		resp, answer := tg.sendTransaction("tpi", []canonicaljson.Value{pdu}, "")
		expectPDURefused(t, resp, answer, pduEventID(t, pdu, "10"))
		expectNothingForwarded(t, tg)
	})

	t.Run("event_id member in room version 10", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		text := strings.Replace(messageJSON(testRoomID, remoteUser, "hi"), `{"room_id"`, `{"event_id":"$x:hs1.test:8481","room_id"`, 1)
		pdu := tg.signedPDU("10", text)
		resp, answer := tg.sendTransaction("eventid", []canonicaljson.Value{pdu}, "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200 from the gateway; answer %v", resp.StatusCode, answer)
		}
		expectNothingForwarded(t, tg)
	})
}

func TestHostileEDU(t *testing.T) {
	refused := []struct{ name, edus string }{
		{"receipt with a foreign user", `[{"edu_type":"m.receipt","content":{"!room:hs1.test:8481":{"m.read":{"@alice:hs1.test:8481":{"event_ids":["$a"],"data":{"ts":1}},"@mallory:elsewhere.test":{"event_ids":["$a"],"data":{"ts":1}}}}}}]`},
		{"private receipt of a local user", `[{"edu_type":"m.receipt","content":{"!room:hs1.test:8481":{"m.read.private":{"@bob:hs2.test:8448":{"event_ids":["$a"],"data":{"ts":1}}}}}}]`},
		{"to-device from a foreign sender", `[{"edu_type":"m.direct_to_device","content":{"sender":"@mallory:elsewhere.test","type":"m.room_key_request","message_id":"m1","messages":{"@bob:hs2.test:8448":{"*":{}}}}}]`},
		{"to-device without sender", `[{"edu_type":"m.direct_to_device","content":{"type":"m.room_key_request","message_id":"m1","messages":{}}}]`},
		{"presence of a foreign user", `[{"edu_type":"m.presence","content":{"push":[{"user_id":"@alice:hs1.test:8481","presence":"online","last_active_ago":1},{"user_id":"@bob:hs2.test:8448","presence":"offline","last_active_ago":1}]}}]`},
		{"presence without user_id", `[{"edu_type":"m.presence","content":{"push":[{"presence":"online","last_active_ago":1}]}}]`},
		{"typing with user_id list", `[{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":["@alice:hs1.test:8481"],"typing":true}}]`},
		{"device list of a foreign user", `[{"edu_type":"m.device_list_update","content":{"user_id":"@bob:hs2.test:8448","device_id":"D","stream_id":1}}]`},
		{"signing key of a foreign user", `[{"edu_type":"m.signing_key_update","content":{"user_id":"@bob:hs2.test:8448"}}]`},
		{"unstable signing key of a foreign user", `[{"edu_type":"org.matrix.signing_key_update","content":{"user_id":"@bob:hs2.test:8448","master_key":{"user_id":"@bob:hs2.test:8448","usage":["master"],"keys":{}}}}]`},
		{"EDU without content", `[{"edu_type":"m.typing"}]`},
		{"EDU type not a string", `[{"edu_type":1,"content":{}}]`},
		{"typing user of other-case origin", `[{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":"@alice:HS1.test:8481","typing":true}}]`},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, gatewayOptions{})
			resp, answer := tg.sendTransaction("edu", nil, tc.edus)
			expectEDURefused(t, tg, resp, answer)
			expectNothingForwarded(t, tg)
		})
	}

	t.Run("unknown EDU type forwarded", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		resp, answer := tg.sendTransaction("unknown", nil, `[{"edu_type":"com.example.ping","content":{}}]`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		expectForwardedOnce(t, tg)
	})
}

func TestHostileMembership(t *testing.T) {
	seedRooms := fmt.Sprintf("- room_id: %q\n  room_version: \"10\"\n- room_id: %q\n  room_version: \"10\"\n", testRoomID, otherRoomID)
	path := func(prefix, roomID, eventID string) string {
		return prefix + roomID + "/" + strings.ReplaceAll(eventID, "$", "%24")
	}
	const (
		sendJoinV2  = "/_matrix/federation/v2/send_join/"
		sendLeaveV2 = "/_matrix/federation/v2/send_leave/"
		sendKnock   = "/_matrix/federation/v1/send_knock/"
		inviteV1    = "/_matrix/federation/v1/invite/"
		inviteV2    = "/_matrix/federation/v2/invite/"
	)

	t.Run("send_join event of another room", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{rooms: seedRooms})
		join := tg.signedPDU("10", memberJSON(otherRoomID, remoteUser, remoteUser, `{"membership":"join"}`))
		resp, answer := tg.request(http.MethodPut, path(sendJoinV2, testRoomID, pduEventID(t, join, "10")), canonicaljson.Encode(join))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("send_join event ID not the path's", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		join := tg.signedPDU("10", memberJSON(testRoomID, remoteUser, remoteUser, `{"membership":"join"}`))
		resp, answer := tg.request(http.MethodPut, path(sendJoinV2, testRoomID, edgeEventID), canonicaljson.Encode(join))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("send_join with event_id member", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		text := strings.Replace(memberJSON(testRoomID, remoteUser, remoteUser, `{"membership":"join"}`), `{"room_id"`, `{"event_id":"$j:hs1.test:8481","room_id"`, 1)
		join := tg.signedPDU("10", text)
		resp, answer := tg.request(http.MethodPut, path(sendJoinV2, testRoomID, pduEventID(t, join, "10")), canonicaljson.Encode(join))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("send_join for a user of another server", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		join := tg.signedPDU("10", memberJSON(testRoomID, localUser, localUser, `{"membership":"join"}`))
		resp, answer := tg.request(http.MethodPut, path(sendJoinV2, testRoomID, pduEventID(t, join, "10")), canonicaljson.Encode(join))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("send_leave with state_key not the sender", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		leave := tg.signedPDU("10", memberJSON(testRoomID, remoteUser, "@other:hs1.test:8481", `{"membership":"leave"}`))
		resp, answer := tg.request(http.MethodPut, path(sendLeaveV2, testRoomID, pduEventID(t, leave, "10")), canonicaljson.Encode(leave))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("send_knock with join membership", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		join := tg.signedPDU("10", memberJSON(testRoomID, remoteUser, remoteUser, `{"membership":"join"}`))
		resp, answer := tg.request(http.MethodPut, path(sendKnock, testRoomID, pduEventID(t, join, "10")), canonicaljson.Encode(join))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("make_join for a local user", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		uri := "/_matrix/federation/v1/make_join/" + testRoomID + "/" + localUser
		resp, answer := tg.request(http.MethodGet, uri, nil)
		expectError(t, tg, resp, answer, http.StatusForbidden, codeForbidden)
		expectNothingForwarded(t, tg)
	})

	t.Run("invite v1 for a version 10 room", func(t *testing.T) {
		// The v1 invite endpoint carries no room version, and receivers
		// take the room as version 1 or 2. The homeserver then reads a
		// version 10 event under other rules than the gateway.
		tg := startGateway(t, gatewayOptions{})
		invite := tg.signedPDU("10", memberJSON(testRoomID, remoteUser, localUser, `{"membership":"invite"}`))
		resp, answer := tg.request(http.MethodPut, path(inviteV1, testRoomID, pduEventID(t, invite, "10")), canonicaljson.Encode(invite))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeIncompatibleRoom)
		expectNothingForwarded(t, tg)
	})

	inviteBody := func(version string, event canonicaljson.Value, state string) []byte {
		return []byte(fmt.Sprintf(`{"room_version":%s,"event":%s,"invite_room_state":[%s]}`, version, canonicaljson.Encode(event), state))
	}

	t.Run("invite v2 of unsupported version", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{rooms: "[]\n"})
		roomID := "!future:hs1.test:8481"
		invite := tg.signedPDU("11", memberJSON(roomID, remoteUser, localUser, `{"membership":"invite"}`))
		resp, answer := tg.request(http.MethodPut, path(inviteV2, roomID, pduEventID(t, invite, "11")), inviteBody(`"13"`, invite, ""))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeIncompatibleRoom)
		expectNothingForwarded(t, tg)
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("invite v2 with numeric version", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{rooms: "[]\n"})
		roomID := "!numeric:hs1.test:8481"
		invite := tg.signedPDU("10", memberJSON(roomID, remoteUser, localUser, `{"membership":"invite"}`))
		resp, answer := tg.request(http.MethodPut, path(inviteV2, roomID, pduEventID(t, invite, "10")), inviteBody(`10`, invite, ""))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("invite v2 contradicting known version", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		invite := tg.signedPDU("11", memberJSON(testRoomID, remoteUser, localUser, `{"membership":"invite"}`))
		resp, answer := tg.request(http.MethodPut, path(inviteV2, testRoomID, pduEventID(t, invite, "11")), inviteBody(`"11"`, invite, ""))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("invite v2 refused by homeserver teaches version", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{rooms: "[]\n"})
		tg.hs.status, tg.hs.body = http.StatusForbidden, `{"errcode":"M_FORBIDDEN","error":"no such user"}`
		roomID := "!refused:hs1.test:8481"
		invite := tg.signedPDU("1", strings.NewReplacer(
			`{"room_id"`, `{"event_id":"$i1:hs1.test:8481","room_id"`,
			`"prev_events":["`+edgeEventID+`"]`, `"prev_events":[["$p:hs1.test:8481",{}]]`,
			`"auth_events":["`+edgeEventID+`"]`, `"auth_events":[["$a:hs1.test:8481",{}]]`,
		).Replace(memberJSON(roomID, remoteUser, localUser, `{"membership":"invite"}`)))
		resp, answer := tg.request(http.MethodPut, path(inviteV2, roomID, "$i1:hs1.test:8481"), inviteBody(`"1"`, invite, ""))
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d, want the homeserver's 403; answer %v", resp.StatusCode, answer)
		}
		expectRoomUnknown(t, tg, roomID)
	})

	t.Run("invite_room_state entry without signatures", func(t *testing.T) {
		// An entry with hashes is a full event, not stripped state, but
		// one without signatures is passed unverified.
		tg := startGateway(t, gatewayOptions{rooms: "[]\n"})
		roomID := "!state:hs1.test:8481"
		invite := tg.signedPDU("11", memberJSON(roomID, remoteUser, localUser, `{"membership":"invite"}`))
		forgedCreate := tg.signedPDU("11", createJSON(roomID, `{"room_version":"11","creator":"@mallory:elsewhere.test"}`)).Without("signatures")
		resp, answer := tg.request(http.MethodPut, path(inviteV2, roomID, pduEventID(t, invite, "11")),
			inviteBody(`"11"`, invite, string(canonicaljson.Encode(forgedCreate))))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})

	t.Run("third-party invite from a local sender", func(t *testing.T) {
		// The invite claims a third_party_invite, so the gateway requires
		// no signature. Its content hash fails, so the redacted event is a
		// plain invite from a local user without any signature.
		tg := startGateway(t, gatewayOptions{})
		content := fmt.Sprintf(`{"membership":"invite","third_party_invite":{"display_name":"carol","signed":{"mxid":"@carol:%s","token":"t","signatures":{}}}}`, localName)
		text := memberJSON(testRoomID, localUser, "@carol:"+localName, content)
		text = strings.Replace(text, `"hashes":{}`, `"hashes":{"sha256":"`+badHashValue+`"}`, 1)
		invite := parseEvent(t, text)
		resp, answer := tg.request(http.MethodPut, path(inviteV2, testRoomID, pduEventID(t, invite, "10")), inviteBody(`"10"`, invite, ""))
		expectError(t, tg, resp, answer, http.StatusBadRequest, codeInvalidParam)
		expectNothingForwarded(t, tg)
	})
}

func TestHostileHTTP(t *testing.T) {
	t.Run("chunked body with Content-Length", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		uri := sendTarget + "chunked"
		body := transactionBody([]canonicaljson.Value{tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)}, "")
		request := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: hs2.test\r\nAuthorization: %s\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
			uri, tg.signedHeader(http.MethodPut, uri, body), len(body), body)
		resp, answer := tg.rawHTTP(request)
		if resp.StatusCode == http.StatusOK {
			if got := expectForwardedOnce(t, tg); !bytes.Equal(got.body, body) {
				t.Errorf("forwarded body %q, want the verified %q", got.body, body)
			}
			return
		}
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status = %d, want 200 or 400; answer %v", resp.StatusCode, answer)
		}
		expectNothingForwarded(t, tg)
	})

	t.Run("expect 100-continue", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		uri := sendTarget + "continue"
		body := transactionBody([]canonicaljson.Value{tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)}, "")
		resp, answer := tg.raw(http.MethodPut, uri, body, map[string]string{
			"Authorization": tg.signedHeader(http.MethodPut, uri, body),
			"Expect":        "100-continue",
		})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
		}
		if got := expectForwardedOnce(t, tg); !bytes.Equal(got.body, body) {
			t.Errorf("forwarded body differs from the verified body")
		}
	})

	t.Run("HTTP/2 request", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		uri := sendTarget + "h2%2Fx"
		body := transactionBody([]canonicaljson.Value{tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)}, "")
		config := tg.client.Transport.(*http.Transport).TLSClientConfig.Clone()
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: config, ForceAttemptHTTP2: true}}
		req, err := http.NewRequest(http.MethodPut, tg.url, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Opaque = uri
		req.Header.Set("Authorization", tg.signedHeader(http.MethodPut, uri, body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200", resp.StatusCode)
		}
		if resp.ProtoMajor != 2 {
			t.Logf("gateway answered with %s, not HTTP/2", resp.Proto)
		}
		if got := expectForwardedOnce(t, tg); got.uri != uri {
			t.Errorf("forwarded target = %q, want %q", got.uri, uri)
		}
	})
}

func TestHostileRecords(t *testing.T) {
	// Records of what was sent on are written before the homeserver is
	// contacted, so that nothing reaches it unrecorded. When it cannot be
	// reached, the record that the error answer names says so.
	expectFailureRecorded := func(t *testing.T, tg *testGateway, resp *http.Response, answer map[string]any) {
		t.Helper()
		id, _ := answer["decision_id"].(string)
		rec := tg.record(id)
		if rec.Allow || rec.Status != http.StatusBadGateway || rec.Action != actionRejected {
			t.Errorf("record %s: allow=%v status=%d action=%q, want a refusal with 502", id, rec.Allow, rec.Status, rec.Action)
		}
		if !strings.Contains(rec.Error, "homeserver unreachable") {
			t.Errorf("record %s error = %q, want it to name the unreachable homeserver", id, rec.Error)
		}
	}
	down := func(t *testing.T) string {
		t.Helper()
		server := httptest.NewServer(http.NotFoundHandler())
		url := server.URL
		server.Close()
		return url
	}

	t.Run("streamed request to unreachable homeserver", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{homeserverURL: down(t)})
		resp, answer := tg.request(http.MethodGet, "/_matrix/federation/v1/state_ids/"+testRoomID+"?event_id=%24abc", nil)
		expectError(t, tg, resp, answer, http.StatusBadGateway, codeUnknown)
		expectFailureRecorded(t, tg, resp, answer)
	})

	t.Run("transaction to unreachable homeserver", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{homeserverURL: down(t)})
		pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
		resp, answer := tg.sendTransaction("down", []canonicaljson.Value{pdu}, "")
		expectError(t, tg, resp, answer, http.StatusBadGateway, codeUnknown)
		expectFailureRecorded(t, tg, resp, answer)
	})
}

func TestHostilePolicySign(t *testing.T) {
	// A policy server signs any event of its rooms, not only membership
	// events, and the body names no room in the path.
	tg := startGateway(t, gatewayOptions{})
	tg.hs.body = `{"signatures":{}}`
	pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
	resp, answer := tg.request(http.MethodPost, "/_matrix/policy/v1/sign", canonicaljson.Encode(pdu))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
	}
	expectForwardedOnce(t, tg)
}
