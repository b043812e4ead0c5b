package events

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/matrix-org/gomatrixserverlib"
	"github.com/matrix-org/gomatrixserverlib/spec"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// The cross-checks below build and sign events with gomatrixserverlib, the
// library of Dendrite v0.13.8, and check that this package computes the same
// event IDs, content hashes and redactions and reaches the same signature
// verdicts. That gomatrixserverlib version implements room versions 1 to 11
// but not room version 12.

// gmslKeyDB is a gomatrixserverlib.KeyDatabase holding fixed keys.
type gmslKeyDB struct {
	keys map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult
}

func newGMSLKeyDB(validUntil time.Time, signers ...signer) *gmslKeyDB {
	db := &gmslKeyDB{keys: map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult{}}
	for _, s := range signers {
		req := gomatrixserverlib.PublicKeyLookupRequest{
			ServerName: spec.ServerName(s.server),
			KeyID:      gomatrixserverlib.KeyID(s.keyID),
		}
		db.keys[req] = gomatrixserverlib.PublicKeyLookupResult{
			VerifyKey:    gomatrixserverlib.VerifyKey{Key: spec.Base64Bytes(s.public())},
			ExpiredTS:    gomatrixserverlib.PublicKeyNotExpired,
			ValidUntilTS: spec.AsTimestamp(validUntil),
		}
	}
	return db
}

func (db *gmslKeyDB) FetcherName() string { return "test key database" }

func (db *gmslKeyDB) FetchKeys(
	_ context.Context, requests map[gomatrixserverlib.PublicKeyLookupRequest]spec.Timestamp,
) (map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult, error) {
	out := map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult{}
	for req := range requests {
		if k, ok := db.keys[req]; ok {
			out[req] = k
		}
	}
	return out, nil
}

func (db *gmslKeyDB) StoreKeys(context.Context, map[gomatrixserverlib.PublicKeyLookupRequest]gomatrixserverlib.PublicKeyLookupResult) error {
	return nil
}

func userIDForSender(_ spec.RoomID, sender spec.SenderID) (*spec.UserID, error) {
	return spec.NewUserID(string(sender), true)
}

// gmslEvent describes an event to build with gomatrixserverlib.
type gmslEvent struct {
	name     string
	typ      string
	stateKey *string
	content  map[string]any
	redacts  string
	// origin builds and first signs the event; hs1 when empty.
	origin signer
	// cosigners add their signatures after the build.
	cosigners []signer
	// minVersion is the first room version the event applies to.
	minVersion int
}

func strPtr(s string) *string { return &s }

func gmslEvents(version int) []gmslEvent {
	joinRule := map[string]any{"join_rule": "invite", "extra": 1}
	if version >= 8 {
		joinRule = map[string]any{
			"join_rule": "restricted",
			"allow":     []any{map[string]any{"type": "m.room_membership", "room_id": "!space:hs1"}},
			"extra":     1,
		}
	}
	redactionContent := map[string]any{"reason": "spam"}
	if version >= 11 {
		redactionContent["redacts"] = "$target"
	}
	return []gmslEvent{
		{name: "create", typ: "m.room.create", stateKey: strPtr(""),
			content: map[string]any{"creator": "@alice:hs1", "room_version": fmt.Sprint(version), "m.federate": true}},
		{name: "member join", typ: "m.room.member", stateKey: strPtr("@alice:hs1"),
			content: map[string]any{"membership": "join", "displayname": "Alice", "avatar_url": "mxc://hs1/a"}},
		{name: "power levels", typ: "m.room.power_levels", stateKey: strPtr(""),
			content: map[string]any{
				"ban": 50, "events": map[string]any{"m.room.name": 50}, "events_default": 0, "invite": 0,
				"kick": 50, "notifications": map[string]any{"room": 50}, "redact": 50, "state_default": 50,
				"users": map[string]any{"@alice:hs1": 100}, "users_default": 0,
			}},
		{name: "join rules", typ: "m.room.join_rules", stateKey: strPtr(""), content: joinRule},
		{name: "history visibility", typ: "m.room.history_visibility", stateKey: strPtr(""),
			content: map[string]any{"history_visibility": "shared", "extra": true}},
		{name: "aliases", typ: "m.room.aliases", stateKey: strPtr("hs1"),
			content: map[string]any{"aliases": []any{"#a:hs1"}}},
		{name: "message", typ: "m.room.message",
			content: map[string]any{"body": "hello <b>world</b> & \u2028", "msgtype": "m.text"}},
		{name: "redaction", typ: "m.room.redaction", content: redactionContent, redacts: "$target"},
		{name: "restricted join", typ: "m.room.member", stateKey: strPtr("@alice:hs1"), minVersion: 8,
			content:   map[string]any{"membership": "join", "join_authorised_via_users_server": "@admin:res"},
			cosigners: []signer{residentKey}},
		{name: "join made by another server", typ: "m.room.member", stateKey: strPtr("@alice:hs1"),
			content: map[string]any{"membership": "join"}, origin: hs2Key, cosigners: []signer{hs1Key}},
	}
}

// buildGMSL builds, signs and co-signs ev with gomatrixserverlib.
func buildGMSL(t *testing.T, verImpl gomatrixserverlib.IRoomVersion, ev gmslEvent, now time.Time) gomatrixserverlib.PDU {
	t.Helper()
	rv := mustVersion(t, string(verImpl.Version()))
	prev := []string{fakeEventID(rv, "prev")}
	auth := []string{fakeEventID(rv, "create"), fakeEventID(rv, "power")}
	proto := gomatrixserverlib.ProtoEvent{
		SenderID: "@alice:hs1", RoomID: "!room:hs1", Type: ev.typ, StateKey: ev.stateKey,
		PrevEvents: prev, AuthEvents: auth, Redacts: ev.redacts, Depth: 7,
	}
	if err := proto.SetContent(ev.content); err != nil {
		t.Fatal(err)
	}
	origin := ev.origin
	if origin.server == "" {
		origin = hs1Key
	}
	built, err := verImpl.NewEventBuilderFromProtoEvent(&proto).Build(
		now, spec.ServerName(origin.server), gomatrixserverlib.KeyID(origin.keyID), origin.priv)
	if err != nil {
		t.Fatalf("gomatrixserverlib build: %v", err)
	}
	for _, s := range ev.cosigners {
		built = built.Sign(s.server, gomatrixserverlib.KeyID(s.keyID), s.priv)
	}
	return built
}

func TestCrossCheckGomatrixserverlib(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	keyRing := &gomatrixserverlib.KeyRing{KeyDatabase: newGMSLKeyDB(now.Add(time.Hour), hs1Key, hs2Key, residentKey)}
	lookup := newMemLookup(hs1Key, hs2Key, residentKey)
	ctx := context.Background()

	for version := 1; version <= 11; version++ {
		verImpl := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersion(fmt.Sprint(version)))
		rv := mustVersion(t, fmt.Sprint(version))
		for _, ev := range gmslEvents(version) {
			if version < ev.minVersion {
				continue
			}
			t.Run(fmt.Sprintf("v%d/%s", version, ev.name), func(t *testing.T) {
				built := buildGMSL(t, verImpl, ev, now)
				v := mustParse(t, string(built.JSON()))
				pdu := mustParsePDU(t, v, rv)

				if pdu.EventID != built.EventID() {
					t.Errorf("event ID = %s, gomatrixserverlib %s", pdu.EventID, built.EventID())
				}
				var fields struct {
					Hashes struct {
						SHA256 string `json:"sha256"`
					} `json:"hashes"`
				}
				if err := json.Unmarshal(built.JSON(), &fields); err != nil {
					t.Fatal(err)
				}
				if got := b64(ContentHash(v)); got != fields.Hashes.SHA256 {
					t.Errorf("content hash = %s, gomatrixserverlib %s", got, fields.Hashes.SHA256)
				}
				theirs, err := verImpl.RedactEventJSON(built.JSON())
				if err != nil {
					t.Fatal(err)
				}
				ours := string(canonicaljson.Encode(Redact(v, rv)))
				if want := string(canonicaljson.Encode(mustParse(t, string(theirs)))); ours != want {
					t.Errorf("redacted:\n ours   %s\n theirs %s", ours, want)
				}

				res := Verify(ctx, pdu, lookup)
				gmslErr := gomatrixserverlib.VerifyEventSignatures(ctx, built, keyRing, userIDForSender)
				if res.Err != nil || gmslErr != nil {
					t.Errorf("verify: ours %v, gomatrixserverlib %v", res.Err, gmslErr)
				}
				if !res.ContentHashValid {
					t.Error("content hash reported invalid")
				}

				checkTamperedAgree(t, ctx, verImpl, rv, v, keyRing, lookup)
				if len(ev.cosigners) > 0 {
					checkMissingCosignerAgree(t, ctx, verImpl, rv, v, ev.cosigners[0].server, keyRing, lookup)
				}
			})
		}
	}
}

// checkTamperedAgree tampers with a signed field and with the content of
// v, and checks that both implementations reject the first and redact the
// second.
func checkTamperedAgree(
	t *testing.T, ctx context.Context, verImpl gomatrixserverlib.IRoomVersion, rv *RoomVersion,
	v canonicaljson.Value, keyRing *gomatrixserverlib.KeyRing, lookup *memLookup,
) {
	t.Helper()
	depth := v.With("depth", canonicaljson.IntValue(8))
	ours := Verify(ctx, mustParsePDU(t, depth, rv), lookup)
	theirsEvent, err := verImpl.NewEventFromUntrustedJSON(canonicaljson.Encode(depth))
	if err != nil {
		t.Fatalf("gomatrixserverlib parse of tampered event: %v", err)
	}
	theirs := gomatrixserverlib.VerifyEventSignatures(ctx, theirsEvent, keyRing, userIDForSender)
	if ours.Err == nil || theirs == nil {
		t.Errorf("tampered depth: ours %v, gomatrixserverlib %v; both must reject", ours.Err, theirs)
	}

	content, _ := v.Get("content")
	tampered := v.With("content", content.With("injected", canonicaljson.StringValue("x")))
	res := Verify(ctx, mustParsePDU(t, tampered, rv), lookup)
	theirsEvent, err = verImpl.NewEventFromUntrustedJSON(canonicaljson.Encode(tampered))
	if err != nil {
		t.Fatalf("gomatrixserverlib parse of tampered content: %v", err)
	}
	if res.ContentHashValid || !theirsEvent.Redacted() {
		t.Errorf("tampered content: ours hash valid %v, gomatrixserverlib redacted %v", res.ContentHashValid, theirsEvent.Redacted())
	}
	typ, _ := v.GetString("type")
	if keepsAllContent(rv.Redaction, typ) {
		// Redaction keeps this content, so the signature covers it.
		theirs = gomatrixserverlib.VerifyEventSignatures(ctx, theirsEvent, keyRing, userIDForSender)
		if res.Err == nil || theirs == nil {
			t.Errorf("tampered signed content: ours %v, gomatrixserverlib %v; both must reject", res.Err, theirs)
		}
	} else if res.Err != nil {
		t.Errorf("tampered content: signature check failed: %v", res.Err)
	}
	want := string(canonicaljson.Encode(mustParse(t, string(theirsEvent.JSON()))))
	if got := string(canonicaljson.Encode(res.Redacted)); got != want {
		t.Errorf("tampered content redacted:\n ours   %s\n theirs %s", got, want)
	}
}

// checkMissingCosignerAgree removes the signature of server and checks that
// both implementations reject the event.
func checkMissingCosignerAgree(
	t *testing.T, ctx context.Context, verImpl gomatrixserverlib.IRoomVersion, rv *RoomVersion,
	v canonicaljson.Value, server string, keyRing *gomatrixserverlib.KeyRing, lookup *memLookup,
) {
	t.Helper()
	sigs, _ := v.Get("signatures")
	stripped := v.With("signatures", sigs.Without(server))
	ours := Verify(ctx, mustParsePDU(t, stripped, rv), lookup)
	theirsEvent, err := verImpl.NewEventFromUntrustedJSON(canonicaljson.Encode(stripped))
	if err != nil {
		t.Fatalf("gomatrixserverlib parse: %v", err)
	}
	theirs := gomatrixserverlib.VerifyEventSignatures(ctx, theirsEvent, keyRing, userIDForSender)
	if ours.Err == nil || theirs == nil {
		t.Errorf("without signature of %s: ours %v, gomatrixserverlib %v; both must reject", server, ours.Err, theirs)
	}
}

// TestCrossCheckRoomV12WithV11 compares room version 12 with
// gomatrixserverlib's room version 11, which has the same redaction
// algorithm and event ID format. gomatrixserverlib has no room version 12.
func TestCrossCheckRoomV12WithV11(t *testing.T) {
	if gomatrixserverlib.KnownRoomVersion("12") {
		t.Fatal("gomatrixserverlib now knows room version 12: cross-check it directly")
	}
	rv12 := mustVersion(t, "12")
	v11 := gomatrixserverlib.MustGetRoomVersion(gomatrixserverlib.RoomVersionV11)
	create := mustSign(t, mustParse(t, `{"type":"m.room.create","state_key":"","sender":"@alice:hs1",`+
		`"origin_server_ts":1700000000000,"content":{"room_version":"12","additional_creators":["@bob:hs2"]},`+
		`"auth_events":[],"prev_events":[],"depth":1}`), rv12, hs1Key)
	pdu := mustParsePDU(t, create, rv12)

	theirs, err := v11.RedactEventJSON(canonicaljson.Encode(create))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(canonicaljson.Encode(Redact(create, rv12))), string(canonicaljson.Encode(mustParse(t, string(theirs)))); got != want {
		t.Errorf("redacted:\n ours   %s\n theirs %s", got, want)
	}
	// gomatrixserverlib cannot load an event without room_id, so the
	// reference hash is taken over its redaction and canonical encoding.
	var members map[string]json.RawMessage
	if err := json.Unmarshal(theirs, &members); err != nil {
		t.Fatal(err)
	}
	delete(members, "signatures")
	unsigned, err := json.Marshal(members)
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := gomatrixserverlib.CanonicalJSON(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(canonical)
	theirsID := "$" + base64.RawURLEncoding.EncodeToString(hash[:])
	if pdu.EventID != theirsID {
		t.Errorf("event ID = %s, from gomatrixserverlib v11 redaction %s", pdu.EventID, theirsID)
	}
	if want := "!" + theirsID[1:]; pdu.RoomID != want {
		t.Errorf("room ID = %s, want %s", pdu.RoomID, want)
	}
}
