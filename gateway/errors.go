package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// Matrix error codes the gateway sends.
const (
	codeForbidden         = "M_FORBIDDEN"
	codeUnauthorized      = "M_UNAUTHORIZED"
	codeNotJSON           = "M_NOT_JSON"
	codeBadJSON           = "M_BAD_JSON"
	codeTooLarge          = "M_TOO_LARGE"
	codeUnrecognized      = "M_UNRECOGNIZED"
	codeInvalidParam      = "M_INVALID_PARAM"
	codeMissingParam      = "M_MISSING_PARAM"
	codeUnknown           = "M_UNKNOWN"
	codeLimitExceeded     = "M_LIMIT_EXCEEDED"
	codeIncompatibleRoom  = "M_INCOMPATIBLE_ROOM_VERSION"
	headerDecisionID      = "X-Bordergate-Decision-Id"
	contentTypeJSON       = "application/json"
	contentTypeHeaderName = "Content-Type"
)

// matrixError is a failure that ends a request with a Matrix error body.
type matrixError struct {
	status  int
	errcode string
	message string
	// allow lists the methods of a 405 response.
	allow []string
	// cause is the underlying error, logged and recorded but not sent.
	cause error
	// extra holds further members of the error body, such as the
	// room_version of M_INCOMPATIBLE_ROOM_VERSION.
	extra map[string]string
}

func (e *matrixError) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s (%d %s): %v", e.message, e.status, e.errcode, e.cause)
	}
	return fmt.Sprintf("%s (%d %s)", e.message, e.status, e.errcode)
}

func (e *matrixError) Unwrap() error { return e.cause }

func newError(status int, errcode, message string) *matrixError {
	return &matrixError{status: status, errcode: errcode, message: message}
}

func wrapError(status int, errcode, message string, cause error) *matrixError {
	return &matrixError{status: status, errcode: errcode, message: message, cause: cause}
}

// asMatrixError converts any pipeline error into its Matrix error. An
// error that is not a *matrixError is an internal failure and denies.
func asMatrixError(err error) *matrixError {
	var me *matrixError
	if errors.As(err, &me) {
		return me
	}
	return wrapError(http.StatusInternalServerError, codeUnknown, "internal gateway error", err)
}

// jsonErrorFor maps a canonicaljson parse error to its Matrix error.
func jsonErrorFor(what string, err error) *matrixError {
	if errors.Is(err, canonicaljson.ErrTooLarge) {
		return wrapError(http.StatusRequestEntityTooLarge, codeTooLarge, what+" contains too many JSON values: "+err.Error(), err)
	}
	if errors.Is(err, canonicaljson.ErrBadJSON) {
		return wrapError(http.StatusBadRequest, codeBadJSON, what+" is not acceptable JSON: "+err.Error(), err)
	}
	return wrapError(http.StatusBadRequest, codeNotJSON, what+" is not valid JSON: "+err.Error(), err)
}

// writeMatrixError sends e with the decision ID of its record.
func writeMatrixError(w http.ResponseWriter, e *matrixError, decisionID string) {
	body := map[string]string{"errcode": e.errcode, "error": e.message}
	for k, v := range e.extra {
		body[k] = v
	}
	if decisionID != "" {
		body["decision_id"] = decisionID
		w.Header().Set(headerDecisionID, decisionID)
	}
	if len(e.allow) > 0 {
		for _, m := range e.allow {
			w.Header().Add("Allow", m)
		}
	}
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil {
		data = []byte(`{"errcode":"M_UNKNOWN","error":"encoding the answer failed"}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set(contentTypeHeaderName, contentTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
