package events

import (
	"context"
	"errors"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// TestThirdPartyInviteSigners checks that the exemption of third-party
// invites from the sender's signature never lets an unsigned event pass:
// it needs verified content, and the delivering origin signs instead.
func TestThirdPartyInviteSigners(t *testing.T) {
	rv := mustVersion(t, "10")
	relay := newSigner("relay.example", "ed25519:r", "relay")
	lookup := newMemLookup(relay)
	invite := mustParse(t, `{"room_id":"!r:inviter.example","sender":"@a:inviter.example","type":"m.room.member","state_key":"@b:relay.example",
		"content":{"membership":"invite","third_party_invite":{"display_name":"b","signed":{"mxid":"@b:relay.example","token":"t","signatures":{}}}},
		"origin_server_ts":1000,"depth":3,"prev_events":[],"auth_events":[],"hashes":{},"signatures":{}}`)

	signedByRelay := mustSign(t, invite, rv, relay)
	tampered := signedByRelay.With("content", mustParse(t, `{"membership":"invite","third_party_invite":{"display_name":"x"}}`))
	tests := []struct {
		name    string
		event   canonicaljson.Value
		origin  string
		signers []string
		ok      bool
	}{
		{"origin signed", signedByRelay, "relay.example", []string{"relay.example"}, true},
		{"origin did not sign", signedByRelay, "other.example", []string{"other.example"}, false},
		{"no origin given", signedByRelay, "", []string{}, true},
		{"content hash invalid", tampered, "relay.example", []string{"inviter.example"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pdu := mustParsePDU(t, tc.event, rv)
			res := VerifyWith(context.Background(), pdu, lookup, VerifyOptions{Origin: tc.origin})
			if len(res.RequiredSigners) != len(tc.signers) {
				t.Fatalf("required signers = %v, want %v", res.RequiredSigners, tc.signers)
			}
			for i := range tc.signers {
				if res.RequiredSigners[i] != tc.signers[i] {
					t.Errorf("required signers = %v, want %v", res.RequiredSigners, tc.signers)
				}
			}
			if tc.ok && res.Err != nil {
				t.Errorf("Err = %v, want nil", res.Err)
			}
			if !tc.ok && !errors.Is(res.Err, ErrSignature) {
				t.Errorf("Err = %v, want ErrSignature", res.Err)
			}
		})
	}
}
