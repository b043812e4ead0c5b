package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/e2e/testfed"
)

// TestDendritePairDirect checks the harness itself: two Dendrites federate
// without the gateway.
func TestDendritePairDirect(t *testing.T) {
	testfed.RequireNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fed := startFederation(t, ctx, testfed.Options{})

	start := time.Now()
	conv, err := testfed.StartConversation(ctx, fed)
	if err != nil {
		t.Fatalf("conversation: %v", err)
	}
	t.Logf("room, invite, join and two messages took %s", time.Since(start).Round(time.Millisecond))

	aliceView, err := conv.Alice.Messages(ctx, conv.RoomID, 50)
	if err != nil {
		t.Fatal(err)
	}
	bobView, err := conv.Bob.Messages(ctx, conv.RoomID, 50)
	if err != nil {
		t.Fatal(err)
	}
	for _, eventID := range []string{conv.AliceMessageID, conv.BobMessageID} {
		if !containsEvent(aliceView, eventID) {
			t.Errorf("alice's /messages lacks %s", eventID)
		}
		if !containsEvent(bobView, eventID) {
			t.Errorf("bob's /messages lacks %s", eventID)
		}
	}

	// Without the gateway nothing is denied: the forbidden event type is an
	// ordinary event, and all three events reach bob.
	result, err := testfed.SendForbidden(ctx, fed, conv)
	if err != nil {
		t.Fatalf("send forbidden event without gateway: %v", err)
	}
	waitCtx, waitCancel := context.WithTimeout(ctx, time.Minute)
	defer waitCancel()
	ev, err := conv.Bob.WaitForEventID(waitCtx, conv.RoomID, result.ForbiddenEventID)
	if err != nil {
		t.Fatalf("bob waits for %s without gateway: %v", result.ForbiddenEventID, err)
	}
	if ev.Type != testfed.ForbiddenEventType {
		t.Errorf("event type = %q, want %q", ev.Type, testfed.ForbiddenEventType)
	}
}

func containsEvent(events []testfed.Event, eventID string) bool {
	for _, ev := range events {
		if ev.EventID == eventID {
			return true
		}
	}
	return false
}
