// Package replaytest helps the tests that replay a recorded gateway run
// against a changed policy: it writes the changed copy of the default
// policy and computes, from the records alone, which decisions the change
// flips.
package replaytest

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/policy/policycmd"
)

// DeniedTypeRule is the condition in rego/pdu.rego of the rule that denies
// the event types that the data file lists.
const DeniedTypeRule = `event_type in lib.config_list("denied_event_types")`

// MessagesDenied is a replacement of DeniedTypeRule that denies
// m.room.message, and no longer the types of the data file.
const MessagesDenied = `event_type == "m.room.message"`

// CopyPolicy copies the policy files of regoDir, without their tests, into
// a new directory and replaces DeniedTypeRule in pdu.rego with condition.
func CopyPolicy(t testing.TB, regoDir, condition string) string {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(regoDir, "*.rego"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(file) == "pdu.rego" {
			if !bytes.Contains(src, []byte(DeniedTypeRule)) {
				t.Fatalf("pdu.rego no longer contains %s", DeniedTypeRule)
			}
			src = bytes.Replace(src, []byte(DeniedTypeRule), []byte(condition), 1)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(file)), src, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// MessageFlips returns the decision IDs of the PDU records that
// MessagesDenied turns from allow to deny and from deny to allow, sorted.
// It reads only the records: the event type of the input and the recorded
// reasons, minus "event type T denied" for T in deniedTypes (the data
// file's list), plus "event type m.room.message denied" for messages.
// Records that the gateway refused without a policy decision, which carry
// an error, are left out.
func MessageFlips(records []decisionlog.Record, deniedTypes []string) (toDeny, toAllow []string) {
	for _, rec := range records {
		input, ok := rec.Input.(map[string]any)
		result, hasResult := rec.Result.(map[string]any)
		if rec.Path != "bordergate/pdu/decision" || !ok || !hasResult || rec.Error != "" {
			continue
		}
		pdu, _ := input["pdu"].(map[string]any)
		eventType, _ := pdu["type"].(string)
		recordedAllow, _ := result["allow"].(bool)
		recordedReasons, _ := result["reasons"].([]any)

		var reasons []string
		for _, item := range recordedReasons {
			reason, _ := item.(string)
			deniedType := strings.TrimSuffix(strings.TrimPrefix(reason, "event type "), " denied")
			if !slices.Contains(deniedTypes, deniedType) {
				reasons = append(reasons, reason)
			}
		}
		if eventType == "m.room.message" {
			reasons = append(reasons, "event type m.room.message denied")
		}
		switch allow := len(reasons) == 0; {
		case recordedAllow && !allow:
			toDeny = append(toDeny, rec.DecisionID)
		case !recordedAllow && allow:
			toAllow = append(toAllow, rec.DecisionID)
		}
	}
	slices.Sort(toDeny)
	slices.Sort(toAllow)
	return toDeny, toAllow
}

// DecisionIDs returns the decision IDs of replay examples, sorted.
func DecisionIDs(examples []policycmd.Example) []string {
	ids := make([]string, len(examples))
	for i, example := range examples {
		ids[i] = example.DecisionID
	}
	slices.Sort(ids)
	return ids
}
