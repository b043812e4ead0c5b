package ship

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/telemetry"
)

// collector is a decision-log service on loopback that decodes each
// upload as OPA's decision log API defines it and keeps the events.
type collector struct {
	t      *testing.T
	server *httptest.Server
	token  string

	mu       sync.Mutex
	events   []json.RawMessage
	requests int
	// answer, when set, chooses the status of an upload from its events,
	// and zero means 200.
	answer func(events []json.RawMessage) int
	// hold, when set, is waited for before responding.
	hold chan struct{}
	// problems lists uploads that broke the API contract.
	problems []string
}

// newCollector starts a collector on ln, or on a new loopback listener
// when ln is nil. configure, when set, starts the server instead, with
// TLS for example.
func newCollector(t *testing.T, ln net.Listener, configure func(*httptest.Server)) *collector {
	t.Helper()
	c := &collector{t: t}
	server := httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	if ln != nil {
		server.Listener.Close()
		server.Listener = ln
	}
	if configure != nil {
		configure(server)
	} else {
		server.Start()
	}
	c.server = server
	t.Cleanup(func() {
		c.release()
		server.Close()
	})
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	hold, answer, token := c.hold, c.answer, c.token
	c.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return
		}
	}

	if r.Context().Err() != nil {
		return // the client gave up while the upload was held
	}
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		http.Error(w, "invalid bearer token", http.StatusUnauthorized)
		return
	}
	events, problem := decodeUpload(r, token)
	if problem != "" {
		c.mu.Lock()
		c.problems = append(c.problems, problem)
		c.mu.Unlock()
		http.Error(w, problem, http.StatusBadRequest)
		return
	}
	status := http.StatusOK
	if answer != nil {
		if s := answer(events); s != 0 {
			status = s
		}
	}
	if status == http.StatusOK {
		c.mu.Lock()
		c.events = append(c.events, events...)
		c.mu.Unlock()
	}
	w.WriteHeader(status)
}

// decodeUpload checks one upload against the decision log API and returns
// its events, or what is wrong with it.
func decodeUpload(r *http.Request, token string) ([]json.RawMessage, string) {
	switch {
	case r.Method != http.MethodPost:
		return nil, "method " + r.Method
	case r.URL.Path != "/logs":
		return nil, "path " + r.URL.Path
	case r.Header.Get("Content-Encoding") != "gzip":
		return nil, "content encoding " + r.Header.Get("Content-Encoding")
	case r.Header.Get("Content-Type") != "application/json":
		return nil, "content type " + r.Header.Get("Content-Type")
	case token != "" && r.Header.Get("Authorization") != "Bearer "+token:
		return nil, "authorization " + r.Header.Get("Authorization")
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, "gzip: " + err.Error()
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, "gzip: " + err.Error()
	}
	var events []json.RawMessage
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, "JSON array: " + err.Error()
	}
	for i, event := range events {
		var object map[string]any
		if err := json.Unmarshal(event, &object); err != nil {
			return nil, fmt.Sprintf("event %d is not an object: %v", i, err)
		}
		if _, ok := object["decision_id"].(string); !ok {
			return nil, fmt.Sprintf("event %d has no decision_id", i)
		}
	}
	return events, ""
}

func (c *collector) url() string { return c.server.URL }

func (c *collector) setAnswer(answer func([]json.RawMessage) int) {
	c.mu.Lock()
	c.answer = answer
	c.mu.Unlock()
}

func (c *collector) setHold(hold chan struct{}) {
	c.mu.Lock()
	c.hold = hold
	c.mu.Unlock()
}

// release lets held uploads go on.
func (c *collector) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold != nil {
		close(c.hold)
		c.hold = nil
	}
}

// received returns the events accepted so far.
func (c *collector) received() []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.problems) > 0 {
		c.t.Errorf("uploads broke the decision log API: %q", c.problems)
		c.problems = nil
	}
	return append([]json.RawMessage(nil), c.events...)
}

func (c *collector) requestCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// waitFor waits until the collector holds n events and returns them.
func (c *collector) waitFor(n int, within time.Duration) []json.RawMessage {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		events := c.received()
		if len(events) >= n {
			return events
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("collector holds %d events after %s, want %d", len(events), within, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// records returns n JSON lines of decision records named prefix-0 on,
// each padded to about size bytes.
func records(prefix string, n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		pad := strings.Repeat("x", max(size-80, 0))
		out[i] = fmt.Appendf(nil, `{"decision_id":%q,"path":"bordergate/pdu/decision","allow":true,"pad":%q}`+"\n", id, pad)
	}
	return out
}

// decisionIDs returns the decision_id of each event.
func decisionIDs(t *testing.T, events []json.RawMessage) []string {
	t.Helper()
	ids := make([]string, len(events))
	for i, event := range events {
		var rec struct {
			DecisionID string `json:"decision_id"`
		}
		if err := json.Unmarshal(event, &rec); err != nil {
			t.Fatalf("event %s: %v", event, err)
		}
		ids[i] = rec.DecisionID
	}
	return ids
}

// metricValue returns the value of the counter series in m, such as
// `bordergate_decision_log_shipped_total`, 0 when absent.
func metricValue(t *testing.T, m *telemetry.Metrics, series string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	scanner := bufio.NewScanner(rec.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), series+" "); ok {
			return value
		}
	}
	return "0"
}

// joinLines concatenates JSON lines.
func joinLines(lines [][]byte) []byte {
	return bytes.Join(lines, nil)
}
