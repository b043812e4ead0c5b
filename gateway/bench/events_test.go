package bench_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/events"
	"github.com/bordergate/bordergate/gateway/keys"
)

// Names of the remote server whose events the benchmarks verify.
const (
	remoteName  = "hs1.bench:8481"
	remoteKeyID = "ed25519:bench1"
	localName   = "hs2.bench:8448"
	benchRoomID = "!room:hs1.bench:8481"
	roomVersion = "10"
)

// remoteKey is the remote server's signing key, fixed so that every run
// verifies the same bytes.
var remoteKey = newRemoteKey()

func newRemoteKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("bordergate benchmark key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

func remotePublic() ed25519.PublicKey { return remoteKey.Public().(ed25519.PublicKey) }

// eventSize is one event size of the verification benchmarks. A target of
// zero builds the smallest message event.
type eventSize struct {
	name   string
	target int
}

// eventSizes are the sizes of the verification benchmarks. "1KiB" is the
// typical m.room.message, and 64 KiB is the largest event the Matrix
// specification allows.
var eventSizes = []eventSize{
	{"small", 0},
	{"1KiB", 1 << 10},
	{"4KiB", 4 << 10},
	{"16KiB", 16 << 10},
	{"64KiB", events.MaxEventSize},
}

// benchEvent is a signed event with everything the verifiers need.
type benchEvent struct {
	value canonicaljson.Value
	// data is the canonical JSON the event arrives as.
	data []byte
	// signedBytes is what the signature covers: the redacted event
	// without `signatures` and `unsigned`, in canonical JSON.
	signedBytes []byte
	signature   []byte
}

// messageJSON returns an m.room.message event whose body is padding bytes
// long. Events after the first carry the fields of a formatted reply, as
// clients send them.
func messageJSON(padding, depth int, formatted bool) string {
	body := strings.Repeat("abcdefghij", padding/10+1)[:padding]
	content := fmt.Sprintf(`{"body":%q,"msgtype":"m.text"}`, body)
	if formatted {
		content = fmt.Sprintf(`{"body":%q,"format":"org.matrix.custom.html","formatted_body":"<p>%s</p>",`+
			`"m.mentions":{"user_ids":["@bob:hs2.bench:8448"]},"m.relates_to":{"m.in_reply_to":{"event_id":"$CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"}},"msgtype":"m.text"}`,
			body, body[:min(len(body), 40)])
	}
	return fmt.Sprintf(`{"room_id":%q,"sender":"@alice:%s","type":"m.room.message","content":%s,`+
		`"origin_server_ts":%d,"depth":%d,"prev_events":["$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"],`+
		`"auth_events":["$BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBE","$DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDE","$EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE"],"hashes":{},"signatures":{}}`,
		benchRoomID, remoteName, content, 1700000000000+int64(depth)*1000, depth)
}

// signMessage builds and signs a message event of exactly target bytes of
// canonical JSON, or the smallest one when target is zero.
func signMessage(tb testing.TB, target, depth int) benchEvent {
	tb.Helper()
	if target == 0 {
		return signedEvent(tb, messageJSON(2, depth, false))
	}
	padding := 100
	for range 3 {
		ev := signedEvent(tb, messageJSON(padding, depth, true))
		if len(ev.data) == target {
			return ev
		}
		padding += target - len(ev.data)
	}
	tb.Fatalf("cannot build an event of %d bytes", target)
	return benchEvent{}
}

func signedEvent(tb testing.TB, text string) benchEvent {
	tb.Helper()
	rv := mustRoomVersion(tb)
	v, err := canonicaljson.Parse([]byte(text))
	if err != nil {
		tb.Fatalf("parse event template: %v", err)
	}
	signed, err := events.SignEvent(v, rv, remoteName, remoteKeyID, remoteKey)
	if err != nil {
		tb.Fatalf("SignEvent: %v", err)
	}
	sigs, _ := signed.Get("signatures")
	server, _ := sigs.Get(remoteName)
	text64, _ := server.GetString(remoteKeyID)
	sig, err := base64.RawStdEncoding.DecodeString(text64)
	if err != nil {
		tb.Fatalf("decode signature: %v", err)
	}
	return benchEvent{
		value:       signed,
		data:        canonicaljson.Encode(signed),
		signedBytes: canonicaljson.Encode(events.Redact(signed, rv).Without("signatures")),
		signature:   sig,
	}
}

func mustRoomVersion(tb testing.TB) *events.RoomVersion {
	tb.Helper()
	rv, ok := events.LookupRoomVersion(roomVersion)
	if !ok {
		tb.Fatalf("room version %s is unknown", roomVersion)
	}
	return rv
}

// pinnedLookup is a keys.Lookup that knows the remote server's key, as an
// allow-list entry with a pinned key provides it.
type pinnedLookup struct{ key keys.VerifyKey }

func newPinnedLookup() *pinnedLookup {
	return &pinnedLookup{key: keys.VerifyKey{
		ServerName: remoteName, KeyID: remoteKeyID, Public: remotePublic(), Source: keys.SourcePinned,
	}}
}

func (l *pinnedLookup) LookupKey(_ context.Context, serverName, keyID string) (keys.VerifyKey, error) {
	if serverName != l.key.ServerName || keyID != l.key.KeyID {
		return keys.VerifyKey{}, fmt.Errorf("key %s of %q: %w", keyID, serverName, keys.ErrUnknownKey)
	}
	return l.key, nil
}

// verifyBordergate runs the gateway's checks of one received event: strict
// parse, format and canonical JSON, content hash, redaction, reference
// hash, event ID and every required signature.
func verifyBordergate(ctx context.Context, data []byte, rv *events.RoomVersion, lookup keys.Lookup) error {
	v, err := canonicaljson.Parse(data)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	pdu, err := events.ParsePDU(v, rv)
	if err != nil {
		return fmt.Errorf("parse PDU: %w", err)
	}
	res := events.Verify(ctx, pdu, lookup)
	if res.Err != nil {
		return res.Err
	}
	if !res.ContentHashValid {
		return fmt.Errorf("content hash of %s is invalid", res.EventID)
	}
	return nil
}

// gmslKeyDB is a gomatrixserverlib.KeyDatabase that contains the remote
// server's key.
type gmslKeyDB struct {
	request gomatrixserverlib.PublicKeyLookupRequest
	result  gomatrixserverlib.PublicKeyLookupResult
}

func newGMSLKeyRing() *gomatrixserverlib.KeyRing {
	db := &gmslKeyDB{
		request: gomatrixserverlib.PublicKeyLookupRequest{
			ServerName: spec.ServerName(remoteName), KeyID: gomatrixserverlib.KeyID(remoteKeyID),
		},
		result: gomatrixserverlib.PublicKeyLookupResult{
			VerifyKey:    gomatrixserverlib.VerifyKey{Key: spec.Base64Bytes(remotePublic())},
			ExpiredTS:    gomatrixserverlib.PublicKeyNotExpired,
			ValidUntilTS: spec.AsTimestamp(time.Now().Add(24 * time.Hour)),
		},
	}
	return &gomatrixserverlib.KeyRing{KeyDatabase: db}
}

func (db *gmslKeyDB) FetcherName() string { return "benchmark key database" }

func (db *gmslKeyDB) FetchKeys(
	_ context.Context, requests map[gomatrixserverlib.PublicKeyLookupRequest]spec.Timestamp,
) (map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, error) {
	out := make(map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, 1)
	if _, ok := requests[db.request]; ok {
		out[db.request] = db.result
	}
	return out, nil
}

func (db *gmslKeyDB) StoreKeys(context.Context, map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult) error {
	return nil
}

func userIDForSender(_ spec.RoomID, sender spec.SenderID) (*spec.UserID, error) {
	return spec.NewUserID(string(sender), true)
}

// verifyGMSL runs gomatrixserverlib's checks of one received event: parse,
// format, content hash with redaction on mismatch, event ID and the
// signatures of the servers that must sign.
func verifyGMSL(ctx context.Context, data []byte, impl gomatrixserverlib.IRoomVersion, keyRing *gomatrixserverlib.KeyRing) error {
	pdu, err := impl.NewEventFromUntrustedJSON(data)
	if err != nil {
		return fmt.Errorf("gomatrixserverlib parse: %w", err)
	}
	if pdu.Redacted() {
		return fmt.Errorf("gomatrixserverlib redacted %s for its content hash", pdu.EventID())
	}
	if err := gomatrixserverlib.VerifyEventSignatures(ctx, pdu, keyRing, userIDForSender); err != nil {
		return fmt.Errorf("gomatrixserverlib verify: %w", err)
	}
	return nil
}
