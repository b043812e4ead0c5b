package keys

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
	"github.com/bordergate/bordergate/gateway/servername"
)

// wellKnownEntry is a cached .well-known result: the delegated server name,
// or ok false when the lookup failed or the response was invalid.
type wellKnownEntry struct {
	server  string
	ok      bool
	expires time.Time
}

// wellKnownCache maps host names to .well-known results.
type wellKnownCache struct {
	mu      sync.Mutex // guards entries
	entries map[string]wellKnownEntry
}

func (c *wellKnownCache) get(host string, now time.Time) (wellKnownEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[host]
	if !ok || !now.Before(e.expires) {
		return wellKnownEntry{}, false
	}
	return e, true
}

// put stores e. A full cache first drops expired entries, then one
// arbitrary entry, so that lookups of many names cannot grow it without
// bound.
func (c *wellKnownCache) put(host string, e wellKnownEntry, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, present := c.entries[host]; !present && len(c.entries) >= maxWellKnownEntries {
		for h, old := range c.entries {
			if !now.Before(old.expires) {
				delete(c.entries, h)
			}
		}
		for h := range c.entries {
			if len(c.entries) < maxWellKnownEntries {
				break
			}
			delete(c.entries, h)
		}
	}
	c.entries[host] = e
}

// wellKnown returns the m.server value that host delegates to, from the
// cache or from https://host/.well-known/matrix/server.
func (d *Discovery) wellKnown(ctx context.Context, host string) (string, bool) {
	now := d.now()
	if e, ok := d.cache.get(host, now); ok {
		return e.server, e.ok
	}

	server, lifetime, err := d.fetchWellKnown(ctx, host)
	if err != nil {
		d.log.DebugContext(ctx, "well-known lookup failed", "server_name", host, "err", err)
		d.cache.put(host, wellKnownEntry{expires: now.Add(wellKnownErrorCache)}, now)
		return "", false
	}
	d.cache.put(host, wellKnownEntry{server: server, ok: true, expires: now.Add(lifetime)}, now)
	return server, true
}

// fetchWellKnown requests the .well-known document of host and returns its
// m.server value and how long to cache it.
func (d *Discovery) fetchWellKnown(ctx context.Context, host string) (string, time.Duration, error) {
	authority := host
	if d.wellKnownPort != 0 {
		authority = net.JoinHostPort(host, strconv.Itoa(d.wellKnownPort))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+authority+"/.well-known/matrix/server", nil)
	if err != nil {
		return "", 0, fmt.Errorf("build request: %w", err)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("status %s", resp.Status)
	}

	body, err := io.ReadAll(io.LimitReader(resp.Body, wellKnownMaxBytes+1))
	if err != nil {
		return "", 0, fmt.Errorf("read body: %w", err)
	}
	if len(body) > wellKnownMaxBytes {
		return "", 0, fmt.Errorf("body is larger than %d bytes", wellKnownMaxBytes)
	}
	server, err := parseWellKnown(body)
	if err != nil {
		return "", 0, err
	}
	return server, cacheLifetime(resp.Header.Values("Cache-Control")), nil
}

// parseWellKnown returns the m.server value of a .well-known document,
// which must be a valid server name.
func parseWellKnown(body []byte) (string, error) {
	v, err := canonicaljson.Parse(body)
	if err != nil {
		return "", fmt.Errorf("parse body: %w", err)
	}
	if v.Kind() != canonicaljson.Object {
		return "", fmt.Errorf("body is a JSON %s instead of an object", v.Kind())
	}
	server, ok := v.GetString("m.server")
	if !ok {
		return "", errors.New("m.server missing or not a string")
	}
	if err := servername.Validate(server); err != nil {
		return "", fmt.Errorf("m.server: %w", err)
	}
	return server, nil
}

// cacheLifetime returns how long to cache a valid .well-known response
// with the given Cache-Control header values: max-age clamped to the
// range wellKnownMinCache to wellKnownMaxCache, the default lifetime
// without one, and wellKnownMinCache for no-store or no-cache.
func cacheLifetime(cacheControl []string) time.Duration {
	lifetime := wellKnownDefaultCache
	for _, value := range cacheControl {
		for directive := range strings.SplitSeq(value, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(directive), "=")
			switch strings.ToLower(name) {
			case "no-store", "no-cache":
				return wellKnownMinCache
			case "max-age":
				seconds, err := strconv.ParseInt(strings.Trim(arg, `"`), 10, 64)
				if err == nil && seconds >= 0 {
					lifetime = time.Duration(min(seconds, int64(wellKnownMaxCache/time.Second))) * time.Second
				}
			}
		}
	}
	return min(max(lifetime, wellKnownMinCache), wellKnownMaxCache)
}

// checkWellKnownRedirect follows at most wellKnownMaxRedirects redirects,
// only to https URLs, and stops at the first URL seen twice.
func checkWellKnownRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= wellKnownMaxRedirects {
		return fmt.Errorf("more than %d redirects", wellKnownMaxRedirects)
	}
	if req.URL.Scheme != "https" {
		return fmt.Errorf("redirect to non-https URL %s", req.URL.Redacted())
	}
	for _, prev := range via {
		if prev.URL.String() == req.URL.String() {
			return fmt.Errorf("redirect loop at %s", req.URL.Redacted())
		}
	}
	return nil
}
