package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// writeAuditLog creates an audit key with the keygen command and writes
// a signed log of three records, and returns the paths of the log, the
// private key and the public key.
func writeAuditLog(t *testing.T) (logFile, keyFile, pubFile string) {
	t.Helper()
	dir := t.TempDir()
	keyFile, pubFile = filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.pub")
	out, err := runCommand(t, "", "audit", "keygen", "--key", keyFile, "--public-key", pubFile)
	if err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Created the audit key ed25519:") {
		t.Errorf("keygen output lacks the key ID:\n%s", out)
	}
	checkMode(t, keyFile, 0o600)
	checkMode(t, pubFile, 0o644)

	key, err := decisionlog.LoadAuditKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := decisionlog.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	logFile = filepath.Join(dir, "decisions.jsonl")
	w, err := decisionlog.Open(decisionlog.Options{Path: logFile, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		rec := decisionlog.NewRecord("bordergate/pdu/decision")
		rec.DecisionID = id
		rec.Matrix = &decisionlog.Matrix{Origin: "hs1.example.org"}
		if err := w.Write(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return logFile, keyFile, pubFile
}

func TestAuditVerifyCommand(t *testing.T) {
	logFile, keyFile, pubFile := writeAuditLog(t)
	for _, flag := range []string{"--public-key", "--key"} {
		key := pubFile
		if flag == "--key" {
			key = keyFile
		}
		out, err := runCommand(t, "", "audit", "verify", flag, key, logFile)
		if err != nil || !strings.Contains(out, "OK: 4 records, seq 1-4, chain intact") {
			t.Errorf("verify %s: %v\n%s", flag, err, out)
		}
	}

	out, err := runCommand(t, "", "audit", "verify", logFile)
	want := "verify: no public key to check checkpoint signatures with; give one, or skip the signatures explicitly: pass --public-key FILE or --key FILE, or --skip-signatures to check only the hash chain"
	if err == nil || err.Error() != want {
		t.Errorf("verify without a key = %v, want %q\n%s", err, want, out)
	}

	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logFile, []byte(strings.Replace(string(data), `"decision_id":"b"`, `"decision_id":"x"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = runCommand(t, "", "audit", "verify", "--public-key", pubFile, logFile)
	if !errors.Is(err, errVerifyFailed) {
		t.Errorf("verify of an altered log = %v, want errVerifyFailed", err)
	}
	if !strings.Contains(out, "FAIL "+logFile+" line 2 (seq 2): altered:") {
		t.Errorf("verify output does not name line 2:\n%s", out)
	}
}

func TestAuditQueryCommand(t *testing.T) {
	logFile, _, _ := writeAuditLog(t)
	out, err := runCommand(t, "", "audit", "query", "--decision-id", "b", "--format", "jsonl", logFile)
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `"decision_id":"b"`) {
		t.Errorf("query output = %q, want the line of record b", out)
	}

	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--decision", "maybe"}, `invalid --decision "maybe": write allow or deny`},
		{[]string{"--since", "yesterday"}, `--since: invalid time "yesterday": write an RFC 3339 time (2026-03-14T09:00:00Z), a date (2026-03-14) or a duration before now (90m, 24h)`},
		{[]string{"--reason-regex", "("}, "invalid --reason-regex: error parsing regexp: missing closing ): `(`"},
		{[]string{"--workers", "-1"}, "invalid --workers -1: write a positive number, or 0 for the number of CPUs"},
		{[]string{"--format", "xml"}, `query: invalid format "xml", want table, jsonl or count`},
	}
	for _, tc := range cases {
		args := append(append([]string{"audit", "query"}, tc.args...), logFile)
		if _, err := runCommand(t, "", args...); err == nil || err.Error() != tc.want {
			t.Errorf("query %v = %v, want %q", tc.args, err, tc.want)
		}
	}
}

func TestAuditKeygenKeepsExistingKey(t *testing.T) {
	_, keyFile, _ := writeAuditLog(t)
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, err = runCommand(t, "", "audit", "keygen", "--key", keyFile)
	if err == nil || !strings.Contains(err.Error(), "pass --force to replace it") {
		t.Errorf("keygen over an existing key = %v, want the --force hint", err)
	}
	after, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Error("keygen replaced an existing key without --force")
	}
}
