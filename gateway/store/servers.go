package store

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-memdb"
)

// serverRow is one effective allow-list entry in the servers or denies
// table.
type serverRow struct {
	// Key is the lower-case server_name, the primary key.
	Key string
	// Canonical is Key with an IP address in one spelling, see
	// serverName.canonical, and Key itself for a DNS name or a glob.
	Canonical string

	name     serverName
	suffix   string // for a glob, the host's text after its last wildcard, reversed
	literals int    // characters of the server name other than '*' and '?'
	stars    int    // '*' in the server name
	entry    Entry
}

// globLength is a length of the literal suffix that at least one glob in
// a servers or denies table has. Lookup queries the glob_suffix index only
// for these lengths.
type globLength struct {
	Length int
}

// entryTables names a table of effective entries and the table of its glob
// suffix lengths. Allow and deny entries each have a pair.
type entryTables struct {
	rows, lengths string
	// anySpelling makes an entry for an IP address match every spelling
	// of that address. Deny entries do, so that "[2001:db8:0::1]" does
	// not get around a ban of "[2001:db8::1]". Allow entries compare
	// names as written, as Matrix compares server names.
	anySpelling bool
}

var (
	allowTables = entryTables{rows: tableServers, lengths: tableGlobLengths}
	denyTables  = entryTables{rows: tableDenies, lengths: tableDenyGlobLengths, anySpelling: true}
)

// newServerRow builds the row of a validated entry.
func newServerRow(e Entry) (*serverRow, error) {
	name, err := parseServerName(e.ServerName, true)
	if err != nil {
		return nil, fmt.Errorf("parse server_name %q: %w", e.ServerName, err)
	}
	row := &serverRow{Key: name.key(), Canonical: name.canonical().key(), name: name, entry: e.clone()}
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

// fillTables replaces the rows of tables with rows, inside txn.
func fillTables(txn *memdb.Txn, tables entryTables, rows []*serverRow) error {
	lengths := make(map[int]bool)
	for _, row := range rows {
		if row.name.glob {
			lengths[len(row.suffix)] = true
		}
	}
	if err := replaceTable(txn, tables.rows, rows); err != nil {
		return err
	}
	lengthRows := make([]*globLength, 0, len(lengths))
	for length := range lengths {
		lengthRows = append(lengthRows, &globLength{Length: length})
	}
	return replaceTable(txn, tables.lengths, lengthRows)
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

// Match is the result of looking up a server name in the allow-list.
type Match struct {
	// Allow is the allow entry that applies, nil when none matches or when
	// Deny is set.
	Allow *Entry
	// Deny is the most specific deny entry that matches and has not
	// expired, nil when none does.
	Deny *Entry
}

// Match looks serverName up in one snapshot of the allow-list. A deny
// entry that matches and has not expired wins over every allow entry: Match
// then returns it in Deny and no Allow entry. Otherwise Allow is the allow
// entry that [Store.Lookup] describes, whether expired or not, because the
// expiry of an allow entry is left to the policy. Both are copies.
func (s *Store) Match(serverName string) Match {
	name, err := parseServerName(serverName, false)
	if err != nil {
		return Match{}
	}
	txn := s.db.Txn(false)
	now := s.now()
	if row := findRow(txn, denyTables, name, func(row *serverRow) bool { return !row.entry.Expired(now) }); row != nil {
		deny := row.entry.clone()
		return Match{Deny: &deny}
	}
	if row := findRow(txn, allowTables, name, nil); row != nil {
		allow := row.entry.clone()
		return Match{Allow: &allow}
	}
	return Match{}
}

// PatternMatches reports whether an entry with the server_name pattern
// would match the server name in a lookup, by the rules of [Store.Lookup] for
// ports and globs, and with an IP address in any spelling, as deny entries
// match. It reports false when either is not valid.
func PatternMatches(pattern, name string) bool {
	entry, err := newServerRow(Entry{ServerName: pattern})
	if err != nil {
		return false
	}
	parsed, err := parseServerName(name, false)
	if err != nil {
		return false
	}
	for _, spelling := range []serverName{parsed, parsed.canonical()} {
		switch {
		case entry.name.glob:
			if entry.matches(spelling) {
				return true
			}
		case entry.Canonical == spelling.canonical().key():
			return true
		case entry.name.port == 0 && entry.Canonical == spelling.canonical().host:
			return true
		}
	}
	return false
}

// Lookup returns the allow-list entry for serverName. It returns false when
// no allow entry matches, and when a deny entry matches, whatever allow
// entry would match too (see [Store.Match]). It tries, in order:
//
//  1. the entry whose server_name equals serverName;
//  2. for a serverName with a port, the entry whose server_name equals its
//     host without a port;
//  3. the matching glob with the most characters other than '*' and '?' in
//     its server_name, port included. A tie goes to the glob with fewer
//     '*', then to the lower server_name in lower case.
//
// Deny entries are ranked the same way among themselves. Names compare
// case-insensitively. A serverName that would be rejected as an exact
// server_name in the allow-list matches nothing, for example one with an
// underscore, a trailing dot or a port with a leading zero. The entry is a
// copy.
func (s *Store) Lookup(serverName string) (Entry, bool) {
	m := s.Match(serverName)
	if m.Allow == nil {
		return Entry{}, false
	}
	return *m.Allow, true
}

// Entries returns copies of the effective allow-list entries, allow and
// deny, ordered by lower-case server_name with allow entries first on a
// tie. Entries of a source that another source shadows are left out (see
// [Store.List] for every entry).
func (s *Store) Entries() []Entry {
	txn := s.db.Txn(false)
	var entries []Entry
	for _, tables := range []entryTables{allowTables, denyTables} {
		for _, row := range tableRows[serverRow](txn, tables.rows, indexID) {
			entries = append(entries, row.entry.clone())
		}
	}
	sortEntries(entries)
	return entries
}

// tableRows returns every row of table in the order of index.
func tableRows[T any](txn *memdb.Txn, table, index string, args ...any) []*T {
	it, err := txn.Get(table, index, args...)
	if err != nil {
		panic(fmt.Sprintf("store: list table %s: %v", table, err))
	}
	var rows []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		rows = append(rows, raw.(*T))
	}
	return rows
}

// findRow returns the row of tables that applies to name, trying the exact
// name, its host, then the best glob, and skipping rows that accept
// rejects. A nil accept takes every row. In tables with anySpelling, an
// IP address is compared in its canonical spelling, and a glob matches
// when it matches either spelling.
func findRow(txn *memdb.Txn, tables entryTables, name serverName, accept func(*serverRow) bool) *serverRow {
	if accept == nil {
		accept = func(*serverRow) bool { return true }
	}
	exact, index := name, indexID
	if tables.anySpelling {
		exact, index = name.canonical(), indexCanonical
	}
	if row := exactRow(txn, tables.rows, index, exact.key(), accept); row != nil {
		return row
	}
	if exact.port != 0 {
		if row := exactRow(txn, tables.rows, index, exact.host, accept); row != nil {
			return row
		}
	}
	best := bestGlob(txn, tables, name, accept)
	if exact != name {
		if row := bestGlob(txn, tables, exact, accept); row != nil && (best == nil || row.outranks(best)) {
			best = row
		}
	}
	return best
}

// exactRow returns the first non-glob row of table stored under key in
// index that accept takes.
func exactRow(txn *memdb.Txn, table, index, key string, accept func(*serverRow) bool) *serverRow {
	for _, row := range tableRows[serverRow](txn, table, index, key) {
		if !row.name.glob && accept(row) {
			return row
		}
	}
	return nil
}

// bestGlob returns the most specific glob row of tables that matches name
// and that accept takes. It queries the glob_suffix index with the host's
// suffix of each length that some glob's literal suffix has. So it reads
// only the globs whose literal suffix the host ends with, plus the globs
// that end with a wildcard.
func bestGlob(txn *memdb.Txn, tables entryTables, name serverName, accept func(*serverRow) bool) *serverRow {
	reversed := reverse(name.host)
	var best *serverRow
	for _, length := range tableRows[globLength](txn, tables.lengths, indexID) {
		if length.Length > len(reversed) {
			continue
		}
		for _, row := range tableRows[serverRow](txn, tables.rows, indexGlobSuffix, reversed[:length.Length]) {
			if row.matches(name) && accept(row) && (best == nil || row.outranks(best)) {
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

// now returns the store's clock.
func (s *Store) now() time.Time {
	if s.clock != nil {
		return s.clock()
	}
	return time.Now()
}
