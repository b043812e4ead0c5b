package store

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bordergate/bordergate/gateway/servername"
)

// Texts for the "expected" part of an [EntryError].
const (
	expectServerName = `a hostname, IPv4 address or [IPv6 address] with an optional :port from 1 to 65535, ` +
		`such as "hs1.example.org:8448", or a glob with * and ? in the host, such as "*.example.org"`
	expectUniqueName = "each server_name at most once, compared case-insensitively"
	expectKeyID      = `ed25519:<version> with a version of letters, digits and _, such as "ed25519:a_abc"`
	expectPublicKey  = "the unpadded base64 encoding of a 32-byte Ed25519 public key, 43 characters"
	expectRevoked    = `a key ID such as "ed25519:old" or the base64 encoding of a 32-byte Ed25519 public key`
	expectNotPinned  = "a key in either pinned_keys or revoked_keys, not both"
	expectAddress    = `host:port with a port from 1 to 65535, such as "127.0.0.1:8448" or "[::1]:8448"`
	expectEndpoints  = `["*"] to permit every endpoint, or a list of endpoint IDs such as ["send", "make_join"]`
	expectEventType  = `an event type such as "m.room.message", or "*"`
	expectLabelKey   = "a non-empty label name"
	expectExpires    = `an RFC 3339 timestamp such as "2027-12-31T00:00:00Z"`
	expectDenyOnly   = "a deny entry with only server_name, deny, administration, note, expires and labels"
	expectNote       = "at most 1024 bytes of UTF-8 text without control characters"
)

// MaxNoteBytes is the maximum length of an entry's note, in bytes.
const MaxNoteBytes = 1024

// expectEndpoint lists every accepted endpoint ID.
var expectEndpoint = `"*" or one of ` + strings.Join(KnownEndpoints, ", ")

// EntryError describes one invalid field of one allow-list entry.
type EntryError struct {
	// File is the allow-list file, empty when the entries did not come
	// from a file.
	File string
	// Line is the line of the field in File, 0 when unknown.
	Line int
	// Index is the position of the entry in the servers list, from 0, or
	// -1 for a single entry outside a list, such as one sent to the admin
	// API.
	Index int
	// ServerName is the entry's server_name as written, possibly empty.
	ServerName string
	// Field is the field name, with a key or index for one item of a list
	// or mapping, such as `pinned_keys["ed25519:a"]` or "endpoints[2]".
	Field string
	// Problem is a description of what is wrong with the value.
	Problem string
	// Expected is a description of a valid value to write instead.
	Expected string
}

// Error formats the error as
// "FILE:LINE: servers[INDEX] (server_name NAME): FIELD: PROBLEM (expected EXPECTED)",
// leaving out the parts that are empty, with "entry" in place of
// "servers[INDEX]" for an Index of -1.
func (e *EntryError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Index >= 0 {
		fmt.Fprintf(&b, "servers[%d]", e.Index)
	} else {
		b.WriteString("entry")
	}
	if e.ServerName != "" {
		fmt.Fprintf(&b, " (server_name %q)", e.ServerName)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Problem)
	if e.Expected != "" {
		b.WriteString(" (expected ")
		b.WriteString(e.Expected)
		b.WriteString(")")
	}
	return b.String()
}

// fieldProblem is an [EntryError] before the entry's position is known.
type fieldProblem struct {
	field    string
	problem  string
	expected string
}

// ValidateEntries checks every entry as [LoadAllowlist] does and rejects
// duplicate server names. The error joins one [*EntryError] per problem, so
// errors.As finds the first of them.
func ValidateEntries(entries []Entry) error {
	var errs []error
	for _, problem := range validateEntries(entries) {
		errs = append(errs, &EntryError{
			Index:      problem.index,
			ServerName: entries[problem.index].ServerName,
			Field:      problem.field,
			Problem:    problem.problem,
			Expected:   problem.expected,
		})
	}
	return errors.Join(errs...)
}

// entryProblem is a fieldProblem of the entry at index.
type entryProblem struct {
	index int
	fieldProblem
}

// validateEntries returns the problems of all entries in index order.
func validateEntries(entries []Entry) []entryProblem {
	var problems []entryProblem
	seen := make(map[string]int, len(entries))
	for i, entry := range entries {
		for _, problem := range validateEntry(entry) {
			problems = append(problems, entryProblem{i, problem})
		}
		if problem, ok := checkDuplicate(seen, i, entry.ServerName); ok {
			problems = append(problems, entryProblem{i, problem})
		}
	}
	return problems
}

// checkDuplicate records the server name of entry index in seen and reports
// an earlier entry with the same name. Invalid names are skipped, because
// validateEntry reports them.
func checkDuplicate(seen map[string]int, index int, name string) (fieldProblem, bool) {
	parsed, err := parseServerName(name, true)
	if err != nil {
		return fieldProblem{}, false
	}
	first, dup := seen[parsed.key()]
	if !dup {
		seen[parsed.key()] = index
		return fieldProblem{}, false
	}
	return fieldProblem{
		field:    "server_name",
		problem:  fmt.Sprintf("duplicate of servers[%d]", first),
		expected: expectUniqueName,
	}, true
}

// validateEntry returns the problems of one entry, without comparing it to
// other entries.
func validateEntry(e Entry) []fieldProblem {
	var problems []fieldProblem
	add := func(field, problem, expected string) {
		problems = append(problems, fieldProblem{field, problem, expected})
	}

	switch _, err := parseServerName(e.ServerName, true); {
	case e.ServerName == "":
		add("server_name", "missing", expectServerName)
	case err != nil:
		add("server_name", err.Error(), expectServerName)
	}

	for _, keyID := range slices.Sorted(maps.Keys(e.PinnedKeys)) {
		field := fmt.Sprintf("pinned_keys[%q]", keyID)
		if err := checkKeyID(keyID); err != nil {
			add(field, err.Error(), expectKeyID)
		}
		if _, err := decodePublicKey(e.PinnedKeys[keyID]); err != nil {
			add(field, err.Error(), expectPublicKey)
		}
	}
	for i, revoked := range e.RevokedKeys {
		if problem, ok := checkRevoked(e, revoked); ok {
			add(fmt.Sprintf("revoked_keys[%d]", i), problem.problem, problem.expected)
		}
	}

	if e.Address != "" {
		if err := checkAddress(e.Address); err != nil {
			add("address", err.Error(), expectAddress)
		}
	}

	if e.Deny {
		for _, field := range allowOnlyFields(e) {
			add(field, "not allowed on a deny entry", expectDenyOnly)
		}
	} else if len(e.Endpoints) == 0 {
		add("endpoints", "missing", expectEndpoints)
	}
	if problem := checkNote(e.Note); problem != "" {
		add("note", problem, expectNote)
	}
	for i, endpoint := range e.Endpoints {
		if endpoint != EndpointWildcard && !IsKnownEndpoint(endpoint) {
			add(fmt.Sprintf("endpoints[%d]", i), fmt.Sprintf("unknown endpoint ID %q", endpoint), expectEndpoint)
		}
	}
	for i, eventType := range e.EventTypes {
		if eventType == "" {
			add(fmt.Sprintf("event_types[%d]", i), "empty event type", expectEventType)
		}
	}
	if _, ok := e.Labels[""]; ok {
		add("labels", "empty label name", expectLabelKey)
	}
	return problems
}

// checkRevoked checks one revoked_keys item of e: a valid key ID or public
// key that is not also pinned.
func checkRevoked(e Entry, revoked string) (fieldProblem, bool) {
	if strings.Contains(revoked, ":") {
		if err := checkKeyID(revoked); err != nil {
			return fieldProblem{problem: err.Error(), expected: expectRevoked}, true
		}
		if _, pinned := e.PinnedKeys[revoked]; pinned {
			return fieldProblem{
				problem:  fmt.Sprintf("key ID %q is also in pinned_keys", revoked),
				expected: expectNotPinned,
			}, true
		}
		return fieldProblem{}, false
	}

	key, err := decodePublicKey(revoked)
	if err != nil {
		return fieldProblem{
			problem:  fmt.Sprintf("%q is neither a key ID nor a public key", revoked),
			expected: expectRevoked,
		}, true
	}
	for _, keyID := range slices.Sorted(maps.Keys(e.PinnedKeys)) {
		pinned, err := decodePublicKey(e.PinnedKeys[keyID])
		if err == nil && pinned.Equal(key) {
			return fieldProblem{
				problem:  fmt.Sprintf("public key is also pinned as %q", keyID),
				expected: expectNotPinned,
			}, true
		}
	}
	return fieldProblem{}, false
}

// checkAddress accepts host:port in the syntax of a server name with a
// port, so host is a DNS name, an IPv4 address or a bracketed IPv6 address.
func checkAddress(address string) error {
	_, port, err := servername.Split(address)
	if err != nil {
		return err
	}
	if port == 0 {
		return fmt.Errorf("address %q has no port", address)
	}
	return nil
}

// allowOnlyFields returns the fields that e sets which only an allow entry
// may set.
func allowOnlyFields(e Entry) []string {
	var fields []string
	if e.PinnedKeys != nil {
		fields = append(fields, "pinned_keys")
	}
	if e.RevokedKeys != nil {
		fields = append(fields, "revoked_keys")
	}
	if e.Address != "" {
		fields = append(fields, "address")
	}
	if e.RequireMTLS {
		fields = append(fields, "require_mtls")
	}
	if e.Endpoints != nil {
		fields = append(fields, "endpoints")
	}
	if e.EventTypes != nil {
		fields = append(fields, "event_types")
	}
	return fields
}

// checkNote returns what is wrong with a note, or "".
func checkNote(note string) string {
	if len(note) > MaxNoteBytes {
		return fmt.Sprintf("%d bytes, more than %d", len(note), MaxNoteBytes)
	}
	if !utf8.ValidString(note) {
		return "invalid UTF-8"
	}
	for _, r := range note {
		if unicode.IsControl(r) {
			return fmt.Sprintf("control character %U", r)
		}
	}
	return ""
}
