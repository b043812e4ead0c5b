package routes

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// maxPathSegments bounds the segments Match looks at, so that matching
// needs no allocation for them. No route has more; buildTable checks that.
const maxPathSegments = 8

// Result is a request matched to a route.
type Result struct {
	// Route is the matched route, shared and not to be modified.
	Route *Route
	// Params holds the decoded path parameters by name (room_id, event_id,
	// user_id, txn_id, query_type, server_name, media_id, key_id,
	// file_name). It is nil for a route without parameters.
	Params map[string]string
	// RawPath is the path of the request target as received.
	RawPath string
	// RawQuery is the query of the request target as received, without the
	// '?', or "" when there is none.
	RawQuery string
}

// Query parses RawQuery with [url.ParseQuery], which decodes '+' as a space.
func (r Result) Query() (url.Values, error) {
	return url.ParseQuery(r.RawQuery)
}

// segment is one path segment as received and percent-decoded.
type segment struct {
	raw, decoded string
}

// Match finds the route of a request. method is the request method and
// requestURI the raw request target (http.Request.RequestURI), never a
// re-encoded URL, because the X-Matrix signature covers the raw bytes.
//
// The path is split on '/' first and each segment is then percent-decoded on
// its own, so "$a%2Fb" is one event_id "$a/b", and '+' stays '+'. Fixed
// segments must match byte for byte: "%73end" is not "send", because a
// homeserver may route on the raw path and then see another endpoint than
// the gateway did. A literal segment wins over a parameter, so
// /query/directory is query_directory and not query, and an encoded
// spelling of a literal ("/query/%64irectory") matches neither.
//
// The error wraps [ErrNotFound] for a target that matches no route, and for
// a target that is not in origin form ("*", "http://host/...") or contains a
// fragment, whitespace or control characters. It also wraps ErrNotFound for
// a path with an empty segment (a trailing or doubled slash), a "." or ".."
// segment, or invalid percent-encoding. The same goes for a segment that
// decodes to invalid UTF-8 or a control character. The error is a [*MethodNotAllowedError]
// when the path matches but the method does not.
func Match(method, requestURI string) (Result, error) {
	rawPath, rawQuery, err := splitTarget(requestURI)
	if err != nil {
		return Result{}, err
	}
	var buf [maxPathSegments]segment
	segments, err := splitSegments(rawPath, buf[:0])
	if err != nil {
		return Result{}, err
	}

	var valueBuf [maxPathSegments]string
	end, values := table.root.find(segments, valueBuf[:0])
	if end == nil {
		return Result{}, fmt.Errorf("%w: %s %s", ErrNotFound, method, rawPath)
	}
	route := end.route(method)
	if route == nil {
		return Result{}, &MethodNotAllowedError{Method: method, Path: rawPath, Allowed: slices.Clone(end.allowed)}
	}

	res := Result{Route: route, RawPath: rawPath, RawQuery: rawQuery}
	if len(route.Params) > 0 {
		res.Params = make(map[string]string, len(route.Params))
		for i, name := range route.Params {
			res.Params[name] = values[i]
		}
	}
	return res, nil
}

// splitTarget checks that target is in origin form and splits it into path
// and query.
func splitTarget(target string) (path, query string, err error) {
	if !strings.HasPrefix(target, "/") {
		return "", "", fmt.Errorf("%w: request target %q is not in origin form", ErrNotFound, target)
	}
	for i := 0; i < len(target); i++ {
		c := target[i]
		if c <= ' ' || c == 0x7f {
			return "", "", fmt.Errorf("%w: request target %q contains byte 0x%02x", ErrNotFound, target, c)
		}
		if c == '#' {
			return "", "", fmt.Errorf("%w: request target %q contains a fragment", ErrNotFound, target)
		}
	}
	path, query, _ = strings.Cut(target, "?")
	return path, query, nil
}

// splitSegments splits path, which starts with '/', into checked and
// decoded segments appended to dst.
func splitSegments(path string, dst []segment) ([]segment, error) {
	rest := path[1:]
	for {
		raw, tail, more := strings.Cut(rest, "/")
		if len(dst) == maxPathSegments {
			return nil, fmt.Errorf("%w: path %q has too many segments", ErrNotFound, path)
		}
		seg, err := decodeSegment(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: path %q: %w", ErrNotFound, path, err)
		}
		dst = append(dst, seg)
		if !more {
			return dst, nil
		}
		rest = tail
	}
}

func decodeSegment(raw string) (segment, error) {
	if raw == "" {
		return segment{}, fmt.Errorf("empty segment")
	}
	decoded, err := url.PathUnescape(raw)
	if err != nil {
		return segment{}, fmt.Errorf("segment %q: invalid percent-encoding", raw)
	}
	if decoded == "." || decoded == ".." {
		return segment{}, fmt.Errorf("dot segment %q", raw)
	}
	if !utf8.ValidString(decoded) {
		return segment{}, fmt.Errorf("segment %q is not valid UTF-8", raw)
	}
	for i := 0; i < len(decoded); i++ {
		if c := decoded[i]; c < ' ' || c == 0x7f {
			return segment{}, fmt.Errorf("segment %q decodes to control character 0x%02x", raw, c)
		}
	}
	return segment{raw: raw, decoded: decoded}, nil
}

// find walks the tree from n along segments, trying a literal child before
// the parameter child, and returns the node where a route ends with the
// decoded parameter values on the way.
func (n *node) find(segments []segment, values []string) (*node, []string) {
	if len(segments) == 0 {
		if len(n.routes) == 0 {
			return nil, nil
		}
		return n, values
	}
	if c := n.literals[segments[0].raw]; c != nil {
		if end, v := c.find(segments[1:], values); end != nil {
			return end, v
		}
	}
	if n.param == nil {
		return nil, nil
	}
	// An encoded spelling of a literal sibling, such as "%64irectory" next
	// to "directory", is not taken as the parameter: a homeserver that
	// decodes before routing would see the literal route instead.
	if seg := segments[0]; seg.raw != seg.decoded && n.literals[seg.decoded] != nil {
		return nil, nil
	}
	return n.param.find(segments[1:], append(values, segments[0].decoded))
}

func (n *node) route(method string) *Route {
	for _, r := range n.routes {
		if r.Method == method {
			return r
		}
	}
	return nil
}
