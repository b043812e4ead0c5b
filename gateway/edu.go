package gateway

import (
	"context"
	"fmt"
	"slices"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/policy"
)

// checkEDU decides one EDU of a transaction. EDUs carry no signature of
// their own, so the gateway checks that every user an EDU speaks for is on
// the transaction's authenticated origin before policy sees it.
func (g *Gateway) checkEDU(ctx context.Context, ex *exchange, txn *transaction, index int, raw canonicaljson.Value) *itemOutcome {
	rec := g.newRecord(policy.KindEDU, ex)
	o := &itemOutcome{record: rec}
	fail := func(reason string) *itemOutcome {
		o.reason = reason
		rec.Action, rec.Allow, rec.Error = actionRejected, false, reason
		rec.Result = map[string]any{"allow": false, "reasons": []string{reason}}
		return o
	}
	eduType, ok := raw.GetString("edu_type")
	if !ok {
		return fail(fmt.Sprintf("EDU %d has no string edu_type", index))
	}
	rec.Matrix.EDUType = eduType
	content, ok := raw.Get("content")
	if !ok || content.Kind() != canonicaljson.Object {
		return fail(fmt.Sprintf("EDU %d (%s) has no content object", index, eduType))
	}
	if err := content.CheckStrictNumbers(); err != nil {
		return fail(fmt.Sprintf("EDU %d (%s): %v", index, eduType, err))
	}
	for _, user := range eduUsers(eduType, content) {
		if serverOf(user) != ex.origin {
			return fail(fmt.Sprintf("EDU %d (%s) speaks for %q, who is not on %s", index, eduType, user, ex.origin))
		}
	}
	rooms := eduRooms(eduType, content)
	if len(rooms) == 1 {
		rec.Matrix.RoomID = rooms[0]
	}

	now := g.now()
	input := policy.NewEDUInput(ex.flow(), now)
	input.Request, input.Origin, input.Destination, input.TLS = g.commonInput(ex, ex.flow(), now)
	input.Transaction = txn.policyInfo()
	contentMap, _ := content.Interface().(map[string]any)
	input.EDU = policy.EDU{EDUType: eduType, Content: contentMap}
	input.RoomIDs = rooms

	allowed, reason, err := g.decideItem(ctx, ex, policy.KindEDU, input, rec)
	if err != nil {
		return fail("policy evaluation failed: " + err.Error())
	}
	o.allowed, o.reason = allowed, reason
	return o
}

// eduUsers lists the users an EDU speaks for. Types the gateway does not
// know, unstable prefixed forms of spec types among them, are held to the
// fields that name a user in the spec's EDUs: a string user_id or sender
// must be a user of the origin.
func eduUsers(eduType string, content canonicaljson.Value) []string {
	switch eduType {
	case "m.typing", "m.device_list_update", "m.signing_key_update":
		return stringField(content, "user_id")
	case "m.direct_to_device":
		return stringField(content, "sender")
	case "m.presence":
		var users []string
		push, _ := content.Get("push")
		for _, p := range push.Items() {
			users = append(users, stringField(p, "user_id")...)
		}
		return users
	case "m.receipt":
		var users []string
		for _, room := range content.Members() {
			for _, receiptType := range room.Value.Members() {
				for _, user := range receiptType.Value.Members() {
					users = append(users, user.Key)
				}
			}
		}
		return users
	}
	var users []string
	for _, field := range []string{"user_id", "sender"} {
		if v, ok := content.Get(field); ok {
			s, _ := v.Str()
			users = append(users, s)
		}
	}
	return users
}

// eduRooms lists the rooms an EDU names.
func eduRooms(eduType string, content canonicaljson.Value) []string {
	switch eduType {
	case "m.typing":
		return stringField(content, "room_id")
	case "m.receipt":
		rooms := make([]string, 0, content.Len())
		for _, m := range content.Members() {
			rooms = append(rooms, m.Key)
		}
		return slices.Compact(rooms)
	}
	return nil
}

// stringField returns the string under key as a one-element list, or a
// list holding "" when it is missing or not a string, so that an ownership
// check on it fails.
func stringField(v canonicaljson.Value, key string) []string {
	s, _ := v.GetString(key)
	return []string{s}
}
