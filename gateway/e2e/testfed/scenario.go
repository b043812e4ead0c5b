package testfed

import (
	"context"
	"fmt"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// stepTimeout bounds each wait of a scenario step for federation traffic.
const stepTimeout = 60 * time.Second

// Conversation is a room on hs1 that alice (hs1) and bob (hs2) have joined.
type Conversation struct {
	// RoomID is the room, created by Alice.
	RoomID string
	// Alice is @alice on hs1.
	Alice *Client
	// Bob is @bob on hs2.
	Bob *Client
	// AliceMessageID is the event ID of Alice's first message, seen by Bob.
	AliceMessageID string
	// BobMessageID is the event ID of Bob's reply, seen by Alice.
	BobMessageID string
}

// StartConversation creates alice on hs1 and bob on hs2. Alice creates a
// private room and invites Bob, Bob joins, and each sends a message that
// the other receives. Each of these steps crosses the federation.
func StartConversation(ctx context.Context, fed *Federation) (*Conversation, error) {
	log := fed.log.With("step", "conversation")
	alice, err := fed.HS1.CreateUser(ctx, "alice", "alice-password")
	if err != nil {
		return nil, err
	}
	bob, err := fed.HS2.CreateUser(ctx, "bob", "bob-password")
	if err != nil {
		return nil, err
	}
	conv := &Conversation{Alice: alice, Bob: bob}

	conv.RoomID, err = alice.CreateRoom(ctx, CreateRoomOptions{Name: "border crossing"})
	if err != nil {
		return nil, err
	}
	log.Info("room created", "room_id", conv.RoomID, "user_id", alice.UserID)

	if err := alice.Invite(ctx, conv.RoomID, bob.UserID); err != nil {
		return nil, err
	}
	if err := withTimeout(ctx, func(ctx context.Context) error { return bob.WaitForInvite(ctx, conv.RoomID) }); err != nil {
		return nil, fmt.Errorf("bob waits for the invite: %w", err)
	}
	log.Info("invite received", "room_id", conv.RoomID, "user_id", bob.UserID)

	if err := bob.Join(ctx, conv.RoomID, fed.HS1.ServerName); err != nil {
		return nil, err
	}
	err = withTimeout(ctx, func(ctx context.Context) error {
		return alice.WaitForMembership(ctx, conv.RoomID, bob.UserID, "join")
	})
	if err != nil {
		return nil, fmt.Errorf("alice waits for bob's join: %w", err)
	}
	log.Info("bob joined", "room_id", conv.RoomID)

	conv.AliceMessageID, err = sendAndWait(ctx, alice, bob, conv.RoomID, "hello bob, from hs1")
	if err != nil {
		return nil, err
	}
	log.Info("message delivered", "event_id", conv.AliceMessageID, "from", alice.UserID, "to", bob.UserID)

	conv.BobMessageID, err = sendAndWait(ctx, bob, alice, conv.RoomID, "hello alice, from hs2")
	if err != nil {
		return nil, err
	}
	log.Info("message delivered", "event_id", conv.BobMessageID, "from", bob.UserID, "to", alice.UserID)
	return conv, nil
}

// ForbiddenResult lists the events that [SendForbidden] sent.
type ForbiddenResult struct {
	// ForbiddenEventID is the com.example.forbidden event.
	ForbiddenEventID string
	// BatchedEventID is an allowed message that hs1 sent in the same
	// transaction as the forbidden event, when the gateway runs.
	BatchedEventID string
	// LaterEventID is an allowed message sent after the gateway had decided
	// on that transaction.
	LaterEventID string
}

// SendForbidden has Alice send a [ForbiddenEventType] event followed by two
// allowed messages, and waits until Bob has received both messages.
//
// With the gateway, the forbidden event and the first message must travel in
// one transaction. The gateway is stopped while Alice sends them: hs1 then
// fails to deliver, backs off, and on its retry sends both pending events
// together. Dendrite v0.13.8 first retries after 2 s times a random factor
// between 0.8 and 1.4, and doubles the base on each further failure. The
// second message is sent once the gateway has recorded its decision on the
// forbidden event, so it travels alone.
//
// hs2 then fetches the withheld events it is missing from hs1 with
// get_missing_events. With one gateway, hs2's outbound traffic does not
// cross it, so Bob also receives the forbidden event. With two gateways
// (Options.TwoGateways), hs1's response crosses gateway 2, which passes the
// forbidden event on in its redacted form.
func SendForbidden(ctx context.Context, fed *Federation, conv *Conversation) (*ForbiddenResult, error) {
	log := fed.log.With("step", "forbidden")
	if fed.Gateway != nil {
		if err := fed.Gateway.Stop(); err != nil {
			return nil, err
		}
		log.Info("gateway stopped so that hs1 queues the next events")
	}

	var result ForbiddenResult
	var err error
	content := map[string]any{"body": "this event type is denied by policy"}
	result.ForbiddenEventID, err = conv.Alice.Send(ctx, conv.RoomID, ForbiddenEventType, content)
	if err != nil {
		return nil, err
	}
	log.Info("forbidden event sent", "event_id", result.ForbiddenEventID)
	result.BatchedEventID, err = conv.Alice.SendText(ctx, conv.RoomID, "allowed message, same transaction")
	if err != nil {
		return nil, err
	}
	log.Info("message sent", "event_id", result.BatchedEventID)

	if fed.Gateway != nil {
		// hs1 hands events to its federation sender asynchronously. The
		// pause lets both events reach the sender's queue, and the first
		// delivery attempt fail, before the gateway is back. Otherwise the
		// forbidden event could leave alone the moment the gateway listens.
		time.Sleep(500 * time.Millisecond)
		if err := fed.Gateway.Start(ctx); err != nil {
			return nil, err
		}
		log.Info("gateway started again")
		err := withTimeout(ctx, func(ctx context.Context) error {
			_, err := fed.WaitForDecision(ctx, func(rec decisionlog.Record) bool {
				return DecisionKind(rec) == "pdu" && rec.Matrix != nil && rec.Matrix.EventID == result.ForbiddenEventID
			})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("wait for the gateway's decision on the forbidden event: %w", err)
		}
		log.Info("gateway decided on the forbidden event", "event_id", result.ForbiddenEventID)
	}

	result.LaterEventID, err = conv.Alice.SendText(ctx, conv.RoomID, "allowed message, after the forbidden event")
	if err != nil {
		return nil, err
	}
	log.Info("message sent", "event_id", result.LaterEventID)
	for _, eventID := range []string{result.LaterEventID, result.BatchedEventID} {
		err := withTimeout(ctx, func(ctx context.Context) error {
			_, err := conv.Bob.WaitForEventID(ctx, conv.RoomID, eventID)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("bob waits for %s: %w", eventID, err)
		}
		log.Info("message delivered", "event_id", eventID, "to", conv.Bob.UserID)
	}
	return &result, nil
}

// sendAndWait sends a text message as from and waits until to receives it.
func sendAndWait(ctx context.Context, from, to *Client, roomID, body string) (string, error) {
	eventID, err := from.SendText(ctx, roomID, body)
	if err != nil {
		return "", err
	}
	err = withTimeout(ctx, func(ctx context.Context) error {
		_, err := to.WaitForEventID(ctx, roomID, eventID)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("%s waits for %s from %s: %w", to.UserID, eventID, from.UserID, err)
	}
	return eventID, nil
}

func withTimeout(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	return fn(ctx)
}
