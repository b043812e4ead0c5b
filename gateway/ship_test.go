package gateway

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/certs"
	"github.com/bordergate/bordergate/gateway/decisionlog"
)

// logCollector is a decision-log service on loopback with TLS that keeps
// the events of each upload.
type logCollector struct {
	mu     sync.Mutex
	events []json.RawMessage
	errs   []string
}

func (c *logCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var events []json.RawMessage
	zr, err := gzip.NewReader(r.Body)
	if err == nil {
		var data []byte
		if data, err = io.ReadAll(zr); err == nil {
			err = json.Unmarshal(data, &events)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case r.URL.Path != "/v1/logs" || r.Header.Get("Authorization") != "Bearer collector-token":
		c.errs = append(c.errs, fmt.Sprintf("upload to %s with authorization %q", r.URL.Path, r.Header.Get("Authorization")))
		w.WriteHeader(http.StatusUnauthorized)
	case err != nil:
		c.errs = append(c.errs, err.Error())
		w.WriteHeader(http.StatusBadRequest)
	default:
		c.events = append(c.events, events...)
	}
}

func (c *logCollector) received() ([]json.RawMessage, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]json.RawMessage(nil), c.events...), append([]string(nil), c.errs...)
}

// TestShipRecordsAsWritten runs a gateway that ships its decision records
// to a collector over TLS, and compares what the collector received with
// the decision log file, byte for byte.
func TestShipRecordsAsWritten(t *testing.T) {
	ca, err := certs.NewCA("collector test CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.IssueServer([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	collector := &logCollector{}
	server := httptest.NewUnstartedServer(collector)
	server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	server.StartTLS()
	t.Cleanup(server.Close)

	tg := startGateway(t, gatewayOptions{
		decisionLogConfig: fmt.Sprintf(`decision_log:
  file: decisions.jsonl
  signing_key_file: audit.key
  ship: {url: %q, resource: /v1/logs, ca_file: collector-ca.pem, token_file: collector-token, flush_interval: 50ms}`, server.URL),
		setup: func(dir, _ string) {
			writeFile(t, dir, "collector-ca.pem", string(ca.CertPEM()))
			writeFile(t, dir, "collector-token", "collector-token\n")
		},
	})
	tg.sendMessage("ship1")
	tg.sendMessage("ship2")

	data, err := os.ReadFile(tg.logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(data, []byte{'\n'}), []byte{'\n'})
	deadline := time.Now().Add(10 * time.Second)
	var events []json.RawMessage
	for {
		var problems []string
		events, problems = collector.received()
		if len(problems) > 0 {
			t.Fatalf("collector problems: %q", problems)
		}
		if len(events) >= len(lines) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("collector holds %d records after 10s, the file %d", len(events), len(lines))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(events) != len(lines) {
		t.Fatalf("collector holds %d records, the file %d", len(events), len(lines))
	}
	var prev decisionlog.Hash
	for i := range lines {
		if !bytes.Equal(events[i], lines[i]) {
			t.Errorf("shipped record %d differs from the file:\n%s\n%s", i, events[i], lines[i])
		}
		// The hash chain verifies on the collector's side too.
		link, err := decisionlog.ParseLink(events[i])
		if err != nil {
			t.Fatalf("shipped record %d: %v", i, err)
		}
		if !link.Verify(events[i]) || link.Prev != prev || link.Seq != int64(i+1) {
			t.Errorf("shipped record %d does not continue the chain: seq %d", i, link.Seq)
		}
		prev = link.Hash
	}
	if strings.Contains(string(data), `"body":"ship1"`) {
		t.Error("the decision log holds a message body")
	}
	// The collector holds the records before the gateway has counted
	// them, so the count is awaited.
	want := fmt.Sprint(len(lines))
	for got := tg.metric("bordergate_decision_log_shipped_total"); got != want; got = tg.metric("bordergate_decision_log_shipped_total") {
		if time.Now().After(deadline) {
			t.Errorf("bordergate_decision_log_shipped_total = %s, want %s", got, want)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(tg.dir, "state", shippingDir)); err != nil {
		t.Errorf("buffer directory: %v", err)
	}
}

func TestParseConfigShipErrors(t *testing.T) {
	tests := []struct {
		name, ship, want string
	}{
		{"missing url", "{}", `decision_log.ship.url: missing; write the decision-log service's URL, such as "https://collector.example.org:8443"`},
		{"ftp url", "{url: ftp://c}", `decision_log.ship.url: "ftp://c" is not an http or https URL without query or user; write a URL such as "https://collector.example.org:8443"`},
		{"user in url", "{url: \"https://u:p@c\"}", `decision_log.ship.url: "https://u:p@c" is not an http or https URL without query or user`},
		{"relative resource", "{url: https://c, resource: logs}", `decision_log.ship.resource: "logs" does not start with /; write a path such as "/logs"`},
		{"token over http", "{url: http://c, token_file: t}", "decision_log.ship.token_file: set with an http URL, which sends it in clear text or not at all; use an https URL"},
		{"ca over http", "{url: http://c, ca_file: ca.pem}", "decision_log.ship.ca_file: set with an http URL"},
		{"cert without key", "{url: https://c, cert_file: c.pem}", "decision_log.ship: only one of cert_file and key_file is set; name both, or neither"},
		{"small buffer", "{url: https://c, buffer_max_bytes: 1000}", "decision_log.ship.buffer_max_bytes: 1000 is below the minimum of 4194304; write a size in bytes; the default is 268435456"},
		{"huge batch", "{url: https://c, batch_max_bytes: 100000000}", "decision_log.ship.batch_max_bytes: 100000000 is not between 1 and 67108864"},
		{"negative timeout", "{url: https://c, timeout: -1s}", "decision_log.ship.timeout: negative duration"},
		{"retry delays", "{url: https://c, min_retry_delay: 2m}", "decision_log.ship.max_retry_delay: 1m0s is below min_retry_delay 2m0s; write a maximum at least as long as the minimum"},
		{"unknown field", "{url: https://c, partition: x}", "field partition not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(minimalConfig+"decision_log:\n  ship: "+tc.ship+"\n"), "")
			if err == nil {
				t.Fatal("ParseConfig succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestParseConfigShipPaths(t *testing.T) {
	cfg, err := ParseConfig([]byte(minimalConfig+"decision_log:\n  ship: {url: https://c, ca_file: ca.pem, cert_file: c.pem, key_file: k.pem, token_file: t}\n"), "/etc/bordergate")
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.DecisionLog.Ship
	for _, got := range []string{s.CAFile, s.CertFile, s.KeyFile, s.TokenFile} {
		if !strings.HasPrefix(got, "/etc/bordergate/") {
			t.Errorf("path %q not resolved against the configuration's directory", got)
		}
	}
}
