package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bordergate/bordergate/gateway/internal/durable"
)

// roomFileName is the name of the rooms file inside the state directory.
const roomFileName = "rooms.jsonl"

// roomFile is the append-only rooms file: one JSON [Room] per line, each
// line synced to disk before the room enters the table. A record counts once
// its newline is on disk. So a last line without a newline, left by a crash
// during an append, is dropped with a warning when the file is opened.
//
// Callers serialize append, which [Store.LearnRoom] does by holding the
// database's write transaction.
type roomFile struct {
	path string
	log  *slog.Logger
	file *os.File
	size int64 // length of the complete records, where the next one starts

	// failed is the error of a write or sync whose effect on the file is
	// unknown. Once it is set, append returns an error without writing,
	// because the next record could land after a partial one.
	failed error
}

// openRoomFile opens or creates the rooms file in dir and returns the rooms
// it records, in file order.
func openRoomFile(dir string, log *slog.Logger) (*roomFile, []Room, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create state directory: %w", err)
	}
	path := filepath.Join(dir, roomFileName)
	_, statErr := os.Stat(path)
	created := errors.Is(statErr, os.ErrNotExist)

	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open rooms file: %w", err)
	}
	rf := &roomFile{path: path, log: log, file: file}
	rooms, err := rf.load(created)
	if err != nil {
		return nil, nil, errors.Join(err, rf.close())
	}
	return rf, rooms, nil
}

// load reads the records, drops a torn last line and rewrites the file when
// it has duplicate records.
func (rf *roomFile) load(created bool) ([]Room, error) {
	if created {
		if err := durable.SyncDir(filepath.Dir(rf.path)); err != nil {
			return nil, err
		}
	}
	data, err := io.ReadAll(rf.file)
	if err != nil {
		return nil, fmt.Errorf("read rooms file: %w", err)
	}
	parsed, err := parseRoomRecords(rf.path, data)
	if err != nil {
		return nil, err
	}
	rf.size = int64(parsed.complete)

	if parsed.complete < len(data) {
		rf.log.Warn("torn last line in rooms file dropped",
			"path", rf.path, "line", parsed.lines+1, "byte_count", len(data)-parsed.complete)
		if err := rf.truncate(); err != nil {
			return nil, err
		}
	}
	if parsed.duplicates > 0 {
		if err := rf.rewrite(parsed.rooms); err != nil {
			return nil, err
		}
		rf.log.Info("rooms file compacted",
			"path", rf.path, "duplicate_count", parsed.duplicates, "room_count", len(parsed.rooms))
	}
	return parsed.rooms, nil
}

// roomRecords is the content of a rooms file.
type roomRecords struct {
	rooms      []Room // first record of each room, in file order
	complete   int    // bytes up to and including the last newline
	lines      int    // complete lines
	duplicates int    // records that repeat an earlier one
}

// parseRoomRecords decodes the complete lines of data. A record that repeats
// an earlier room with the same version counts as a duplicate. Any other
// invalid record is an error that names path and line.
func parseRoomRecords(path string, data []byte) (roomRecords, error) {
	// firstSeen locates the first record of each room ID.
	type position struct{ index, line int }
	var parsed roomRecords
	firstSeen := make(map[string]position)
	for {
		end := bytes.IndexByte(data[parsed.complete:], '\n')
		if end < 0 {
			return parsed, nil
		}
		line := data[parsed.complete : parsed.complete+end]
		parsed.lines++
		parsed.complete += end + 1

		room, err := decodeRoomRecord(line)
		if err != nil {
			return roomRecords{}, fmt.Errorf("%s:%d: invalid room record: %w", path, parsed.lines, err)
		}
		first, seen := firstSeen[room.RoomID]
		if !seen {
			firstSeen[room.RoomID] = position{len(parsed.rooms), parsed.lines}
			parsed.rooms = append(parsed.rooms, room)
			continue
		}
		known := parsed.rooms[first.index]
		if known.Version != room.Version {
			return roomRecords{}, fmt.Errorf("%s:%d: room %s has version %q, but line %d records %q (expected one version per room)",
				path, parsed.lines, room.RoomID, room.Version, first.line, known.Version)
		}
		parsed.duplicates++
	}
}

// decodeRoomRecord decodes one line into a valid Room. Unknown fields and
// trailing data are errors.
func decodeRoomRecord(line []byte) (Room, error) {
	if len(bytes.TrimSpace(line)) == 0 {
		return Room{}, errors.New("empty line")
	}
	decoder := json.NewDecoder(bytes.NewReader(line))
	decoder.DisallowUnknownFields()
	var room Room
	if err := decoder.Decode(&room); err != nil {
		return Room{}, err
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return Room{}, errors.New("data after the JSON object")
	}
	if err := checkRoom(room); err != nil {
		return Room{}, err
	}
	return room, nil
}

// append writes r as one line and syncs the file.
func (rf *roomFile) append(r Room) error {
	if rf.failed != nil {
		return fmt.Errorf("rooms file %s not written since an earlier failure: %w", rf.path, rf.failed)
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode room record: %w", err)
	}
	line = append(line, '\n')

	if _, err := rf.file.Write(line); err != nil {
		// Cut off a partial record, so that the next one starts a line.
		if truncErr := rf.truncate(); truncErr != nil {
			rf.fail(truncErr)
		}
		return fmt.Errorf("append to rooms file: %w", err)
	}
	if err := rf.file.Sync(); err != nil {
		// After a failed fsync, Linux may have dropped the unsynced pages,
		// so nothing is known about the file's content any more.
		rf.fail(err)
		return fmt.Errorf("sync rooms file: %w", err)
	}
	rf.size += int64(len(line))
	return nil
}

// fail records err as the reason that append no longer writes.
func (rf *roomFile) fail(err error) {
	rf.failed = err
	rf.log.Error("rooms file disabled until restart", "path", rf.path, "err", err)
}

// truncate cuts the file back to the complete records and syncs it.
func (rf *roomFile) truncate() error {
	if err := rf.file.Truncate(rf.size); err != nil {
		return fmt.Errorf("truncate rooms file: %w", err)
	}
	if err := rf.file.Sync(); err != nil {
		return fmt.Errorf("sync rooms file: %w", err)
	}
	return nil
}

// rewrite replaces the file with one record per room, through a temporary
// file that is renamed over the old one.
func (rf *roomFile) rewrite(rooms []Room) error {
	var buf bytes.Buffer
	for _, room := range rooms {
		line, err := json.Marshal(room)
		if err != nil {
			return fmt.Errorf("encode room record: %w", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}

	tmp := rf.path + ".tmp"
	if err := writeFileSync(tmp, buf.Bytes()); err != nil {
		return err
	}
	if err := os.Rename(tmp, rf.path); err != nil {
		return fmt.Errorf("replace rooms file: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(rf.path)); err != nil {
		return err
	}

	file, err := os.OpenFile(rf.path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open rooms file: %w", err)
	}
	if err := rf.file.Close(); err != nil {
		rf.log.Warn("close replaced rooms file failed", "path", rf.path, "err", err)
	}
	rf.file = file
	rf.size = int64(buf.Len())
	return nil
}

func (rf *roomFile) close() error {
	if err := rf.file.Close(); err != nil {
		return fmt.Errorf("close rooms file: %w", err)
	}
	return nil
}

// writeFileSync creates or truncates path, writes data and syncs it.
func writeFileSync(path string, data []byte) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, err = file.Write(data)
	if err == nil {
		err = file.Sync()
	}
	if closeErr := file.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
