package admin

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/bordergate/bordergate/certs"
)

// DefaultURL is the admin API's address when the configuration does not
// set admin.listen.
const DefaultURL = "http://" + DefaultListen

// DefaultListen is the default admin.listen: loopback only.
const DefaultListen = "127.0.0.1:9448"

// ClientOptions configures a Client.
type ClientOptions struct {
	// URL is the admin listener, such as "http://127.0.0.1:9448" or
	// "https://gateway.example.org:9448". Default DefaultURL.
	URL string
	// TokenFile holds the bearer token, on its first line.
	TokenFile string
	// CAFile is a PEM bundle that the admin listener's certificate is
	// verified against. Empty means the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate for mutual TLS.
	CertFile, KeyFile string
	// Timeout bounds each request. Default 30s.
	Timeout time.Duration
}

// Client calls the admin API of a running gateway.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// Error is an error response of the admin API.
type Error struct {
	Status  int
	Errcode string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("admin API: %d %s: %s", e.Status, e.Errcode, e.Message)
}

// NewClient returns a client for the admin API at opts.URL.
func NewClient(opts ClientOptions) (*Client, error) {
	raw := opts.URL
	if raw == "" {
		raw = DefaultURL
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("invalid admin URL %q (expected http://HOST:PORT or https://HOST:PORT)", raw)
	}
	c := &Client{base: base}
	if opts.TokenFile != "" {
		data, err := os.ReadFile(opts.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("read token file: %w", err)
		}
		token, _, _ := strings.Cut(string(data), "\n")
		if c.token = strings.TrimSpace(token); c.token == "" {
			return nil, fmt.Errorf("token file %s is empty (expected the token on its first line)", opts.TokenFile)
		}
		if base.Scheme == "http" && !isLoopbackHost(base.Hostname()) {
			return nil, fmt.Errorf("refusing to send the token of %s over plain HTTP to %s, which is not a loopback address (use an https:// admin URL)",
				opts.TokenFile, raw)
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	if base.Scheme == "https" {
		tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
		if opts.CAFile != "" {
			if tlsConfig.RootCAs, err = certs.LoadCertPool(opts.CAFile); err != nil {
				return nil, fmt.Errorf("admin CA file: %w", err)
			}
		}
		if opts.CertFile != "" || opts.KeyFile != "" {
			pair, err := tls.LoadX509KeyPair(opts.CertFile, opts.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("client certificate: %w", err)
			}
			tlsConfig.Certificates = []tls.Certificate{pair}
		}
		transport.TLSClientConfig = tlsConfig
	} else if opts.CertFile != "" || opts.CAFile != "" {
		return nil, fmt.Errorf("TLS options given for %s, which is not https (expected an https:// admin URL)", raw)
	}
	timeout := opts.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	c.http = &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: noRedirects}
	return c, nil
}

// noRedirects keeps the client from following a redirect, which would
// send the token to another port of the host, or over plain HTTP after
// an https URL. The 3xx then comes back as an error.
func noRedirects(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// isLoopbackHost reports whether host, the host of a URL without its
// port, is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// List returns every entry, source and signed list, and the revision.
func (c *Client) List(ctx context.Context) (ListResponse, error) {
	var out ListResponse
	err := c.do(ctx, http.MethodGet, "/v1/allowlist", nil, "", &out)
	return out, err
}

// Add adds an entry, given as a JSON object, to the API source; with
// replace, an existing entry of the same server_name is replaced.
func (c *Client) Add(ctx context.Context, entry json.RawMessage, serverName string, replace bool) (EntryResponse, error) {
	var out EntryResponse
	if replace {
		err := c.do(ctx, http.MethodPut, "/v1/allowlist/entries/"+url.PathEscape(serverName), entry, jsonMediaType, &out)
		return out, err
	}
	err := c.do(ctx, http.MethodPost, "/v1/allowlist/entries", entry, jsonMediaType, &out)
	return out, err
}

// Remove removes the API source's entry for serverName.
func (c *Client) Remove(ctx context.Context, serverName string) (EntryResponse, error) {
	var out EntryResponse
	err := c.do(ctx, http.MethodDelete, "/v1/allowlist/entries/"+url.PathEscape(serverName), nil, "", &out)
	return out, err
}

// Import replaces the imported list import:NAME with data, in format
// FormatModeration or FormatAllowlist. With dryRun, the gateway reports
// what it would import and changes nothing.
func (c *Client) Import(ctx context.Context, name, format string, data []byte, dryRun bool) (ImportResponse, error) {
	query := url.Values{"format": {format}}
	if dryRun {
		query.Set("dry_run", "true")
	}
	// An allow-list file is YAML, of which JSON is a part.
	contentType := jsonMediaType
	if format == FormatAllowlist {
		contentType = yamlMediaTypes[0]
	}
	var out ImportResponse
	err := c.do(ctx, http.MethodPut, "/v1/allowlist/imports/"+url.PathEscape(name)+"?"+query.Encode(), data, contentType, &out)
	return out, err
}

// DeleteImport removes the imported list import:NAME.
func (c *Client) DeleteImport(ctx context.Context, name string) (ImportResponse, error) {
	var out ImportResponse
	err := c.do(ctx, http.MethodDelete, "/v1/allowlist/imports/"+url.PathEscape(name), nil, "", &out)
	return out, err
}

// do sends one request and decodes a 2xx JSON response into out.
func (c *Client) do(ctx context.Context, method, path string, body []byte, contentType string, out any) error {
	target := strings.TrimSuffix(c.base.String(), "/") + path
	req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("admin API: read response: %w", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return &Error{Status: resp.StatusCode, Errcode: "M_UNKNOWN",
			Message: fmt.Sprintf("redirect to %s not followed (expected the admin API itself at %s)", resp.Header.Get("Location"), c.base)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &Error{Status: resp.StatusCode}
		var matrix struct {
			Errcode string `json:"errcode"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(data, &matrix) == nil && matrix.Errcode != "" {
			apiErr.Errcode, apiErr.Message = matrix.Errcode, matrix.Error
		} else {
			apiErr.Errcode, apiErr.Message = "M_UNKNOWN", strings.TrimSpace(string(data))
		}
		return apiErr
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("admin API: invalid response: %w", err)
	}
	return nil
}
