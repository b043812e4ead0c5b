package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// keyAlgorithmPrefix starts every key ID. Ed25519 is the only signing
// algorithm that Matrix defines.
const keyAlgorithmPrefix = "ed25519:"

// Entry is one server of the allow-list: an allow entry, which lets the
// server federate within the limits of its fields, or a deny entry (Deny
// set), which refuses it whatever any allow entry says.
//
// ServerName is an exact server name or a glob. A glob may use '*' for zero or
// more characters and '?' for exactly one character, in the host part only.
// Matching is case-insensitive and covers the whole host: Matrix compares
// server names case-sensitively, but their hosts are DNS names, which do
// not depend on case. A server name
// without a port matches the host with any port or with none:
// "hs1.example.org" matches "hs1.example.org" and "hs1.example.org:8448". A
// server name with a port matches only names that carry that port, so
// "hs1.example.org:8448" does not match "hs1.example.org". A '*' may match
// dots, so "*.example.org" matches "a.b.example.org" but not "example.org".
// See [Store.Lookup] for the order in which entries are tried.
//
// An Entry returned by the store is a copy, and the caller may modify it.
type Entry struct {
	// ServerName is the exact server name or glob that this entry covers.
	ServerName string `json:"server_name" yaml:"server_name"`
	// Deny makes this a deny entry. A deny entry that matches a server name
	// wins over every allow entry, and may set only ServerName,
	// Administration, Note, Expires and Labels.
	Deny bool `json:"deny,omitempty" yaml:"deny,omitempty"`
	// Note is free text for the people who read the allow-list, such as
	// why a server is denied.
	Note string `json:"note,omitempty" yaml:"note,omitempty"`
	// Administration is the organisation that runs the server, for people
	// and policy rules to read.
	Administration string `json:"administration,omitempty" yaml:"administration,omitempty"`
	// PinnedKeys maps key IDs such as "ed25519:a_abc" to base64 Ed25519
	// public keys, padded or unpadded. A pinned key is used instead of a
	// fetched one.
	PinnedKeys map[string]string `json:"pinned_keys,omitempty" yaml:"pinned_keys,omitempty"`
	// RevokedKeys lists key IDs or base64 public keys that must not verify
	// anything for this server.
	RevokedKeys []string `json:"revoked_keys,omitempty" yaml:"revoked_keys,omitempty"`
	// Address is a host:port to connect to instead of running server
	// discovery. Empty means discovery.
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// RequireMTLS requires the server to present a client certificate.
	RequireMTLS bool `json:"require_mtls" yaml:"require_mtls"`
	// Endpoints lists the endpoint IDs the server may call, or "*" for all
	// of them. The allow-list loader rejects an empty list.
	Endpoints []string `json:"endpoints" yaml:"endpoints"`
	// EventTypes lists event types for policy rules, "*" for all. Nil
	// means no limit, and an empty list permits no event type, so the
	// JSON form keeps the two apart: null and [].
	EventTypes []string `json:"event_types" yaml:"event_types,omitempty"`
	// Expires is the instant from which the entry no longer applies. Nil
	// means never.
	Expires *time.Time `json:"expires,omitempty" yaml:"expires,omitempty"`
	// Labels are free-form values that policy rules can read.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`

	// Source names where the entry comes from, such as "file" or "api"
	// (see [Source]). The store sets it.
	Source string `json:"source,omitempty" yaml:"-"`
	// ChangedBy is who last changed the entry: the authenticated principal
	// of an admin API change, the file path, or a signed list's issuer.
	// The store or its caller sets it, never the client.
	ChangedBy string `json:"changed_by,omitempty" yaml:"-"`
	// ChangedAt is when the entry was last changed, nil when unknown.
	ChangedAt *time.Time `json:"changed_at,omitempty" yaml:"-"`
}

// PinnedKey returns the public key pinned under keyID. It returns false when
// no key is pinned under that ID or the pinned value does not decode to an
// Ed25519 public key, which validation rejects.
func (e Entry) PinnedKey(keyID string) (ed25519.PublicKey, bool) {
	encoded, ok := e.PinnedKeys[keyID]
	if !ok {
		return nil, false
	}
	key, err := decodePublicKey(encoded)
	if err != nil {
		return nil, false
	}
	return key, true
}

// IsRevoked reports whether the key with keyID and public key pub is revoked
// for this server. A revoked_keys item matches when it equals keyID or when
// it decodes to the same public key as pub. An empty keyID or a nil pub is
// not compared.
func (e Entry) IsRevoked(keyID string, pub ed25519.PublicKey) bool {
	for _, revoked := range e.RevokedKeys {
		if keyID != "" && revoked == keyID {
			return true
		}
		if len(pub) == 0 || strings.HasPrefix(revoked, keyAlgorithmPrefix) {
			continue
		}
		key, err := decodePublicKey(revoked)
		if err == nil && bytes.Equal(key, pub) {
			return true
		}
	}
	return false
}

// Expired reports whether the entry has expired at now. An entry expires at
// the Expires instant itself.
func (e Entry) Expired(now time.Time) bool {
	return e.Expires != nil && !now.Before(*e.Expires)
}

// Permits reports whether the entry permits the endpoint ID, either by name
// or through "*".
func (e Entry) Permits(endpoint string) bool {
	for _, permitted := range e.Endpoints {
		if permitted == EndpointWildcard || permitted == endpoint {
			return true
		}
	}
	return false
}

// clone returns a deep copy of e, so that the copy shares no map, slice or
// time with e.
func (e Entry) clone() Entry {
	e.PinnedKeys = maps.Clone(e.PinnedKeys)
	e.RevokedKeys = slices.Clone(e.RevokedKeys)
	e.Endpoints = slices.Clone(e.Endpoints)
	e.EventTypes = slices.Clone(e.EventTypes)
	e.Labels = maps.Clone(e.Labels)
	if e.Expires != nil {
		expires := *e.Expires
		e.Expires = &expires
	}
	if e.ChangedAt != nil {
		changed := *e.ChangedAt
		e.ChangedAt = &changed
	}
	return e
}

// decodePublicKey decodes standard base64, unpadded or padded, into an
// Ed25519 public key.
func decodePublicKey(encoded string) (ed25519.PublicKey, error) {
	raw, err := base64.RawStdEncoding.DecodeString(encoded)
	if err != nil {
		raw, err = base64.StdEncoding.DecodeString(encoded)
	}
	if err != nil {
		return nil, fmt.Errorf("invalid base64 %q", encoded)
	}
	if len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %q decodes to %d bytes, not %d", encoded, len(raw), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(raw), nil
}

// checkKeyID accepts "ed25519:" followed by a version of letters, digits and
// '_', the key ID form that the Matrix key schema requires of publishers.
func checkKeyID(keyID string) error {
	version, ok := strings.CutPrefix(keyID, keyAlgorithmPrefix)
	if !ok || version == "" {
		return fmt.Errorf("invalid key ID %q", keyID)
	}
	for _, c := range version {
		if !isLetter(c) && !('0' <= c && c <= '9') && c != '_' {
			return fmt.Errorf("invalid character %q in key ID %q", c, keyID)
		}
	}
	return nil
}
