package decisionlog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// links returns the chain members of the lines of the file at path that
// have one, and fails the test when one does not match its hash or does
// not link to the one before.
func links(t *testing.T, path string) []Link {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []Link
	for i, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n")) {
		link, err := ParseLink(line)
		if err != nil {
			continue
		}
		if !link.Verify(line) {
			t.Errorf("line %d: hash does not match", i+1)
		}
		if n := len(out); n > 0 && (link.Seq != out[n-1].Seq+1 || link.Prev != out[n-1].Hash) {
			t.Errorf("line %d: seq %d does not link to seq %d", i+1, link.Seq, out[n-1].Seq)
		}
		out = append(out, link)
	}
	return out
}

// testSigner returns a Signer with a new key.
func testSigner(t *testing.T) *Signer {
	t.Helper()
	key, err := GenerateAuditKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func TestAppendLinkedParsesBack(t *testing.T) {
	var h head
	var buf []byte
	for i := range 3 {
		start := len(buf)
		buf, h = h.appendLinked(buf, []byte(`{"decision_id":"r`+strconv.Itoa(i)+`"}`+"\n"))
		line := buf[start : len(buf)-1]
		link, err := ParseLink(line)
		if err != nil {
			t.Fatalf("ParseLink(%s): %v", line, err)
		}
		if link.Seq != int64(i+1) || link.Hash != h.hash || !link.Verify(line) {
			t.Errorf("record %d: link %+v, head %+v", i, link, h)
		}
	}
	want := `{"decision_id":"r0","chain":{"seq":1,"prev":"` + strings.Repeat("0", 64) + `","hash":"`
	if !bytes.HasPrefix(buf, []byte(want)) {
		t.Errorf("first line = %s, want the prefix %s", buf, want)
	}
}

func TestParseLinkHostile(t *testing.T) {
	zeros := strings.Repeat("0", 64)
	tail := `,"prev":"` + zeros + `","hash":"` + zeros + `"}}`
	cases := []struct {
		name, line string
		want       string
	}{
		{"empty", ``, ErrNoChain.Error()},
		{"no chain", `{"decision_id":"a","allow":true}`, ErrNoChain.Error()},
		{"chain not last", `{"chain":{"seq":1,"prev":"` + zeros + `","hash":"` + zeros + `"},"x":1}`, ErrNoChain.Error()},
		{"missing seq", `{"a":1,"chain":{"seq":` + tail, `invalid chain sequence number ""`},
		{"zero seq", `{"a":1,"chain":{"seq":0` + tail, `invalid chain sequence number "0"`},
		{"leading zero", `{"a":1,"chain":{"seq":01` + tail, `invalid chain sequence number "01"`},
		{"negative seq", `{"a":1,"chain":{"seq":-1` + tail, ErrNoChain.Error()},
		{"seq too long", `{"a":1,"chain":{"seq":1234567890123456789` + tail, `invalid chain sequence number "1234567890123456789"`},
		{"upper-case hex", `{"a":1,"chain":{"seq":1,"prev":"` + strings.Repeat("A", 64) + `","hash":"` + zeros + `"}}`,
			"invalid chain member: prev and hash must be 64 lowercase hex digits"},
		{"short hash", `{"a":1,"chain":{"seq":1,"prev":"` + zeros + `","hash":"` + zeros[:63] + `"}}`, ErrNoChain.Error()},
		{"keys swapped", `{"a":1,"chain":{"seq":1,"hash":"` + zeros + `","prev":"` + zeros + `"}}`, ErrNoChain.Error()},
		{"space inside", `{"a":1,"chain":{"seq": 1` + tail, ErrNoChain.Error()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLink([]byte(tc.line))
			if err == nil || err.Error() != tc.want {
				t.Errorf("ParseLink(%q) error = %v, want %q", tc.line, err, tc.want)
			}
		})
	}
}

func FuzzParseLink(f *testing.F) {
	var h head
	line, _ := h.appendLinked(nil, []byte(`{"decision_id":"a"}`+"\n"))
	f.Add(line[:len(line)-1])
	f.Add([]byte(`{"chain":{"seq":1}}`))
	f.Add([]byte(`,"chain":{"seq":9,"prev":"","hash":""}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		link, err := ParseLink(line)
		if err != nil {
			return
		}
		if link.Seq < 1 {
			t.Fatalf("seq %d accepted", link.Seq)
		}
		// The line ends in exactly the member that was parsed.
		rebuilt, _ := head{seq: link.Seq - 1, hash: link.Prev}.appendLinked(nil, []byte("{}\n"))
		member := rebuilt[1 : len(rebuilt)-1-len(chainEnd)-hashHexLen]
		if !bytes.Equal(line[link.HashedLen-len(member):link.HashedLen], member) {
			t.Fatalf("parsed %+v from %q, which does not end in %q", link, line, member)
		}
		if got := line[link.HashedLen : link.HashedLen+hashHexLen]; string(got) != link.Hash.String() {
			t.Fatalf("hash %s parsed from %q", link.Hash, got)
		}
	})
}

func TestParseStateHostile(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	cases := []struct {
		name, data, want string
	}{
		{"not JSON", `seq=1`, "invalid content: invalid character 's' looking for beginning of value"},
		{"trailing data", `{"seq":1,"hash":"` + hash + `"}{}`, "invalid content: unexpected data after the JSON object"},
		{"unknown field", `{"seq":1,"hash":"` + hash + `","x":1}`, `invalid content: json: unknown field "x"`},
		{"zero seq", `{"seq":0,"hash":"` + hash + `"}`, "invalid seq 0, want at least 1"},
		{"bad hash", `{"seq":3,"hash":"xyz"}`, `invalid hash "xyz", want 64 lowercase hex digits`},
		{"torn", `{"seq":3,"ha`, "invalid content: unexpected EOF"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parseState([]byte(tc.data))
			if err == nil || err.Error() != tc.want {
				t.Errorf("parseState(%q) error = %v, want %q", tc.data, err, tc.want)
			}
		})
	}
	h, stopped, err := parseState([]byte(`{"seq":42,"hash":"` + hash + "\"}\n"))
	if err != nil || h.seq != 42 || h.hash.String() != hash || stopped {
		t.Errorf("parseState of a valid state = %+v, stopped %v, %v", h, stopped, err)
	}
	h, stopped, err = parseState([]byte(`{"seq":42,"hash":"` + hash + `","stopped":true}` + "\n"))
	if err != nil || h.seq != 42 || !stopped {
		t.Errorf("parseState of the state of a clean stop = %+v, stopped %v, %v", h, stopped, err)
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"seq":42,"hash":"` + strings.Repeat("ab", 32) + `"}`))
	f.Add([]byte(`{"seq":-1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _, err := parseState(data)
		if err != nil {
			return
		}
		if h.seq < 1 {
			t.Fatalf("seq %d accepted", h.seq)
		}
	})
}

func TestCheckpointSignature(t *testing.T) {
	signer := testSigner(t)
	cp := signer.sign(head{seq: 7, hash: Hash{1, 2, 3}}, time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC))
	if err := cp.VerifySignature(signer.PublicKey()); err != nil {
		t.Fatalf("VerifySignature: %v", err)
	}
	wantStatement := "bordergate audit checkpoint v1\nseq 7\nhash " + cp.Hash + "\ntime 2026-03-14T09:00:00Z\nkey_id " + signer.KeyID() + "\n"
	if got := string(cp.Statement()); got != wantStatement {
		t.Errorf("statement = %q, want %q", got, wantStatement)
	}

	other := testSigner(t)
	altered := *cp
	altered.Seq = 8
	cases := []struct {
		name string
		cp   Checkpoint
		key  *Signer
		want string
	}{
		{"other key", *cp, other, `checkpoint names key "` + signer.KeyID() + `", not the key "` + other.KeyID() + `"`},
		{"altered seq", altered, signer, "checkpoint signature does not verify"},
		{"signature not base64", Checkpoint{KeyID: signer.KeyID(), Signature: "!!"}, signer, "checkpoint signature is not a base64 Ed25519 signature"},
	}
	for _, tc := range cases {
		if err := tc.cp.VerifySignature(tc.key.PublicKey()); err == nil || err.Error() != tc.want {
			t.Errorf("%s: VerifySignature = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadAuditKey(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath := filepath.Join(dir, "audit.key"), filepath.Join(dir, "audit.pub")
	keyID, err := WriteAuditKeyFiles(keyPath, pubPath, false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := LoadAuditKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParseVerifyKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	if KeyID(pub) != keyID || !pub.Equal(key.Public()) {
		t.Errorf("public key file does not match the key %s", keyID)
	}
	if _, err := WriteAuditKeyFiles(keyPath, "", false); !errors.Is(err, os.ErrExist) {
		t.Errorf("WriteAuditKeyFiles over an existing key = %v, want os.ErrExist", err)
	}

	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	want := "load audit key " + keyPath + ": mode 0644 gives other users access; run chmod 0600 " + keyPath
	if _, err := LoadAuditKey(keyPath); err == nil || err.Error() != want {
		t.Errorf("LoadAuditKey of a readable key = %v, want %q", err, want)
	}

	hostile := []struct {
		name, data, want string
	}{
		{"not PEM", "ed25519 a_bcd xyz", `no PEM "PRIVATE KEY" block; create the key with bordergate audit keygen or openssl genpkey -algorithm ed25519`},
		{"public key", string(pubPEM), `no PEM "PRIVATE KEY" block; create the key with bordergate audit keygen or openssl genpkey -algorithm ed25519`},
		{"garbage DER", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "invalid PKCS #8 private key"},
	}
	for _, tc := range hostile {
		if _, err := ParseAuditKey([]byte(tc.data)); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: ParseAuditKey = %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestWriterCheckpointEveryRecords(t *testing.T) {
	signer := testSigner(t)
	w, path := openTest(t, Options{Signer: signer, CheckpointRecords: 3, CheckpointInterval: -1}, nil)
	for i := range 7 {
		if err := w.Write(t.Context(), testRecord(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	records := readRecords(t, path)
	var checkpoints []int
	for i, rec := range records {
		if rec.Path == CheckpointPath {
			checkpoints = append(checkpoints, i+1)
			if err := rec.Checkpoint.VerifySignature(signer.PublicKey()); err != nil {
				t.Errorf("checkpoint at line %d: %v", i+1, err)
			}
			if rec.Checkpoint.Seq != rec.Chain.Seq-1 || rec.Checkpoint.Hash != records[i-1].Chain.Hash {
				t.Errorf("checkpoint at line %d covers seq %d, want the record before it", i+1, rec.Checkpoint.Seq)
			}
			if rec.Action != ActionCheckpoint || !rec.Allow {
				t.Errorf("checkpoint at line %d: action %q allow %v", i+1, rec.Action, rec.Allow)
			}
		}
	}
	// After records 3 and 6, and the final one after record 7.
	if want := []int{4, 8, 10}; !slices.Equal(checkpoints, want) {
		t.Errorf("checkpoints at lines %v, want %v", checkpoints, want)
	}
	if n := len(links(t, path)); n != 10 {
		t.Errorf("%d chained lines, want 10", n)
	}
}

func TestWriterCheckpointInterval(t *testing.T) {
	signer := testSigner(t)
	w, path := openTest(t, Options{Signer: signer, CheckpointRecords: -1, CheckpointInterval: 20 * time.Millisecond}, nil)
	if err := w.Write(t.Context(), testRecord("r1")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if records := readRecords(t, path); len(records) == 2 {
			if records[1].Path != CheckpointPath {
				t.Fatalf("second record has path %q, want a checkpoint", records[1].Path)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no timed checkpoint after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// No records since, so no further checkpoint.
	time.Sleep(60 * time.Millisecond)
	if n := len(readRecords(t, path)); n != 2 {
		t.Errorf("file has %d records while idle, want 2", n)
	}
}

func TestWriterRejectsCheckpointRecords(t *testing.T) {
	w, _ := openTest(t, Options{}, nil)
	for _, rec := range []*Record{
		{Path: CheckpointPath},
		{Path: "bordergate/pdu/decision", Checkpoint: &Checkpoint{Seq: 1}},
	} {
		err := w.Write(t.Context(), rec)
		if err == nil || !strings.Contains(err.Error(), "reserved for the writer's own checkpoints") {
			t.Errorf("Write of a checkpoint-like record = %v, want it rejected", err)
		}
	}
}

func TestWriterIgnoresCallerChain(t *testing.T) {
	w, path := openTest(t, Options{}, nil)
	rec := testRecord("r1")
	rec.Chain = &Chain{Seq: 99, Prev: "x", Hash: "y"}
	if err := w.Write(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := links(t, path); len(got) != 1 || got[0].Seq != 1 {
		t.Errorf("links = %+v, want one record with seq 1", got)
	}
}

func TestWriterPartialWriteKeepsCompleteRecordsInChain(t *testing.T) {
	gate := newSyncGate()
	var firstLen int
	opener := &faultOpener{configure: func(f *faultFile) {
		f.failTruncate = true
		f.beforeSync = func(call int) error {
			if call == 1 {
				gate.hold()
			}
			return nil
		}
		f.failWrite = func(call int) int {
			if call == 2 {
				return firstLen + 10 // one whole record and part of the next
			}
			return -1
		}
	}}
	w, path := openTest(t, Options{}, opener)
	t.Cleanup(gate.release)

	// Records a and b have the same length, so that whichever is first
	// in the batch is whole in the file.
	fixed := func(id string) *Record {
		rec := testRecord(id)
		rec.Timestamp = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
		return rec
	}
	done := make(chan error, 3)
	go func() { done <- w.Write(t.Context(), testRecord("first")) }()
	gate.waitReached(t)
	line, err := w.encode(fixed("a"))
	if err != nil {
		t.Fatal(err)
	}
	firstLen = len(line) + len(chainPrefix) + 1 + chainTailLen
	go func() { done <- w.Write(t.Context(), fixed("a")) }()
	go func() { done <- w.Write(t.Context(), fixed("b")) }()
	waitQueued(t, w, 2)
	gate.release()
	for range 3 {
		<-done
	}
	if err := w.Write(t.Context(), testRecord("after")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	got := links(t, path)
	if len(got) != 3 || got[2].Seq != 3 {
		t.Errorf("chained records = %+v, want first, the whole one of a and b, and after, with seq 1-3", got)
	}
}

func TestOpenWithUnreadableState(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "chain.json")
	if err := os.WriteFile(state, []byte(`{"seq":`), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "decisions.jsonl")

	_, err := Open(Options{Path: path, StatePath: state})
	if err == nil || !strings.Contains(err.Error(), "remove the state file to start a new chain") {
		t.Fatalf("Open with an unreadable state and no log = %v, want an error with the fix", err)
	}

	w, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(t.Context(), testRecord("r1")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The log file has a head now, so the state file is rewritten from it.
	w, err = Open(Options{Path: path, StatePath: state})
	if err != nil {
		t.Fatalf("Open with an unreadable state and a chained log: %v", err)
	}
	if err := w.Write(t.Context(), testRecord("r2")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := links(t, path); len(got) != 2 {
		t.Errorf("%d chained records, want 2", len(got))
	}
	data, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if h, stopped, err := parseState(data); err != nil || h.seq != 2 || !stopped {
		t.Errorf("state after Close = %q (%v), want seq 2 marked as a clean stop", data, err)
	}
}

func TestLastLinkSkipsTornLines(t *testing.T) {
	var h head
	var buf []byte
	buf, h = h.appendLinked(buf, []byte(`{"decision_id":"a"}`+"\n"))
	buf, h = h.appendLinked(buf, []byte(`{"decision_id":"b"}`+"\n"))
	cases := []struct {
		name, tail string
	}{
		{"torn tail", `{"decision_id":"c`},
		{"torn line then torn tail", "{\"decision\n{\"x"},
		{"torn line", "{\"decision_id\":\"cut\n"},
	}
	for _, tc := range cases {
		data := append(append([]byte(nil), buf...), tc.tail...)
		got, err := lastLink(bytes.NewReader(data), int64(len(data)), MaxRecordBytes)
		if err != nil || !got.chained || !got.verified || got.link.Seq != 2 || got.link.Hash != h.hash {
			t.Errorf("%s: lastLink = %+v, %v; want record b with seq 2", tc.name, got, err)
		}
	}
}

// A Writer that stopped cleanly ended the file with a checkpoint and
// synced the head to the state file. Records found after that head at the
// next start were added while it was stopped: continuing the chain from
// them would put the next checkpoint's signature over them.
func TestOpenIgnoresRecordsAddedWhileStopped(t *testing.T) {
	cases := []struct {
		name string
		// forge appends chained lines to lines, the file as the Writer
		// left it, and returns the new content.
		forge func(t *testing.T, lines [][]byte) []byte
	}{
		{
			name: "record appended after the final checkpoint",
			forge: func(t *testing.T, lines [][]byte) []byte {
				last, err := ParseLink(lines[len(lines)-1])
				if err != nil {
					t.Fatal(err)
				}
				h := head{seq: last.Seq, hash: last.Hash}
				data := bytes.Join(lines, []byte("\n"))
				data = append(data, '\n')
				data, _ = h.appendLinked(data, []byte(`{"decision_id":"forged","allow":true}`+"\n"))
				return data
			},
		},
		{
			name: "final checkpoint replaced by a record",
			forge: func(t *testing.T, lines [][]byte) []byte {
				last, err := ParseLink(lines[len(lines)-1])
				if err != nil {
					t.Fatal(err)
				}
				h := head{seq: last.Seq - 1, hash: last.Prev}
				data := bytes.Join(lines[:len(lines)-1], []byte("\n"))
				data = append(data, '\n')
				data, _ = h.appendLinked(data, []byte(`{"decision_id":"forged","allow":true}`+"\n"))
				return data
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "decisions.jsonl")
			opts := Options{Path: path, StatePath: filepath.Join(dir, "state", "chain.json"), Signer: testSigner(t)}
			w, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"r1", "r2"} {
				if err := w.Write(t.Context(), testRecord(id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			written := links(t, path)
			stopped := written[len(written)-1]

			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
			if err := os.WriteFile(path, tc.forge(t, lines), 0o640); err != nil {
				t.Fatal(err)
			}

			w, err = Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(t.Context(), testRecord("r3")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			raw, err = os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var next Link
			for _, line := range bytes.Split(raw, []byte("\n")) {
				if bytes.Contains(line, []byte(`"decision_id":"r3"`)) {
					if next, err = ParseLink(line); err != nil {
						t.Fatal(err)
					}
				}
			}
			if next.Seq != stopped.Seq+1 || next.Prev != stopped.Hash {
				t.Errorf("record after the restart has seq %d and prev %s; want seq %d linking to the head of the clean stop, %s",
					next.Seq, next.Prev, stopped.Seq+1, stopped.Hash)
			}
		})
	}
}
