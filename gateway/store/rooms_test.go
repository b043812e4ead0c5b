package store

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var learnedAt = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newStateStore opens a store on dir and closes it at the end of the test.
func newStateStore(t *testing.T, dir string, log *slog.Logger) *Store {
	t.Helper()
	s, err := New(Options{StateDir: dir, Logger: log})
	if err != nil {
		t.Fatalf("New(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func learn(t *testing.T, s *Store, room Room) {
	t.Helper()
	added, err := s.LearnRoom(room)
	if err != nil {
		t.Fatalf("LearnRoom(%+v): %v", room, err)
	}
	if !added {
		t.Fatalf("LearnRoom(%+v) = false, want true", room)
	}
}

func TestLearnRoom(t *testing.T) {
	s := newTestStore(t)
	room := Room{RoomID: "!a:example.org", Version: "10", Source: SourceCreateEvent, LearnedAt: learnedAt}
	learn(t, s, room)

	got, ok := s.RoomVersion(room.RoomID)
	if !ok || got != room {
		t.Errorf("RoomVersion = %+v, %v, want %+v", got, ok, room)
	}

	again := room
	again.Source = SourceInvite
	added, err := s.LearnRoom(again)
	if err != nil || added {
		t.Errorf("LearnRoom of the same version = %v, %v, want false, nil", added, err)
	}
	if got, _ := s.RoomVersion(room.RoomID); got.Source != SourceCreateEvent {
		t.Errorf("Source after a repeated claim = %q, want %q", got.Source, SourceCreateEvent)
	}
}

func TestLearnRoomConflict(t *testing.T) {
	s := newTestStore(t)
	learn(t, s, Room{RoomID: "!a:example.org", Version: "10", Source: SourceCreateEvent})

	added, err := s.LearnRoom(Room{RoomID: "!a:example.org", Version: "1", Source: SourceInvite})
	if added {
		t.Error("LearnRoom of a conflicting version = true, want false")
	}
	if !errors.Is(err, ErrRoomVersionConflict) {
		t.Fatalf("LearnRoom error = %v, want ErrRoomVersionConflict", err)
	}
	want := `room !a:example.org: invite claims version "1", but version "10" is recorded from create_event: room version conflict`
	if err.Error() != want {
		t.Errorf("LearnRoom error:\n got %s\nwant %s", err, want)
	}
	if got, _ := s.RoomVersion("!a:example.org"); got.Version != "10" {
		t.Errorf("version after conflict = %q, want 10", got.Version)
	}
}

func TestLearnRoomSetsLearnedAt(t *testing.T) {
	s := newTestStore(t)
	before := time.Now()
	learn(t, s, Room{RoomID: "!a:example.org", Version: "10", Source: SourceMakeJoin})
	got, _ := s.RoomVersion("!a:example.org")
	if got.LearnedAt.Before(before) || got.LearnedAt.After(time.Now()) {
		t.Errorf("LearnedAt = %v, want a time since %v", got.LearnedAt, before)
	}
}

func TestLearnRoomInvalid(t *testing.T) {
	long := "!" + strings.Repeat("a", 255)
	tests := []struct {
		name string
		room Room
		want string
	}{
		{"missing bang", Room{RoomID: "a:example.org", Version: "10", Source: SourceSeed},
			`learn room: invalid room ID "a:example.org" (expected '!' and an opaque ID, such as "!abc:example.org")`},
		{"bang only", Room{RoomID: "!", Version: "10", Source: SourceSeed},
			`learn room: invalid room ID "!" (expected '!' and an opaque ID, such as "!abc:example.org")`},
		{"too long", Room{RoomID: long, Version: "10", Source: SourceSeed},
			`learn room: room ID is 256 bytes (expected at most 255)`},
		{"control character", Room{RoomID: "!a\nb", Version: "10", Source: SourceSeed},
			`learn room: room ID "!a\nb" contains space or control character U+000A`},
		{"invalid utf-8", Room{RoomID: "!a\xff", Version: "10", Source: SourceSeed},
			`learn room: room ID "!a\xff" is not valid UTF-8`},
		{"empty version", Room{RoomID: "!a:b", Version: "", Source: SourceSeed},
			`learn room: room !a:b: invalid room version "" (expected 1 to 32 characters of a-z, 0-9, '.' and '-', such as "10")`},
		{"upper-case version", Room{RoomID: "!a:b", Version: "V10", Source: SourceSeed},
			`learn room: room !a:b: invalid room version "V10" (expected 1 to 32 characters of a-z, 0-9, '.' and '-', such as "10")`},
		{"long version", Room{RoomID: "!a:b", Version: strings.Repeat("1", 33), Source: SourceSeed},
			`learn room: room !a:b: invalid room version "` + strings.Repeat("1", 33) +
				`" (expected 1 to 32 characters of a-z, 0-9, '.' and '-', such as "10")`},
		{"unknown source", Room{RoomID: "!a:b", Version: "10", Source: "gossip"},
			`learn room: room !a:b: unknown source "gossip"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			added, err := s.LearnRoom(tt.room)
			if err == nil || added {
				t.Fatalf("LearnRoom = %v, %v, want false and an error", added, err)
			}
			if err.Error() != tt.want {
				t.Errorf("LearnRoom error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func TestLearnRoomValidVersions(t *testing.T) {
	s := newTestStore(t)
	for i, version := range []string{"1", "12", "org.example.custom-1", strings.Repeat("a", 32)} {
		learn(t, s, Room{RoomID: "!r" + string(rune('a'+i)) + ":b", Version: version, Source: SourceStored})
	}
}

// TestLearnRoomConcurrentClaims checks that of many concurrent claims with
// different versions exactly one is recorded and all others conflict.
func TestLearnRoomConcurrentClaims(t *testing.T) {
	s := newStateStore(t, t.TempDir(), nil)
	versions := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	winners, conflicts := 0, 0
	for _, version := range versions {
		wg.Go(func() {
			added, err := s.LearnRoom(Room{RoomID: "!contested:b", Version: version, Source: SourceInvite})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case added && err == nil:
				winners++
			case errors.Is(err, ErrRoomVersionConflict):
				conflicts++
			default:
				t.Errorf("LearnRoom(version %s) = %v, %v", version, added, err)
			}
		})
	}
	wg.Wait()
	if winners != 1 || conflicts != len(versions)-1 {
		t.Errorf("winners = %d, conflicts = %d, want 1 and %d", winners, conflicts, len(versions)-1)
	}
}

func TestRoomsPersistAcrossRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "nested")
	first, err := New(Options{StateDir: dir})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rooms := []Room{
		{RoomID: "!a:example.org", Version: "10", Source: SourceCreateEvent, LearnedAt: learnedAt},
		{RoomID: "!b:example.org", Version: "1", Source: SourceSendJoin, LearnedAt: learnedAt.Add(time.Second)},
	}
	for _, room := range rooms {
		learn(t, first, room)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	second := newStateStore(t, dir, nil)
	for _, room := range rooms {
		got, ok := second.RoomVersion(room.RoomID)
		if !ok {
			t.Errorf("RoomVersion(%s) after restart found nothing", room.RoomID)
			continue
		}
		if got != room {
			t.Errorf("RoomVersion(%s) after restart = %+v, want %+v", room.RoomID, got, room)
		}
	}
	added, err := second.LearnRoom(Room{RoomID: "!a:example.org", Version: "11", Source: SourceInvite})
	if added || !errors.Is(err, ErrRoomVersionConflict) {
		t.Errorf("conflicting claim after restart = %v, %v, want false and ErrRoomVersionConflict", added, err)
	}

	data, err := os.ReadFile(filepath.Join(dir, roomFileName))
	if err != nil {
		t.Fatalf("read rooms file: %v", err)
	}
	want := `{"room_id":"!a:example.org","room_version":"10","source":"create_event","learned_at":"2026-03-01T12:00:00Z"}` + "\n" +
		`{"room_id":"!b:example.org","room_version":"1","source":"send_join","learned_at":"2026-03-01T12:00:01Z"}` + "\n"
	if string(data) != want {
		t.Errorf("rooms file:\n got %q\nwant %q", data, want)
	}
	info, err := os.Stat(filepath.Join(dir, roomFileName))
	if err != nil {
		t.Fatalf("stat rooms file: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("rooms file mode = %o, want 600", perm)
	}
}

const (
	recordA = `{"room_id":"!a:b","room_version":"10","source":"invite","learned_at":"2026-03-01T12:00:00Z"}`
	recordB = `{"room_id":"!b:b","room_version":"9","source":"invite","learned_at":"2026-03-01T12:00:00Z"}`
)

// writeRoomFile writes content as the rooms file of a new state directory
// and returns the directory.
func writeRoomFile(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, roomFileName), []byte(content), 0o600); err != nil {
		t.Fatalf("write rooms file: %v", err)
	}
	return dir
}

func TestRoomsTornLastLine(t *testing.T) {
	tests := []struct {
		name string
		tail string
	}{
		{"cut inside the record", recordB[:40]},
		{"cut before the newline", recordB},
		{"zero bytes", "\x00\x00\x00\x00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeRoomFile(t, recordA+"\n"+tt.tail)
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))

			s := newStateStore(t, dir, log)
			if _, ok := s.RoomVersion("!a:b"); !ok {
				t.Error("room !a:b of the complete line is missing")
			}
			if _, ok := s.RoomVersion("!b:b"); ok {
				t.Error("room !b:b of the torn line was loaded")
			}
			if !strings.Contains(logs.String(), `msg="torn last line in rooms file dropped"`) ||
				!strings.Contains(logs.String(), "line=2") {
				t.Errorf("log output %q lacks the torn line warning for line 2", logs.String())
			}

			learn(t, s, Room{RoomID: "!c:b", Version: "11", Source: SourceInvite, LearnedAt: learnedAt})
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			reopened := newStateStore(t, dir, nil)
			if got, ok := reopened.RoomVersion("!c:b"); !ok || got.Version != "11" {
				t.Errorf("RoomVersion(!c:b) after reopen = %+v, %v, want version 11", got, ok)
			}
		})
	}
}

func TestRoomsFileCorruption(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // FILE stands for the rooms file path
	}{
		{"invalid JSON in middle", recordA + "\n{not json\n" + recordB + "\n",
			"FILE:2: invalid room record: invalid character 'n' looking for beginning of object key string"},
		{"empty line", recordA + "\n\n" + recordB + "\n", "FILE:2: invalid room record: empty line"},
		{"unknown field", `{"room_id":"!a:b","room_version":"10","source":"invite","extra":1}` + "\n",
			`FILE:1: invalid room record: json: unknown field "extra"`},
		{"two objects on a line", recordA + recordB + "\n", "FILE:1: invalid room record: data after the JSON object"},
		{"invalid version", `{"room_id":"!a:b","room_version":"X","source":"invite"}` + "\n",
			`FILE:1: invalid room record: room !a:b: invalid room version "X" (expected 1 to 32 characters of a-z, 0-9, '.' and '-', such as "10")`},
		{"conflicting duplicate", recordA + "\n" + recordB + "\n" + strings.Replace(recordA, `"10"`, `"11"`, 1) + "\n",
			`FILE:3: room !a:b has version "11", but line 1 records "10" (expected one version per room)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeRoomFile(t, tt.content)
			s, err := New(Options{StateDir: dir})
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded, want error")
			}
			want := strings.ReplaceAll(tt.want, "FILE", filepath.Join(dir, roomFileName))
			if err.Error() != want {
				t.Errorf("New error:\n got %s\nwant %s", err, want)
			}
		})
	}
}

func TestRoomsFileCompaction(t *testing.T) {
	dir := writeRoomFile(t, recordA+"\n"+recordB+"\n"+recordA+"\n"+recordA+"\n")
	s := newStateStore(t, dir, nil)
	if _, ok := s.RoomVersion("!b:b"); !ok {
		t.Error("room !b:b missing after compaction")
	}
	learn(t, s, Room{RoomID: "!c:b", Version: "12", Source: SourceInvite, LearnedAt: learnedAt})

	data, err := os.ReadFile(filepath.Join(dir, roomFileName))
	if err != nil {
		t.Fatalf("read rooms file: %v", err)
	}
	want := recordA + "\n" + recordB + "\n" +
		`{"room_id":"!c:b","room_version":"12","source":"invite","learned_at":"2026-03-01T12:00:00Z"}` + "\n"
	if string(data) != want {
		t.Errorf("rooms file after compaction:\n got %q\nwant %q", data, want)
	}
	if _, err := os.Stat(filepath.Join(dir, roomFileName+".tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind: stat error %v", err)
	}
}

func TestLearnRoomWriteFailure(t *testing.T) {
	s := newStateStore(t, t.TempDir(), nil)
	// Close the file under the store to make the next write fail.
	if err := s.file.file.Close(); err != nil {
		t.Fatalf("close rooms file: %v", err)
	}

	added, err := s.LearnRoom(Room{RoomID: "!a:b", Version: "10", Source: SourceInvite})
	if added || err == nil {
		t.Fatalf("LearnRoom on a closed file = %v, %v, want false and an error", added, err)
	}
	if !errors.Is(err, os.ErrClosed) {
		t.Errorf("LearnRoom error = %v, want os.ErrClosed", err)
	}
	if _, ok := s.RoomVersion("!a:b"); ok {
		t.Error("room recorded although its write failed")
	}

	_, err = s.LearnRoom(Room{RoomID: "!b:b", Version: "10", Source: SourceInvite})
	if err == nil || !strings.Contains(err.Error(), "not written since an earlier failure") {
		t.Errorf("LearnRoom after a failure = %v, want the earlier-failure error", err)
	}
}

func TestSeedRooms(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		content string
	}{
		{"yaml", "seed.yaml", "- room_id: \"!a:b\"\n  room_version: \"10\"\n- room_id: \"!b:b\"\n  room_version: \"1\"\n"},
		{"json", "seed.json", `[{"room_id": "!a:b", "room_version": "10"}, {"room_id": "!b:b", "room_version": "1"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newStateStore(t, dir, nil)
			path := writeTestFile(t, tt.file, tt.content)
			if err := s.SeedRooms(path); err != nil {
				t.Fatalf("SeedRooms: %v", err)
			}
			for roomID, version := range map[string]string{"!a:b": "10", "!b:b": "1"} {
				got, ok := s.RoomVersion(roomID)
				if !ok || got.Version != version || got.Source != SourceSeed || got.LearnedAt.IsZero() {
					t.Errorf("RoomVersion(%s) = %+v, %v, want version %s from seed", roomID, got, ok, version)
				}
			}
			data, err := os.ReadFile(filepath.Join(dir, roomFileName))
			if err != nil {
				t.Fatalf("read rooms file: %v", err)
			}
			if len(data) != 0 {
				t.Errorf("rooms file after seeding = %q, want empty", data)
			}
		})
	}
}

func TestSeedRoomsKeepsLearned(t *testing.T) {
	s := newTestStore(t)
	learn(t, s, Room{RoomID: "!a:b", Version: "10", Source: SourceCreateEvent})
	path := writeTestFile(t, "seed.yaml", "- {room_id: \"!a:b\", room_version: \"10\"}\n")
	if err := s.SeedRooms(path); err != nil {
		t.Fatalf("SeedRooms: %v", err)
	}
	if got, _ := s.RoomVersion("!a:b"); got.Source != SourceCreateEvent {
		t.Errorf("Source = %q, want %q kept", got.Source, SourceCreateEvent)
	}
}

func TestSeedRoomsConflictAppliesNothing(t *testing.T) {
	s := newTestStore(t)
	learn(t, s, Room{RoomID: "!a:b", Version: "10", Source: SourceCreateEvent})
	path := writeTestFile(t, "seed.yaml", "- {room_id: \"!new:b\", room_version: \"9\"}\n- {room_id: \"!a:b\", room_version: \"11\"}\n")

	err := s.SeedRooms(path)
	if !errors.Is(err, ErrRoomVersionConflict) {
		t.Fatalf("SeedRooms error = %v, want ErrRoomVersionConflict", err)
	}
	want := path + `: room !a:b: seed claims version "11", but version "10" is recorded from create_event: room version conflict`
	if err.Error() != want {
		t.Errorf("SeedRooms error:\n got %s\nwant %s", err, want)
	}
	if _, ok := s.RoomVersion("!new:b"); ok {
		t.Error("room !new:b was seeded although the seed had a conflict")
	}
}

func TestSeedRoomsErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // FILE stands for the path
	}{
		{"room ID without bang", "- {room_id: a, room_version: \"10\"}\n",
			`FILE: [0]: room_id: invalid room ID "a" (expected '!' and an opaque ID, such as "!abc:example.org")`},
		{"missing room ID", "- {room_version: \"10\"}\n",
			`FILE: [0]: room_id: missing (expected a room ID such as "!abc:example.org")`},
		{"missing version", "- {room_id: \"!a:b\"}\n",
			`FILE: [0]: room !a:b: room_version: missing (expected a room version such as "10")`},
		{"invalid version", "- {room_id: \"!a:b\", room_version: \"10 \"}\n",
			`FILE: [0]: room !a:b: room_version: invalid room version "10 " (expected 1 to 32 characters of a-z, 0-9, '.' and '-', such as "10")`},
		{"conflicting duplicate", "- {room_id: \"!a:b\", room_version: \"10\"}\n- {room_id: \"!a:b\", room_version: \"9\"}\n",
			`FILE: [1]: room !a:b has version "9", but [0] gives "10" (expected one version per room)`},
		{"unknown field", "- {room_id: \"!a:b\", version: \"10\"}\n",
			"FILE: invalid room seed file (expected a list of {room_id, room_version}): yaml: unmarshal errors:\n" +
				"  line 1: field version not found in type store.seedRoom"},
		{"not a list", "room_id: \"!a:b\"\n",
			"FILE: invalid room seed file (expected a list of {room_id, room_version}): yaml: unmarshal errors:\n" +
				"  line 1: cannot unmarshal !!map into []store.seedRoom"},
		{"two documents", "[]\n---\n[]\n", "FILE: room seed file has more than one YAML document (expected one)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestStore(t)
			path := writeTestFile(t, "seed.yaml", tt.content)
			err := s.SeedRooms(path)
			if err == nil {
				t.Fatal("SeedRooms succeeded, want error")
			}
			if want := strings.ReplaceAll(tt.want, "FILE", path); err.Error() != want {
				t.Errorf("SeedRooms error:\n got %s\nwant %s", err, want)
			}
		})
	}
}

func TestSeedRoomsEmptyFile(t *testing.T) {
	s := newTestStore(t)
	if err := s.SeedRooms(writeTestFile(t, "seed.yaml", "")); err != nil {
		t.Errorf("SeedRooms of an empty file: %v", err)
	}
	if err := s.SeedRooms(writeTestFile(t, "seed.yaml", "[]\n")); err != nil {
		t.Errorf("SeedRooms of an empty list: %v", err)
	}
}
