package gateway

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
)

// localKeyResponse returns a /_matrix/key/v2/server response of the local
// server, self-signed with priv.
func localKeyResponse(t *testing.T, priv ed25519.PrivateKey) string {
	t.Helper()
	return keyResponse(t, localName, priv)
}

// keyResponse returns a /_matrix/key/v2/server response of serverName,
// self-signed with priv under the key ID ed25519:local.
func keyResponse(t *testing.T, serverName string, priv ed25519.PrivateKey) string {
	t.Helper()
	pub := base64.RawStdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	unsigned := fmt.Sprintf(`{"server_name":%q,"valid_until_ts":%d,"verify_keys":{"ed25519:local":{"key":%q}}}`,
		serverName, time.Now().Add(time.Hour).UnixMilli(), pub)
	v, err := canonicaljson.Parse([]byte(unsigned))
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(priv, canonicaljson.Encode(v)))
	return strings.TrimSuffix(unsigned, "}") + fmt.Sprintf(`,"signatures":{%q:{"ed25519:local":%q}}}`, serverName, sig)
}

func TestBackfillResponseFiltered(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	_, localKey, _ := ed25519.GenerateKey(rand.Reader)
	_, strangerKey, _ := ed25519.GenerateKey(rand.Reader)
	rv, _ := events.LookupRoomVersion("10")
	sign := func(sender, server, keyID string, key ed25519.PrivateKey, eventType, content string, depth int) canonicaljson.Value {
		text := fmt.Sprintf(`{"room_id":%q,"sender":%q,"type":%q,"content":%s,"origin_server_ts":%d,"depth":%d,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],"auth_events":[],"hashes":{},"signatures":{}}`,
			testRoomID, sender, eventType, content, 1700000000000+int64(depth), depth)
		v, err := canonicaljson.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		signed, err := events.SignEvent(v, rv, server, keyID, key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	local := sign("@bob:"+localName, localName, "ed25519:local", localKey, "m.room.message", `{"body":"from bob","msgtype":"m.text"}`, 3)
	remote := sign("@alice:"+remoteName, remoteName, remoteKeyID, tg.key, "m.room.message", `{"body":"from alice","msgtype":"m.text"}`, 4)
	forbidden := sign("@bob:"+localName, localName, "ed25519:local", localKey, "com.example.forbidden", `{"secret":"s"}`, 5)
	stranger := sign("@eve:stranger.test", "stranger.test", "ed25519:x", strangerKey, "m.room.message", `{"body":"x","msgtype":"m.text"}`, 6)
	tampered := remote.With("depth", canonicaljson.IntValue(99))

	var pdus []string
	for _, ev := range []canonicaljson.Value{local, remote, forbidden, stranger, tampered} {
		pdus = append(pdus, string(canonicaljson.Encode(ev)))
	}
	backfillPath := "/_matrix/federation/v1/backfill/" + testRoomID
	tg.hs.paths = map[string]string{
		"/_matrix/key/v2/server": localKeyResponse(t, localKey),
		backfillPath:             fmt.Sprintf(`{"origin":%q,"origin_server_ts":1,"pdus":[%s]}`, localName, strings.Join(pdus, ",")),
	}

	uri := backfillPath + "?v=%24x&limit=10"
	resp, answer := tg.request(http.MethodGet, uri, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, answer %v", resp.StatusCode, answer)
	}
	got, _ := answer["pdus"].([]any)
	if len(got) != 3 {
		t.Fatalf("answer has %d PDUs, want 3 (local, remote, forbidden redacted): %v", len(got), answer)
	}
	byID := map[string]map[string]any{}
	for _, p := range got {
		ev := p.(map[string]any)
		data, _ := json.Marshal(ev)
		v, err := canonicaljson.Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := events.EventID(v, rv)
		byID[id] = ev
	}
	if _, ok := byID[eventID(t, local)]; !ok {
		t.Error("the local user's event is missing")
	}
	if _, ok := byID[eventID(t, remote)]; !ok {
		t.Error("the allow-listed server's event is missing")
	}
	redacted, ok := byID[eventID(t, forbidden)]
	if !ok {
		t.Fatal("the denied event is missing; it must be passed on redacted, with its event ID")
	}
	if content, _ := redacted["content"].(map[string]any); len(content) != 0 {
		t.Errorf("denied event content = %v, want it redacted to {}", content)
	}

	actions := map[string]string{}
	results := map[string]any{}
	for _, rec := range tg.records() {
		if rec.Path == "bordergate/pdu/decision" {
			actions[rec.Matrix.EventID] = rec.Action
			results[rec.Matrix.EventID] = rec.Result
			if rec.Matrix.Direction != "outbound" {
				t.Errorf("record of %s: direction %q, want outbound", rec.Matrix.EventID, rec.Matrix.Direction)
			}
		}
	}
	want := map[string]string{
		eventID(t, local):     actionForward,
		eventID(t, remote):    actionForward,
		eventID(t, forbidden): actionRedacted,
		eventID(t, stranger):  actionRemoved,
		eventID(t, tampered):  actionRemoved,
	}
	for id, action := range want {
		if actions[id] != action {
			t.Errorf("record of %s: action %q, want %q; result %v", id, actions[id], action, results[id])
		}
	}
}
