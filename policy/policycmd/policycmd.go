// Package policycmd runs the bordergate policy commands that security teams
// use on their Rego policy: test (Rego unit tests), check (parse and
// compile), eval (one decision) and replay (recorded decisions against a
// candidate policy). Each command writes its report, in human or JSON form,
// and returns an *ExitError when its outcome calls for an exit status other
// than that of a plain error.
package policycmd

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/bordergate/bordergate/policy"
)

// Exit statuses of the policy commands. Cobra usage errors and every other
// error also exit with ExitCodeError.
const (
	// ExitCodeError means that the command could not do its work: a
	// missing file, a policy that does not parse or compile, invalid input.
	ExitCodeError = 1
	// ExitCodeFailed means that the command did its work and the outcome is
	// negative: a Rego test failed, a replayed decision changed from allow
	// to deny or back, or eval --fail-on-deny denied.
	ExitCodeFailed = 2
)

// ExitError is an error with the exit status that the command should end
// with.
type ExitError struct {
	// Code is the exit status, ExitCodeError or ExitCodeFailed.
	Code int
	// Err describes the outcome.
	Err error
}

// Error returns the description of the outcome.
func (e *ExitError) Error() string {
	return e.Err.Error()
}

// Unwrap returns the description of the outcome.
func (e *ExitError) Unwrap() error {
	return e.Err
}

// failed returns an *ExitError with ExitCodeFailed.
func failed(format string, args ...any) error {
	return &ExitError{Code: ExitCodeFailed, Err: fmt.Errorf(format, args...)}
}

// Format is the form of a command's report.
type Format string

// Report forms.
const (
	// FormatPretty is for people, like OPA's pretty format.
	FormatPretty Format = "pretty"
	// FormatJSON is for programs: one JSON document.
	FormatJSON Format = "json"
)

// ParseFormat checks the value of a --format flag.
func ParseFormat(text string) (Format, error) {
	switch format := Format(text); format {
	case FormatPretty, FormatJSON:
		return format, nil
	default:
		return "", fmt.Errorf("invalid --format %q: expected pretty or json", text)
	}
}

// ParseKind checks the name of a kind of decision, as given to --kind or
// found in an input document.
func ParseKind(text string) (policy.Kind, error) {
	switch kind := policy.Kind(text); kind {
	case policy.KindRequest, policy.KindPDU, policy.KindEDU:
		return kind, nil
	default:
		return "", fmt.Errorf("unknown decision kind %q: expected request, pdu or edu", text)
	}
}

// kindOfPath returns the kind of a decision-log path such as
// "bordergate/pdu/decision".
func kindOfPath(path string) (policy.Kind, bool) {
	name, ok := strings.CutPrefix(path, "bordergate/")
	if !ok {
		return "", false
	}
	name, ok = strings.CutSuffix(name, "/decision")
	if !ok {
		return "", false
	}
	kind, err := ParseKind(name)
	return kind, err == nil
}

// writeReport writes report as JSON or with pretty.
func writeReport[R any](w io.Writer, format Format, report R, pretty func(io.Writer, R) error) error {
	var err error
	if format == FormatJSON {
		err = writeJSON(w, report)
	} else {
		err = pretty(w, report)
	}
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// writeJSON writes v as indented JSON followed by a newline.
func writeJSON(w io.Writer, v any) error {
	encoder := json.NewEncoder(w)
	encoder.SetIndent("", "  ")
	encoder.SetEscapeHTML(false)
	return encoder.Encode(v)
}
