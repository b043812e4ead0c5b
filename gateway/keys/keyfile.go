package keys

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// maxKeyFileBytes bounds one key file; real key responses are a few
// hundred bytes.
const maxKeyFileBytes = 1 << 20

// StaticLookup is a fixed set of verify keys, such as keys read from files
// for offline checks. It is safe for concurrent use because it never
// changes after construction.
type StaticLookup struct {
	keys map[string]map[string]VerifyKey // server name, key ID
}

var _ Lookup = (*StaticLookup)(nil)

// NewStaticLookup returns a StaticLookup holding keys. For a repeated
// server name and key ID the last key wins.
func NewStaticLookup(keys []VerifyKey) *StaticLookup {
	s := &StaticLookup{keys: map[string]map[string]VerifyKey{}}
	for _, k := range keys {
		s.add(k)
	}
	return s
}

func (s *StaticLookup) add(k VerifyKey) {
	byID := s.keys[k.ServerName]
	if byID == nil {
		byID = map[string]VerifyKey{}
		s.keys[k.ServerName] = byID
	}
	byID[k.KeyID] = k
}

// LookupKey returns the key keyID of serverName, or an error wrapping
// [ErrUnknownKey].
func (s *StaticLookup) LookupKey(_ context.Context, serverName, keyID string) (VerifyKey, error) {
	k, ok := s.keys[serverName][keyID]
	if !ok {
		return VerifyKey{}, fmt.Errorf("%w: %s of %s", ErrUnknownKey, keyID, serverName)
	}
	return k, nil
}

// Keys returns every key, sorted by server name and key ID.
func (s *StaticLookup) Keys() []VerifyKey {
	var out []VerifyKey
	for _, server := range slices.Sorted(maps.Keys(s.keys)) {
		for _, keyID := range slices.Sorted(maps.Keys(s.keys[server])) {
			out = append(out, s.keys[server][keyID])
		}
	}
	return out
}

// LoadKeyFiles reads /_matrix/key/v2/server responses from path, a single
// file or a directory whose *.json files each hold one response. Every
// response must pass [ServerKeys.VerifySelfSignature]. The keys get
// [SourceFile] and keep the published valid_until_ts without the seven-day
// cap, because a file has no fetch time to count from. Two files that give
// one key ID of a server different public keys are an error. Errors name
// the file.
func LoadKeyFiles(path string) (*StaticLookup, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load key files: %w", err)
	}
	files := []string{path}
	if info.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.json"))
		if err != nil {
			return nil, fmt.Errorf("load key files: %w", err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("load key files: no *.json files in %s", path)
		}
		slices.Sort(files)
	}

	s := &StaticLookup{keys: map[string]map[string]VerifyKey{}}
	origin := map[[2]string]string{} // server name and key ID to the file that gave it
	for _, file := range files {
		keys, err := readKeyFile(file)
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			ref := [2]string{k.ServerName, k.KeyID}
			if prev, ok := s.keys[k.ServerName][k.KeyID]; ok {
				if !bytes.Equal(prev.Public, k.Public) {
					return nil, fmt.Errorf("load key files: %s and %s give different public keys for %s of %s",
						origin[ref], file, k.KeyID, k.ServerName)
				}
				if !k.ValidUntil.After(prev.ValidUntil) {
					continue
				}
			}
			s.add(k)
			origin[ref] = file
		}
	}
	return s, nil
}

func readKeyFile(file string) ([]VerifyKey, error) {
	data, err := readLimited(file, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", file, err)
	}
	sk, err := ParseServerKeys(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", file, err)
	}
	if err := sk.VerifySelfSignature(); err != nil {
		return nil, fmt.Errorf("key file %s: %w", file, err)
	}
	return sk.keysValidUntil(sk.ValidUntil, SourceFile), nil
}

func readLimited(file string, limit int64) ([]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("file is larger than %d bytes", limit)
	}
	return data, nil
}
