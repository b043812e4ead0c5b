// Package store keeps the gateway's allow-list of federated servers and the
// room versions it has learned, in an in-memory go-memdb database.
//
// Lookups take no lock, because go-memdb gives every read transaction an
// immutable snapshot. A new allow-list replaces the old one in a single
// write transaction, so a lookup reads either the old list or the new one.
// Learned room versions can persist in an append-only file in a state
// directory, so that a restarted gateway still has them.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
)

// Table and index names of the database.
const (
	tableServers         = "servers"
	tableGlobLengths     = "glob_lengths"
	tableDenies          = "denies"
	tableDenyGlobLengths = "deny_glob_lengths"
	tableEntries         = "entries"
	tableSources         = "sources"
	tableMeta            = "meta"
	tableRooms           = "rooms"

	indexID         = "id"
	indexCanonical  = "canonical"
	indexGlobSuffix = "glob_suffix"
	indexSource     = "source"
)

// Options configures a [Store].
type Options struct {
	// StateDir is the directory in which learned rooms persist, in the
	// file rooms.jsonl, and the allow-list entries of the admin API and of
	// imported lists, under allowlist/. The directory is created when
	// missing. Empty keeps both in memory only. Only one process may use a
	// state directory at a time, which the store does not check.
	StateDir string
	// Now is the store's clock, for the expiry of deny entries and the
	// times it records. Nil means time.Now.
	Now func() time.Time
	// Logger receives the store's log records, such as warnings about the
	// rooms file. The store adds no component attribute. Nil discards them.
	Logger *slog.Logger
}

// Store holds the allow-list and the rooms table. Its methods are safe for
// concurrent use. Objects inside the database are never modified after
// insertion, and every method returns copies.
type Store struct {
	db    *memdb.MemDB
	log   *slog.Logger
	file  *roomFile // nil without a state directory
	clock func() time.Time

	// writeMu serializes changes to the allow-list, so that the state
	// files are written in the order in which the changes commit.
	writeMu sync.Mutex
	// state keeps the persisted sources; nil without a state directory.
	state *stateDir
}

// New returns a store with an empty allow-list. With Options.StateDir set, it
// loads the rooms and the allow-list sources recorded there, and fails on a
// record or source file that is not valid.
func New(opts Options) (*Store, error) {
	return newStore(opts, osStateFS{}, nil)
}

// newStore is New with the file system of the allow-list state and a hook
// called after each step of a change to it, for tests.
func newStore(opts Options, fs stateFS, step func(string)) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	s := &Store{db: db, log: log, clock: opts.Now}
	if opts.StateDir == "" {
		return s, nil
	}
	if err := s.openState(opts.StateDir, fs); err != nil {
		return nil, err
	}
	s.state.step = step

	file, rooms, err := openRoomFile(opts.StateDir, log)
	if err != nil {
		return nil, err
	}
	if err := s.insertRooms(rooms); err != nil {
		return nil, errors.Join(err, file.close())
	}
	s.file = file
	log.Info("rooms loaded", "path", file.path, "room_count", len(rooms))
	return s, nil
}

// Close closes the rooms file. The store must not be used afterwards.
func (s *Store) Close() error {
	if s.file == nil {
		return nil
	}
	return s.file.close()
}

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{
		Tables: map[string]*memdb.TableSchema{
			tableServers:         serversSchema(tableServers),
			tableGlobLengths:     globLengthsSchema(tableGlobLengths),
			tableDenies:          serversSchema(tableDenies),
			tableDenyGlobLengths: globLengthsSchema(tableDenyGlobLengths),
			tableEntries: {
				Name: tableEntries,
				Indexes: map[string]*memdb.IndexSchema{
					indexID:     stringIndex(indexID, "ID", true),
					indexSource: stringIndex(indexSource, "Source", false),
				},
			},
			tableSources: {
				Name:    tableSources,
				Indexes: map[string]*memdb.IndexSchema{indexID: stringIndex(indexID, "Name", true)},
			},
			tableMeta: {
				Name:    tableMeta,
				Indexes: map[string]*memdb.IndexSchema{indexID: stringIndex(indexID, "Name", true)},
			},
			tableRooms: {
				Name: tableRooms,
				Indexes: map[string]*memdb.IndexSchema{
					indexID: {
						Name:    indexID,
						Unique:  true,
						Indexer: &memdb.StringFieldIndex{Field: "RoomID"},
					},
				},
			},
		},
	}
}

// serversSchema is the schema of a table of effective entries.
func serversSchema(name string) *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: name,
		Indexes: map[string]*memdb.IndexSchema{
			indexID:        stringIndex(indexID, "Key", true),
			indexCanonical: stringIndex(indexCanonical, "Canonical", false),
			indexGlobSuffix: {
				Name:         indexGlobSuffix,
				AllowMissing: true,
				Indexer:      globSuffixIndex{},
			},
		},
	}
}

// globLengthsSchema is the schema of a table of glob suffix lengths.
func globLengthsSchema(name string) *memdb.TableSchema {
	return &memdb.TableSchema{
		Name: name,
		Indexes: map[string]*memdb.IndexSchema{
			indexID: {Name: indexID, Unique: true, Indexer: &memdb.IntFieldIndex{Field: "Length"}},
		},
	}
}

func stringIndex(name, field string, unique bool) *memdb.IndexSchema {
	return &memdb.IndexSchema{Name: name, Unique: unique, Indexer: &memdb.StringFieldIndex{Field: field}}
}
