package events

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// testTS is the origin_server_ts of test events: 2023-11-14T22:13:20Z.
const testTS = 1700000000000

// v12RoomID is a room ID of the room version 12 form.
const v12RoomID = "!P5-6WTYQ_woy6f4nmleE0XqxjtZcyKGza5_gDN-KAdM"

// fakeEventID returns a syntactically valid event ID of room version rv
// derived from name.
func fakeEventID(rv *RoomVersion, name string) string {
	if rv.EventIDFormat == EventIDServerChosen {
		return "$" + name + ":hs1"
	}
	return eventIDFromHash(sha256.Sum256([]byte(name)), rv)
}

// refsJSON returns a prev_events or auth_events array of n references in
// the form of rv.
func refsJSON(rv *RoomVersion, prefix string, n int) string {
	items := make([]string, n)
	for i := range items {
		id := fakeEventID(rv, fmt.Sprintf("%s%d", prefix, i))
		if rv.EventRefPairs {
			items[i] = fmt.Sprintf(`[%q,{"sha256":"aGFzaA"}]`, id)
		} else {
			items[i] = fmt.Sprintf("%q", id)
		}
	}
	return "[" + strings.Join(items, ",") + "]"
}

func testRoomID(rv *RoomVersion) string {
	if rv.RoomIDFromCreate {
		return v12RoomID
	}
	return "!r:hs1"
}

// eventJSON returns an unsigned event of type typ with content, sent by
// @alice:hs1, in the format of rv. It is a state event when stateKey is
// given.
func eventJSON(rv *RoomVersion, typ, content string, stateKey ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"type":%q,"room_id":%q,"sender":"@alice:hs1","origin":"hs1",`, typ, testRoomID(rv))
	fmt.Fprintf(&b, `"origin_server_ts":%d,"depth":5,"prev_events":%s,"auth_events":%s,`,
		testTS, refsJSON(rv, "prev", 1), refsJSON(rv, "auth", 3))
	if rv.EventIDFormat == EventIDServerChosen {
		b.WriteString(`"event_id":"$e1:hs1",`)
	}
	if len(stateKey) > 0 {
		fmt.Fprintf(&b, `"state_key":%q,`, stateKey[0])
	}
	fmt.Fprintf(&b, `"content":%s,"unsigned":{"age":10}}`, content)
	return b.String()
}

// messageJSON returns an unsigned m.room.message event in the format of rv.
func messageJSON(rv *RoomVersion) string {
	return eventJSON(rv, "m.room.message", `{"body":"hello","msgtype":"m.text"}`)
}

// edit changes a top-level member of an event.
type edit func(t testing.TB, v canonicaljson.Value) canonicaljson.Value

// set replaces or adds the top-level member key with the JSON text val.
func set(key, val string) edit {
	return func(t testing.TB, v canonicaljson.Value) canonicaljson.Value {
		return v.With(key, mustParse(t, val))
	}
}

// del removes the top-level member key.
func del(key string) edit {
	return func(_ testing.TB, v canonicaljson.Value) canonicaljson.Value { return v.Without(key) }
}

// setContent replaces or adds the content member key with the JSON text val.
func setContent(key, val string) edit {
	return func(t testing.TB, v canonicaljson.Value) canonicaljson.Value {
		content, _ := v.Get("content")
		return v.With("content", content.With(key, mustParse(t, val)))
	}
}

// eventOfSize returns a signed message event of rv whose canonical JSON
// without unsigned is size bytes, with an unsigned member of extra bytes.
func eventOfSize(t testing.TB, rv *RoomVersion, size, extra int) canonicaljson.Value {
	t.Helper()
	key := newSigner("hs1", "ed25519:a", "hs1")
	base := mustSign(t, mustParse(t, messageJSON(rv)), rv, key)
	fixed := len(canonicaljson.Encode(base.Without("unsigned")))
	body := strings.Repeat("x", size-fixed+len("hello"))
	v := setContent("body", fmt.Sprintf("%q", body))(t, base)
	v = v.With("unsigned", canonicaljson.ObjectValue(canonicaljson.Member{
		Key: "pad", Value: canonicaljson.StringValue(strings.Repeat("u", extra)),
	}))
	v = mustSign(t, v, rv, key)
	if got := len(canonicaljson.Encode(v.Without("unsigned"))); got != size {
		t.Fatalf("built event of %d bytes, want %d", got, size)
	}
	return v
}

func repeatJSON(s string, n int) string {
	return fmt.Sprintf("%q", strings.Repeat(s, n))
}

func stdAlphabetID() string {
	// An ID whose hash contains '+' or '/' in the standard alphabet.
	for i := 0; ; i++ {
		hash := sha256.Sum256([]byte(fmt.Sprint("std", i)))
		id := base64.RawStdEncoding.EncodeToString(hash[:])
		if strings.ContainsAny(id, "+/") {
			return "$" + id
		}
	}
}
