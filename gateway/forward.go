package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/bordergate/bordergate/certs"
)

// hopHeaders are the connection-level headers that a proxy must not pass
// on (RFC 9110 section 7.6.1), plus Proxy-Authorization.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// forwarder sends verified requests to the homeserver, byte for byte.
type forwarder struct {
	base    *url.URL
	client  *http.Client
	timeout time.Duration
}

func newForwarder(cfg HomeserverConfig) (*forwarder, error) {
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("homeserver url: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.MaxIdleConnsPerHost = 64
	if cfg.CAFile != "" {
		pool, err := certs.LoadCertPool(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("homeserver ca_file: %w", err)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &forwarder{
		base:    base,
		client:  &http.Client{Transport: transport, CheckRedirect: noRedirects},
		timeout: cfg.Timeout,
	}, nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// forwardedResponse is an upstream response, read in full.
type forwardedResponse struct {
	status int
	header http.Header
	body   []byte
}

// send sends the request with its raw target and the exact body bytes that
// were verified. The caller must close the response body and then call
// the returned cancel function.
//
// auth replaces the request's Authorization headers: the gateway forwards
// the X-Matrix headers it verified, written in their plain form, so that a
// homeserver that reads headers differently cannot find another origin in
// them. Nil auth forwards none.
func (f *forwarder) send(ctx context.Context, in *http.Request, body []byte, auth []string) (*http.Response, context.CancelFunc, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	// The raw request target is forwarded unchanged: the X-Matrix signature
	// covers it exactly as the origin sent it.
	target := &url.URL{Scheme: f.base.Scheme, Host: f.base.Host, Opaque: in.RequestURI}
	out, err := http.NewRequestWithContext(ctx, in.Method, f.base.String(), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, nil, wrapError(http.StatusInternalServerError, codeUnknown, "building the forwarded request failed", err)
	}
	out.URL = target
	out.Host = in.Host
	out.Header = forwardHeaders(in)
	out.Header.Del("Authorization")
	for _, value := range auth {
		out.Header.Add("Authorization", value)
	}
	out.ContentLength = int64(len(body))
	if len(body) == 0 {
		out.Body = http.NoBody
	}
	resp, err := f.client.Do(out)
	if err != nil {
		cancel()
		// The client's own error text shows the opaque target without the
		// host, so the error names the full URL itself.
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = fmt.Errorf("%s %s%s: %w", in.Method, f.base.String(), in.RequestURI, urlErr.Err)
		}
		return nil, nil, upstreamError(err)
	}
	return resp, cancel, nil
}

// upstream sends an exchange's request onward: to the local homeserver
// for inbound requests, to the peer for outbound ones.
type upstream interface {
	send(ctx context.Context, ex *exchange, body []byte, auth []string) (*http.Response, context.CancelFunc, error)
}

// homeserverSender sends inbound requests to the local homeserver.
type homeserverSender struct{ f *forwarder }

func (s homeserverSender) send(ctx context.Context, ex *exchange, body []byte, auth []string) (*http.Response, context.CancelFunc, error) {
	return s.f.send(ctx, ex.r, body, auth)
}

// fetch sends the request and reads the whole response, up to maxResponse
// bytes. An upstream that cannot be reached gives 502 and one that times
// out 504, so that the sender retries.
func fetch(ctx context.Context, up upstream, ex *exchange, body []byte, auth []string, maxResponse int64) (*forwardedResponse, error) {
	resp, cancel, err := up.send(ctx, ex, body, auth)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, upstreamError(err)
	}
	if int64(len(data)) > maxResponse {
		return nil, newError(http.StatusBadGateway, codeUnknown, "response exceeds the size limit")
	}
	return &forwardedResponse{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// relay copies a response the gateway does not inspect, such as media, to
// w as it arrives.
func relay(w http.ResponseWriter, resp *http.Response, decisionID string) {
	copyResponseHeaders(w, resp.Header, decisionID)
	if resp.ContentLength >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		// The status is already sent; ending the handler with the abort
		// error closes the connection so the origin gets a truncated response.
		panic(http.ErrAbortHandler)
	}
}

func upstreamError(err error) *matrixError {
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		(errors.As(err, &netErr) && netErr.Timeout()) {
		return wrapError(http.StatusGatewayTimeout, codeUnknown, "homeserver timed out", err)
	}
	return wrapError(http.StatusBadGateway, codeUnknown, "homeserver unreachable", err)
}

// forwardHeaders copies the end-to-end headers of in and names the client.
func forwardHeaders(in *http.Request) http.Header {
	h := in.Header.Clone()
	for _, name := range h.Values("Connection") {
		h.Del(name)
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
	h.Del("Content-Length")
	// Forwarding headers are the gateway's to set; a client's own would
	// let it claim another address.
	for _, name := range []string{"Forwarded", "X-Forwarded-Host", "X-Real-Ip"} {
		h.Del(name)
	}
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		h.Set("X-Forwarded-For", ip)
	}
	h.Set("X-Forwarded-Proto", "https")
	return h
}

// writeForwarded copies the homeserver's answer to the origin.
func writeForwarded(w http.ResponseWriter, resp *forwardedResponse, decisionID string) {
	copyResponseHeaders(w, resp.header, decisionID)
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func copyResponseHeaders(w http.ResponseWriter, from http.Header, decisionID string) {
	for name, values := range from {
		for _, v := range values {
			w.Header().Add(name, v)
		}
	}
	for _, name := range from.Values("Connection") {
		w.Header().Del(name)
	}
	for _, name := range hopHeaders {
		w.Header().Del(name)
	}
	w.Header().Del("Content-Length")
	if decisionID != "" {
		w.Header().Set(headerDecisionID, decisionID)
	}
}
