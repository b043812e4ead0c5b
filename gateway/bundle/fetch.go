package bundle

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// ClientConfig configures a [Client].
type ClientConfig struct {
	// URL is the http or https URL of the bundle.
	URL string
	// Timeout bounds one fetch, from connecting to the last byte.
	Timeout time.Duration
	// RootCAs verifies the bundle server's certificate. Nil means the
	// system roots.
	RootCAs *x509.CertPool
	// Token, when not empty, is sent as a bearer token.
	Token string
	// MaxBytes caps the size of the download; DefaultMaxBytes when zero or
	// negative.
	MaxBytes int64
}

// Client fetches a bundle from a bundle server with conditional requests.
type Client struct {
	url      string
	token    string
	maxBytes int64
	http     *http.Client
}

// Response is the outcome of one fetch.
type Response struct {
	// Body is the archive, nil when NotModified.
	Body []byte
	// ETag is the entity tag of Body, empty when the server sent none.
	ETag string
	// NotModified reports that the server responded 304 Not Modified to
	// the entity tag of the request.
	NotModified bool
}

// NewClient checks cfg and returns a client for it.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("bundle URL %q is not an http or https URL", cfg.URL)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	client := &http.Client{
		Transport:     transport,
		Timeout:       cfg.Timeout,
		CheckRedirect: checkRedirect,
	}
	return &Client{url: cfg.URL, token: cfg.Token, maxBytes: cfg.MaxBytes, http: client}, nil
}

// checkRedirect follows at most five redirects, and never from https to
// http, where the token and the archive would travel in clear.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("more than 5 redirects")
	}
	if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
		return fmt.Errorf("redirect from https to %s refused", req.URL.Scheme)
	}
	return nil
}

// Fetch downloads the bundle. A non-empty etag is sent in If-None-Match,
// and a 304 response returns a Response with NotModified set.
func (c *Client) Fetch(ctx context.Context, etag string) (Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return Response{}, fmt.Errorf("fetch bundle: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Response{}, fmt.Errorf("fetch bundle: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return Response{ETag: etag, NotModified: true}, nil
	default:
		return Response{}, fmt.Errorf("fetch bundle from %s: server answered %s", c.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	if err != nil {
		return Response{}, fmt.Errorf("fetch bundle from %s: read body: %w", c.url, err)
	}
	if int64(len(body)) > c.maxBytes {
		return Response{}, fmt.Errorf("fetch bundle from %s: larger than %d bytes; raise max_bytes or shrink the bundle", c.url, c.maxBytes)
	}
	return Response{Body: body, ETag: resp.Header.Get("ETag")}, nil
}
