package keys

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

func writeKeyFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

func TestLoadKeyFilesSingleFile(t *testing.T) {
	validUntil := time.UnixMilli(1_900_000_000_000)
	expired := time.UnixMilli(1_500_000_000_000)
	v := withOldKey(keyResponse("hs1.test", validUntil, keyA), keyB, expired)
	path := writeKeyFile(t, t.TempDir(), "hs1.json", encodeSigned(v, "hs1.test", keyA))

	lookup, err := LoadKeyFiles(path)
	if err != nil {
		t.Fatalf("LoadKeyFiles: %v", err)
	}
	k, err := lookup.LookupKey(context.Background(), "hs1.test", "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey(ed25519:a): %v", err)
	}
	if !bytes.Equal(k.Public, keyA.public()) {
		t.Errorf("Public = %x, want %x", k.Public, keyA.public())
	}
	if k.Source != SourceFile {
		t.Errorf("Source = %q, want %q", k.Source, SourceFile)
	}
	if !k.ValidUntil.Equal(validUntil) {
		t.Errorf("ValidUntil = %v, want the published %v", k.ValidUntil, validUntil)
	}
	old, err := lookup.LookupKey(context.Background(), "hs1.test", "ed25519:b")
	if err != nil {
		t.Fatalf("LookupKey(ed25519:b): %v", err)
	}
	if !old.Expired.Equal(expired) {
		t.Errorf("old key Expired = %v, want %v", old.Expired, expired)
	}
	if _, err := lookup.LookupKey(context.Background(), "hs1.test", "ed25519:c"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("LookupKey(ed25519:c) = %v, want ErrUnknownKey", err)
	}
	if _, err := lookup.LookupKey(context.Background(), "hs2.test", "ed25519:a"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("LookupKey of another server = %v, want ErrUnknownKey", err)
	}
}

func TestLoadKeyFilesDirectory(t *testing.T) {
	dir := t.TempDir()
	early := time.UnixMilli(1_800_000_000_000)
	late := time.UnixMilli(1_900_000_000_000)
	writeKeyFile(t, dir, "a.json", encodeSigned(keyResponse("hs1.test", early, keyA), "hs1.test", keyA))
	writeKeyFile(t, dir, "b.json", encodeSigned(keyResponse("hs1.test", late, keyA), "hs1.test", keyA))
	writeKeyFile(t, dir, "c.json", encodeSigned(keyResponse("hs2.test", late, keyB), "hs2.test", keyB))
	writeKeyFile(t, dir, "notes.txt", []byte("not a key file"))

	lookup, err := LoadKeyFiles(dir)
	if err != nil {
		t.Fatalf("LoadKeyFiles: %v", err)
	}
	keys := lookup.Keys()
	if len(keys) != 2 {
		t.Fatalf("len(Keys) = %d, want 2", len(keys))
	}
	if keys[0].ServerName != "hs1.test" || keys[0].KeyID != "ed25519:a" {
		t.Errorf("keys[0] = %s %s, want hs1.test ed25519:a", keys[0].ServerName, keys[0].KeyID)
	}
	if !keys[0].ValidUntil.Equal(late) {
		t.Errorf("keys[0] ValidUntil = %v, want the later %v", keys[0].ValidUntil, late)
	}
	if keys[1].ServerName != "hs2.test" || keys[1].KeyID != "ed25519:b" {
		t.Errorf("keys[1] = %s %s, want hs2.test ed25519:b", keys[1].ServerName, keys[1].KeyID)
	}
}

func TestLoadKeyFilesErrors(t *testing.T) {
	validUntil := time.UnixMilli(1_900_000_000_000)
	good := encodeSigned(keyResponse("hs1.test", validUntil, keyA), "hs1.test", keyA)
	conflicting := encodeSigned(keyResponse("hs1.test", validUntil, newTestKey("ed25519:a", 99)), "hs1.test", newTestKey("ed25519:a", 99))
	badSignature := bytes.Replace(good, []byte("1900000000000"), []byte("1900000000001"), 1)

	tests := []struct {
		name  string
		files map[string][]byte
		want  []string
	}{
		{"empty directory", map[string][]byte{}, []string{"no *.json files"}},
		{"invalid JSON", map[string][]byte{"bad.json": []byte("{")}, []string{"bad.json", "parse key response"}},
		{"bad self-signature", map[string][]byte{"good.json": good, "forged.json": badSignature}, []string{"forged.json", "does not verify"}},
		{"unsigned", map[string][]byte{"unsigned.json": canonicaljson.Encode(keyResponse("hs1.test", validUntil, keyA).With("signatures", canonicaljson.ObjectValue()))}, []string{"unsigned.json", "no Ed25519 signature"}},
		{"conflicting public keys", map[string][]byte{"a.json": good, "b.json": conflicting}, []string{"a.json and", "b.json give different public keys for ed25519:a of hs1.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				writeKeyFile(t, dir, name, data)
			}
			_, err := LoadKeyFiles(dir)
			if err == nil {
				t.Fatalf("LoadKeyFiles returned no error")
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestLoadKeyFilesMissingPath(t *testing.T) {
	_, err := LoadKeyFiles(filepath.Join(t.TempDir(), "absent.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadKeyFiles of a missing path = %v, want os.ErrNotExist", err)
	}
}

func TestLoadKeyFilesTooLarge(t *testing.T) {
	path := writeKeyFile(t, t.TempDir(), "big.json", bytes.Repeat([]byte(" "), maxKeyFileBytes+1))
	_, err := LoadKeyFiles(path)
	if err == nil || !strings.Contains(err.Error(), "big.json: file is larger than") {
		t.Errorf("LoadKeyFiles of an oversized file = %v, want a size error naming big.json", err)
	}
}

func TestStaticLookupLastKeyWins(t *testing.T) {
	first := VerifyKey{ServerName: "hs1.test", KeyID: "ed25519:a", Public: keyA.public(), Source: SourcePinned}
	second := VerifyKey{ServerName: "hs1.test", KeyID: "ed25519:a", Public: keyB.public(), Source: SourcePinned}
	lookup := NewStaticLookup([]VerifyKey{first, second})
	k, err := lookup.LookupKey(context.Background(), "hs1.test", "ed25519:a")
	if err != nil {
		t.Fatalf("LookupKey: %v", err)
	}
	if !bytes.Equal(k.Public, keyB.public()) {
		t.Errorf("Public = %x, want the last key %x", k.Public, keyB.public())
	}
}
