package gateway

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"github.com/bordergate/bordergate/gateway/events"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/xmatrix"
)

const typingEDU = `[{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":"@alice:hs1.test:8481","typing":true}}]`

func TestSendAllowedIsForwardedUnchanged(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	pdus := []canonicaljson.Value{
		tg.event("m.room.message", `{"body":"hello","msgtype":"m.text"}`, 5),
		tg.event("m.room.message", `{"body":"again","msgtype":"m.text"}`, 6),
	}
	// Whitespace and key order of the body are the origin's; the gateway
	// must forward these bytes, not a re-encoding.
	body := bytes.Replace(transactionBody(pdus, typingEDU), []byte(`"pdus":`), []byte(`"pdus" :  `), 1)
	uri := "/_matrix/federation/v1/send/txn%2F1"
	tg.hs.body = `{"pdus":{"$x":{}}}`

	resp, answer := tg.request(http.MethodPut, uri, body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
	}
	if _, ok := answer["pdus"].(map[string]any)["$x"]; !ok {
		t.Errorf("answer %v is not the homeserver's", answer)
	}
	got := tg.hs.received()
	if len(got) != 1 {
		t.Fatalf("homeserver received %d requests, want 1", len(got))
	}
	if !bytes.Equal(got[0].body, body) {
		t.Errorf("forwarded body differs from the signed body:\n got %s\nwant %s", got[0].body, body)
	}
	if got[0].uri != uri {
		t.Errorf("forwarded target = %q, want %q", got[0].uri, uri)
	}
	if !strings.HasPrefix(got[0].auth, "X-Matrix ") {
		t.Errorf("Authorization header not forwarded: %q", got[0].auth)
	}

	recs := tg.records()
	kinds := map[string]int{}
	for _, rec := range recs {
		kinds[rec.Path]++
		if !rec.Allow || rec.Action != actionForward {
			t.Errorf("record %s %s: allow=%v action=%q, want allowed forward", rec.Path, rec.Matrix.EventID, rec.Allow, rec.Action)
		}
	}
	want := map[string]int{"bordergate/request/decision": 1, "bordergate/pdu/decision": 2, "bordergate/edu/decision": 1}
	for path, n := range want {
		if kinds[path] != n {
			t.Errorf("%d records for %s, want %d", kinds[path], path, n)
		}
	}
}

func TestSendWithDeniedPDUIsWithheld(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	allowed1 := tg.event("m.room.message", `{"body":"before","msgtype":"m.text"}`, 5)
	denied := tg.event("com.example.forbidden", `{"secret":"no"}`, 6)
	allowed2 := tg.event("m.room.message", `{"body":"after","msgtype":"m.text"}`, 7)
	body := transactionBody([]canonicaljson.Value{allowed1, denied, allowed2}, typingEDU)

	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/2", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200; answer %v", resp.StatusCode, answer)
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Fatalf("homeserver received %d requests, want none", n)
	}
	results, _ := answer["pdus"].(map[string]any)
	if len(results) != 3 {
		t.Fatalf("answer has %d PDU results, want 3: %v", len(results), answer)
	}
	deniedID := eventID(t, denied)
	deniedResult, _ := results[deniedID].(map[string]any)
	if msg, _ := deniedResult["error"].(string); !strings.Contains(msg, "denied by policy") {
		t.Errorf("denied PDU error = %q, want a policy denial", msg)
	}
	deniedDecision, _ := deniedResult["decision_id"].(string)
	for _, ev := range []canonicaljson.Value{allowed1, allowed2} {
		r, _ := results[eventID(t, ev)].(map[string]any)
		if msg, _ := r["error"].(string); !strings.Contains(msg, "withheld") || !strings.Contains(msg, deniedDecision) {
			t.Errorf("allowed PDU error = %q, want withheld naming %s", msg, deniedDecision)
		}
	}

	rec := tg.record(deniedDecision)
	if rec.Allow || rec.Action != actionDenied || rec.Matrix.EventID != deniedID || rec.Matrix.EventType != "com.example.forbidden" {
		t.Errorf("denied record: allow=%v action=%q event=%q type=%q", rec.Allow, rec.Action, rec.Matrix.EventID, rec.Matrix.EventType)
	}
	withheld := 0
	for _, r := range tg.records() {
		if r.Action == actionWithheld {
			withheld++
			if r.WithheldBy != deniedDecision || !r.Allow {
				t.Errorf("withheld record %s: withheld_by=%q allow=%v", r.DecisionID, r.WithheldBy, r.Allow)
			}
		}
	}
	if withheld != 3 {
		t.Errorf("%d withheld records, want 3 (two PDUs and the EDU)", withheld)
	}
}

func TestSendMaskedMessageBody(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	pdu := tg.event("m.room.message", `{"body":"top secret words","msgtype":"m.text"}`, 5)
	resp, _ := tg.request(http.MethodPut, "/_matrix/federation/v1/send/3", transactionBody([]canonicaljson.Value{pdu}, ""))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	for _, rec := range tg.records() {
		if rec.Path != "bordergate/pdu/decision" {
			continue
		}
		text := fmt.Sprint(rec.Input)
		if strings.Contains(text, "top secret words") {
			t.Errorf("message body not masked in record: %s", text)
		}
		if len(rec.Erased) == 0 {
			t.Errorf("record lists no erased paths")
		}
	}
}

func TestSendMalformedPDUDoesNotFailEnvelope(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	good := tg.event("m.room.message", `{"body":"ok","msgtype":"m.text"}`, 5)
	tampered := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 6).With("type", canonicaljson.StringValue("m.room.topic"))
	notObject := canonicaljson.StringValue("junk")
	body := transactionBody([]canonicaljson.Value{notObject, good, tampered}, "")

	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/4", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200 with per-PDU errors; answer %v", resp.StatusCode, answer)
	}
	results, _ := answer["pdus"].(map[string]any)
	r, _ := results[eventID(t, tampered)].(map[string]any)
	if msg, _ := r["error"].(string); !strings.Contains(msg, "verification failed") {
		t.Errorf("tampered PDU error = %q, want a verification failure", msg)
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Errorf("homeserver received %d requests, want none", n)
	}
}

func TestSendUnknownRoomVersion(t *testing.T) {
	tg := startGateway(t, gatewayOptions{rooms: "[]\n"})
	pdu := tg.event("m.room.message", `{"body":"ok","msgtype":"m.text"}`, 5)
	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/5", transactionBody([]canonicaljson.Value{pdu}, ""))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Errorf("homeserver received %d requests, want none", n)
	}
	for _, rec := range tg.records() {
		if rec.Path == "bordergate/pdu/decision" {
			if rec.Allow || rec.Matrix.RoomVersionSource != "unknown" || !strings.Contains(rec.Error, "room version") {
				t.Errorf("record allow=%v source=%q error=%q", rec.Allow, rec.Matrix.RoomVersionSource, rec.Error)
			}
		}
	}
	_ = answer
}

func TestEDUForAnotherServersUser(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	edu := `[{"edu_type":"m.typing","content":{"room_id":"!room:hs1.test:8481","user_id":"@mallory:other.test","typing":true}}]`
	resp, _ := tg.request(http.MethodPut, "/_matrix/federation/v1/send/6", transactionBody(nil, edu))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d", resp.StatusCode)
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Errorf("homeserver received %d requests, want none", n)
	}
	found := false
	for _, rec := range tg.records() {
		if rec.Path == "bordergate/edu/decision" && rec.Action == actionRejected && strings.Contains(rec.Error, "@mallory:other.test") {
			found = true
		}
	}
	if !found {
		t.Error("no rejected EDU record naming the foreign user")
	}
}

func TestRequestRejections(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
	validTxn := transactionBody([]canonicaljson.Value{pdu}, "")
	signed := func(key ed25519.PrivateKey, keyID, origin, dest, method, uri string, body []byte) map[string]string {
		var content *canonicaljson.Value
		if len(body) > 0 {
			v, err := canonicaljson.Parse(body)
			if err == nil {
				content = &v
			}
		}
		h, err := xmatrix.FormatAuthorization(xmatrix.Sign(key, keyID, method, uri, origin, dest, content))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": h}
	}
	sendURI := "/_matrix/federation/v1/send/r1"
	tooMany := make([]canonicaljson.Value, 51)
	for i := range tooMany {
		tooMany[i] = pdu
	}
	tests := []struct {
		name    string
		method  string
		uri     string
		body    []byte
		headers map[string]string
		status  int
		errcode string
		message string
	}{
		{"unknown path", "GET", "/_matrix/federation/v1/nothing", nil, nil, 404, "M_UNRECOGNIZED", "unrecognized request"},
		{"client API", "GET", "/_matrix/client/v3/sync", nil, nil, 404, "M_UNRECOGNIZED", "unrecognized request"},
		{"wrong method", "GET", sendURI, nil, nil, 405, "M_UNRECOGNIZED", "method GET is not allowed on this endpoint"},
		{"no authorization", "PUT", sendURI, validTxn, nil, 401, "M_UNAUTHORIZED", "missing X-Matrix Authorization header"},
		{"malformed authorization", "PUT", sendURI, validTxn, map[string]string{"Authorization": `X-Matrix origin="hs1.test:8481"`}, 400, "M_UNAUTHORIZED", "malformed Authorization header"},
		{"wrong destination", "PUT", sendURI, validTxn, signed(tg.key, remoteKeyID, remoteName, "other.test", "PUT", sendURI, validTxn), 401, "M_UNAUTHORIZED", `destination "other.test" in the Authorization header is not this server`},
		{"bad signature", "PUT", sendURI, validTxn, signed(strangerKey, remoteKeyID, remoteName, localName, "PUT", sendURI, validTxn), 401, "M_UNAUTHORIZED", "invalid X-Matrix signature from hs1.test:8481 with key ed25519:test1"},
		{"unknown key", "PUT", sendURI, validTxn, signed(tg.key, "ed25519:other", remoteName, localName, "PUT", sendURI, validTxn), 401, "M_UNAUTHORIZED", "key ed25519:other of hs1.test:8481"},
		{"signed other body", "PUT", sendURI, validTxn, signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, transactionBody(nil, "")), 401, "M_UNAUTHORIZED", "invalid X-Matrix signature"},
		{"signed other target", "PUT", sendURI, validTxn, signed(tg.key, remoteKeyID, remoteName, localName, "PUT", "/_matrix/federation/v1/send/r2", validTxn), 401, "M_UNAUTHORIZED", "invalid X-Matrix signature"},
		{"unlisted origin", "PUT", sendURI, validTxn, signed(strangerKey, "ed25519:x", "stranger.test", localName, "PUT", sendURI, validTxn), 403, "M_FORBIDDEN", "denied by policy"},
		{"not JSON", "PUT", sendURI, []byte("{nope"), signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, nil), 400, "M_NOT_JSON", "request body is not valid JSON"},
		{"duplicate keys", "PUT", sendURI, []byte(`{"origin":"a","origin":"b"}`), signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, nil), 400, "M_BAD_JSON", `duplicate object key "origin"`},
		{"lone surrogate", "PUT", sendURI, []byte(`{"origin":"\ud800"}`), signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, nil), 400, "M_BAD_JSON", "unpaired surrogate"},
		{"array body", "PUT", sendURI, []byte(`[]`), signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, []byte(`[]`)), 400, "M_BAD_JSON", "request body must be a JSON object"},
		{"origin mismatch", "PUT", sendURI, []byte(`{"origin":"evil.test","origin_server_ts":1,"pdus":[]}`), signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, []byte(`{"origin":"evil.test","origin_server_ts":1,"pdus":[]}`)), 403, "M_FORBIDDEN", `transaction origin "evil.test" does not match`},
		{"too many PDUs", "PUT", sendURI, transactionBody(tooMany, ""), signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, transactionBody(tooMany, "")), 400, "M_BAD_JSON", "transaction has 51 PDUs; at most 50 are allowed"},
		{"body too large", "PUT", sendURI, bytes.Repeat([]byte(" "), DefaultMaxBodyBytes+1), nil, 413, "M_TOO_LARGE", "exceeds the limit"},
		{"make_join for foreign user", "GET", "/_matrix/federation/v1/make_join/!room:hs1.test:8481/@bob:other.test", nil, signed(tg.key, remoteKeyID, remoteName, localName, "GET", "/_matrix/federation/v1/make_join/!room:hs1.test:8481/@bob:other.test", nil), 403, "M_FORBIDDEN", `user "@bob:other.test" is not on the requesting server`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			headers := tc.headers
			if tc.name == "body too large" {
				headers = signed(tg.key, remoteKeyID, remoteName, localName, "PUT", sendURI, nil)
			}
			resp, answer := tg.raw(tc.method, tc.uri, tc.body, headers)
			if resp.StatusCode != tc.status {
				t.Errorf("status = %d, want %d; answer %v", resp.StatusCode, tc.status, answer)
			}
			if answer["errcode"] != tc.errcode {
				t.Errorf("errcode = %v, want %s", answer["errcode"], tc.errcode)
			}
			if msg, _ := answer["error"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.message)
			}
			id, _ := answer["decision_id"].(string)
			if id == "" || resp.Header.Get(headerDecisionID) != id {
				t.Fatalf("decision_id %q missing or not in the %s header", id, headerDecisionID)
			}
			rec := tg.record(id)
			if rec.Allow || rec.Status != tc.status {
				t.Errorf("record allow=%v status=%d, want denied with %d", rec.Allow, rec.Status, tc.status)
			}
		})
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Errorf("homeserver received %d requests, want none", n)
	}
}

func TestUnauthenticatedKeyServerForwarded(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	tg.hs.body = `{"server_name":"hs2.test:8448"}`
	resp, answer := tg.raw("GET", "/_matrix/key/v2/server", nil, nil)
	if resp.StatusCode != http.StatusOK || answer["server_name"] != "hs2.test:8448" {
		t.Fatalf("status %d answer %v, want the homeserver's key response", resp.StatusCode, answer)
	}
	if got := tg.hs.received(); len(got) != 1 || got[0].uri != "/_matrix/key/v2/server" {
		t.Errorf("homeserver received %v", got)
	}
}

func TestHomeserverFailures(t *testing.T) {
	t.Run("down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		tg := startGateway(t, gatewayOptions{homeserverURL: "http://" + addr})
		pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
		resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/d1", transactionBody([]canonicaljson.Value{pdu}, ""))
		if resp.StatusCode != http.StatusBadGateway {
			t.Errorf("status = %d, want 502; answer %v", resp.StatusCode, answer)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{timeout: 200 * time.Millisecond})
		tg.hs.delay = time.Second
		pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
		resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/d2", transactionBody([]canonicaljson.Value{pdu}, ""))
		if resp.StatusCode != http.StatusGatewayTimeout {
			t.Errorf("status = %d, want 504; answer %v", resp.StatusCode, answer)
		}
	})
	t.Run("unavailable passes through", func(t *testing.T) {
		tg := startGateway(t, gatewayOptions{})
		tg.hs.status, tg.hs.body = http.StatusServiceUnavailable, `{"errcode":"M_UNKNOWN","error":"busy"}`
		pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
		resp, _ := tg.request(http.MethodPut, "/_matrix/federation/v1/send/d3", transactionBody([]canonicaljson.Value{pdu}, ""))
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status = %d, want the homeserver's 503", resp.StatusCode)
		}
	})
}

func TestClientCertificates(t *testing.T) {
	mtlsEntry := `  - server_name: "hs3.test"
    pinned_keys: {"ed25519:test1": "REMOTE_KEY"}
    require_mtls: true
    endpoints: ["*"]
`
	tg := startGateway(t, gatewayOptions{extraAllowlist: mtlsEntry})
	versionURI := "/_matrix/federation/v1/state_ids/!room:hs1.test:8481?event_id=%24abc"
	sign := func(origin string) map[string]string {
		h, err := xmatrix.FormatAuthorization(xmatrix.Sign(tg.key, remoteKeyID, "GET", versionURI, origin, localName, nil))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{"Authorization": h}
	}
	tests := []struct {
		name    string
		client  *testGateway
		origin  string
		status  int
		message string
	}{
		{"certificate names another server", tg.withClientCertificate("other.test"), remoteName, 401, "client certificate does not name the origin hs1.test:8481"},
		{"certificate names origin", tg.withClientCertificate("hs1.test"), remoteName, 200, ""},
		{"mTLS required, none sent", tg, "hs3.test", 403, "mutual TLS required for hs3.test"},
		{"mTLS required and sent", tg.withClientCertificate("hs3.test"), "hs3.test", 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.hs.body = `{"auth_chain_ids":[],"pdu_ids":[]}`
			resp, answer := tc.client.raw("GET", versionURI, nil, sign(tc.origin))
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; answer %v", resp.StatusCode, tc.status, answer)
			}
			if msg, _ := answer["error"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.message)
			}
		})
	}
}

func TestInviteV2(t *testing.T) {
	tg := startGateway(t, gatewayOptions{rooms: "[]\n"})
	rv, _ := events.LookupRoomVersion("11")
	build := func(membership, stateKey string) (canonicaljson.Value, string) {
		text := fmt.Sprintf(`{"room_id":"!new:hs1.test:8481","sender":"@alice:%s","type":"m.room.member","state_key":%q,"content":{"membership":%q},"origin_server_ts":%d,"depth":3,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"auth_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"hashes":{},"signatures":{}}`,
			remoteName, stateKey, membership, time.Now().UnixMilli())
		v, err := canonicaljson.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		signed, err := events.SignEvent(v, rv, remoteName, remoteKeyID, tg.key)
		if err != nil {
			t.Fatal(err)
		}
		id, err := events.EventID(signed, rv)
		if err != nil {
			t.Fatal(err)
		}
		return signed, id
	}
	body := func(ev canonicaljson.Value) []byte {
		return []byte(`{"room_version":"11","event":` + string(canonicaljson.Encode(ev)) + `,"invite_room_state":[]}`)
	}
	uri := func(id string) string {
		return "/_matrix/federation/v2/invite/!new:hs1.test:8481/" + strings.ReplaceAll(id, "$", "%24")
	}

	invite, inviteID := build("invite", "@bob:"+localName)
	join, joinID := build("join", "@alice:"+remoteName)
	foreign, foreignID := build("invite", "@carol:elsewhere.test")
	tests := []struct {
		name    string
		uri     string
		body    []byte
		status  int
		message string
	}{
		{"event ID not the path's", uri("$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), body(invite), 400, "does not match the path event"},
		{"not an invite", uri(joinID), body(join), 400, `membership "join" is not "invite"`},
		{"invitee not local", uri(foreignID), body(foreign), 400, `invited user "@carol:elsewhere.test" is not on the receiving server`},
		{"tampered invite_room_state", uri(inviteID), []byte(`{"room_version":"11","event":` + string(canonicaljson.Encode(invite)) +
			`,"invite_room_state":[` + string(canonicaljson.Encode(join.With("depth", canonicaljson.IntValue(99)))) + `]}`), 400, "invite_room_state[0]: event verification failed: event signature check failed"},
		{"no room version", uri(inviteID), []byte(`{"event":` + string(canonicaljson.Encode(invite)) + `}`), 400, "invite has no room_version"},
		{"valid invite", uri(inviteID), body(invite), 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.hs.body = `{"event":{}}`
			resp, answer := tg.request(http.MethodPut, tc.uri, tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; answer %v", resp.StatusCode, tc.status, answer)
			}
			if tc.status != 200 && answer["errcode"] != "M_INVALID_PARAM" && answer["errcode"] != "M_MISSING_PARAM" {
				t.Errorf("errcode = %v, want M_INVALID_PARAM or M_MISSING_PARAM", answer["errcode"])
			}
			if msg, _ := answer["error"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.message)
			}
		})
	}
	room, ok := tg.gw.store.RoomVersion("!new:hs1.test:8481")
	if !ok || room.Version != "11" || room.Source != "invite" {
		t.Errorf("room learned = %+v, %v; want version 11 from the invite", room, ok)
	}
	if n := len(tg.hs.received()); n != 1 {
		t.Errorf("homeserver received %d requests, want only the valid invite", n)
	}
}

func TestDecisionLogFailureForwardsNothing(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	// A closed writer refuses every record, as a full or failed disk would.
	if err := tg.gw.decisions.Close(); err != nil {
		t.Fatal(err)
	}
	pdu := tg.event("m.room.message", `{"body":"x","msgtype":"m.text"}`, 5)
	resp, answer := tg.request(http.MethodPut, "/_matrix/federation/v1/send/l1", transactionBody([]canonicaljson.Value{pdu}, ""))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status = %d, want 503 so that the origin retries; answer %v", resp.StatusCode, answer)
	}
	resp, _ = tg.raw("GET", "/_matrix/key/v2/server", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("key server status = %d, want 503", resp.StatusCode)
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Errorf("homeserver received %d requests, want none", n)
	}
}

func TestQueriedEntitiesMustBeLocal(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	tests := []struct {
		name, method, uri, body string
		status                  int
		message                 string
	}{
		{"profile of a remote user", "GET", "/_matrix/federation/v1/query/profile?user_id=%40carol%3Aelsewhere.test", "", 403, `"@carol:elsewhere.test" is not on the receiving server`},
		{"profile of a local user", "GET", "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test%3A8448", "", 200, ""},
		{"alias of another server", "GET", "/_matrix/federation/v1/query/directory?room_alias=%23room%3Aelsewhere.test", "", 403, `"#room:elsewhere.test" is not on the receiving server`},
		{"devices of a remote user", "GET", "/_matrix/federation/v1/user/devices/@carol:elsewhere.test", "", 403, `user "@carol:elsewhere.test" is not on the receiving server`},
		{"keys of a remote user", "POST", "/_matrix/federation/v1/user/keys/query", `{"device_keys":{"@bob:hs2.test:8448":[],"@carol:elsewhere.test":[]}}`, 403, `"@carol:elsewhere.test" is not on the receiving server`},
		{"keys of a local user", "POST", "/_matrix/federation/v1/user/keys/query", `{"device_keys":{"@bob:hs2.test:8448":[]}}`, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg.hs.body = `{}`
			resp, answer := tg.request(tc.method, tc.uri, []byte(tc.body))
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; answer %v", resp.StatusCode, tc.status, answer)
			}
			if msg, _ := answer["error"].(string); !strings.Contains(msg, tc.message) {
				t.Errorf("error = %q, want it to contain %q", msg, tc.message)
			}
		})
	}
}

func TestReloadAllowlist(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	uri := "/_matrix/federation/v1/query/profile?user_id=%40bob%3Ahs2.test%3A8448"
	tg.hs.body = `{}`
	if resp, answer := tg.request("GET", uri, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("before reload: status %d, answer %v", resp.StatusCode, answer)
	}

	writeFile(t, tg.dir, "allowlist.yaml", "servers:\n  - server_name: [broken\n")
	if err := tg.gw.Reload(t.Context()); err == nil || !strings.Contains(err.Error(), "reload allow-list") {
		t.Fatalf("Reload with a broken file = %v, want an allow-list error", err)
	}
	if resp, _ := tg.request("GET", uri, nil); resp.StatusCode != http.StatusOK {
		t.Errorf("after a failed reload: status %d, want the old allow-list still in force", resp.StatusCode)
	}

	writeFile(t, tg.dir, "allowlist.yaml", "servers:\n  - server_name: other.test\n    endpoints: [\"*\"]\n")
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	resp, answer := tg.request("GET", uri, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("after reload without hs1: status %d, want 403; answer %v", resp.StatusCode, answer)
	}
}

func TestBusyGatewayAnswers503(t *testing.T) {
	tg := startGateway(t, gatewayOptions{maxConcurrent: 1})
	tg.hs.delay = 500 * time.Millisecond
	done := make(chan int, 1)
	go func() {
		resp, _ := tg.raw("GET", "/_matrix/key/v2/server", nil, nil)
		done <- resp.StatusCode
	}()
	// Wait until the first request holds the only slot at the homeserver.
	deadline := time.Now().Add(5 * time.Second)
	for len(tg.hs.received()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	resp, answer := tg.raw("GET", "/_matrix/federation/v1/version", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second request: status %d, Retry-After %q, want 503 with Retry-After; answer %v",
			resp.StatusCode, resp.Header.Get("Retry-After"), answer)
	}
	if answer["decision_id"] == nil {
		t.Errorf("busy answer %v has no decision_id", answer)
	}
	if status := <-done; status != http.StatusOK {
		t.Errorf("first request: status %d, want 200", status)
	}
}

func TestBodyWithTooManyValues(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	// Two bytes a value: the cap on values, not on bytes, stops this body.
	body := []byte(`{"device_keys":{"@bob:hs2.test:8448":[` + strings.Repeat("0,", maxBodyValues) + `0]}}`)
	resp, answer := tg.request(http.MethodPost, "/_matrix/federation/v1/user/keys/query", body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || answer["errcode"] != "M_TOO_LARGE" {
		t.Errorf("status %d errcode %v, want 413 M_TOO_LARGE; answer %v", resp.StatusCode, answer["errcode"], answer)
	}
	if n := len(tg.hs.received()); n != 0 {
		t.Errorf("homeserver received %d requests, want none", n)
	}
}

func TestHandshakeRequiresClientCertificate(t *testing.T) {
	tg := startGateway(t, gatewayOptions{requireClientCert: true})
	req, err := http.NewRequest("GET", tg.url+"/_matrix/federation/v1/version", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := tg.client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("request without a client certificate got status %d, want a failed handshake", resp.StatusCode)
	}
	found := false
	for _, rec := range tg.records() {
		if rec.Matrix.Endpoint == "tls_handshake" && !rec.Allow && strings.Contains(rec.Error, "no client certificate") {
			found = true
		}
	}
	if !found {
		t.Error("no decision record of the refused handshake")
	}
	tg.hs.body = `{"server":{"name":"stub"}}`
	resp, _ := tg.withClientCertificate("hs1.test").raw("GET", "/_matrix/federation/v1/version", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with a client certificate: status %d, want 200", resp.StatusCode)
	}
}

func TestReloadServerCertificate(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	serial := func() string {
		t.Helper()
		resp, _ := tg.raw("GET", "/_matrix/key/v2/server", nil, map[string]string{"Connection": "close"})
		return resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	tg.hs.body = `{}`
	before := serial()
	certPEM, keyPEM, err := tg.ca.IssueServer([]string{"hs2.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, tg.dir, "cert.pem", string(certPEM))
	writeFile(t, tg.dir, "key.pem", string(keyPEM))
	if err := tg.gw.Reload(t.Context()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	tg.client.CloseIdleConnections()
	if after := serial(); after == before {
		t.Errorf("certificate serial %s unchanged after reload", after)
	}
}

func TestMakeJoinTemplateDecided(t *testing.T) {
	uri := "/_matrix/federation/v1/make_join/" + testRoomID + "/@alice:" + remoteName + "?ver=10"
	template := fmt.Sprintf(`{"room_version":"10","event":{"room_id":%q,"type":"m.room.member","sender":"@alice:%s","state_key":"@alice:%s","content":{"membership":"join"},"origin_server_ts":1,"depth":4,"prev_events":[],"auth_events":[]}}`,
		testRoomID, remoteName, remoteName)
	tests := []struct {
		name, data string
		status     int
		action     string
	}{
		{"allowed", "", 200, actionForward},
		{"denied", `{"denied_event_types": ["m.room.member"]}`, 403, actionDenied},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := startGateway(t, gatewayOptions{policyData: tc.data})
			tg.hs.body = template
			resp, answer := tg.request(http.MethodGet, uri, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; answer %v", resp.StatusCode, tc.status, answer)
			}
			found := false
			for _, rec := range tg.records() {
				if rec.Path == "bordergate/pdu/decision" && rec.Matrix.EventType == "m.room.member" {
					found = rec.Action == tc.action && rec.Matrix.Direction == "outbound"
				}
			}
			if !found {
				t.Errorf("no outbound PDU record of the template with action %q", tc.action)
			}
		})
	}
}
