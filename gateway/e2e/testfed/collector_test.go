package testfed

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// gzipBytes returns data compressed with gzip.
func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uploadRequest returns a request as decision_log.ship sends it.
func uploadRequest(t testing.TB, path string, body []byte) *http.Request {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(gzipBytes(t, body)))
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	return req
}

func TestCollectorKeepsEventBytes(t *testing.T) {
	c, err := StartCollector(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	first := `{"decision_id":"a","chain":{"seq":1}}`
	second := `{ "decision_id" : "b" }`
	body := "[" + first + ",\n" + second + "]"
	req, err := http.NewRequest(http.MethodPost, c.URL+"/logs", bytes.NewReader(gzipBytes(t, []byte(body))))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("status = %d, want 204", resp.StatusCode)
	}
	var got []string
	for _, event := range c.Events() {
		got = append(got, string(event))
	}
	if want := []string{first, second}; !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
	if c.Uploads() != 1 || len(c.Errors()) != 0 {
		t.Errorf("uploads = %d, errors = %q; want 1 and none", c.Uploads(), c.Errors())
	}
}

func TestCollectorRefusesMalformedUploads(t *testing.T) {
	tests := []struct {
		name       string
		request    func(t *testing.T) *http.Request
		wantStatus int
		wantError  string
	}{
		{
			name:       "unknown path",
			request:    func(t *testing.T) *http.Request { return uploadRequest(t, "/v1/logs", []byte("[]")) },
			wantStatus: http.StatusNotFound,
			wantError:  "POST /v1/logs: unknown path, the collector serves /logs",
		},
		{
			name:       "GET",
			request:    func(t *testing.T) *http.Request { return httptest.NewRequest(http.MethodGet, "/logs", nil) },
			wantStatus: http.StatusBadRequest,
			wantError:  "GET /logs: method GET, want POST",
		},
		{
			name: "not compressed",
			request: func(t *testing.T) *http.Request {
				req := httptest.NewRequest(http.MethodPost, "/logs", strings.NewReader("[]"))
				req.Header.Set("Content-Type", "application/json")
				return req
			},
			wantStatus: http.StatusBadRequest,
			wantError:  `POST /logs: Content-Encoding "", want gzip`,
		},
		{
			name: "wrong content type",
			request: func(t *testing.T) *http.Request {
				req := uploadRequest(t, "/logs", []byte("[]"))
				req.Header.Set("Content-Type", "text/plain")
				return req
			},
			wantStatus: http.StatusBadRequest,
			wantError:  `POST /logs: Content-Type "text/plain", want application/json`,
		},
		{
			name: "gzip header but no gzip",
			request: func(t *testing.T) *http.Request {
				req := uploadRequest(t, "/logs", nil)
				req.Body = io.NopCloser(strings.NewReader("[]"))
				return req
			},
			wantStatus: http.StatusBadRequest,
			wantError:  "POST /logs: body is not gzip: unexpected EOF",
		},
		{
			name:       "object instead of array",
			request:    func(t *testing.T) *http.Request { return uploadRequest(t, "/logs", []byte(`{"decision_id":"a"}`)) },
			wantStatus: http.StatusBadRequest,
			wantError:  "POST /logs: body is not a JSON array: json: cannot unmarshal object into Go value of type []json.RawMessage",
		},
		{
			name:       "truncated array",
			request:    func(t *testing.T) *http.Request { return uploadRequest(t, "/logs", []byte(`[{"a":1},`)) },
			wantStatus: http.StatusBadRequest,
			wantError:  "POST /logs: body is not a JSON array: unexpected end of JSON input",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Collector{log: slog.New(slog.DiscardHandler)}
			rec := httptest.NewRecorder()
			c.serveHTTP(rec, tt.request(t))
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if errs := c.Errors(); !slices.Equal(errs, []string{tt.wantError}) {
				t.Errorf("errors = %q, want [%q]", errs, tt.wantError)
			}
			if len(c.Events()) != 0 || c.Uploads() != 0 {
				t.Errorf("events = %d, uploads = %d; want none", len(c.Events()), c.Uploads())
			}
		})
	}
}

func FuzzReadUpload(f *testing.F) {
	f.Add([]byte(`[{"decision_id":"a"},{"decision_id":"b"}]`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`[1, "x", null, [2]]`))
	f.Add([]byte(`{"a":[]}`))
	f.Add([]byte(`[{"a":"\ud800"}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := readUpload(uploadRequest(t, "/logs", body))
		if err != nil {
			return
		}
		for _, event := range events {
			if !json.Valid(event) {
				t.Errorf("event %q is not valid JSON", event)
			}
			if !bytes.Contains(body, event) {
				t.Errorf("event %q is not a part of the body %q", event, body)
			}
		}
	})
}

func TestBundleServer(t *testing.T) {
	bs, err := StartBundleServer("/b/bundle.tar.gz", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer bs.Close()
	get := func(url, etag string) (int, string, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("ETag"), body
	}

	if status, _, _ := get(bs.URL, ""); status != http.StatusNotFound {
		t.Errorf("before Publish: status %d, want 404", status)
	}
	bs.Publish([]byte("v1"))
	status, etag, body := get(bs.URL, "")
	if status != http.StatusOK || string(body) != "v1" || etag == "" {
		t.Errorf("after Publish: status %d, ETag %q, body %q; want 200, an ETag, v1", status, etag, body)
	}
	if status, _, body := get(bs.URL, etag); status != http.StatusNotModified || len(body) != 0 {
		t.Errorf("with If-None-Match: status %d, body %q; want 304 and no body", status, body)
	}
	bs.Publish([]byte("v2"))
	if status, newTag, body := get(bs.URL, etag); status != http.StatusOK || newTag == etag || string(body) != "v2" {
		t.Errorf("after a new Publish: status %d, ETag %q, body %q; want 200, a new ETag, v2", status, newTag, body)
	}
	bs.SetFailure(http.StatusServiceUnavailable)
	if status, _, _ := get(bs.URL, ""); status != http.StatusServiceUnavailable {
		t.Errorf("with SetFailure(503): status %d, want 503", status)
	}
	bs.SetFailure(0)
	if status, _, _ := get(bs.URL, ""); status != http.StatusOK {
		t.Errorf("after SetFailure(0): status %d, want 200", status)
	}
	if status, _, _ := get(strings.TrimSuffix(bs.URL, "bundle.tar.gz")+"other", ""); status != http.StatusNotFound {
		t.Errorf("another path: status %d, want 404", status)
	}
	if n := bs.Requests(); n != 6 {
		t.Errorf("Requests = %d, want 6 bundle requests", n)
	}
}
