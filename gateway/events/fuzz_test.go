package events

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// FuzzParsePDU checks that parsing, redacting, hashing and verifying never
// panic, and that a parsed event keeps its event ID when re-encoded and
// parsed again.
func FuzzParsePDU(f *testing.F) {
	for version := 1; version <= 12; version++ {
		rv := roomVersions[fmt.Sprint(version)]
		seeds := []string{
			messageJSON(rv),
			eventJSON(rv, "m.room.member", `{"membership":"join","join_authorised_via_users_server":"@admin:res"}`, "@alice:hs1"),
			eventJSON(rv, "m.room.member", `{"membership":"invite","third_party_invite":{"signed":{"token":"t"}}}`, "@bob:hs2"),
			eventJSON(rv, "m.room.create", `{"creator":"@alice:hs1","room_version":"1"}`, ""),
			eventJSON(rv, "m.room.redaction", `{"redacts":"$x","n":1.5}`),
		}
		for _, s := range seeds {
			v, err := canonicaljson.Parse([]byte(s))
			if err != nil {
				f.Fatalf("seed %s: %v", s, err)
			}
			signed, err := SignEvent(v, rv, hs1Key.server, hs1Key.keyID, hs1Key.priv)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(canonicaljson.Encode(signed), uint8(version))
		}
	}
	f.Add([]byte(`{"content":{},"depth":1e3,"hashes":{"sha256":"x"}}`), uint8(4))
	f.Add([]byte(`[]`), uint8(0))

	lookup := newMemLookup(hs1Key)
	f.Fuzz(func(t *testing.T, data []byte, version uint8) {
		rv := roomVersions[fmt.Sprint(int(version)%12+1)]
		v, err := canonicaljson.Parse(data)
		if err != nil {
			return
		}
		if v.Kind() == canonicaljson.Object {
			checkRedactEncodings(t, v, rv)
		}
		pdu, err := ParsePDU(v, rv)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("ParsePDU error %v does not wrap ErrFormat", err)
			}
			return
		}
		res := Verify(context.Background(), pdu, lookup)
		if res.EventID != pdu.EventID {
			t.Fatalf("Result.EventID %s differs from PDU.EventID %s", res.EventID, pdu.EventID)
		}

		again, err := canonicaljson.Parse(canonicaljson.Encode(v))
		if err != nil {
			t.Fatalf("re-parse canonical encoding: %v", err)
		}
		pdu2, err := ParsePDU(again, rv)
		if err != nil {
			t.Fatalf("ParsePDU rejects the re-encoded event: %v", err)
		}
		if pdu2.EventID != pdu.EventID {
			t.Fatalf("event ID changed on re-encoding: %s, then %s", pdu.EventID, pdu2.EventID)
		}
		id, err := EventID(v, rv)
		if err != nil || id != pdu.EventID {
			t.Fatalf("EventID = %s, %v; PDU.EventID = %s", id, err, pdu.EventID)
		}
	})
}

// checkRedactEncodings checks that the direct redaction encoder agrees with
// Redact followed by the canonical encoder.
func checkRedactEncodings(t *testing.T, v canonicaljson.Value, rv *RoomVersion) {
	t.Helper()
	redacted := Redact(v, rv)
	if got, want := string(appendRedacted(nil, v, rv, true)), string(canonicaljson.Encode(redacted)); got != want {
		t.Fatalf("redaction encodings differ:\n direct %s\n value  %s", got, want)
	}
	_ = ContentHash(v)
}
