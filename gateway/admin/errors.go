package admin

import (
	"encoding/json"
	"net/http"
)

// Matrix error codes of the admin API's responses.
const (
	codeMissingToken = "M_MISSING_TOKEN"
	codeUnknownToken = "M_UNKNOWN_TOKEN"
	codeForbidden    = "M_FORBIDDEN"
	codeNotFound     = "M_NOT_FOUND"
	codeUnrecognized = "M_UNRECOGNIZED"
	codeNotJSON      = "M_NOT_JSON"
	codeInvalidParam = "M_INVALID_PARAM"
	codeTooLarge     = "M_TOO_LARGE"
	codeUnknown      = "M_UNKNOWN"
)

// apiError is an error response in the Matrix shape.
type apiError struct {
	status  int
	errcode string
	message string
}

func (e *apiError) Error() string { return e.errcode + ": " + e.message }

func newError(status int, errcode, message string) *apiError {
	return &apiError{status: status, errcode: errcode, message: message}
}

// writeError sends e as {"errcode": ..., "error": ...}.
func writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, map[string]string{"errcode": e.errcode, "error": e.message})
}

// writeJSON sends v as an indented JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"errcode": "M_UNKNOWN", "error": "response could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
