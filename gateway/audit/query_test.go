package audit

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// queryRecord describes one record of the query test log.
type queryRecord struct {
	id, origin, destination, room, eventType, eduType, endpoint, direction string
	allow                                                                  bool
	action, errText                                                        string
	reasons                                                                []string
	minute                                                                 int // minutes after fixedClock
}

// queryRecords is the known set of records that the filters are tested on.
var queryRecords = []queryRecord{
	{id: "req-1", origin: "hs1.example.org", destination: "example.org", endpoint: "send", direction: "inbound",
		allow: true, action: decisionlog.ActionForward, minute: 0},
	{id: "pdu-1", origin: "hs1.example.org", destination: "example.org", room: "!a:hs1.example.org", eventType: "m.room.message",
		endpoint: "send", direction: "inbound", allow: true, action: decisionlog.ActionForward, reasons: []string{}, minute: 1},
	{id: "pdu-2", origin: "hs2.example.org", destination: "example.org", room: "!b:hs2.example.org", eventType: "com.example.forbidden",
		endpoint: "send", direction: "inbound", allow: false, action: decisionlog.ActionDenied,
		reasons: []string{"event type com.example.forbidden denied in restricted room"}, minute: 2},
	{id: "edu-1", origin: "hs2.example.org", destination: "example.org", room: "!b:hs2.example.org", eduType: "m.typing",
		endpoint: "send", direction: "inbound", allow: true, action: decisionlog.ActionWithheld, minute: 3},
	{id: "req-2", origin: "hs3.example.org", destination: "example.org", endpoint: "make_join", direction: "inbound",
		allow: false, action: decisionlog.ActionRejected, errText: "invalid signature (401 M_UNAUTHORIZED)", minute: 4},
	{id: "out-1", origin: "example.org", destination: "hs1.example.org", room: "!a:hs1.example.org", eventType: "m.room.message",
		endpoint: "send", direction: "outbound", allow: true, action: decisionlog.ActionForward, minute: 5},
	{id: "out-2", origin: "example.org", destination: "hs4.example.org", endpoint: "backfill", direction: "outbound",
		allow: false, action: decisionlog.ActionDenied, reasons: []string{"server hs4.example.org is not in the allow-list"}, minute: 6},
}

// writeQueryLog writes queryRecords to a new log, with a checkpoint after
// every 5 records, and returns its path.
func writeQueryLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	w := openWriter(t, decisionlog.Options{Path: path, Signer: newSigner(t)})
	for _, qr := range queryRecords {
		rec := &decisionlog.Record{
			DecisionID: qr.id,
			Timestamp:  fixedClock.Add(time.Duration(qr.minute) * time.Minute),
			Path:       "bordergate/pdu/decision",
			Matrix: &decisionlog.Matrix{
				Direction: qr.direction, Origin: qr.origin, Destination: qr.destination, Endpoint: qr.endpoint,
				RoomID: qr.room, EventType: qr.eventType, EDUType: qr.eduType,
			},
			Allow:  qr.allow,
			Action: qr.action,
			Error:  qr.errText,
			Result: map[string]any{"allow": qr.allow, "reasons": qr.reasons},
		}
		if err := w.Write(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// queryIDs runs a query with the JSON Lines output and returns the
// decision IDs of the records printed.
func queryIDs(t *testing.T, paths []string, filter Filter) []string {
	t.Helper()
	var out bytes.Buffer
	if _, err := Query(t.Context(), paths, QueryOptions{Filter: filter, Format: FormatJSONL}, &out); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for line := range strings.Lines(out.String()) {
		r, err := decodeRow([]byte(strings.TrimSuffix(line, "\n")))
		if err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		ids = append(ids, r.decisionID)
	}
	return ids
}

func TestQueryFilters(t *testing.T) {
	path := writeQueryLog(t)
	cases := []struct {
		name   string
		filter Filter
		want   []string
	}{
		{"no filter", Filter{}, []string{"req-1", "pdu-1", "pdu-2", "edu-1", "req-2", "out-1", "out-2"}},
		{"origin", Filter{Origins: []string{"hs2.example.org"}}, []string{"pdu-2", "edu-1"}},
		{"two origins", Filter{Origins: []string{"hs1.example.org", "hs3.example.org"}}, []string{"req-1", "pdu-1", "req-2"}},
		{"destination", Filter{Destinations: []string{"hs4.example.org"}}, []string{"out-2"}},
		{"room", Filter{Rooms: []string{"!a:hs1.example.org"}}, []string{"pdu-1", "out-1"}},
		{"event type", Filter{EventTypes: []string{"m.room.message"}}, []string{"pdu-1", "out-1"}},
		{"EDU type", Filter{EventTypes: []string{"m.typing"}}, []string{"edu-1"}},
		{"decision allow", Filter{Decision: DecisionAllow}, []string{"req-1", "pdu-1", "edu-1", "out-1"}},
		{"decision deny", Filter{Decision: DecisionDeny}, []string{"pdu-2", "req-2", "out-2"}},
		{"action", Filter{Actions: []string{decisionlog.ActionWithheld}}, []string{"edu-1"}},
		{"reason in reasons", Filter{Reason: "restricted room"}, []string{"pdu-2"}},
		{"reason in error", Filter{Reason: "invalid signature"}, []string{"req-2"}},
		{"reason pattern", Filter{ReasonPattern: regexp.MustCompile(`^server \S+ is not`)}, []string{"out-2"}},
		{"reason pattern on error", Filter{ReasonPattern: regexp.MustCompile(`M_UNAUTHORIZED\)$`)}, []string{"req-2"}},
		{"decision ID", Filter{DecisionIDs: []string{"edu-1", "out-1"}}, []string{"edu-1", "out-1"}},
		{"endpoint", Filter{Endpoints: []string{"make_join", "backfill"}}, []string{"req-2", "out-2"}},
		{"direction", Filter{Directions: []string{"outbound"}}, []string{"out-1", "out-2"}},
		{"since", Filter{Since: fixedClock.Add(5 * time.Minute)}, []string{"out-1", "out-2"}},
		{"until", Filter{Until: fixedClock.Add(2 * time.Minute)}, []string{"req-1", "pdu-1"}},
		{"time range", Filter{Since: fixedClock.Add(2 * time.Minute), Until: fixedClock.Add(4 * time.Minute)}, []string{"pdu-2", "edu-1"}},
		{"combined", Filter{Origins: []string{"hs2.example.org"}, Decision: DecisionDeny}, []string{"pdu-2"}},
		{"nothing", Filter{Origins: []string{"hs9.example.org"}}, nil},
		{"value appears only in input", Filter{Origins: []string{"example.org"}, Directions: []string{"inbound"}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := queryIDs(t, []string{path}, tc.filter); !slices.Equal(got, tc.want) {
				t.Errorf("records = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestQueryCheckpoints(t *testing.T) {
	path := writeQueryLog(t)
	var out bytes.Buffer
	opts := QueryOptions{Filter: Filter{Checkpoints: true, Actions: []string{decisionlog.ActionCheckpoint}}, Format: FormatCount}
	if _, err := Query(t.Context(), []string{path}, opts, &out); err != nil {
		t.Fatal(err)
	}
	// One checkpoint after 5 records and the final one.
	if got := out.String(); got != "2\n" {
		t.Errorf("checkpoint count = %q, want 2", got)
	}
}

func TestQueryJSONLinesAreTheFileLines(t *testing.T) {
	path := writeQueryLog(t)
	var out bytes.Buffer
	stats, err := Query(t.Context(), []string{path}, QueryOptions{Filter: Filter{Decision: DecisionDeny}, Format: FormatJSONL}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, line := range readLines(t, path) {
		if strings.Contains(line, `"decision_id":"pdu-2"`) || strings.Contains(line, `"decision_id":"req-2"`) ||
			strings.Contains(line, `"decision_id":"out-2"`) {
			want = append(want, line+"\n")
		}
	}
	if got := out.String(); got != strings.Join(want, "") {
		t.Errorf("output:\n%s\nwant the file lines:\n%s", got, strings.Join(want, ""))
	}
	if stats.Lines != 9 || stats.Matched != 3 || stats.Malformed != 0 {
		t.Errorf("stats = %+v, want 9 lines, 3 matched, 0 malformed", stats)
	}
}

func TestQueryTable(t *testing.T) {
	path := writeQueryLog(t)
	var out bytes.Buffer
	if _, err := Query(t.Context(), []string{path}, QueryOptions{Filter: Filter{DecisionIDs: []string{"pdu-2", "req-2"}}}, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("table has %d lines, want a header and 2 rows:\n%s", len(lines), out.String())
	}
	wantCells := [][]string{
		{"TIME", "DECISION", "ACTION", "STATUS", "DIR", "ORIGIN", "DESTINATION", "ENDPOINT", "ROOM", "TYPE", "DECISION_ID", "REASON"},
		{"2026-03-14T09:02:00.000Z", "deny", "denied", "-", "inbound", "hs2.example.org", "example.org", "send",
			"!b:hs2.example.org", "com.example.forbidden", "pdu-2", "event", "type", "com.example.forbidden", "denied", "in", "restricted", "room"},
		{"2026-03-14T09:04:00.000Z", "deny", "rejected", "-", "inbound", "hs3.example.org", "example.org", "make_join",
			"-", "-", "req-2", "invalid", "signature", "(401", "M_UNAUTHORIZED)"},
	}
	for i, want := range wantCells {
		if got := strings.Fields(lines[i]); !slices.Equal(got, want) {
			t.Errorf("table line %d = %q, want %q", i+1, got, want)
		}
	}
	if !strings.HasPrefix(lines[1][strings.Index(lines[0], "DECISION_ID"):], "pdu-2") {
		t.Errorf("columns are not aligned:\n%s", out.String())
	}
}

func TestQueryTableWithoutMatches(t *testing.T) {
	path := writeQueryLog(t)
	var out bytes.Buffer
	if _, err := Query(t.Context(), []string{path}, QueryOptions{Filter: Filter{Rooms: []string{"!none:x"}}}, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "no matching records\n" {
		t.Errorf("output = %q, want the no-match line", got)
	}
}

func TestQueryGzipAndMalformedLines(t *testing.T) {
	path := writeQueryLog(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A torn line in the middle, and a compressed copy.
	data = bytes.Replace(data, []byte("\n"), []byte("\n{\"decision_id\":\"torn\n"), 1)
	var compressed bytes.Buffer
	zw := gzip.NewWriter(&compressed)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	gzPath := filepath.Join(t.TempDir(), "old.jsonl.gz")
	if err := os.WriteFile(gzPath, compressed.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	stats, err := Query(t.Context(), []string{gzPath}, QueryOptions{Format: FormatCount, Workers: 3}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != "7\n" || stats.Malformed != 1 {
		t.Errorf("count %q with %d malformed lines, want 7 and 1", out.String(), stats.Malformed)
	}
}

func TestQueryTruncatedGzip(t *testing.T) {
	path := writeQueryLog(t)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var compressed bytes.Buffer
	zw := gzip.NewWriter(&compressed)
	_, _ = zw.Write(data)
	_ = zw.Close()
	gzPath := filepath.Join(t.TempDir(), "cut.jsonl.gz")
	if err := os.WriteFile(gzPath, compressed.Bytes()[:compressed.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = Query(t.Context(), []string{gzPath}, QueryOptions{Format: FormatCount}, &out)
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Errorf("Query of a truncated gzip file = %v, want an unexpected EOF error", err)
	}
}

func TestQueryManyFilesInOrder(t *testing.T) {
	dir := t.TempDir()
	w := openWriter(t, decisionlog.Options{
		Path:     filepath.Join(dir, "decisions.jsonl"),
		Rotation: decisionlog.Rotation{MaxBytes: 1500},
	})
	writeRecords(t, w, "r", 40)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	files := listFiles(t, dir)
	slices.Reverse(files)
	got := queryIDs(t, files, Filter{})
	if len(got) != 40 {
		t.Fatalf("%d records, want 40", len(got))
	}
	for i, id := range got {
		if want := fmt.Sprintf("r-%d", i+1); id != want {
			t.Fatalf("record %d = %s, want %s: files out of chain order", i, id, want)
		}
	}
}

func TestQueryInvalidOptions(t *testing.T) {
	path := writeQueryLog(t)
	cases := []struct {
		name string
		opts QueryOptions
		want string
	}{
		{"decision", QueryOptions{Filter: Filter{Decision: "maybe"}}, `query: invalid decision "maybe", want "allow" or "deny"`},
		{"format", QueryOptions{Format: "csv"}, `query: invalid format "csv", want table, jsonl or count`},
		{"empty range", QueryOptions{Filter: Filter{Since: fixedClock, Until: fixedClock}},
			"query: empty time range: since 2026-03-14T09:00:00Z is not before until 2026-03-14T09:00:00Z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Query(t.Context(), []string{path}, tc.opts, &bytes.Buffer{})
			if err == nil || err.Error() != tc.want {
				t.Errorf("Query error = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		{in: "2026-03-14T09:00:00Z", want: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)},
		{in: "2026-03-14T10:00:00+01:00", want: time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)},
		{in: "2026-03-13", want: time.Date(2026, 3, 13, 0, 0, 0, 0, time.UTC)},
		{in: "90m", want: now.Add(-90 * time.Minute)},
		{in: "-5m", wantErr: `invalid time "-5m": the duration must not be negative`},
		{in: "yesterday", wantErr: `invalid time "yesterday": write an RFC 3339 time (2026-03-14T09:00:00Z), a date (2026-03-14) or a duration before now (90m, 24h)`},
	}
	for _, tc := range cases {
		got, err := ParseTime(tc.in, now)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("ParseTime(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzDecodeRow(f *testing.F) {
	f.Add([]byte(`{"decision_id":"a","timestamp":"2026-03-14T09:00:00Z","matrix":{"origin":"x"},"allow":true,"result":{"reasons":["r"]}}`))
	f.Add([]byte(`{"matrix":[1,2],"result":"x"}`))
	f.Add([]byte(`{"a":`))
	f.Fuzz(func(t *testing.T, line []byte) {
		m, err := compile(Filter{Origins: []string{"x"}, Reason: "r"})
		if err != nil {
			t.Fatal(err)
		}
		if !m.mayMatch(line) {
			return
		}
		r, err := decodeRow(line)
		if err != nil {
			return
		}
		if m.matches(&r) && r.matrix["origin"] != "x" {
			t.Fatalf("line %q matched with origin %q", line, r.matrix["origin"])
		}
		_ = appendTableRow(nil, &r)
	})
}
