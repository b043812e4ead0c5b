package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/bordergate/bordergate/gateway/keys"
	"github.com/bordergate/bordergate/gateway/servername"
)

// route is the connection plan for requests to one server name: the
// target, the certificate name, the dialer and the client certificate
// choice. Routes are the keys of the transport cache.
type route struct {
	serverName string
	target     keys.Target
	// tlsName is the name the certificate must be valid for, a DNS name
	// or an IP address.
	tlsName string
	// pinned is set for an allow-list address, which is dialled without
	// the private-range check.
	pinned bool
	// presentCert is set when the handshake presents the client
	// certificate.
	presentCert bool
}

// route resolves serverName to a route: the allow-list address when the
// entry has one, discovery otherwise.
func (c *Client) route(ctx context.Context, serverName string) (route, error) {
	address, requireMTLS := c.pinnedEntry(serverName)
	if requireMTLS && c.clientCert == nil {
		return route{}, fmt.Errorf("%w: server requires mutual TLS but the gateway has no client certificate configured", ErrTLS)
	}
	rt := route{
		serverName:  serverName,
		presentCert: requireMTLS || (c.alwaysPresent && c.clientCert != nil),
	}

	if address != "" {
		target, err := pinnedTarget(serverName, address)
		if err != nil {
			return route{}, err
		}
		rt.target = target
		rt.pinned = true
	} else {
		target, err := c.discovery.Resolve(ctx, serverName)
		if err != nil {
			return route{}, fmt.Errorf("discover %s: %w: %w", serverName, ErrUnreachable, err)
		}
		rt.target = target
	}

	name, err := tlsServerName(rt.target)
	if err != nil {
		return route{}, err
	}
	rt.tlsName = name
	return rt, nil
}

// pinnedEntry returns the allow-list address of serverName, empty when
// its entry has none, and whether the server requires mutual TLS.
func (c *Client) pinnedEntry(serverName string) (address string, requireMTLS bool) {
	if c.pinned == nil {
		return "", false
	}
	address, requireMTLS, ok := c.pinned(serverName)
	if !ok {
		return "", false
	}
	return address, requireMTLS
}

// pinnedTarget returns the target of a server name whose allow-list entry
// gives its address. The Matrix specification's rules for a name without
// delegation apply: the Host header is the server name, and the
// certificate must be valid for its host. When that host is an IP
// address, crypto/tls checks it against the certificate's IP SANs and
// sends no SNI.
func pinnedTarget(serverName, address string) (keys.Target, error) {
	if _, _, err := net.SplitHostPort(address); err != nil {
		return keys.Target{}, fmt.Errorf("invalid allow-list address %q for %s: %w", address, serverName, err)
	}
	host, _, err := servername.Split(serverName)
	if err != nil {
		return keys.Target{}, err
	}
	return keys.Target{Addr: address, Host: serverName, TLSServerName: host}, nil
}

// tlsServerName returns the name the certificate of target must be valid
// for. For an IP literal target it is the IP address, which crypto/tls
// checks against the certificate's IP SANs and does not send as SNI.
func tlsServerName(target keys.Target) (string, error) {
	if target.TLSServerName != "" {
		return target.TLSServerName, nil
	}
	host, _, err := net.SplitHostPort(target.Addr)
	if err != nil {
		return "", fmt.Errorf("invalid discovered address %q: %w", target.Addr, err)
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("discovered address %q has neither a TLS server name nor an IP address", target.Addr)
	}
	return host, nil
}

// requestTarget returns the request target to send, byte for byte, in
// origin form. See [Client.Do] for where it comes from.
func requestTarget(req *http.Request) (string, error) {
	var target string
	switch {
	case req.RequestURI != "":
		target = req.RequestURI
	case req.URL == nil:
		return "", errors.New("request has neither a request URI nor a URL")
	case req.URL.Opaque != "":
		target = req.URL.Opaque
		if req.URL.ForceQuery || req.URL.RawQuery != "" {
			target += "?" + req.URL.RawQuery
		}
	default:
		target = req.URL.RequestURI()
	}
	return originForm(target)
}

// originForm returns target in origin form, "/path?query": an
// absolute-form target loses its scheme and authority, and an empty path
// becomes "/". Everything else is kept byte for byte, raw non-ASCII
// bytes and percent-encoding included. It rejects other forms, bytes that
// would break the request line, and a path starting with "//", which
// net/url would turn into a scheme-relative URL.
func originForm(target string) (string, error) {
	if rest, ok := cutAbsoluteForm(target); ok {
		target = rest
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
	}
	if !strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("invalid request target %q: not in origin form", target)
	}
	if strings.HasPrefix(target, "//") {
		return "", fmt.Errorf("invalid request target %q: starts with //", target)
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b == 0x7f {
			return "", fmt.Errorf("invalid request target %q: contains byte 0x%02x", target, b)
		}
	}
	return target, nil
}

// cutAbsoluteForm returns what follows the scheme and authority of an
// http or https absolute-form target, as a forward proxy receives it.
func cutAbsoluteForm(target string) (string, bool) {
	scheme, rest, ok := strings.Cut(target, "://")
	if !ok || !(strings.EqualFold(scheme, "https") || strings.EqualFold(scheme, "http")) {
		return "", false
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		return "", true
	}
	return rest[end:], true
}

// outboundRequest returns a copy of req for the transport: scheme https,
// host and Host header set to host, and target kept verbatim in
// URL.Opaque, from which net/http writes the request line and the
// HTTP/2 :path unchanged.
func outboundRequest(ctx context.Context, req *http.Request, host, target string) *http.Request {
	out := req.Clone(ctx)
	out.URL = &url.URL{Scheme: "https", Host: host, Opaque: target}
	out.Host = host
	out.RequestURI = ""
	return out
}
