package bundle

import (
	"context"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// bundleServer serves one archive with an entity tag and records the
// requests' conditional and authorization headers.
type bundleServer struct {
	mu      sync.Mutex
	body    []byte
	etag    string
	ifNone  []string
	auth    []string
	failing bool
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ifNone = append(s.ifNone, r.Header.Get("If-None-Match"))
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	if s.failing {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if r.Header.Get("If-None-Match") == s.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", s.etag)
	_, _ = w.Write(s.body)
}

func TestFetchConditional(t *testing.T) {
	bs := &bundleServer{body: []byte("archive-1"), etag: `"v1"`}
	srv := httptest.NewTLSServer(bs)
	defer srv.Close()
	client, err := NewClient(ClientConfig{URL: srv.URL + "/bundle.tar.gz", Timeout: 5 * time.Second, RootCAs: rootCAs(srv), Token: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	first, err := client.Fetch(ctx, "")
	if err != nil {
		t.Fatalf("first Fetch: %v", err)
	}
	if string(first.Body) != "archive-1" || first.ETag != `"v1"` || first.NotModified {
		t.Errorf("first Fetch = %+v, want archive-1 with ETag \"v1\"", first)
	}
	second, err := client.Fetch(ctx, first.ETag)
	if err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	if !second.NotModified || second.Body != nil || second.ETag != `"v1"` {
		t.Errorf("second Fetch = %+v, want NotModified with ETag \"v1\"", second)
	}
	if bs.ifNone[0] != "" || bs.ifNone[1] != `"v1"` {
		t.Errorf("If-None-Match headers = %q, want none then \"v1\"", bs.ifNone)
	}
	if bs.auth[0] != "Bearer secret" {
		t.Errorf("Authorization = %q, want Bearer secret", bs.auth[0])
	}
}

func TestFetchErrors(t *testing.T) {
	bs := &bundleServer{body: []byte(strings.Repeat("x", 100)), etag: `"v1"`}
	srv := httptest.NewTLSServer(bs)
	defer srv.Close()
	ctx := context.Background()

	small, err := NewClient(ClientConfig{URL: srv.URL, RootCAs: rootCAs(srv), MaxBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.Fetch(ctx, ""); err == nil || !strings.HasSuffix(err.Error(), "larger than 10 bytes; raise max_bytes or shrink the bundle") {
		t.Errorf("Fetch of a large bundle error = %v, want larger than 10 bytes", err)
	}

	bs.failing = true
	client, err := NewClient(ClientConfig{URL: srv.URL, RootCAs: rootCAs(srv)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Fetch(ctx, ""); err == nil || !strings.HasSuffix(err.Error(), "server answered 503 Service Unavailable") {
		t.Errorf("Fetch from a failing server error = %v, want 503", err)
	}

	untrusted, err := NewClient(ClientConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := untrusted.Fetch(ctx, ""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Fetch with an untrusted certificate error = %v, want a certificate error", err)
	}

	for _, bad := range []string{"ftp://x/b.tar.gz", "bundle.tar.gz", "https://"} {
		if _, err := NewClient(ClientConfig{URL: bad}); err == nil || err.Error() != `bundle URL "`+bad+`" is not an http or https URL` {
			t.Errorf("NewClient(%q) error = %v", bad, err)
		}
	}
}

func TestFetchRefusesDowngrade(t *testing.T) {
	plain := httptest.NewServer(&bundleServer{body: []byte("x")})
	defer plain.Close()
	redirect := httptest.NewTLSServer(http.RedirectHandler(plain.URL, http.StatusFound))
	defer redirect.Close()
	client, err := NewClient(ClientConfig{URL: redirect.URL, RootCAs: rootCAs(redirect)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Fetch(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "redirect from https to http refused") {
		t.Errorf("Fetch error = %v, want the downgrade refused", err)
	}
}

func TestSaveAndLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bundles", "policy.tar.gz")
	if _, err := LoadSaved(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadSaved of a missing file error = %v, want os.ErrNotExist", err)
	}
	for _, content := range []string{"first", "second"} {
		if err := Save(path, []byte(content)); err != nil {
			t.Fatalf("Save: %v", err)
		}
		got, err := LoadSaved(path)
		if err != nil || string(got) != content {
			t.Errorf("LoadSaved = %q, %v, want %q", got, err, content)
		}
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("directory holds %d entries (%v), want only the bundle", len(entries), err)
	}
}

func rootCAs(srv *httptest.Server) *x509.CertPool {
	return srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
}
