package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// writeTestFile writes content to name in a new temporary directory and
// returns its path.
func writeTestFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

func TestLoadAllowlistFullEntry(t *testing.T) {
	key := unpadded(testKey(1))
	path := writeTestFile(t, "allowlist.yaml", `
servers:
  - server_name: "hs1.localhost:8481"
    administration: "Ministry One"
    pinned_keys: {"ed25519:a_abc": "`+key+`"}
    revoked_keys: ["ed25519:old"]
    address: "127.0.0.1:8481"
    require_mtls: true
    endpoints: ["*"]
    event_types: ["m.room.message"]
    expires: "2027-12-31T00:00:00Z"
    labels: {team: blue}
  - server_name: "*.example.org"
    endpoints: [version, send]
`)
	got, err := LoadAllowlist(path)
	if err != nil {
		t.Fatalf("LoadAllowlist: %v", err)
	}
	expires := time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	want := []Entry{
		{
			ServerName:     "hs1.localhost:8481",
			Administration: "Ministry One",
			PinnedKeys:     map[string]string{"ed25519:a_abc": key},
			RevokedKeys:    []string{"ed25519:old"},
			Address:        "127.0.0.1:8481",
			RequireMTLS:    true,
			Endpoints:      []string{"*"},
			EventTypes:     []string{"m.room.message"},
			Expires:        &expires,
			Labels:         map[string]string{"team": "blue"},
		},
		{ServerName: "*.example.org", Endpoints: []string{"version", "send"}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Expires != nil && want[i].Expires != nil && got[i].Expires.Equal(*want[i].Expires) {
			got[i].Expires = want[i].Expires
		}
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestLoadAllowlistJSON(t *testing.T) {
	path := writeTestFile(t, "allowlist.json", `{"servers": [
  {"server_name": "[::1]:8448", "endpoints": ["send"], "require_mtls": false, "expires": null}
]}`)
	got, err := LoadAllowlist(path)
	if err != nil {
		t.Fatalf("LoadAllowlist: %v", err)
	}
	want := []Entry{{ServerName: "[::1]:8448", Endpoints: []string{"send"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadAllowlist = %+v, want %+v", got, want)
	}
}

func TestLoadAllowlistEmptyList(t *testing.T) {
	path := writeTestFile(t, "allowlist.yaml", "servers: []\n")
	got, err := LoadAllowlist(path)
	if err != nil {
		t.Fatalf("LoadAllowlist: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("LoadAllowlist = %+v, want no entries", got)
	}
}

func TestLoadAllowlistEntryErrors(t *testing.T) {
	key := unpadded(testKey(1))
	tests := []struct {
		name    string
		entries string // YAML lines of the servers list, starting at line 2
		want    string // FILE stands for the path
	}{
		{
			name:    "missing server_name",
			entries: `  - endpoints: ["*"]`,
			want:    `FILE:2: servers[0]: server_name: missing (expected ` + expectServerName + `)`,
		},
		{
			name:    "invalid server_name port",
			entries: "  - server_name: hs1.example.org:99999\n    endpoints: [\"*\"]",
			want: `FILE:2: servers[0] (server_name "hs1.example.org:99999"): server_name: ` +
				`invalid server name "hs1.example.org:99999": port 99999 out of range 1-65535 (expected ` + expectServerName + `)`,
		},
		{
			name:    "glob in port",
			entries: "  - server_name: hs1.example.org:*\n    endpoints: [\"*\"]",
			want: `FILE:2: servers[0] (server_name "hs1.example.org:*"): server_name: ` +
				`invalid server name "hs1.example.org:*": port "*": character '*' not allowed (expected ` + expectServerName + `)`,
		},
		{
			name:    "unbracketed ipv6",
			entries: "  - server_name: \"::1\"\n    endpoints: [\"*\"]",
			want: `FILE:2: servers[0] (server_name "::1"): server_name: ` +
				`invalid server name "::1": empty host (expected ` + expectServerName + `)`,
		},
		{
			name:    "duplicate server_name",
			entries: "  - server_name: hs1.example.org\n    endpoints: [\"*\"]\n  - server_name: HS1.example.org\n    endpoints: [send]",
			want: `FILE:4: servers[1] (server_name "HS1.example.org"): server_name: ` +
				`duplicate of servers[0] (expected ` + expectUniqueName + `)`,
		},
		{
			name:    "pinned key ID without algorithm",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: {abc: \"" + key + "\"}",
			want: `FILE:4: servers[0] (server_name "a.org"): pinned_keys["abc"]: ` +
				`invalid key ID "abc" (expected ` + expectKeyID + `)`,
		},
		{
			name:    "pinned key ID with bad character",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: {\"ed25519:a+b\": \"" + key + "\"}",
			want: `FILE:4: servers[0] (server_name "a.org"): pinned_keys["ed25519:a+b"]: ` +
				`invalid character '+' in key ID "ed25519:a+b" (expected ` + expectKeyID + `)`,
		},
		{
			name:    "pinned key wrong length",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: {\"ed25519:a\": \"c2hvcnQ\"}",
			want: `FILE:4: servers[0] (server_name "a.org"): pinned_keys["ed25519:a"]: ` +
				`public key "c2hvcnQ" decodes to 5 bytes, not 32 (expected ` + expectPublicKey + `)`,
		},
		{
			name:    "pinned key not base64",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: {\"ed25519:a\": \"not base64!\"}",
			want: `FILE:4: servers[0] (server_name "a.org"): pinned_keys["ed25519:a"]: ` +
				`invalid base64 "not base64!" (expected ` + expectPublicKey + `)`,
		},
		{
			name:    "revoked item neither ID nor key",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    revoked_keys: [old]",
			want: `FILE:4: servers[0] (server_name "a.org"): revoked_keys[0]: ` +
				`"old" is neither a key ID nor a public key (expected ` + expectRevoked + `)`,
		},
		{
			name:    "revoked key ID with other algorithm",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    revoked_keys: [\"curve25519:x\"]",
			want: `FILE:4: servers[0] (server_name "a.org"): revoked_keys[0]: ` +
				`invalid key ID "curve25519:x" (expected ` + expectRevoked + `)`,
		},
		{
			name: "revoked key ID also pinned",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: {\"ed25519:a\": \"" + key +
				"\"}\n    revoked_keys: [\"ed25519:a\"]",
			want: `FILE:5: servers[0] (server_name "a.org"): revoked_keys[0]: ` +
				`key ID "ed25519:a" is also in pinned_keys (expected ` + expectNotPinned + `)`,
		},
		{
			name: "revoked public key also pinned",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: {\"ed25519:a\": \"" + key +
				"\"}\n    revoked_keys: [\"" + padded(testKey(1)) + "\"]",
			want: `FILE:5: servers[0] (server_name "a.org"): revoked_keys[0]: ` +
				`public key is also pinned as "ed25519:a" (expected ` + expectNotPinned + `)`,
		},
		{
			name:    "address without port",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    address: 127.0.0.1",
			want: `FILE:4: servers[0] (server_name "a.org"): address: ` +
				`address "127.0.0.1" has no port (expected ` + expectAddress + `)`,
		},
		{
			name:    "address port out of range",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    address: 127.0.0.1:70000",
			want: `FILE:4: servers[0] (server_name "a.org"): address: ` +
				`invalid server name "127.0.0.1:70000": port 70000 out of range 1-65535 (expected ` + expectAddress + `)`,
		},
		{
			name:    "address numeric last label",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    address: \"hs.123:8448\"",
			want: `FILE:4: servers[0] (server_name "a.org"): address: ` +
				`invalid server name "hs.123:8448": "hs.123" ends in a number but is not a dotted-quad IPv4 address (expected ` + expectAddress + `)`,
		},
		{
			name:    "server_name numeric last label",
			entries: "  - server_name: hs.123\n    endpoints: [\"*\"]",
			want: `FILE:2: servers[0] (server_name "hs.123"): server_name: ` +
				`invalid server name "hs.123": "hs.123" ends in a number but is not a dotted-quad IPv4 address (expected ` + expectServerName + `)`,
		},
		{
			name:    "address glob host",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    address: \"*.a.org:8448\"",
			want: `FILE:4: servers[0] (server_name "a.org"): address: ` +
				`invalid server name "*.a.org:8448": character '*' not allowed (expected ` + expectAddress + `)`,
		},
		{
			name:    "endpoints missing",
			entries: "  - server_name: a.org",
			want:    `FILE:2: servers[0] (server_name "a.org"): endpoints: missing (expected ` + expectEndpoints + `)`,
		},
		{
			name:    "endpoints empty",
			entries: "  - server_name: a.org\n    endpoints: []",
			want:    `FILE:3: servers[0] (server_name "a.org"): endpoints: missing (expected ` + expectEndpoints + `)`,
		},
		{
			name:    "unknown endpoint",
			entries: "  - server_name: a.org\n    endpoints: [send, send_join]",
			want: `FILE:3: servers[0] (server_name "a.org"): endpoints[1]: ` +
				`unknown endpoint ID "send_join" (expected ` + expectEndpoint + `)`,
		},
		{
			name:    "empty event type",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    event_types: [\"\"]",
			want: `FILE:4: servers[0] (server_name "a.org"): event_types[0]: empty event type (expected ` +
				expectEventType + `)`,
		},
		{
			name:    "empty label name",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    labels: {\"\": x}",
			want: `FILE:4: servers[0] (server_name "a.org"): labels: empty label name (expected ` +
				expectLabelKey + `)`,
		},
		{
			name:    "expires date only",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    expires: 2027-12-31",
			want: `FILE:4: servers[0] (server_name "a.org"): expires: invalid value "2027-12-31" (expected ` +
				expectExpires + `)`,
		},
		{
			name:    "unknown field",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    endpoint: [send]",
			want: `FILE:4: servers[0] (server_name "a.org"): endpoint: unknown field (expected one of ` +
				`server_name, administration, pinned_keys, revoked_keys, address, require_mtls, endpoints, ` +
				`event_types, expires, labels, deny, note)`,
		},
		{
			name:    "unknown field before server_name",
			entries: "  - mtls: true\n    server_name: a.org\n    endpoints: [\"*\"]",
			want: `FILE:2: servers[0] (server_name "a.org"): mtls: unknown field (expected one of ` +
				`server_name, administration, pinned_keys, revoked_keys, address, require_mtls, endpoints, ` +
				`event_types, expires, labels, deny, note)`,
		},
		{
			name:    "duplicate field",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    endpoints: [send]",
			want: `FILE:4: servers[0] (server_name "a.org"): endpoints: duplicate field, first at line 3 ` +
				`(expected each field at most once)`,
		},
		{
			name:    "endpoints not a list",
			entries: "  - server_name: a.org\n    endpoints: send",
			want: `FILE:3: servers[0] (server_name "a.org"): endpoints: invalid value "send" ` +
				`(expected a list of endpoint IDs)`,
		},
		{
			name:    "require_mtls not a bool",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    require_mtls: maybe",
			want: `FILE:4: servers[0] (server_name "a.org"): require_mtls: invalid value "maybe" ` +
				`(expected true or false)`,
		},
		{
			name:    "pinned_keys not a mapping",
			entries: "  - server_name: a.org\n    endpoints: [\"*\"]\n    pinned_keys: [x]",
			want: `FILE:4: servers[0] (server_name "a.org"): pinned_keys: invalid list ` +
				`(expected a mapping of key IDs to base64 public keys)`,
		},
		{
			name:    "entry not a mapping",
			entries: "  - a.org",
			want:    `FILE:2: servers[0]: invalid value "a.org" (expected a mapping with the keys server_name and endpoints)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTestFile(t, "allowlist.yaml", "servers:\n"+tt.entries+"\n")
			entries, err := LoadAllowlist(path)
			if err == nil {
				t.Fatalf("LoadAllowlist succeeded with %+v, want error", entries)
			}
			want := strings.ReplaceAll(tt.want, "FILE", path)
			if err.Error() != want {
				t.Errorf("LoadAllowlist error:\n got %s\nwant %s", err, want)
			}
			var entryErr *EntryError
			if !errors.As(err, &entryErr) {
				t.Errorf("error %T is not an *EntryError", err)
			}
		})
	}
}

func TestLoadAllowlistReportsEveryProblem(t *testing.T) {
	path := writeTestFile(t, "allowlist.yaml", `servers:
  - server_name: a.org
    endpoints: [sendx]
  - server_name: b.org
    endpoints: "*"
  - server_name: "c.org:0"
    endpoints: ["*"]
`)
	_, err := LoadAllowlist(path)
	if err == nil {
		t.Fatal("LoadAllowlist succeeded, want error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{
		path + `:3: servers[0] (server_name "a.org"): endpoints[0]: unknown endpoint ID "sendx" (expected ` +
			expectEndpoint + `)`,
		path + `:5: servers[1] (server_name "b.org"): endpoints: invalid value "*" (expected a list of endpoint IDs)`,
		path + `:6: servers[2] (server_name "c.org:0"): server_name: invalid server name "c.org:0": port 0 out of range 1-65535 (expected ` +
			expectServerName + `)`,
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("LoadAllowlist error lines:\n got %q\nwant %q", lines, want)
	}
}

func TestLoadAllowlistFileErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // FILE stands for the path
	}{
		{"empty file", "", "FILE: allowlist is empty (expected a mapping with the key servers)"},
		{
			"unknown top-level field", "server: []\n",
			"FILE: invalid allowlist (expected a mapping with the key servers): yaml: unmarshal errors:\n" +
				"  line 1: field server not found in type store.allowlistFile",
		},
		{"missing servers", "{}\n", "FILE: servers is missing or not a list (expected servers: followed by a list of entries)"},
		{"servers not a list", "servers: {}\n", "FILE: servers is missing or not a list (expected servers: followed by a list of entries)"},
		{"two documents", "servers: []\n---\nservers: []\n", "FILE: allowlist has more than one YAML document (expected one)"},
		{
			"not yaml", "servers: [\n",
			"FILE: invalid allowlist (expected a mapping with the key servers): yaml: line 1: did not find expected node content",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeTestFile(t, "allowlist.yaml", tt.content)
			_, err := LoadAllowlist(path)
			if err == nil {
				t.Fatal("LoadAllowlist succeeded, want error")
			}
			if want := strings.ReplaceAll(tt.want, "FILE", path); err.Error() != want {
				t.Errorf("LoadAllowlist error:\n got %s\nwant %s", err, want)
			}
		})
	}
}

func TestLoadAllowlistMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.yaml")
	_, err := LoadAllowlist(path)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadAllowlist error = %v, want os.ErrNotExist", err)
	}
}

func TestValidateEntries(t *testing.T) {
	entries := []Entry{
		{ServerName: "a.org", Endpoints: []string{"*"}},
		{ServerName: "bad name", Endpoints: []string{"*"}},
	}
	err := ValidateEntries(entries)
	want := `servers[1] (server_name "bad name"): server_name: invalid server name "bad name": byte 0x20 not allowed (expected ` +
		expectServerName + `)`
	if err == nil || err.Error() != want {
		t.Errorf("ValidateEntries error:\n got %v\nwant %s", err, want)
	}
	if err := ValidateEntries(entries[:1]); err != nil {
		t.Errorf("ValidateEntries of a valid entry: %v", err)
	}
}

func TestLoadAllowlistYAMLBooleans(t *testing.T) {
	tests := []struct {
		value string
		want  bool
	}{
		{"true", true},
		{"false", false},
		{"yes", true},
		{"off", false},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			path := writeTestFile(t, "allowlist.yaml",
				"servers:\n  - server_name: a.org\n    endpoints: [\"*\"]\n    require_mtls: "+tt.value+"\n")
			entries, err := LoadAllowlist(path)
			if err != nil {
				t.Fatalf("LoadAllowlist: %v", err)
			}
			if entries[0].RequireMTLS != tt.want {
				t.Errorf("RequireMTLS = %v, want %v", entries[0].RequireMTLS, tt.want)
			}
		})
	}
}
