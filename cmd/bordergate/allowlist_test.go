package main

import (
	"bytes"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bordergate/bordergate/gateway/admin"
	"github.com/bordergate/bordergate/gateway/store"
)

const cliToken = "cli-test-token"

// startAdminAPI serves an admin API over a real store on loopback and
// returns its URL, the token file of "ops" and the store.
func startAdminAPI(t *testing.T) (string, string, *store.Store) {
	t.Helper()
	st, err := store.New(store.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.ReplaceAllowlist([]store.Entry{{ServerName: "hs1.example.org", Endpoints: []string{"*"}}}); err != nil {
		t.Fatal(err)
	}
	auth, err := admin.NewAuthenticator([]admin.Token{{Name: "ops", SHA256: admin.HashToken(cliToken)}}, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(admin.NewHandler(admin.Options{Allowlist: st, Auth: auth}))
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(cliToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, tokenFile, st
}

// run executes the bordergate command with args and returns its output.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestAllowlistCommands(t *testing.T) {
	url, tokenFile, st := startAdminAPI(t)
	common := []string{"--admin-url", url, "--token-file", tokenFile}
	allowlist := func(args ...string) (string, error) {
		return run(t, append(append([]string{"allowlist"}, args...), common...)...)
	}

	out, err := allowlist("add", "hs2.example.org", "--endpoints", "send,backfill", "--note", "pilot", "--label", "tier=1")
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	if !strings.HasPrefix(out, "allow entry for hs2.example.org in source api, changed by ops\nrevision: ") {
		t.Errorf("add output = %q", out)
	}
	e, ok := st.Lookup("hs2.example.org")
	if !ok || strings.Join(e.Endpoints, ",") != "send,backfill" || e.Labels["tier"] != "1" || e.Note != "pilot" {
		t.Errorf("stored entry = %+v, %t", e, ok)
	}

	if _, err := allowlist("add", "*.evil.example.org", "--deny", "--note", "spam"); err != nil {
		t.Fatalf("add --deny: %v", err)
	}
	if m := st.Match("x.evil.example.org"); m.Deny == nil {
		t.Errorf("deny entry not in force")
	}

	entryFile := filepath.Join(t.TempDir(), "entry.yaml")
	if err := os.WriteFile(entryFile, []byte("server_name: hs3.example.org\nendpoints: [\"*\"]\nrequire_mtls: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := allowlist("add", "--from-file", entryFile); err != nil {
		t.Fatalf("add --from-file: %v", err)
	}
	if e, _ := st.Lookup("hs3.example.org"); !e.RequireMTLS {
		t.Errorf("entry from file = %+v, want require_mtls", e)
	}

	out, err = allowlist("list")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	for _, want := range []string{
		"revision: " + st.Revision(),
		"SERVER_NAME", "*.evil.example.org", "deny", "spam",
		"hs2.example.org", "send,backfill", "ops",
		"hs1.example.org", "file",
		"SOURCE", "api",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	out, err = allowlist("list", "--format", "json")
	if err != nil || !strings.Contains(out, `"revision": "`+st.Revision()+`"`) || !strings.Contains(out, `"changed_by": "ops"`) {
		t.Errorf("list --format json = %v\n%s", err, out)
	}

	out, err = allowlist("remove", "hs2.example.org")
	if err != nil || !strings.HasPrefix(out, "removed allow entry for hs2.example.org from source api\n") {
		t.Errorf("remove = %v, %q", err, out)
	}

	policyList := filepath.Join(t.TempDir(), "bans.json")
	if err := os.WriteFile(policyList, []byte(`[
	  {"type": "m.policy.rule.server", "state_key": "a", "event_id": "$a", "content": {"entity": "bad.example", "recommendation": "m.ban", "reason": "abuse"}},
	  {"type": "m.policy.rule.server", "state_key": "b", "event_id": "$b", "content": {"entity": "b.example", "recommendation": "m.watch"}}
	]`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = allowlist("import", "--name", "bans", "--dry-run", policyList)
	if err != nil || !strings.HasPrefix(out, "would import (dry run) 1 entries into import:bans\nskipped events[1] ($b): recommendation \"m.watch\" is not supported") {
		t.Errorf("import --dry-run = %v, %q", err, out)
	}
	if m := st.Match("bad.example"); m.Deny != nil {
		t.Errorf("dry run imported the list")
	}
	if _, err := allowlist("import", "--name", "bans", policyList); err != nil {
		t.Fatalf("import: %v", err)
	}
	if m := st.Match("bad.example"); m.Deny == nil || m.Deny.Note != "abuse" {
		t.Errorf("imported deny entry = %+v", m.Deny)
	}
	out, err = allowlist("remove", "--import", "bans")
	if err != nil || !strings.HasPrefix(out, "removed import:bans\n") {
		t.Errorf("remove --import = %v, %q", err, out)
	}
}

func TestAllowlistCommandErrors(t *testing.T) {
	url, tokenFile, _ := startAdminAPI(t)
	badToken := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(badToken, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	policyList := filepath.Join(t.TempDir(), "list.json")
	if err := os.WriteFile(policyList, []byte(`{"state": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no token", []string{"allowlist", "list", "--admin-url", url},
			"admin API: 401 M_MISSING_TOKEN: authentication required: send Authorization: Bearer TOKEN, or a client certificate from the admin CA"},
		{"bad token", []string{"allowlist", "list", "--admin-url", url, "--token-file", badToken},
			"admin API: 401 M_UNKNOWN_TOKEN: unknown or revoked admin token"},
		{"malformed entry", []string{"allowlist", "add", "hs4.example.org", "--endpoints", "send,sned", "--admin-url", url, "--token-file", tokenFile},
			`admin API: 400 M_INVALID_PARAM: entry (server_name "hs4.example.org"): endpoints[1]: unknown endpoint ID "sned" (expected "*" or one of ` + strings.Join(store.KnownEndpoints, ", ") + ")"},
		{"bad label", []string{"allowlist", "add", "hs4.example.org", "--label", "tier", "--admin-url", url, "--token-file", tokenFile},
			`labels: "tier" is not NAME=VALUE`},
		{"remove missing", []string{"allowlist", "remove", "hs9.example.org", "--admin-url", url, "--token-file", tokenFile},
			"admin API: 404 M_NOT_FOUND: hs9.example.org: entry not found in the allow-list"},
		{"remove file entry", []string{"allowlist", "remove", "hs1.example.org", "--admin-url", url, "--token-file", tokenFile},
			"admin API: 404 M_NOT_FOUND: hs1.example.org: entry not found in source api; the entries for it come from file, which the admin API does not change (edit that source, or add a deny entry)"},
		{"remove both forms", []string{"allowlist", "remove", "a.org", "--import", "x", "--admin-url", url}, "give either SERVER_NAME or --import NAME"},
		{"import invalid list", []string{"allowlist", "import", "--name", "x", policyList, "--admin-url", url, "--token-file", tokenFile},
			"admin API: 400 M_INVALID_PARAM: policy list object has no pdus array (expected the response of GET /_matrix/federation/v1/state/{roomId}, or an array of state events)"},
		{"import without name", []string{"allowlist", "import", policyList}, `required flag(s) "name" not set`},
		{"bad format", []string{"allowlist", "list", "--format", "xml"}, `unknown --format "xml" (expected table or json)`},
		{"bad URL", []string{"allowlist", "list", "--admin-url", "ftp://x"}, `invalid admin URL "ftp://x" (expected http://HOST:PORT or https://HOST:PORT)`},
		{"TLS options on http", []string{"allowlist", "list", "--admin-url", url, "--ca-file", "ca.pem"},
			"TLS options given for " + url + ", which is not https (expected an https:// admin URL)"},
		{"from-file with flags", []string{"allowlist", "add", "--from-file", "x.yaml", "--deny"}, "--from-file takes the whole entry: give no SERVER_NAME and no entry flags"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(t, tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func TestAdminTokenCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "alice.token")
	out, err := run(t, "admin", "token", "--name", "alice", "--out", path)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "  - name: alice\n    sha256: " + admin.HashToken(strings.TrimSpace(string(token))) + "\n"
	if out != want {
		t.Errorf("output = %q, want %q", out, want)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("token file mode = %v, want 0600", info.Mode().Perm())
	}
	if _, err := run(t, "admin", "token", "--name", "alice", "--out", path); err == nil || !strings.Contains(err.Error(), "file exists") {
		t.Errorf("second token into the same file = %v, want a file exists error", err)
	}
	if _, err := run(t, "admin", "token", "--name", "a b", "--out", path+"2"); err == nil ||
		err.Error() != `tokens[0]: invalid name "a b" (expected 1 to 64 characters of letters, digits, '.', '_', '@' and '-')` {
		t.Errorf("invalid name = %v", err)
	}
}
