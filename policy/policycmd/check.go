package policycmd

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bordergate/bordergate/policy"
)

// CheckConfig configures Check.
type CheckConfig struct {
	// Policy selects the policy files, whose _test.rego files are checked
	// too, and an optional data file that must load.
	Policy policy.Config
	// Format is the form of the report.
	Format Format
}

// checkReport is the JSON report of Check, in the shape of opa check
// --format json.
type checkReport struct {
	Errors []checkError `json:"errors"`

	paths    []string
	problems []policy.Problem
}

type checkError struct {
	Code     string         `json:"code"`
	Message  string         `json:"message"`
	Location *checkLocation `json:"location,omitempty"`
}

type checkLocation struct {
	File string `json:"file"`
	Row  int    `json:"row,omitempty"`
	Col  int    `json:"col,omitempty"`
}

// Check parses and compiles the policy, checks its decision rules and
// writes every problem to w with its file, line and column. It returns an
// *ExitError with ExitCodeError when it found a problem.
func Check(ctx context.Context, cfg CheckConfig, w io.Writer) error {
	problems, err := policy.Check(ctx, cfg.Policy)
	if err != nil {
		return err
	}

	report := checkReportOf(cfg.Policy.Paths, problems)
	if err := writeReport(w, cfg.Format, report, writeCheckPretty); err != nil {
		return err
	}
	if len(problems) > 0 {
		return &ExitError{Code: ExitCodeError, Err: fmt.Errorf("policy check found %d %s", len(problems), plural(len(problems), "problem"))}
	}
	return nil
}

func checkReportOf(paths []string, problems []policy.Problem) *checkReport {
	report := &checkReport{Errors: []checkError{}, paths: paths, problems: problems}
	for _, problem := range problems {
		entry := checkError{Code: problem.Code, Message: problem.Message}
		if problem.File != "" {
			entry.Location = &checkLocation{File: problem.File, Row: problem.Row, Col: problem.Col}
		}
		report.Errors = append(report.Errors, entry)
	}
	return report
}

func writeCheckPretty(w io.Writer, report *checkReport) error {
	var b strings.Builder
	for _, problem := range report.problems {
		if location := problem.Location(); location != "" {
			b.WriteString(location + ": ")
		}
		// Type errors continue on indented lines (have: ..., want: ...).
		message := strings.ReplaceAll(problem.Message, "\n", "\n  ")
		fmt.Fprintf(&b, "%s: %s\n", problem.Code, message)
	}
	if len(report.problems) == 0 {
		fmt.Fprintf(&b, "%s: policy is valid: it compiles with its tests and defines the request, pdu and edu decisions\n",
			strings.Join(report.paths, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plural returns word, with an s unless count is 1.
func plural(count int, word string) string {
	if count == 1 {
		return word
	}
	return word + "s"
}
