// Package admin is the gateway's admin listener: health, readiness,
// metrics and the allow-list API, behind bearer tokens or client
// certificates. Errors are JSON objects in the Matrix shape,
// {"errcode": ..., "error": ...}.
package admin

import (
	"context"
	"log/slog"
	"net/http"

	"go.opentelemetry.io/otel/metric"

	"github.com/bordergate/bordergate/gateway/store"
)

// Allowlist is the part of the allow-list store that the admin API reads
// and changes. *store.Store implements it.
type Allowlist interface {
	List() store.Listing
	Revision() string
	AddEntry(e store.Entry, by string) (store.Entry, error)
	PutEntry(e store.Entry, by string) (store.Entry, bool, error)
	RemoveEntry(serverName, by string) (store.Entry, error)
	ImportSource(source string, entries []store.Entry, by string) error
	DeleteSource(source, by string) error
}

var _ Allowlist = (*store.Store)(nil)

// Check is one readiness check: nil when ready, else why not.
type Check func(ctx context.Context) error

// Options configures the admin handler.
type Options struct {
	// Allowlist is the allow-list that the API serves and changes.
	Allowlist Allowlist
	// Auth identifies the principal of each API request.
	Auth *Authenticator
	// Checks are the readiness checks by name, all of which must pass for
	// /readyz to return 200.
	Checks map[string]Check
	// Metrics serves /metrics.
	Metrics http.Handler
	// MetricsNeedAuth makes /metrics require authentication, as it does
	// on a listener that is not on loopback, and keeps the reasons of
	// failed readiness checks for authenticated clients.
	MetricsNeedAuth bool
	// LocalServerNames are the gateway's own server names. A moderation
	// list import skips bans that match one of them.
	LocalServerNames []string
	// SignedLists, when not nil, returns the state of the signed lists,
	// shown by GET /v1/allowlist under signed_lists.
	SignedLists func() any
	// AuthFailures counts rejected authentications, by reason.
	AuthFailures metric.Int64Counter
	// Logger receives a record of each change and each rejected request.
	Logger *slog.Logger
}

// Handler serves the admin routes:
//
//	GET    /healthz                               liveness
//	GET    /readyz                                readiness, 503 when a check fails
//	GET    /metrics                               Prometheus text format
//	GET    /v1/allowlist                          every entry, source and the revision
//	POST   /v1/allowlist/entries                  add an entry to the api source
//	PUT    /v1/allowlist/entries/{server_name}    add or replace an entry of the api source
//	DELETE /v1/allowlist/entries/{server_name}    remove an entry of the api source
//	PUT    /v1/allowlist/imports/{name}           replace the imported list import:NAME
//	DELETE /v1/allowlist/imports/{name}           remove the imported list import:NAME
type Handler struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
}

// NewHandler returns the admin handler.
func NewHandler(opts Options) *Handler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, log: log, mux: http.NewServeMux()}
	h.route("/healthz", methods{http.MethodGet: h.healthz})
	h.route("/readyz", methods{http.MethodGet: h.readyz})
	h.route("/metrics", methods{http.MethodGet: h.metrics})
	h.route("/v1/allowlist", methods{http.MethodGet: h.authenticated(queryless(h.list))})
	h.route("/v1/allowlist/entries", methods{http.MethodPost: h.authenticated(queryless(h.addEntry))})
	h.route("/v1/allowlist/entries/{server_name}", methods{
		http.MethodPut:    h.authenticated(queryless(h.putEntry)),
		http.MethodDelete: h.authenticated(queryless(h.removeEntry)),
	})
	h.route("/v1/allowlist/imports/{name}", methods{
		http.MethodPut:    h.authenticated(h.importList),
		http.MethodDelete: h.authenticated(queryless(h.deleteImport)),
	})
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError(http.StatusNotFound, codeUnrecognized, "unknown admin path "+r.URL.Path))
	})
	return h
}

// ServeHTTP serves one admin request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// methods maps HTTP methods to the handlers of one path.
type methods map[string]http.HandlerFunc

// route registers a path whose methods dispatch to handlers, and whose
// other methods get 405 with a Matrix error.
func (h *Handler) route(pattern string, handlers methods) {
	h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if handler, ok := handlers[r.Method]; ok {
			handler(w, r)
			return
		}
		if r.Method == http.MethodHead {
			if handler, ok := handlers[http.MethodGet]; ok {
				handler(w, r)
				return
			}
		}
		writeError(w, newError(http.StatusMethodNotAllowed, codeUnrecognized, "method "+r.Method+" not allowed on "+r.URL.Path))
	})
}

func (h *Handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz runs every check and returns 200 when all pass, 503 otherwise,
// with the result of each check. Probes need no authentication. Where
// metrics do, the reason of a failed check, which may name internal URLs
// and files, goes only to an authenticated client, and others read "failed".
func (h *Handler) readyz(w http.ResponseWriter, r *http.Request) {
	detailed := !h.opts.MetricsNeedAuth
	if !detailed {
		_, err := h.opts.Auth.Authenticate(r)
		detailed = err == nil
	}
	results := make(map[string]string, len(h.opts.Checks))
	ready := true
	for name, check := range h.opts.Checks {
		if err := check(r.Context()); err != nil {
			results[name] = "failed"
			if detailed {
				results[name] = err.Error()
			}
			ready = false
			continue
		}
		results[name] = "ok"
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": results})
}

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	if h.opts.MetricsNeedAuth {
		if _, err := h.authenticate(r); err != nil {
			writeError(w, err)
			return
		}
	}
	if h.opts.Metrics == nil {
		writeError(w, newError(http.StatusNotFound, codeNotFound, "metrics are not enabled"))
		return
	}
	h.opts.Metrics.ServeHTTP(w, r)
}

// principalKey is the context key of the authenticated principal.
type principalKey struct{}

// authenticated wraps next so that it runs only for an authenticated
// principal, which it finds with principalOf.
func (h *Handler) authenticated(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		principal, err := h.authenticate(r)
		if err != nil {
			writeError(w, err)
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, principal)))
	}
}

// authenticate returns the principal of r or the error response for it.
func (h *Handler) authenticate(r *http.Request) (string, *apiError) {
	principal, err := h.opts.Auth.Authenticate(r)
	if err == nil {
		return principal, nil
	}
	reason := "missing"
	apiErr := newError(http.StatusUnauthorized, codeMissingToken, err.Error())
	switch err {
	case errUnknownToken:
		reason = "unknown_token"
		apiErr.errcode = codeUnknownToken
	case errMalformedAuth:
		reason = "malformed"
	case errNoAuthentication:
		reason = "not_configured"
		apiErr = newError(http.StatusForbidden, codeForbidden, err.Error())
	}
	if h.opts.AuthFailures != nil {
		h.opts.AuthFailures.Add(r.Context(), 1, metric.WithAttributeSet(reasonAttribute(reason)))
	}
	h.log.WarnContext(r.Context(), "admin request rejected", "reason", reason, "remote_address", r.RemoteAddr, "path", r.URL.Path)
	return "", apiErr
}

// queryless wraps next so that a request with query parameters is
// rejected. The route takes none, and a parameter such as dry_run=true
// that it ignored would let the change through.
func queryless(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, apiErr := readQuery(r); apiErr != nil {
			writeError(w, apiErr)
			return
		}
		next(w, r)
	}
}

func principalOf(r *http.Request) string {
	principal, _ := r.Context().Value(principalKey{}).(string)
	return principal
}
