package testfed

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
)

// BundleServer serves one OPA bundle archive over plain HTTP on a loopback
// address, with an entity tag, as nginx or an object store would. GET of
// its path returns the bundle published last, or 304 Not Modified when
// If-None-Match names that bundle's entity tag.
type BundleServer struct {
	// URL is the bundle's URL, for policy.bundle.url or
	// policy.shadow.bundle.url.
	URL string

	server *http.Server
	path   string

	mu       sync.Mutex
	bundle   []byte
	etag     string
	failure  int
	requests int
}

// StartBundleServer starts a bundle server on 127.0.0.1 at a free port,
// serving path, such as "/bundles/candidate.tar.gz". It responds 404
// until a bundle is published.
func StartBundleServer(path string, log *slog.Logger) (*BundleServer, error) {
	bs := &BundleServer{path: path}
	base, server, err := serveLoopback(http.HandlerFunc(bs.serveHTTP), "bundle server", log)
	if err != nil {
		return nil, fmt.Errorf("start bundle server: %w", err)
	}
	bs.URL, bs.server = base+path, server
	return bs, nil
}

// Publish replaces the bundle that the server returns.
func (bs *BundleServer) Publish(bundle []byte) {
	sum := sha256.Sum256(bundle)
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.bundle = bundle
	bs.etag = `"` + hex.EncodeToString(sum[:16]) + `"`
}

// SetFailure makes the server respond to every bundle request with
// status, as a server that is down would, until SetFailure(0).
func (bs *BundleServer) SetFailure(status int) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.failure = status
}

// Requests returns the number of requests for the bundle's path, whatever
// their response.
func (bs *BundleServer) Requests() int {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return bs.requests
}

func (bs *BundleServer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != bs.path || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	bs.mu.Lock()
	bundle, etag, failure := bs.bundle, bs.etag, bs.failure
	bs.requests++
	bs.mu.Unlock()
	if failure != 0 {
		http.Error(w, http.StatusText(failure), failure)
		return
	}
	if bundle == nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(bundle)
}

// Close stops the server.
func (bs *BundleServer) Close() error {
	return bs.server.Close()
}
