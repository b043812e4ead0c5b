package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/routes"
)

func TestRecoverPDUTurnsPanicIntoRefusal(t *testing.T) {
	tg := startGateway(t, gatewayOptions{})
	ex := &exchange{
		r:        httptest.NewRequest("PUT", "/_matrix/federation/v1/send/1", nil),
		match:    routes.Result{Params: map[string]string{"txn_id": "1"}},
		origin:   "hs1.example",
		policies: tg.gw.currentPolicies(),
	}
	var outcome *itemOutcome
	func() {
		defer tg.gw.recoverPDU(ex, 3, &outcome)
		panic("fault inside a check")
	}()

	if outcome == nil {
		t.Fatal("outcome = nil after the panic, want a refusal")
	}
	if outcome.allowed {
		t.Error("outcome allowed, want refused")
	}
	if outcome.record.Action != actionRejected {
		t.Errorf("record action = %q, want %q", outcome.record.Action, actionRejected)
	}
	if !strings.Contains(outcome.record.Error, "PDU 3") {
		t.Errorf("record error = %q, want it to name PDU 3", outcome.record.Error)
	}
}
