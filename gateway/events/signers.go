package events

import "github.com/bordergate/bordergate/gateway/servername"

// RequiredSigners returns the servers that must have signed pdu in room
// version rv (normally pdu.RoomVersion), without duplicates, in this order:
//
//   - the sender's server, except for an m.room.member invite whose content
//     has `third_party_invite`: such an invite may be sent on behalf of the
//     inviter by another server, and the auth rules check the signature in
//     `third_party_invite` instead;
//   - in room versions 1 and 2, the server named in the event ID, which
//     created the event and may differ from the sender's server when the
//     event was built with make_join or make_leave;
//   - from room version 8, for a join with
//     `content.join_authorised_via_users_server`, that user's server, which
//     authorised the join to a restricted room.
//
// The invited server's signature on an invite is not required, because the
// auth rules do not depend on it.
//
// NOTE: for a third-party invite from room version 3 the list is empty, so
// [Verify] accepts the event without any signature. Only the auth rules,
// which check the identity server's signature in
// `content.third_party_invite.signed`, protect such an event. [VerifyWith]
// with an origin requires the origin's signature instead.
func RequiredSigners(pdu *PDU, rv *RoomVersion) []string {
	return requiredSigners(pdu, rv, true, "")
}

// requiredSigners is [RequiredSigners] for an event whose content hash is
// valid or not: the third-party invite exemption rests on the content, so
// it only applies to verified content. When it applies and origin is set,
// origin must sign in place of the sender's server.
func requiredSigners(pdu *PDU, rv *RoomVersion, hashValid bool, origin string) []string {
	signers := make([]string, 0, 2)
	add := func(server string) {
		for _, s := range signers {
			if s == server {
				return
			}
		}
		signers = append(signers, server)
	}

	switch {
	case !hashValid || !isThirdPartyInvite(pdu):
		add(pdu.SenderServer)
	case origin != "":
		add(origin)
	}
	if rv.EventIDFormat == EventIDServerChosen {
		if server, ok := serverOfSigilID(pdu.EventID, '$'); ok && server != pdu.SenderServer {
			add(server)
		}
	}
	if server := authorisingServer(pdu, rv); server != "" {
		add(server)
	}
	return signers
}

// isThirdPartyInvite reports whether pdu is an invite created from a
// third-party (for example email) invite.
func isThirdPartyInvite(pdu *PDU) bool {
	if pdu.Type != "m.room.member" {
		return false
	}
	membership, _ := pdu.Content.GetString("membership")
	return membership == "invite" && pdu.Content.Has("third_party_invite")
}

// authorisingServer returns the server of the resident user that authorised
// a restricted join, or "" when rv has no restricted joins or pdu is not
// such a join.
func authorisingServer(pdu *PDU, rv *RoomVersion) string {
	if !rv.RestrictedJoins || pdu.Type != "m.room.member" {
		return ""
	}
	if membership, _ := pdu.Content.GetString("membership"); membership != "join" {
		return ""
	}
	user, ok := pdu.Content.GetString("join_authorised_via_users_server")
	if !ok {
		return ""
	}
	_, server, err := servername.SplitUserID(user)
	if err != nil {
		return ""
	}
	return server
}
