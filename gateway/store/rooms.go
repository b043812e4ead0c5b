package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-memdb"
	"go.yaml.in/yaml/v3"
)

// Sources of a room version, the values of [Room.Source].
const (
	// SourceCreateEvent is a version read from the room's m.room.create
	// event.
	SourceCreateEvent = "create_event"
	// SourceInvite is a version sent with an invite.
	SourceInvite = "invite"
	// SourceMakeJoin is a version returned by make_join.
	SourceMakeJoin = "make_join"
	// SourceSendJoin is a version established by a send_join exchange.
	SourceSendJoin = "send_join"
	// SourceSeed is a version from the seed file, see [Store.SeedRooms].
	SourceSeed = "seed"
	// SourceStored is a version copied from an earlier record, such as the
	// rooms table of another gateway.
	SourceStored = "stored"
)

// maxRoomIDLen is the maximum length of a room ID in bytes, from the Matrix
// size limits.
const maxRoomIDLen = 255

// ErrRoomVersionConflict reports a room version claim that differs from the
// version already recorded for the room.
var ErrRoomVersionConflict = errors.New("room version conflict")

// Room is the store's record of one room's version.
type Room struct {
	// RoomID is the room ID, starting with '!'.
	RoomID string `json:"room_id"`
	// Version is the room version, 1 to 32 characters of a-z, 0-9, '.'
	// and '-'.
	Version string `json:"room_version"`
	// Source is the kind of message or file that the version came from,
	// one of the Source constants.
	Source string `json:"source"`
	// LearnedAt is when the store first recorded the version.
	LearnedAt time.Time `json:"learned_at"`
}

// RoomVersion returns the recorded room with roomID.
func (s *Store) RoomVersion(roomID string) (Room, bool) {
	room := firstRoom(s.db.Txn(false), roomID)
	if room == nil {
		return Room{}, false
	}
	return *room, true
}

// LearnRoom records the version of a room that the store does not know yet.
// A zero LearnedAt is set to the current time. With a state directory, the
// record is appended to the rooms file and synced to disk before LearnRoom
// returns. LearnRoom returns true when it recorded the room, and false with a
// nil error when the room is already recorded with the same version.
//
// The first version recorded for a room stays. A claim of a different version
// returns an error that wraps [ErrRoomVersionConflict] and names both
// versions, and changes nothing.
func (s *Store) LearnRoom(r Room) (bool, error) {
	if err := checkRoom(r); err != nil {
		return false, fmt.Errorf("learn room: %w", err)
	}
	if r.LearnedAt.IsZero() {
		r.LearnedAt = time.Now().UTC()
	}

	// The write transaction also serializes appends to the rooms file.
	// NOTE: the fsync runs inside it, so a slow disk delays ReplaceAllowlist
	// and SeedRooms too. Readers are not delayed.
	txn := s.db.Txn(true)
	defer txn.Abort()
	if known := firstRoom(txn, r.RoomID); known != nil {
		if known.Version == r.Version {
			return false, nil
		}
		return false, conflictError(*known, r)
	}
	if s.file != nil {
		if err := s.file.append(r); err != nil {
			return false, fmt.Errorf("learn room %s: %w", r.RoomID, err)
		}
	}
	if err := txn.Insert(tableRooms, &r); err != nil {
		return false, fmt.Errorf("learn room %s: insert: %w", r.RoomID, err)
	}
	txn.Commit()

	s.log.Debug("room version learned", "room_id", r.RoomID, "room_version", r.Version, "source", r.Source)
	return true, nil
}

// seedRoom is one item of the seed file.
type seedRoom struct {
	RoomID  string `yaml:"room_id"`
	Version string `yaml:"room_version"`
}

// SeedRooms reads a YAML or JSON list of {room_id, room_version} from path
// and records each room that the store does not know yet, with Source
// [SourceSeed]. Seeded rooms are not written to the rooms file, because the
// seed file is read again at every start.
//
// The seed is applied whole or not at all. An invalid item, or a room that
// the store or the file already records with another version, returns an
// error and records nothing. Conflicts wrap [ErrRoomVersionConflict].
func (s *Store) SeedRooms(path string) error {
	seeds, err := readSeedFile(path)
	if err != nil {
		return err
	}
	now := time.Now().UTC()

	txn := s.db.Txn(true)
	defer txn.Abort()
	var errs []error
	added := 0
	for _, seed := range seeds {
		room := Room{RoomID: seed.RoomID, Version: seed.Version, Source: SourceSeed, LearnedAt: now}
		if known := firstRoom(txn, room.RoomID); known != nil {
			if known.Version != room.Version {
				errs = append(errs, fmt.Errorf("%s: %w", path, conflictError(*known, room)))
			}
			continue
		}
		if err := txn.Insert(tableRooms, &room); err != nil {
			return fmt.Errorf("seed room %s: insert: %w", room.RoomID, err)
		}
		added++
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	txn.Commit()

	s.log.Info("rooms seeded", "path", path, "room_count", added)
	return nil
}

// readSeedFile decodes and validates the seed file at path. An empty file
// is an empty list.
func readSeedFile(path string) ([]seedRoom, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read room seed file: %w", err)
	}
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)

	var seeds []seedRoom
	switch err := decoder.Decode(&seeds); {
	case errors.Is(err, io.EOF):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("%s: invalid room seed file (expected a list of {room_id, room_version}): %w", path, err)
	}
	if err := decoder.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: room seed file has more than one YAML document (expected one)", path)
	}

	var errs []error
	first := make(map[string]int, len(seeds))
	for i, seed := range seeds {
		if err := checkSeed(seed); err != nil {
			errs = append(errs, fmt.Errorf("%s: [%d]: %w", path, i, err))
			continue
		}
		j, dup := first[seed.RoomID]
		if !dup {
			first[seed.RoomID] = i
			continue
		}
		if seeds[j].Version != seed.Version {
			errs = append(errs, fmt.Errorf("%s: [%d]: room %s has version %q, but [%d] gives %q (expected one version per room)",
				path, i, seed.RoomID, seed.Version, j, seeds[j].Version))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return seeds, nil
}

func checkSeed(seed seedRoom) error {
	if seed.RoomID == "" {
		return errors.New("room_id: missing (expected a room ID such as \"!abc:example.org\")")
	}
	if err := checkRoomID(seed.RoomID); err != nil {
		return fmt.Errorf("room_id: %w", err)
	}
	if seed.Version == "" {
		return fmt.Errorf("room %s: room_version: missing (expected a room version such as \"10\")", seed.RoomID)
	}
	if err := checkRoomVersion(seed.Version); err != nil {
		return fmt.Errorf("room %s: room_version: %w", seed.RoomID, err)
	}
	return nil
}

// checkRoom validates the fields of a room record. LearnedAt may be zero.
func checkRoom(r Room) error {
	if err := checkRoomID(r.RoomID); err != nil {
		return err
	}
	if err := checkRoomVersion(r.Version); err != nil {
		return fmt.Errorf("room %s: %w", r.RoomID, err)
	}
	switch r.Source {
	case SourceCreateEvent, SourceInvite, SourceMakeJoin, SourceSendJoin, SourceSeed, SourceStored:
		return nil
	}
	return fmt.Errorf("room %s: unknown source %q", r.RoomID, r.Source)
}

// checkRoomID accepts '!' followed by at least one character, at most 255
// bytes of valid UTF-8 in all, without spaces or control characters.
func checkRoomID(roomID string) error {
	if len(roomID) < 2 || roomID[0] != '!' {
		return fmt.Errorf("invalid room ID %q (expected '!' and an opaque ID, such as \"!abc:example.org\")", roomID)
	}
	if len(roomID) > maxRoomIDLen {
		return fmt.Errorf("room ID is %d bytes (expected at most %d)", len(roomID), maxRoomIDLen)
	}
	if !utf8.ValidString(roomID) {
		return fmt.Errorf("room ID %q is not valid UTF-8", roomID)
	}
	for _, r := range roomID {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("room ID %q contains space or control character %U", roomID, r)
		}
	}
	return nil
}

// checkRoomVersion accepts 1 to 32 characters of a-z, 0-9, '.' and '-', the
// room version grammar of the Matrix specification.
func checkRoomVersion(version string) error {
	valid := len(version) >= 1 && len(version) <= 32
	for i := 0; valid && i < len(version); i++ {
		c := version[i]
		valid = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-'
	}
	if !valid {
		return fmt.Errorf("invalid room version %q (expected 1 to 32 characters of a-z, 0-9, '.' and '-', such as \"10\")", version)
	}
	return nil
}

func conflictError(known, claimed Room) error {
	return fmt.Errorf("room %s: %s claims version %q, but version %q is recorded from %s: %w",
		claimed.RoomID, claimed.Source, claimed.Version, known.Version, known.Source, ErrRoomVersionConflict)
}

// insertRooms inserts rooms loaded from the rooms file.
func (s *Store) insertRooms(rooms []Room) error {
	txn := s.db.Txn(true)
	defer txn.Abort()
	for i := range rooms {
		room := rooms[i]
		if err := txn.Insert(tableRooms, &room); err != nil {
			return fmt.Errorf("insert room %s: %w", room.RoomID, err)
		}
	}
	txn.Commit()
	return nil
}

// firstRoom returns the stored room with roomID. The caller must not modify
// it.
func firstRoom(txn *memdb.Txn, roomID string) *Room {
	raw, err := txn.First(tableRooms, indexID, roomID)
	if err != nil {
		panic(fmt.Sprintf("store: look up room %q: %v", roomID, err))
	}
	if raw == nil {
		return nil
	}
	return raw.(*Room)
}
