package store

import (
	"crypto/ed25519"
	"encoding/base64"
	"testing"
	"time"
)

// testKey returns a deterministic Ed25519 public key for seed byte b.
func testKey(b byte) ed25519.PublicKey {
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = b
	return ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
}

func unpadded(key ed25519.PublicKey) string { return base64.RawStdEncoding.EncodeToString(key) }

func padded(key ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(key) }

func TestEntryPinnedKey(t *testing.T) {
	entry := Entry{PinnedKeys: map[string]string{
		"ed25519:unpadded": unpadded(testKey(1)),
		"ed25519:padded":   padded(testKey(2)),
		"ed25519:short":    base64.RawStdEncoding.EncodeToString([]byte("short")),
		"ed25519:garbage":  "!!!",
	}}
	tests := []struct {
		keyID  string
		want   ed25519.PublicKey
		wantOK bool
	}{
		{"ed25519:unpadded", testKey(1), true},
		{"ed25519:padded", testKey(2), true},
		{"ed25519:short", nil, false},
		{"ed25519:garbage", nil, false},
		{"ed25519:absent", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.keyID, func(t *testing.T) {
			got, ok := entry.PinnedKey(tt.keyID)
			if ok != tt.wantOK {
				t.Fatalf("PinnedKey(%q) ok = %v, want %v", tt.keyID, ok, tt.wantOK)
			}
			if !got.Equal(tt.want) && tt.want != nil {
				t.Errorf("PinnedKey(%q) = %x, want %x", tt.keyID, got, tt.want)
			}
		})
	}
}

func TestEntryIsRevoked(t *testing.T) {
	entry := Entry{RevokedKeys: []string{"ed25519:old", unpadded(testKey(3)), padded(testKey(4))}}
	tests := []struct {
		name  string
		keyID string
		pub   ed25519.PublicKey
		want  bool
	}{
		{"revoked key ID", "ed25519:old", testKey(9), true},
		{"revoked key ID without key", "ed25519:old", nil, true},
		{"revoked unpadded public key", "ed25519:new", testKey(3), true},
		{"revoked padded public key", "ed25519:new", testKey(4), true},
		{"other key", "ed25519:new", testKey(5), false},
		{"other key without key", "ed25519:new", nil, false},
		{"empty key ID and nil key", "", nil, false},
		{"public key given as key ID", unpadded(testKey(3)), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := entry.IsRevoked(tt.keyID, tt.pub); got != tt.want {
				t.Errorf("IsRevoked(%q, %x) = %v, want %v", tt.keyID, tt.pub, got, tt.want)
			}
		})
	}
}

func TestEntryExpired(t *testing.T) {
	expires := time.Date(2027, 12, 31, 0, 0, 0, 0, time.UTC)
	withExpiry := Entry{Expires: &expires}
	tests := []struct {
		name  string
		entry Entry
		now   time.Time
		want  bool
	}{
		{"no expiry", Entry{}, expires.Add(100 * 365 * 24 * time.Hour), false},
		{"before expiry", withExpiry, expires.Add(-time.Nanosecond), false},
		{"at expiry", withExpiry, expires, true},
		{"after expiry", withExpiry, expires.Add(time.Second), true},
		{"same instant other zone", withExpiry, expires.In(time.FixedZone("UTC+2", 2*3600)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.entry.Expired(tt.now); got != tt.want {
				t.Errorf("Expired(%v) = %v, want %v", tt.now, got, tt.want)
			}
		})
	}
}

func TestEntryPermits(t *testing.T) {
	tests := []struct {
		name      string
		endpoints []string
		endpoint  string
		want      bool
	}{
		{"wildcard", []string{"*"}, "send", true},
		{"listed", []string{"version", "send"}, "send", true},
		{"not listed", []string{"version"}, "send", false},
		{"empty list", nil, "send", false},
		{"prefix is not a match", []string{"send_join"}, "send_join_v2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := Entry{Endpoints: tt.endpoints}
			if got := entry.Permits(tt.endpoint); got != tt.want {
				t.Errorf("Permits(%q) with %q = %v, want %v", tt.endpoint, tt.endpoints, got, tt.want)
			}
		})
	}
}

func TestEntryCloneSharesNothing(t *testing.T) {
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	original := Entry{
		PinnedKeys:  map[string]string{"ed25519:a": "x"},
		RevokedKeys: []string{"ed25519:b"},
		Endpoints:   []string{"send"},
		EventTypes:  []string{"m.room.message"},
		Expires:     &expires,
		Labels:      map[string]string{"k": "v"},
	}
	copied := original.clone()
	copied.PinnedKeys["ed25519:a"] = "changed"
	copied.RevokedKeys[0] = "changed"
	copied.Endpoints[0] = "changed"
	copied.EventTypes[0] = "changed"
	*copied.Expires = time.Time{}
	copied.Labels["k"] = "changed"

	if original.PinnedKeys["ed25519:a"] != "x" {
		t.Error("clone shares PinnedKeys")
	}
	if original.RevokedKeys[0] != "ed25519:b" {
		t.Error("clone shares RevokedKeys")
	}
	if original.Endpoints[0] != "send" {
		t.Error("clone shares Endpoints")
	}
	if original.EventTypes[0] != "m.room.message" {
		t.Error("clone shares EventTypes")
	}
	if !original.Expires.Equal(expires) {
		t.Error("clone shares Expires")
	}
	if original.Labels["k"] != "v" {
		t.Error("clone shares Labels")
	}
}
