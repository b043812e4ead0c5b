package store

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// serverRow is one allow-list entry in the servers table.
type serverRow struct {
	// Key is the lower-case server_name, the primary key.
	Key string

	name     serverName
	suffix   string // for a glob, the host's text after its last wildcard, reversed
	literals int    // characters of the server name other than '*' and '?'
	stars    int    // '*' in the server name
	entry    Entry
}

// globLength is a length of the literal suffix that at least one glob in
// the servers table has. Lookup queries the glob_suffix index only for these
// lengths.
type globLength struct {
	Length int
}

// newServerRow builds the row of a validated entry.
func newServerRow(e Entry) (*serverRow, error) {
	name, err := parseServerName(e.ServerName, true)
	if err != nil {
		return nil, fmt.Errorf("parse server_name %q: %w", e.ServerName, err)
	}
	row := &serverRow{Key: name.key(), name: name, entry: e.clone()}
	if name.glob {
		row.suffix = reverse(literalSuffix(name.host))
		row.literals, row.stars = globLiterals(name.key())
	}
	return row, nil
}

// matches reports whether the glob row matches the parsed server name.
func (row *serverRow) matches(name serverName) bool {
	if row.name.port != 0 && row.name.port != name.port {
		return false
	}
	return matchGlob(row.name.host, name.host)
}

// outranks reports whether the glob row is more specific than other: more
// literal characters, then fewer '*', then the lower key, so that the order
// is total and a lookup never depends on iteration order.
func (row *serverRow) outranks(other *serverRow) bool {
	if row.literals != other.literals {
		return row.literals > other.literals
	}
	if row.stars != other.stars {
		return row.stars < other.stars
	}
	return row.Key < other.Key
}

// ReplaceAllowlist validates entries as [ValidateEntries] does and replaces
// the whole allow-list with them in one transaction. Readers see either the
// old list or the new one. On error the old list stays in force. The store
// keeps copies, so the caller may reuse entries.
func (s *Store) ReplaceAllowlist(entries []Entry) error {
	if err := ValidateEntries(entries); err != nil {
		return fmt.Errorf("replace allowlist: %w", err)
	}
	rows := make([]*serverRow, len(entries))
	lengths := make(map[int]bool)
	globs := 0
	for i, entry := range entries {
		row, err := newServerRow(entry)
		if err != nil {
			return fmt.Errorf("replace allowlist: %w", err)
		}
		rows[i] = row
		if row.name.glob {
			lengths[len(row.suffix)] = true
			globs++
		}
	}

	txn := s.db.Txn(true)
	defer txn.Abort()
	if err := replaceTable(txn, tableServers, rows); err != nil {
		return fmt.Errorf("replace allowlist: %w", err)
	}
	var lengthRows []*globLength
	for length := range lengths {
		lengthRows = append(lengthRows, &globLength{Length: length})
	}
	if err := replaceTable(txn, tableGlobLengths, lengthRows); err != nil {
		return fmt.Errorf("replace allowlist: %w", err)
	}
	txn.Commit()

	s.log.Info("allowlist replaced", "entry_count", len(rows), "glob_count", globs)
	return nil
}

// replaceTable deletes every row of table and inserts rows, inside txn.
func replaceTable[T any](txn *memdb.Txn, table string, rows []*T) error {
	if _, err := txn.DeleteAll(table, indexID); err != nil {
		return fmt.Errorf("clear table %s: %w", table, err)
	}
	for _, row := range rows {
		if err := txn.Insert(table, row); err != nil {
			return fmt.Errorf("insert into table %s: %w", table, err)
		}
	}
	return nil
}

// Lookup returns the allow-list entry for serverName. It tries, in order:
//
//  1. the entry whose server_name equals serverName;
//  2. for a serverName with a port, the entry whose server_name equals its
//     host without a port;
//  3. the matching glob with the most characters other than '*' and '?' in
//     its server_name, port included. A tie goes to the glob with fewer
//     '*', then to the lower server_name in lower case.
//
// Names compare case-insensitively. A serverName that would be rejected as
// an exact server_name in the allow-list matches nothing, for example one
// with an underscore, a trailing dot or a port with a leading zero. The entry
// is a copy.
func (s *Store) Lookup(serverName string) (Entry, bool) {
	name, err := parseServerName(serverName, false)
	if err != nil {
		return Entry{}, false
	}

	txn := s.db.Txn(false)
	if row := firstServer(txn, name.key()); row != nil {
		return row.entry.clone(), true
	}
	if name.port != 0 {
		if row := firstServer(txn, name.host); row != nil {
			return row.entry.clone(), true
		}
	}
	if row := bestGlob(txn, name); row != nil {
		return row.entry.clone(), true
	}
	return Entry{}, false
}

// Entries returns copies of all allow-list entries, ordered by lower-case
// server_name.
func (s *Store) Entries() []Entry {
	txn := s.db.Txn(false)
	it, err := txn.Get(tableServers, indexID)
	if err != nil {
		panic(fmt.Sprintf("store: list servers: %v", err))
	}
	var entries []Entry
	for raw := it.Next(); raw != nil; raw = it.Next() {
		entries = append(entries, raw.(*serverRow).entry.clone())
	}
	return entries
}

// firstServer returns the exact, non-glob entry stored under key.
func firstServer(txn *memdb.Txn, key string) *serverRow {
	raw, err := txn.First(tableServers, indexID, key)
	if err != nil {
		panic(fmt.Sprintf("store: look up server %q: %v", key, err))
	}
	if raw == nil {
		return nil
	}
	row := raw.(*serverRow)
	if row.name.glob {
		return nil
	}
	return row
}

// bestGlob returns the most specific glob entry that matches name. It
// queries the glob_suffix index with the host's suffix of each length that
// some glob's literal suffix has. So it reads only the globs whose literal
// suffix the host ends with, plus the globs that end with a wildcard.
func bestGlob(txn *memdb.Txn, name serverName) *serverRow {
	lengths, err := txn.Get(tableGlobLengths, indexID)
	if err != nil {
		panic(fmt.Sprintf("store: list glob suffix lengths: %v", err))
	}
	reversed := reverse(name.host)
	var best *serverRow
	for raw := lengths.Next(); raw != nil; raw = lengths.Next() {
		length := raw.(*globLength).Length
		if length > len(reversed) {
			continue
		}
		globs, err := txn.Get(tableServers, indexGlobSuffix, reversed[:length])
		if err != nil {
			panic(fmt.Sprintf("store: look up globs: %v", err))
		}
		for raw := globs.Next(); raw != nil; raw = globs.Next() {
			row := raw.(*serverRow)
			if row.matches(name) && (best == nil || row.outranks(best)) {
				best = row
			}
		}
	}
	return best
}

// globSuffixIndex indexes glob rows by their reversed literal suffix. Exact
// rows are not in the index. The value ends with a NUL byte, so that a glob
// ending in a wildcard has the non-empty value "\x00" and one suffix is never
// a prefix match of a longer one.
type globSuffixIndex struct{}

// FromObject returns the index value of a servers row.
func (globSuffixIndex) FromObject(raw any) (bool, []byte, error) {
	row, ok := raw.(*serverRow)
	if !ok {
		return false, nil, fmt.Errorf("glob suffix index: got %T, expected *serverRow", raw)
	}
	if !row.name.glob {
		return false, nil, nil
	}
	return true, append([]byte(row.suffix), 0), nil
}

// FromArgs returns the index value for one reversed suffix.
func (globSuffixIndex) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("glob suffix index: got %d arguments, expected 1", len(args))
	}
	suffix, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("glob suffix index: got %T, expected string", args[0])
	}
	return append([]byte(suffix), 0), nil
}

// literalSuffix returns the part of pattern after its last wildcard.
func literalSuffix(pattern string) string {
	for i := len(pattern) - 1; i >= 0; i-- {
		if pattern[i] == '*' || pattern[i] == '?' {
			return pattern[i+1:]
		}
	}
	return pattern
}

// reverse reverses the bytes of an ASCII string.
func reverse(s string) string {
	b := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		b[len(s)-1-i] = s[i]
	}
	return string(b)
}
