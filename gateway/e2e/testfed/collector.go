package testfed

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// collectorMaxUpload bounds the decompressed body of one upload that the
// collector reads.
const collectorMaxUpload = 64 << 20

// Collector is a decision-log service that speaks Open Policy Agent's
// decision log API, for decision_log.ship: it takes POST /logs with a
// gzip-compressed JSON array of events and keeps the bytes of each element
// as it arrived. It listens on plain HTTP on a loopback address.
type Collector struct {
	// URL is the base URL for decision_log.ship.url, e.g.
	// "http://127.0.0.1:41234".
	URL string

	server *http.Server
	log    *slog.Logger

	mu      sync.Mutex
	events  []json.RawMessage
	uploads int
	errs    []string
}

// StartCollector starts a collector on 127.0.0.1 at a free port.
func StartCollector(log *slog.Logger) (*Collector, error) {
	c := &Collector{log: log}
	base, server, err := serveLoopback(http.HandlerFunc(c.serveHTTP), "collector", log)
	if err != nil {
		return nil, fmt.Errorf("start collector: %w", err)
	}
	c.URL, c.server = base, server
	return c, nil
}

// serveLoopback serves handler over plain HTTP on 127.0.0.1 at a free
// port, and returns the base URL and the server. name names the server in
// logs.
func serveLoopback(handler http.Handler, name string, log *slog.Logger) (string, *http.Server, error) {
	listener, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return "", nil, err
	}
	server := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("server stopped", "server", name, "err", err)
		}
	}()
	base := "http://" + listener.Addr().String()
	log.Info("server started", "server", name, "url", base)
	return base, server, nil
}

// serveHTTP takes one upload. A request that is not a well-formed upload
// gets 400 or 404, is logged and is kept in Errors, because the gateway
// must never send one.
func (c *Collector) serveHTTP(w http.ResponseWriter, r *http.Request) {
	events, err := readUpload(r)
	if err != nil {
		status := http.StatusBadRequest
		if r.URL.Path != "/logs" {
			status = http.StatusNotFound
		}
		c.mu.Lock()
		c.errs = append(c.errs, fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
		c.mu.Unlock()
		c.log.Warn("collector refused an upload", "method", r.Method, "path", r.URL.Path, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	c.mu.Lock()
	c.events = append(c.events, events...)
	c.uploads++
	c.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// readUpload checks the request line and headers of an upload and returns
// its events.
func readUpload(r *http.Request) ([]json.RawMessage, error) {
	switch {
	case r.URL.Path != "/logs":
		return nil, errors.New("unknown path, the collector serves /logs")
	case r.Method != http.MethodPost:
		return nil, fmt.Errorf("method %s, want POST", r.Method)
	case r.Header.Get("Content-Encoding") != "gzip":
		return nil, fmt.Errorf("Content-Encoding %q, want gzip", r.Header.Get("Content-Encoding"))
	case r.Header.Get("Content-Type") != "application/json":
		return nil, fmt.Errorf("Content-Type %q, want application/json", r.Header.Get("Content-Type"))
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		return nil, fmt.Errorf("body is not gzip: %w", err)
	}
	body, err := io.ReadAll(io.LimitReader(zr, collectorMaxUpload+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) > collectorMaxUpload {
		return nil, fmt.Errorf("body is over %d bytes decompressed", collectorMaxUpload)
	}
	var events []json.RawMessage
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("body is not a JSON array: %w", err)
	}
	return events, nil
}

// Events returns the events received so far, in the order they arrived,
// each exactly as it was in its upload.
func (c *Collector) Events() []json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]json.RawMessage(nil), c.events...)
}

// Uploads returns the number of uploads taken.
func (c *Collector) Uploads() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.uploads
}

// Errors describes the requests that the collector refused.
func (c *Collector) Errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// Close stops the collector.
func (c *Collector) Close() error {
	return c.server.Close()
}
