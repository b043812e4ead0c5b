package events

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// vectorFile is the layout of testdata/matrix-spec.json. Entries with
// source "spec" are copied from the Matrix specification's appendices.
// Entries with source "derived" were computed with the specification's key
// and algorithms, and the specification does not print them.
type vectorFile struct {
	SigningKey struct {
		Seed       string `json:"seed"`
		ServerName string `json:"server_name"`
		KeyID      string `json:"key_id"`
		PublicKey  string `json:"public_key"`
	} `json:"signing_key"`
	EventSigning []eventVector `json:"event_signing"`
}

type eventVector struct {
	Source         string `json:"source"`
	Name           string `json:"name"`
	RedactionRules string `json:"redaction_rules"`
	Input          string `json:"input"`
	ContentHash    string `json:"content_hash"`
	Signature      string `json:"signature"`
	Output         string `json:"output"`
	EventIDV3      string `json:"event_id_v3"`
	EventIDV4      string `json:"event_id_v4"`
	// EventIDStdAlphabet is the v11 reference hash written in the standard
	// alphabet, to show the difference from the URL-safe event ID.
	EventIDStdAlphabet string `json:"event_id_v3_alphabet"`
	RoomID             string `json:"room_id"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	data, err := os.ReadFile("testdata/matrix-spec.json")
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("decode vectors: %v", err)
	}
	return f
}

func vectorByName(t *testing.T, f vectorFile, name string) eventVector {
	t.Helper()
	for _, v := range f.EventSigning {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no event vector named %q", name)
	return eventVector{}
}

// e2Output is the signed output of the specification's second event
// signing vector, which the vector file does not repeat.
const e2Output = `{"content":{"body":"Here is the message content"},"event_id":"$0:domain","hashes":{"sha256":"onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"},"origin":"domain","origin_server_ts":1000000,"type":"m.room.message","room_id":"!r:domain","sender":"@u:domain","signatures":{"domain":{"ed25519:1":"Wm+VzmOUOz08Ds+0NTWb1d4CZrVsJSikkeRxh6aCcUwu6pNC78FunoD7KNWzqFn241eYHYMGCA5McEiVPdhzBA"}},"unsigned":{"age_ts":1000000}}`

func TestSpecSigningKey(t *testing.T) {
	f := loadVectors(t)
	s := specSigner(t)
	if f.SigningKey.Seed != specSeed {
		t.Errorf("vector seed = %s, test seed = %s", f.SigningKey.Seed, specSeed)
	}
	if got := base64.RawStdEncoding.EncodeToString(s.public()); got != f.SigningKey.PublicKey {
		t.Errorf("public key = %s, want %s", got, f.SigningKey.PublicKey)
	}
}

// TestEventSigningVectors signs each vector in every room version whose
// redaction rules the vector names and compares hash, signature and output.
func TestEventSigningVectors(t *testing.T) {
	f := loadVectors(t)
	key := specSigner(t)
	outputs := map[string]string{
		"minimal event":                 vectorByName(t, f, "minimal event").Output,
		"event with redactable content": e2Output,
	}
	versionsByRules := map[string][]string{
		"room versions 1 to 10": {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"},
		"room versions 1 to 10 (the event carries event_id, so it is a room version 1 or 2 event)": {"1", "2"},
		"room versions 11 and 12": {"11", "12"},
	}
	for _, vec := range f.EventSigning {
		versions, ok := versionsByRules[vec.RedactionRules]
		if !ok {
			t.Fatalf("vector %q: unexpected redaction rules %q", vec.Name, vec.RedactionRules)
		}
		for _, id := range versions {
			t.Run(vec.Name+"/v"+id, func(t *testing.T) {
				rv := mustVersion(t, id)
				in := mustParse(t, vec.Input)
				if got := b64(ContentHash(in)); got != vec.ContentHash {
					t.Errorf("content hash = %s, want %s", got, vec.ContentHash)
				}
				signed, err := SignEvent(in, rv, key.server, key.keyID, key.priv)
				if err != nil {
					t.Fatal(err)
				}
				hashes, _ := signed.Get("hashes")
				if got, _ := hashes.GetString("sha256"); got != vec.ContentHash {
					t.Errorf("hashes.sha256 = %s, want %s", got, vec.ContentHash)
				}
				sigs, _ := signed.Get("signatures")
				serverSigs, _ := sigs.Get(key.server)
				if got, _ := serverSigs.GetString(key.keyID); got != vec.Signature {
					t.Errorf("signature = %s, want %s", got, vec.Signature)
				}
				if want, ok := outputs[vec.Name]; ok {
					wantCanonical := string(canonicaljson.Encode(mustParse(t, want)))
					if got := string(canonicaljson.Encode(signed)); got != wantCanonical {
						t.Errorf("signed event:\n got  %s\n want %s", got, wantCanonical)
					}
				}
			})
		}
	}
}

func TestEventIDVectors(t *testing.T) {
	f := loadVectors(t)
	e1 := vectorByName(t, f, "minimal event")
	e1v11 := vectorByName(t, f, "minimal event under v11 redaction")
	create := vectorByName(t, f, "room version 12 create event")
	key := specSigner(t)

	cases := []struct {
		name    string
		input   string
		version string
		want    string
	}{
		{"E1 v3 standard alphabet", e1.Input, "3", e1.EventIDV3},
		{"E1 v4", e1.Input, "4", e1.EventIDV4},
		{"E1 v10", e1.Input, "10", e1.EventIDV4},
		{"E1 v11 URL-safe", e1v11.Input, "11", e1v11.EventIDV4},
		{"E1 v12 URL-safe", e1v11.Input, "12", e1v11.EventIDV4},
		{"v12 create", create.Input, "12", create.EventIDV4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rv := mustVersion(t, tc.version)
			// The event ID covers hashes, so it is computed after signing.
			// Signatures do not change it.
			signed := mustSign(t, mustParse(t, tc.input), rv, key)
			got, err := EventID(signed, rv)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("EventID = %s, want %s", got, tc.want)
			}
		})
	}

	t.Run("E1 v11 standard alphabet differs", func(t *testing.T) {
		rv := mustVersion(t, "11")
		hash := ReferenceHash(mustSign(t, mustParse(t, e1v11.Input), rv, key), rv)
		if got := "$" + b64(hash); got != e1v11.EventIDStdAlphabet {
			t.Errorf("standard alphabet ID = %s, want %s", got, e1v11.EventIDStdAlphabet)
		}
		if e1v11.EventIDStdAlphabet == e1v11.EventIDV4 {
			t.Error("vector does not exercise the alphabet difference")
		}
	})
}

// TestVerifySignedVectors parses and verifies the signed vector events in
// the room versions where their format is valid.
func TestVerifySignedVectors(t *testing.T) {
	f := loadVectors(t)
	key := specSigner(t)
	lookup := newMemLookup(key)
	cases := []struct {
		vector   string
		versions []string
	}{
		{"minimal event", []string{"3", "4", "5", "6", "7", "8", "9", "10"}},
		{"minimal event under v11 redaction", []string{"11"}},
		{"room version 12 create event", []string{"12"}},
	}
	for _, tc := range cases {
		vec := vectorByName(t, f, tc.vector)
		for _, id := range tc.versions {
			t.Run(tc.vector+"/v"+id, func(t *testing.T) {
				rv := mustVersion(t, id)
				pdu := mustParsePDU(t, mustSign(t, mustParse(t, vec.Input), rv, key), rv)
				res := Verify(context.Background(), pdu, lookup)
				if res.Err != nil {
					t.Fatalf("Verify: %v", res.Err)
				}
				if !res.ContentHashValid {
					t.Error("content hash reported invalid")
				}
				if got := res.Signatures["domain"]["ed25519:1"]; got != SigValid {
					t.Errorf("signature status = %s, want valid", got)
				}
				if len(res.SignedBy) != 1 || res.SignedBy[0] != "domain" {
					t.Errorf("SignedBy = %v, want [domain]", res.SignedBy)
				}
			})
		}
	}
}

func TestRoomV12CreateVector(t *testing.T) {
	f := loadVectors(t)
	vec := vectorByName(t, f, "room version 12 create event")
	rv := mustVersion(t, "12")
	key := specSigner(t)
	signed := mustSign(t, mustParse(t, vec.Input), rv, key)

	if got := b64(ContentHash(signed)); got != vec.ContentHash {
		t.Errorf("content hash = %s, want %s", got, vec.ContentHash)
	}
	if got := RoomIDFromCreate(signed, rv); got != vec.RoomID {
		t.Errorf("RoomIDFromCreate = %s, want %s", got, vec.RoomID)
	}
	pdu := mustParsePDU(t, signed, rv)
	if pdu.EventID != vec.EventIDV4 {
		t.Errorf("PDU.EventID = %s, want %s", pdu.EventID, vec.EventIDV4)
	}
	if pdu.RoomID != vec.RoomID {
		t.Errorf("PDU.RoomID = %s, want %s", pdu.RoomID, vec.RoomID)
	}
	res := Verify(context.Background(), pdu, newMemLookup(key))
	if res.Err != nil {
		t.Errorf("Verify: %v", res.Err)
	}
}
