package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// specSeed is the signing key seed of the Matrix specification's
// cryptographic test vectors, for the server "domain" and key "ed25519:1".
const specSeed = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"

// specEvent is the specification's minimal signed event (room versions 1
// to 10 redaction rules).
const specEvent = `{"auth_events":[],"content":{},"depth":3,"hashes":{"sha256":"5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"},"origin":"domain","origin_server_ts":1000000,"prev_events":[],"room_id":"!x:domain","sender":"@a:domain","signatures":{"domain":{"ed25519:1":"KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"}},"type":"X","unsigned":{"age_ts":1000000}}`

// writeSpecKeys writes a /_matrix/key/v2/server response for "domain",
// self-signed with the specification's key.
func writeSpecKeys(t *testing.T, dir string) string {
	t.Helper()
	seed, err := base64.RawStdEncoding.DecodeString(specSeed)
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := base64.RawStdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	unsigned := `{"server_name":"domain","valid_until_ts":4102444800000,"verify_keys":{"ed25519:1":{"key":"` + pub + `"}}}`
	v, err := canonicaljson.Parse([]byte(unsigned))
	if err != nil {
		t.Fatal(err)
	}
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(priv, canonicaljson.Encode(v)))
	signed := strings.TrimSuffix(unsigned, "}") + `,"signatures":{"domain":{"ed25519:1":"` + sig + `"}}}`
	path := filepath.Join(dir, "domain.json")
	if err := os.WriteFile(path, []byte(signed), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCommand(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestEventInspectValid(t *testing.T) {
	dir := t.TempDir()
	keysFile := writeSpecKeys(t, dir)
	eventFile := filepath.Join(dir, "event.json")
	if err := os.WriteFile(eventFile, []byte(specEvent), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runCommand(t, "", "event", "inspect", "--room-version", "3", "--keys", keysFile, eventFile)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	var report struct {
		Canonical   string                       `json:"canonical"`
		ContentHash string                       `json:"content_hash"`
		EventID     string                       `json:"event_id"`
		Signatures  map[string]map[string]string `json:"signatures"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if report.Canonical != specEvent {
		t.Errorf("canonical = %s\nwant %s", report.Canonical, specEvent)
	}
	if report.ContentHash != "valid" {
		t.Errorf("content_hash = %q, want valid", report.ContentHash)
	}
	if want := "$8yif6p8EqgoSten2BLje9ntKm720NyFLWQv9tn8memc"; report.EventID != want {
		t.Errorf("event_id = %q, want %q", report.EventID, want)
	}
	if got := report.Signatures["domain"]["ed25519:1"]; got != "valid" {
		t.Errorf("signature status = %q, want valid", got)
	}
}

func TestEventInspectSignatureStates(t *testing.T) {
	dir := t.TempDir()
	keysFile := writeSpecKeys(t, dir)
	tampered := strings.Replace(specEvent, `"depth":3`, `"depth":4`, 1)
	tests := []struct {
		name, event, keys, want string
	}{
		{"no keys", specEvent, "", "unknown_key"},
		{"tampered", tampered, keysFile, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"event", "inspect", "--room-version", "3"}
			if tc.keys != "" {
				args = append(args, "--keys", tc.keys)
			}
			out, err := runCommand(t, tc.event, args...)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			if !strings.Contains(out, `"ed25519:1": "`+tc.want+`"`) {
				t.Errorf("output lacks signature status %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestEventInspectErrors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"invalid JSON", `{"a":`, []string{"--room-version", "10"}, "parse event JSON: unexpected end of input"},
		{"duplicate key", `{"a":1,"a":2}`, []string{"--room-version", "10"}, `duplicate object key "a"`},
		{"unknown version", `{}`, []string{"--room-version", "13"}, `unknown room version "13": supported versions are 1 to 12`},
		{"missing version", `{}`, nil, `required flag(s) "room-version" not set`},
		{"missing file", ``, []string{"--room-version", "10", "/nonexistent/event.json"}, "event file /nonexistent/event.json does not exist"},
		{"bad keys path", specEvent, []string{"--room-version", "3", "--keys", "/nonexistent/keys"}, "/nonexistent/keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runCommand(t, tc.stdin, append([]string{"event", "inspect"}, tc.args...)...)
			if err == nil {
				t.Fatal("inspect succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestServeRejectsBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bordergate.yaml")
	if err := os.WriteFile(path, []byte("server_names: [\"a_b\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := runCommand(t, "", "serve", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "server_names[0]") {
		t.Errorf("serve error = %v, want one naming server_names[0]", err)
	}
}
