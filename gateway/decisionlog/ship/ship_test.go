package ship

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/decisionlog"
	"github.com/bordergate/bordergate/gateway/telemetry"
)

// testShipper starts a Shipper to url with short delays, buffering in
// dir. change, when set, adjusts the configuration first.
func testShipper(t *testing.T, url, dir string, change func(*Config)) (*Shipper, *telemetry.Metrics) {
	t.Helper()
	metrics, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		URL:           url,
		Dir:           dir,
		Sync:          true,
		FlushInterval: 20 * time.Millisecond,
		Timeout:       2 * time.Second,
		MinRetryDelay: 10 * time.Millisecond,
		MaxRetryDelay: 100 * time.Millisecond,
		Metrics:       metrics,
	}
	if change != nil {
		change(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, metrics
}

// hand passes lines to s in batches of batch lines.
func hand(s *Shipper, lines [][]byte, batch int) {
	for start := 0; start < len(lines); start += batch {
		s.Committed(joinLines(lines[start:min(start+batch, len(lines))]))
	}
}

// wantEvents checks that events are lines, byte for byte, in order.
func wantEvents(t *testing.T, events []json.RawMessage, lines [][]byte) {
	t.Helper()
	if len(events) != len(lines) {
		t.Fatalf("collector holds %d events, want %d", len(events), len(lines))
	}
	for i, event := range events {
		if want := bytes.TrimSuffix(lines[i], []byte{'\n'}); !bytes.Equal(event, want) {
			t.Fatalf("event %d = %s, want the record as written: %s", i, event, want)
		}
	}
}

func TestShipDelivers(t *testing.T) {
	c := newCollector(t, nil, nil)
	s, metrics := testShipper(t, c.url(), t.TempDir(), nil)
	lines := records("r", 50, 200)
	hand(s, lines, 7)
	wantEvents(t, c.waitFor(len(lines), 10*time.Second), lines)
	waitMetric(t, metrics, "bordergate_decision_log_shipped_total", "50")
}

// waitMetric waits until the counter series has the value want.
func waitMetric(t *testing.T, m *telemetry.Metrics, series, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, m, series) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %s, want %s", series, metricValue(t, m, series), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShipBatchesBySize(t *testing.T) {
	c := newCollector(t, nil, nil)
	s, _ := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) {
		cfg.MaxBatchBytes = 4096
		cfg.FlushInterval = time.Hour
	})
	lines := records("size", 40, 1000)
	hand(s, lines, 40)
	// Everything goes although the flush interval never ends, because
	// the full batches go at once; the last partial one waits.
	events := c.waitFor(36, 10*time.Second)
	if got := c.requestCount(); got < 9 {
		t.Errorf("%d uploads for 40 records of 1000 bytes with 4096-byte batches, want at least 9", got)
	}
	wantEvents(t, events, lines[:len(events)])
}

func TestShipBatchesByTime(t *testing.T) {
	c := newCollector(t, nil, nil)
	s, _ := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) { cfg.FlushInterval = 300 * time.Millisecond })
	start := time.Now()
	lines := records("time", 3, 100)
	hand(s, lines, 1)
	wantEvents(t, c.waitFor(3, 10*time.Second), lines)
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		t.Errorf("records shipped after %s, want them held for the 300ms flush interval", elapsed)
	}
	if got := c.requestCount(); got != 1 {
		t.Errorf("%d uploads, want 1 batch of the 3 records", got)
	}
}

func TestShipCollectorDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connections are refused

	s, metrics := testShipper(t, "http://"+addr, t.TempDir(), nil)
	lines := records("down", 30, 300)
	hand(s, lines[:20], 5)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, metrics, `bordergate_decision_log_shipping_failures_total{reason="network"}`) == "0" {
		if time.Now().After(deadline) {
			t.Fatal("no failed upload counted while the collector is down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	hand(s, lines[20:], 5)

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken by another process before the collector restarted: %v", addr, err)
	}
	c := newCollector(t, ln, nil)
	wantEvents(t, c.waitFor(len(lines), 10*time.Second), lines)
	if got := metricValue(t, metrics, `bordergate_decision_log_shipping_dropped_total{reason="buffer_full"}`); got != "0" {
		t.Errorf("dropped = %s, want 0", got)
	}
}

func TestShipRetriesServerErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		reason string
	}{
		{"service unavailable", http.StatusServiceUnavailable, "server_error"},
		{"internal error", http.StatusInternalServerError, "server_error"},
		{"too many requests", http.StatusTooManyRequests, "server_error"},
		{"unauthorized", http.StatusUnauthorized, "client_error"},
		{"not found", http.StatusNotFound, "client_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(t, nil, nil)
			failures := 3
			c.setAnswer(func([]json.RawMessage) int {
				if failures > 0 {
					failures--
					return tt.status
				}
				return 0
			})
			s, metrics := testShipper(t, c.url(), t.TempDir(), nil)
			lines := records("retry", 10, 100)
			hand(s, lines, 10)
			wantEvents(t, c.waitFor(len(lines), 10*time.Second), lines)
			series := `bordergate_decision_log_shipping_failures_total{reason="` + tt.reason + `"}`
			if got := metricValue(t, metrics, series); got != "3" {
				t.Errorf("%s = %s, want 3", series, got)
			}
		})
	}
}

func TestShipIsolatesRejectedRecord(t *testing.T) {
	c := newCollector(t, nil, nil)
	c.setAnswer(func(events []json.RawMessage) int {
		for _, event := range events {
			if bytes.Contains(event, []byte(`"reject-13"`)) {
				return http.StatusBadRequest
			}
		}
		return 0
	})
	s, metrics := testShipper(t, c.url(), t.TempDir(), nil)
	lines := records("reject", 30, 100)
	hand(s, lines, 30)

	want := slices.Concat(lines[:13], lines[14:])
	wantEvents(t, c.waitFor(len(want), 10*time.Second), want)
	waitMetric(t, metrics, `bordergate_decision_log_shipping_dropped_total{reason="rejected"}`, "1")
}

func TestShipTimeoutRetried(t *testing.T) {
	c := newCollector(t, nil, nil)
	hold := make(chan struct{})
	c.setHold(hold)
	s, metrics := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) { cfg.Timeout = 100 * time.Millisecond })
	lines := records("slow", 5, 100)
	hand(s, lines, 5)
	waitMetric(t, metrics, `bordergate_decision_log_shipping_failures_total{reason="timeout"}`, "2")
	c.release()
	// An upload that the collector accepted just as the client gave up is
	// sent again, so the collector may hold some records twice.
	events := c.waitFor(len(lines), 10*time.Second)
	got := slices.Compact(slices.Sorted(slices.Values(decisionIDs(t, events))))
	want := slices.Sorted(slices.Values(decisionIDs(t, rawEvents(lines))))
	if !slices.Equal(got, want) {
		t.Errorf("decision IDs received = %q, want %q", got, want)
	}
}

// rawEvents returns lines as the events a collector decodes from them.
func rawEvents(lines [][]byte) []json.RawMessage {
	out := make([]json.RawMessage, len(lines))
	for i, line := range lines {
		out[i] = bytes.TrimSuffix(line, []byte{'\n'})
	}
	return out
}

// TestShipStalledCollectorDoesNotDelayWrites writes through a real
// decision log while the collector holds every upload.
func TestShipStalledCollectorDoesNotDelayWrites(t *testing.T) {
	c := newCollector(t, nil, nil)
	c.setHold(make(chan struct{}))
	s, _ := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) { cfg.Timeout, cfg.CloseTimeout = time.Hour, 50*time.Millisecond })
	w, err := decisionlog.Open(decisionlog.Options{
		Path:      filepath.Join(t.TempDir(), "decisions.jsonl"),
		Committed: s.Committed,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()

	var slowest time.Duration
	for i := range 200 {
		rec := decisionlog.NewRecord("bordergate/pdu/decision")
		rec.Input = map[string]any{"n": i}
		start := time.Now()
		if err := w.Write(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(start))
	}
	// A held upload never ends, so a Write that waited for it would not
	// return at all; one second leaves room for a slow fsync.
	if slowest > time.Second {
		t.Errorf("slowest Write took %s while the collector stalls, want well under a second", slowest)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.requestCount() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no upload reached the stalled collector")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestShipBufferFullDropsOldest(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	s, metrics := testShipper(t, "http://"+addr, t.TempDir(), func(cfg *Config) {
		cfg.MaxBufferBytes = MinBufferBytes
		cfg.Sync = false
		cfg.Timeout = 30 * time.Second
	})
	lines := records("full", 2000, 4096) // about 8 MiB for a 4 MiB buffer
	for i := range lines {
		s.Committed(lines[i])
		if i%100 == 99 {
			// Let the buffer goroutine keep up, so that drops happen in
			// the buffer on disk rather than in memory.
			waitBuffered(t, s)
		}
	}
	waitBuffered(t, s)
	droppedText := metricValue(t, metrics, `bordergate_decision_log_shipping_dropped_total{reason="buffer_full"}`)
	if droppedText == "0" {
		t.Fatal("no record counted as dropped after handing over twice the buffer size")
	}
	if unsent := s.spool.unsent(); unsent > MinBufferBytes {
		t.Errorf("buffer holds %d bytes, want at most %d", unsent, MinBufferBytes)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken by another process before the collector started: %v", addr, err)
	}
	c := newCollector(t, ln, nil)
	// Every record is either received or counted as dropped, and the
	// records received keep their order. Most dropped records are the
	// oldest; a batch on its way when its segment was dropped may still
	// arrive.
	deadline := time.Now().Add(30 * time.Second)
	for {
		received := firstSeen(decisionIDs(t, c.received()))
		dropped, err := strconv.Atoi(metricValue(t, metrics, `bordergate_decision_log_shipping_dropped_total{reason="buffer_full"}`))
		if err != nil {
			t.Fatal(err)
		}
		if len(received)+dropped == len(lines) {
			index := map[string]int{}
			for i, id := range decisionIDs(t, rawEvents(lines)) {
				index[id] = i
			}
			if !slices.IsSortedFunc(received, func(a, b string) int { return index[a] - index[b] }) {
				t.Errorf("records received out of order: %q", received)
			}
			if last := received[len(received)-1]; index[last] != len(lines)-1 {
				t.Errorf("last record received is %s, want the newest", last)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector holds %d distinct records and %d are counted as dropped, want %d in all", len(received), dropped, len(lines))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// firstSeen returns ids without repeats, in the order of their first
// appearance: an upload that the client gave up on after the collector
// took it is sent again.
func firstSeen(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// waitBuffered waits until the records handed to s are in its buffer.
func waitBuffered(t *testing.T, s *Shipper) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		pending := len(s.pending)
		s.mu.Unlock()
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("records not in the buffer after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestShipRestartWithBufferedRecords(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()

	first, _ := testShipper(t, "http://"+addr, dir, nil)
	lines := records("restart", 25, 300)
	hand(first, lines, 4)
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("address %s taken by another process: %v", addr, err)
	}
	c := newCollector(t, ln, nil)
	second, _ := testShipper(t, "http://"+addr, dir, nil)
	wantEvents(t, c.waitFor(len(lines), 10*time.Second), lines)

	more := records("after", 3, 100)
	hand(second, more, 3)
	wantEvents(t, c.waitFor(len(lines)+3, 10*time.Second), slices.Concat(lines, more))
	if err := second.Close(); err != nil {
		t.Fatal(err)
	}

	// A third start finds nothing left to ship.
	third, _ := testShipper(t, "http://"+addr, dir, nil)
	time.Sleep(100 * time.Millisecond)
	if n := len(c.received()); n != len(lines)+3 {
		t.Errorf("collector holds %d events after a restart with an empty buffer, want %d: nothing shipped twice", n, len(lines)+3)
	}
	_ = third
}

func TestShipTLSWithClientCertificateAndToken(t *testing.T) {
	ca, err := certs.NewCA("bordergate test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverCert, serverKey, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	serverPair, err := tls.X509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	clientCert, clientKey, err := ca.IssueClient("gw-1.example.org", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clientPair, err := tls.X509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}

	c := newCollector(t, nil, func(server *httptest.Server) {
		server.TLS = &tls.Config{
			Certificates: []tls.Certificate{serverPair},
			ClientCAs:    caPool(ca),
			ClientAuth:   tls.RequireAndVerifyClientCert,
		}
		server.StartTLS()
	})
	c.token = "s3cret-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	s, _ := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) {
		cfg.RootCAs = caPool(ca)
		cfg.ClientCertificate = func() (*tls.Certificate, error) { return &clientPair, nil }
		cfg.TokenFile = tokenFile
	})
	lines := records("tls", 5, 100)
	hand(s, lines, 5)
	wantEvents(t, c.waitFor(len(lines), 10*time.Second), lines)
}

func TestShipTLSUntrustedCollector(t *testing.T) {
	c := newCollector(t, nil, func(server *httptest.Server) { server.StartTLS() })
	ca, err := certs.NewCA("another CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s, metrics := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) { cfg.RootCAs = caPool(ca) })
	hand(s, records("untrusted", 2, 100), 2)
	deadline := time.Now().Add(10 * time.Second)
	for metricValue(t, metrics, `bordergate_decision_log_shipping_failures_total{reason="network"}`) == "0" {
		if time.Now().After(deadline) {
			t.Fatal("no failed upload counted against a collector with an untrusted certificate")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(c.received()); n != 0 {
		t.Errorf("collector with an untrusted certificate received %d events, want 0", n)
	}
}

func TestShipRotatedToken(t *testing.T) {
	c := newCollector(t, nil, nil)
	c.token = "new-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("old-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.setAnswer(nil)
	s, metrics := testShipper(t, c.url(), t.TempDir(), func(cfg *Config) { cfg.TokenFile = tokenFile })
	lines := records("token", 4, 100)
	hand(s, lines, 4)
	waitMetric(t, metrics, `bordergate_decision_log_shipping_failures_total{reason="client_error"}`, "2")
	if n := len(c.received()); n != 0 {
		t.Fatalf("collector accepted %d events with the old token", n)
	}
	if err := os.WriteFile(tokenFile, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, c.waitFor(len(lines), 10*time.Second), lines)
}

func TestNewConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		message string
	}{
		{"missing URL", Config{Dir: "x"}, `decision log shipping: invalid collector URL "": write an http or https URL such as https://collector.example.org:8443`},
		{"ftp URL", Config{URL: "ftp://c", Dir: "x"}, `decision log shipping: invalid collector URL "ftp://c": write an http or https URL such as https://collector.example.org:8443`},
		{"missing dir", Config{URL: "https://c"}, "decision log shipping: missing buffer directory"},
		{"small buffer", Config{URL: "https://c", Dir: "x", MaxBufferBytes: 1024}, "decision log shipping: buffer size 1024 bytes is below the minimum of 4194304"},
		{"retry delays", Config{URL: "https://c", Dir: "x", MinRetryDelay: time.Minute, MaxRetryDelay: time.Second}, "decision log shipping: maximum retry delay 1s is below the minimum 1m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || err.Error() != tt.message {
				t.Errorf("New() error = %v, want %q", err, tt.message)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for attempt := range 40 {
		want := min(time.Second<<min(attempt, 20), time.Minute)
		for range 20 {
			got := backoff(time.Second, time.Minute, attempt, 0)
			if got < want/2 || got > want {
				t.Fatalf("backoff(attempt %d) = %s, want between %s and %s", attempt, got, want/2, want)
			}
		}
	}
	if got := backoff(time.Second, time.Minute, 0, 30*time.Second); got != 30*time.Second {
		t.Errorf("backoff with Retry-After 30s = %s, want 30s", got)
	}
	if got := backoff(time.Second, time.Minute, 0, time.Hour); got != time.Minute {
		t.Errorf("backoff with Retry-After 1h = %s, want the 1m maximum", got)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status     int
		retryAfter string
		want       outcome
		reason     string
		delay      time.Duration
	}{
		{200, "", accepted, "", 0},
		{204, "", accepted, "", 0},
		{400, "", rejected, "rejected", 0},
		{413, "", rejected, "rejected", 0},
		{422, "", rejected, "rejected", 0},
		{401, "", retry, "client_error", 0},
		{403, "", retry, "client_error", 0},
		{404, "", retry, "client_error", 0},
		{302, "", retry, "client_error", 0},
		{408, "", retry, "server_error", 0},
		{429, "7", retry, "server_error", 7 * time.Second},
		{503, "Wed, 21 Oct 2015 07:28:00 GMT", retry, "server_error", 0},
		{500, "-3", retry, "server_error", 0},
	}
	for _, tt := range tests {
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}}
		if tt.retryAfter != "" {
			resp.Header.Set("Retry-After", tt.retryAfter)
		}
		err := classify(resp)
		if tt.want == accepted {
			if err != nil {
				t.Errorf("classify(%d) = %v, want nil", tt.status, err)
			}
			continue
		}
		var uploadErr *uploadError
		if !errors.As(err, &uploadErr) {
			t.Fatalf("classify(%d) = %v, want an uploadError", tt.status, err)
		}
		if uploadErr.outcome != tt.want || uploadErr.reason != tt.reason || uploadErr.retryAfter != tt.delay {
			t.Errorf("classify(%d) = outcome %d, reason %s, retry after %s; want %d, %s, %s",
				tt.status, uploadErr.outcome, uploadErr.reason, uploadErr.retryAfter, tt.want, tt.reason, tt.delay)
		}
	}
}

func TestCompressArrayKeepsBytes(t *testing.T) {
	lines := [][]byte{[]byte(`{"decision_id":"a","x":"\u00e9 \n"}` + "\n"), []byte(`{ "decision_id" : "b" }` + "\n")}
	body, err := compressArray(joinLines(lines))
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/logs", bytes.NewReader(body))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	events, problem := decodeUpload(req, "")
	if problem != "" {
		t.Fatal(problem)
	}
	wantEvents(t, events, lines)
}

// caPool returns a pool that holds the certificate of ca.
func caPool(ca *certs.CA) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Certificate())
	return pool
}

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want, message string
	}{
		{"trimmed", "  abc.def \n", "abc.def", ""},
		{"empty", " \n", "", "token file DIR/empty is empty; write the bearer token in it"},
		{"two lines", "a\nb\n", "", "token file DIR/two lines holds more than one line; write only the bearer token"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadToken(path)
		if tt.message != "" {
			want := strings.ReplaceAll(tt.message, "DIR", dir)
			if err == nil || err.Error() != want {
				t.Errorf("ReadToken(%s) error = %v, want %q", tt.name, err, want)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ReadToken(%s) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if _, err := ReadToken(filepath.Join(dir, "missing")); err == nil || !strings.HasPrefix(err.Error(), "read token file: ") {
		t.Errorf("ReadToken(missing) error = %v, want a read error", err)
	}
}
