package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"

	"github.com/bordergate/bordergate/gateway/modlist"
	"github.com/bordergate/bordergate/gateway/store"
)

// Maximum request body sizes, in bytes.
const (
	maxEntryBytes  = 64 << 10
	maxImportBytes = 32 << 20
)

// Import formats of PUT /v1/allowlist/imports/{name}.
const (
	FormatModeration = "moderation"
	FormatAllowlist  = "allowlist"
)

// ListResponse is the body of GET /v1/allowlist.
type ListResponse struct {
	store.Listing
	// SignedLists is the state of each signed list, when the gateway has
	// any.
	SignedLists json.RawMessage `json:"signed_lists,omitempty"`
}

// EntryResponse is the body of a successful change to one entry.
type EntryResponse struct {
	// Entry is the entry as stored, or as removed.
	Entry store.Entry `json:"entry"`
	// Revision is the allow-list revision after the change.
	Revision string `json:"revision"`
}

// ImportResponse is the body of a successful import or import removal.
type ImportResponse struct {
	Source     string `json:"source"`
	Revision   string `json:"revision"`
	EntryCount int    `json:"entry_count"`
	// DryRun is true when the list was checked but not applied.
	DryRun bool `json:"dry_run"`
	// Skipped and Notices report what a moderation list import did with
	// the rules that did not become entries as they were written.
	Skipped      []modlist.Report `json:"skipped"`
	Notices      []modlist.Report `json:"notices"`
	RemovedRules int              `json:"removed_rules"`
	OtherEvents  int              `json:"other_events"`
}

func (h *Handler) list(w http.ResponseWriter, _ *http.Request) {
	response := ListResponse{Listing: h.opts.Allowlist.List()}
	if h.opts.SignedLists != nil {
		encoded, err := json.Marshal(h.opts.SignedLists())
		if err == nil {
			response.SignedLists = encoded
		}
	}
	writeJSON(w, http.StatusOK, response)
}

func (h *Handler) addEntry(w http.ResponseWriter, r *http.Request) {
	entry, apiErr := readEntry(w, r)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	before := h.opts.Allowlist.Revision()
	stored, err := h.opts.Allowlist.AddEntry(entry, principalOf(r))
	if err != nil {
		writeError(w, h.changeError(r, err))
		return
	}
	revision := h.opts.Allowlist.Revision()
	status := http.StatusCreated
	if revision == before {
		status = http.StatusOK
	}
	writeJSON(w, status, EntryResponse{Entry: stored, Revision: revision})
}

func (h *Handler) putEntry(w http.ResponseWriter, r *http.Request) {
	entry, apiErr := readEntry(w, r)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if name := r.PathValue("server_name"); !strings.EqualFold(name, entry.ServerName) {
		writeError(w, newError(http.StatusBadRequest, codeInvalidParam,
			fmt.Sprintf("server_name %q in the body differs from %q in the path (expected the same name)", entry.ServerName, name)))
		return
	}
	stored, created, err := h.opts.Allowlist.PutEntry(entry, principalOf(r))
	if err != nil {
		writeError(w, h.changeError(r, err))
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, EntryResponse{Entry: stored, Revision: h.opts.Allowlist.Revision()})
}

func (h *Handler) removeEntry(w http.ResponseWriter, r *http.Request) {
	removed, err := h.opts.Allowlist.RemoveEntry(r.PathValue("server_name"), principalOf(r))
	if err != nil {
		writeError(w, h.changeError(r, err))
		return
	}
	writeJSON(w, http.StatusOK, EntryResponse{Entry: removed, Revision: h.opts.Allowlist.Revision()})
}

func (h *Handler) importList(w http.ResponseWriter, r *http.Request) {
	source := store.SourcePrefixImport + r.PathValue("name")
	if err := store.CheckSourceName(source); err != nil {
		writeError(w, newError(http.StatusBadRequest, codeInvalidParam, err.Error()))
		return
	}
	query, apiErr := readQuery(r, "format", "dry_run")
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	dryRun, apiErr := parseDryRun(query)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	if apiErr := checkMediaType(r, append([]string{jsonMediaType}, yamlMediaTypes...)...); apiErr != nil {
		writeError(w, apiErr)
		return
	}
	data, apiErr := readBody(w, r, maxImportBytes)
	if apiErr != nil {
		writeError(w, apiErr)
		return
	}
	response := ImportResponse{Source: source, DryRun: dryRun, Skipped: []modlist.Report{}, Notices: []modlist.Report{}}
	var entries []store.Entry
	switch format := query["format"]; format {
	case FormatModeration:
		result, err := modlist.Parse(data, modlist.Options{LocalServerNames: h.opts.LocalServerNames})
		if err != nil {
			writeError(w, newError(http.StatusBadRequest, codeInvalidParam, err.Error()))
			return
		}
		entries = result.Entries
		response.Skipped, response.Notices = nonNil(result.Skipped), nonNil(result.Notices)
		response.RemovedRules, response.OtherEvents = result.RemovedRules, result.OtherEvents
	case FormatAllowlist:
		parsed, err := store.ParseAllowlist("request body", data)
		if err != nil {
			writeError(w, newError(http.StatusBadRequest, codeInvalidParam, err.Error()))
			return
		}
		entries = parsed
	default:
		writeError(w, newError(http.StatusBadRequest, codeInvalidParam,
			fmt.Sprintf("unknown import format %q (expected format=%s or format=%s)", format, FormatModeration, FormatAllowlist)))
		return
	}
	response.EntryCount = len(entries)
	if !response.DryRun {
		if err := h.opts.Allowlist.ImportSource(source, entries, principalOf(r)); err != nil {
			writeError(w, h.changeError(r, err))
			return
		}
	}
	response.Revision = h.opts.Allowlist.Revision()
	writeJSON(w, http.StatusOK, response)
}

// readQuery returns the query parameters of r, each of which must be one
// of allowed and given at most once. An unknown parameter is an error
// rather than ignored, so that a misspelt dry_run does not apply a change.
func readQuery(r *http.Request, allowed ...string) (map[string]string, *apiError) {
	values, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, newError(http.StatusBadRequest, codeInvalidParam, fmt.Sprintf("invalid query %q: %v", r.URL.RawQuery, err))
	}
	expected := "no query parameters"
	if len(allowed) > 0 {
		expected = "only " + strings.Join(allowed, " and ")
	}
	query := make(map[string]string, len(values))
	for _, name := range slices.Sorted(maps.Keys(values)) {
		switch {
		case !slices.Contains(allowed, name):
			return nil, newError(http.StatusBadRequest, codeInvalidParam,
				fmt.Sprintf("unknown query parameter %q on %s (expected %s)", name, r.URL.Path, expected))
		case len(values[name]) > 1:
			return nil, newError(http.StatusBadRequest, codeInvalidParam,
				fmt.Sprintf("query parameter %q given %d times (expected it once)", name, len(values[name])))
		}
		query[name] = values[name][0]
	}
	return query, nil
}

// parseDryRun reads the dry_run parameter of an import: true, false or
// absent. Other spellings such as 1 or yes are errors, because taking them
// for false would apply a change that the client meant to try.
func parseDryRun(query map[string]string) (bool, *apiError) {
	value, present := query["dry_run"]
	switch {
	case !present || value == "false":
		return false, nil
	case value == "true":
		return true, nil
	}
	return false, newError(http.StatusBadRequest, codeInvalidParam,
		fmt.Sprintf("invalid dry_run %q (expected dry_run=true to check the list without importing it, or no dry_run)", value))
}

func nonNil(reports []modlist.Report) []modlist.Report {
	if reports == nil {
		return []modlist.Report{}
	}
	return reports
}

func (h *Handler) deleteImport(w http.ResponseWriter, r *http.Request) {
	source := store.SourcePrefixImport + r.PathValue("name")
	if err := store.CheckSourceName(source); err != nil {
		writeError(w, newError(http.StatusBadRequest, codeInvalidParam, err.Error()))
		return
	}
	if err := h.opts.Allowlist.DeleteSource(source, principalOf(r)); err != nil {
		writeError(w, h.changeError(r, err))
		return
	}
	writeJSON(w, http.StatusOK, ImportResponse{Source: source, Revision: h.opts.Allowlist.Revision(),
		Skipped: []modlist.Report{}, Notices: []modlist.Report{}})
}

// jsonMediaType is the media type of a JSON request body.
const jsonMediaType = "application/json"

// yamlMediaTypes are the media types of a YAML request body.
var yamlMediaTypes = []string{"application/yaml", "application/x-yaml", "text/yaml"}

// checkMediaType returns an error unless the Content-Type of r is one of
// accepted. A request body of another type is rejected even when it would
// parse: a web page can post text/plain, form or multipart bodies across
// sites without asking the listener first, and a browser attaches the
// admin client certificate that it holds to them.
func checkMediaType(r *http.Request, accepted ...string) *apiError {
	header := r.Header.Get("Content-Type")
	mediaType, _, err := mime.ParseMediaType(header)
	if err == nil && slices.Contains(accepted, mediaType) {
		return nil
	}
	return newError(http.StatusUnsupportedMediaType, codeNotJSON,
		fmt.Sprintf("Content-Type %q is not JSON (expected Content-Type: %s)", header, jsonMediaType))
}

// readEntry reads and validates the JSON entry of a request body.
func readEntry(w http.ResponseWriter, r *http.Request) (store.Entry, *apiError) {
	if apiErr := checkMediaType(r, jsonMediaType); apiErr != nil {
		return store.Entry{}, apiErr
	}
	data, apiErr := readBody(w, r, maxEntryBytes)
	if apiErr != nil {
		return store.Entry{}, apiErr
	}
	if !json.Valid(data) {
		return store.Entry{}, newError(http.StatusBadRequest, codeNotJSON, "request body is not valid JSON (expected one allow-list entry as a JSON object)")
	}
	entry, err := store.ParseEntry(data)
	if err != nil {
		return store.Entry{}, newError(http.StatusBadRequest, codeInvalidParam, err.Error())
	}
	return entry, nil
}

// readBody reads a request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, *apiError) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, newError(http.StatusRequestEntityTooLarge, codeTooLarge, fmt.Sprintf("request body is larger than %d bytes", limit))
	case err != nil:
		return nil, newError(http.StatusBadRequest, codeUnknown, "read request body: "+err.Error())
	}
	return data, nil
}

// changeError maps an error of the allow-list to its response, and logs
// the failures that are not the client's.
func (h *Handler) changeError(r *http.Request, err error) *apiError {
	var entryErr *store.EntryError
	switch {
	case errors.Is(err, store.ErrEntryExists):
		// The Matrix client-server API returns 409 M_UNKNOWN for a room
		// alias that exists, the same situation.
		return newError(http.StatusConflict, codeUnknown, err.Error())
	case errors.Is(err, store.ErrEntryNotFound), errors.Is(err, store.ErrSourceNotFound):
		return newError(http.StatusNotFound, codeNotFound, err.Error())
	case errors.As(err, &entryErr):
		return newError(http.StatusBadRequest, codeInvalidParam, err.Error())
	}
	h.log.ErrorContext(r.Context(), "allow-list change failed", "err", err, "path", r.URL.Path, "principal", principalOf(r))
	return newError(http.StatusInternalServerError, codeUnknown, "allow-list change not saved, nothing changed: "+err.Error())
}

func reasonAttribute(reason string) attribute.Set {
	return attribute.NewSet(attribute.String("reason", reason))
}
