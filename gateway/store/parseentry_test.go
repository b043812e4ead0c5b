package store

import (
	"strings"
	"testing"
)

func TestParseEntry(t *testing.T) {
	entry, err := ParseEntry([]byte(`{"server_name": "*.evil.org", "deny": true, "note": "spam", "expires": "2027-01-01T00:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !entry.Deny || entry.Note != "spam" || entry.Expires == nil {
		t.Errorf("ParseEntry() = %+v, want the deny entry with note and expiry", entry)
	}

	tests := []struct {
		name, data, want string
	}{
		{"two documents", "{}\n---\n{}", "invalid entry (expected one JSON object)"},
		{"list", `[{"server_name": "a.org"}]`, `entry: invalid list (expected a mapping with the keys server_name and endpoints)`},
		{"source from client", `{"server_name": "a.org", "endpoints": ["*"], "source": "file"}`,
			`entry (server_name "a.org"): source: field is set by the gateway (expected no source field in the file)`},
		{"unknown field", `{"server_name": "a.org", "endpoint": ["*"]}`,
			`entry (server_name "a.org"): endpoint: unknown field (expected one of ` + fieldNames() + `)`},
		{"wrong type", `{"server_name": "a.org", "endpoints": ["*"], "deny": "yes please"}`,
			`entry (server_name "a.org"): deny: invalid value "yes please" (expected true or false)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntry([]byte(tt.data))
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("ParseEntry() error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(`{"server_name": "hs1.example.org", "endpoints": ["*"], "labels": {"a": "b"}}`))
	f.Add([]byte(`{"server_name": "*.evil.org", "deny": true, "note": "x", "expires": null}`))
	f.Add([]byte(`{"server_name": "[::1]:8448", "pinned_keys": {"ed25519:a": "giLXyiuHG7jwjunhPs42bbbj7mF5ag54+aOhjMSxbO4"}, "endpoints": ["send"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		entry, err := ParseEntry(data)
		if err != nil {
			return
		}
		if err := ValidateEntry(entry); err != nil {
			t.Fatalf("ParseEntry accepted an entry that does not validate: %v", err)
		}
		if entry.Source != "" || entry.ChangedBy != "" || entry.ChangedAt != nil {
			t.Fatalf("ParseEntry took a field that the gateway sets: %+v", entry)
		}
	})
}
