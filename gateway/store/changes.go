package store

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Errors of the changes to persisted sources, wrapped with the server name
// or source.
var (
	// ErrEntryExists is returned by AddEntry for a server name that the
	// API source already has.
	ErrEntryExists = errors.New("entry exists")
	// ErrEntryNotFound is returned by RemoveEntry for a server name that
	// the API source does not have.
	ErrEntryNotFound = errors.New("entry not found")
	// ErrSourceNotFound is returned by DeleteSource for a source the store
	// does not hold.
	ErrSourceNotFound = errors.New("source not found")
)

// ValidateEntry checks one entry as [ValidateEntries] does. Its errors are
// [*EntryError] values with Index -1, so they read "entry (server_name
// ...): FIELD: PROBLEM (expected ...)".
func ValidateEntry(e Entry) error {
	var errs []error
	for _, problem := range validateEntry(e) {
		errs = append(errs, &EntryError{
			Index:      -1,
			ServerName: e.ServerName,
			Field:      problem.field,
			Problem:    problem.problem,
			Expected:   problem.expected,
		})
	}
	return errors.Join(errs...)
}

// AddEntry adds e to the API source, stamped with by and the current time.
// It returns the stored entry. A server_name that the API source already
// has, compared case-insensitively, returns an error wrapping
// [ErrEntryExists], unless the stored entry has the same fields, which
// makes AddEntry a no-op that returns the stored entry.
func (s *Store) AddEntry(e Entry, by string) (Entry, error) {
	var stored Entry
	err := s.changeSource(SourceNameAPI, by, func(entries []Entry, stamp func(Entry) Entry) ([]Entry, error) {
		i, found := indexOf(entries, e.ServerName)
		if found {
			if sameContent(entries[i], e) {
				stored = entries[i]
				return nil, errNoChange
			}
			return nil, fmt.Errorf("%s: %w in source %s with other fields (replace it, or remove it first)", e.ServerName, ErrEntryExists, SourceNameAPI)
		}
		stored = stamp(e)
		return append(entries, stored), nil
	})
	return stored, err
}

// PutEntry adds e to the API source, or replaces the entry with the same
// server_name, stamped with by and the current time. It returns the stored
// entry and whether it was created.
func (s *Store) PutEntry(e Entry, by string) (Entry, bool, error) {
	var stored Entry
	created := false
	err := s.changeSource(SourceNameAPI, by, func(entries []Entry, stamp func(Entry) Entry) ([]Entry, error) {
		stored = stamp(e)
		i, found := indexOf(entries, e.ServerName)
		if !found {
			created = true
			return append(entries, stored), nil
		}
		if sameContent(entries[i], e) {
			stored = entries[i]
			return nil, errNoChange
		}
		entries[i] = stored
		return entries, nil
	})
	return stored, created, err
}

// RemoveEntry removes the entry with serverName, compared
// case-insensitively, from the API source and returns it. A name the API
// source does not have returns an error wrapping [ErrEntryNotFound], which
// names the source whose entry is in force for that name, if any.
func (s *Store) RemoveEntry(serverName, by string) (Entry, error) {
	var removed Entry
	err := s.changeSource(SourceNameAPI, by, func(entries []Entry, _ func(Entry) Entry) ([]Entry, error) {
		i, found := indexOf(entries, serverName)
		if !found {
			return nil, s.notInAPI(serverName)
		}
		removed = entries[i]
		return slices.Delete(entries, i, i+1), nil
	})
	return removed, err
}

// notInAPI returns the error for removing serverName, which the API source
// does not have.
func (s *Store) notInAPI(serverName string) error {
	var others []string
	for _, listed := range s.List().Entries {
		if strings.EqualFold(listed.ServerName, serverName) {
			others = append(others, listed.Source)
		}
	}
	if len(others) == 0 {
		return fmt.Errorf("%s: %w in the allow-list", serverName, ErrEntryNotFound)
	}
	return fmt.Errorf("%s: %w in source %s; the entries for it come from %s, which the admin API does not change (edit that source, or add a deny entry)",
		serverName, ErrEntryNotFound, SourceNameAPI, strings.Join(others, ", "))
}

// ImportSource replaces every entry of the imported source with entries,
// each stamped with by and the current time. source must be
// "import:NAME". The entries are validated as a whole list, as
// [ValidateEntries] does.
func (s *Store) ImportSource(source string, entries []Entry, by string) error {
	if err := checkImportName(source); err != nil {
		return err
	}
	if err := ValidateEntries(entries); err != nil {
		return fmt.Errorf("source %s: %w", source, err)
	}
	return s.changeSource(source, by, func(_ []Entry, stamp func(Entry) Entry) ([]Entry, error) {
		next := make([]Entry, len(entries))
		for i, entry := range entries {
			next[i] = stamp(entry)
		}
		return next, nil
	})
}

// DeleteSource removes the imported source and its entries. A source that
// the store does not hold returns an error wrapping [ErrSourceNotFound].
func (s *Store) DeleteSource(source, by string) error {
	if err := checkImportName(source); err != nil {
		return err
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if _, ok := s.SourceEntries(source); !ok {
		return fmt.Errorf("%s: %w", source, ErrSourceNotFound)
	}
	var persist func() error
	if s.state != nil {
		persist = func() error { return s.state.remove(source) }
	}
	if err := s.commitSource(source, nil, SourceInfo{}, persist); err != nil {
		return err
	}
	if s.state != nil {
		s.state.reached("committed")
	}
	s.log.Info("allowlist source deleted", "source", source, "changed_by", by)
	return nil
}

func checkImportName(source string) error {
	if err := CheckSourceName(source); err != nil {
		return err
	}
	if !strings.HasPrefix(source, SourcePrefixImport) {
		return fmt.Errorf("source %q is not an imported list (expected import:NAME)", source)
	}
	return nil
}

// errNoChange ends a change that would leave the source as it is.
var errNoChange = errors.New("no change")

// changeSource applies edit to the entries of a persisted source, then
// validates the result, writes it to the state directory and commits it,
// in one write transaction. edit receives the current entries, which it
// may modify, and a function that stamps a new entry. It returns
// errNoChange to change nothing.
func (s *Store) changeSource(source, by string, edit func([]Entry, func(Entry) Entry) ([]Entry, error)) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()

	current, _ := s.SourceEntries(source)
	now := s.now().UTC().Truncate(time.Second)
	stamp := func(e Entry) Entry {
		e = e.clone()
		e.Source, e.ChangedBy, e.ChangedAt = source, by, &now
		return e
	}
	next, err := edit(current, stamp)
	if errors.Is(err, errNoChange) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := ValidateEntries(next); err != nil {
		return fmt.Errorf("source %s: %w", source, err)
	}
	sortEntries(next)

	info := SourceInfo{UpdatedBy: by, UpdatedAt: now}
	var persist func() error
	if s.state != nil {
		persist = func() error {
			return s.state.write(sourceState{
				Format: stateFormat, Version: 1, Source: source,
				UpdatedBy: by, UpdatedAt: now, Entries: next,
			})
		}
	}
	if err := s.commitSource(source, next, info, persist); err != nil {
		return err
	}
	if s.state != nil {
		s.state.reached("committed")
	}
	s.log.Info("allowlist source changed", "source", source, "changed_by", by, "entry_count", len(next))
	return nil
}

// indexOf returns the index of the entry whose server_name equals name,
// compared case-insensitively.
func indexOf(entries []Entry, name string) (int, bool) {
	for i, entry := range entries {
		if strings.EqualFold(entry.ServerName, name) {
			return i, true
		}
	}
	return -1, false
}

// sameContent reports whether a and b have the same fields, leaving out
// the fields that the store sets.
func sameContent(a, b Entry) bool {
	a.Source, a.ChangedBy, a.ChangedAt = "", "", nil
	b.Source, b.ChangedBy, b.ChangedAt = "", "", nil
	return reflect.DeepEqual(normalize(a), normalize(b))
}

// normalize makes empty maps and slices nil, so that entries decoded from
// JSON and YAML compare alike.
func normalize(e Entry) Entry {
	if len(e.PinnedKeys) == 0 {
		e.PinnedKeys = nil
	}
	if len(e.RevokedKeys) == 0 {
		e.RevokedKeys = nil
	}
	if len(e.Endpoints) == 0 {
		e.Endpoints = nil
	}
	if len(e.Labels) == 0 {
		e.Labels = nil
	}
	if e.Expires != nil {
		expires := e.Expires.UTC()
		e.Expires = &expires
	}
	return e
}
