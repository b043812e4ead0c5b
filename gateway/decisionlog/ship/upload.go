package ship

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// maxResponseBytes bounds what is read of a collector's response, of
// which only the status matters.
const maxResponseBytes = 64 << 10

// outcome classifies the result of one upload.
type outcome int

const (
	// accepted means a 2xx response: the collector has the records.
	accepted outcome = iota
	// retry means a network error, a timeout, a 5xx, 408 or 429 response,
	// or a 4xx that only a change of configuration fixes (401, 403, 404
	// and the like): the same records are sent again after a delay.
	retry
	// rejected means 400, 413 or 422: the collector refuses the content
	// itself, so the batch is split until the one refused record is
	// found, and that record is dropped.
	rejected
)

// uploadError describes a failed upload.
type uploadError struct {
	outcome outcome
	// reason is the counter attribute: network, timeout, server_error,
	// client_error or rejected.
	reason string
	status int
	// retryAfter is the collector's Retry-After, zero when absent.
	retryAfter time.Duration
	err        error
}

func (e *uploadError) Error() string {
	if e.status != 0 {
		return fmt.Sprintf("collector responded %d %s", e.status, http.StatusText(e.status))
	}
	return e.err.Error()
}

func (e *uploadError) Unwrap() error {
	return e.err
}

// uploader posts batches of records to the collector.
type uploader struct {
	url       string
	client    *http.Client
	timeout   time.Duration
	tokenFile string
}

// newUploader builds the HTTP client of cfg.
func newUploader(cfg *Config) *uploader {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.TLSClientConfig = &tls.Config{
		MinVersion:           tls.VersionTLS12,
		RootCAs:              cfg.RootCAs,
		GetClientCertificate: clientCertificate(cfg.ClientCertificate),
	}
	return &uploader{
		url:       strings.TrimSuffix(cfg.URL, "/") + cfg.Resource,
		client:    &http.Client{Transport: transport, CheckRedirect: noRedirects},
		timeout:   cfg.Timeout,
		tokenFile: cfg.TokenFile,
	}
}

// clientCertificate adapts get to tls.Config.GetClientCertificate. Without
// get, no certificate is presented.
func clientCertificate(get func() (*tls.Certificate, error)) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if get == nil {
			return &tls.Certificate{}, nil
		}
		return get()
	}
}

// noRedirects keeps the client from following a redirect, because that
// would send the records and the token to another address than the
// configured one. The 3xx then counts as a failed upload.
func noRedirects(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}

// upload sends lines, complete JSON lines, as one gzip-compressed JSON
// array, and classifies the response.
func (u *uploader) upload(ctx context.Context, lines []byte) error {
	body, err := compressArray(lines)
	if err != nil {
		return &uploadError{outcome: retry, reason: "network", err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(body))
	if err != nil {
		return &uploadError{outcome: retry, reason: "network", err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	req.Header.Set("User-Agent", "bordergate")
	if u.tokenFile != "" {
		token, err := ReadToken(u.tokenFile)
		if err != nil {
			return &uploadError{outcome: retry, reason: "client_error", err: err}
		}
		req.Header.Set("Authorization", "Bearer "+token)
	}

	resp, err := u.client.Do(req)
	if err != nil {
		reason := "network"
		if errors.Is(err, context.DeadlineExceeded) {
			reason = "timeout"
			err = fmt.Errorf("no response within %s: %w", u.timeout, err)
		}
		return &uploadError{outcome: retry, reason: reason, err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBytes))
	return classify(resp)
}

// classify returns nil for a 2xx response and the uploadError of any other.
func classify(resp *http.Response) error {
	status := resp.StatusCode
	e := &uploadError{outcome: retry, status: status}
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusBadRequest, status == http.StatusRequestEntityTooLarge, status == http.StatusUnprocessableEntity:
		e.outcome, e.reason = rejected, "rejected"
	case status == http.StatusRequestTimeout, status == http.StatusTooManyRequests, status >= 500:
		e.reason = "server_error"
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	default:
		e.reason = "client_error"
	}
	return e
}

// parseRetryAfter reads a Retry-After value in seconds; an HTTP date or a
// malformed value gives zero.
func parseRetryAfter(value string) time.Duration {
	seconds, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil || seconds < 0 {
		return 0
	}
	return time.Duration(seconds) * time.Second
}

// compressArray returns lines, newline-terminated JSON objects, as a
// gzip-compressed JSON array whose elements are the lines' bytes as they
// are, so that a collector can check a hash over each record.
func compressArray(lines []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte{'['})
	for len(lines) > 0 && err == nil {
		end := bytes.IndexByte(lines, '\n')
		if end < 0 {
			end = len(lines)
		}
		if _, err = zw.Write(lines[:end]); err != nil {
			break
		}
		lines = lines[min(end+1, len(lines)):]
		if len(lines) > 0 {
			_, err = zw.Write([]byte{','})
		}
	}
	if err == nil {
		_, err = zw.Write([]byte{']'})
	}
	if closeErr := zw.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return nil, fmt.Errorf("compress batch: %w", err)
	}
	return buf.Bytes(), nil
}

// ReadToken reads a bearer token file: one line, surrounding white space
// trimmed. The shipper reads it before each upload, so that a rotated
// token applies to the next upload.
func ReadToken(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read token file: %w", err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return "", fmt.Errorf("token file %s is empty; write the bearer token in it", path)
	}
	if strings.ContainsAny(token, "\r\n") {
		return "", fmt.Errorf("token file %s holds more than one line; write only the bearer token", path)
	}
	return token, nil
}
