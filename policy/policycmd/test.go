package policycmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/bordergate/bordergate/policy"
)

// TestConfig configures Test.
type TestConfig struct {
	// Policy selects the policy and test files and the data file.
	Policy policy.Config
	// Run is a regular expression that selects tests by full name, such as
	// data.bordergate.pdu_test.test_denied_type. "" runs every test.
	Run string
	// Verbose reports every test, not only those that did not pass, and
	// the trace of each failure.
	Verbose bool
	// Timeout bounds each test. Zero keeps OPA's default of five seconds.
	Timeout time.Duration
	// Format is the form of the report: OPA's pretty or JSON report.
	Format Format
}

// Test runs the Rego unit tests of the policy and writes OPA's report to w.
// It returns an *ExitError with ExitCodeFailed when a test failed, raised an
// error or was skipped, and a plain error when the files do not load or
// compile or no test was found.
func Test(ctx context.Context, cfg TestConfig, w io.Writer) error {
	// The pretty report needs the trace to show the expression at which a
	// test failed. The JSON report includes the trace, so it is recorded
	// there only on request.
	trace := cfg.Format == FormatPretty || cfg.Verbose
	results, err := policy.RunTestsWithOptions(ctx, cfg.Policy, policy.TestOptions{
		Run:     cfg.Run,
		Trace:   trace,
		Timeout: cfg.Timeout,
	})
	if err != nil {
		return err
	}
	if len(results) == 0 {
		if cfg.Run != "" {
			return fmt.Errorf("no Rego test matches --run %q", cfg.Run)
		}
		return errors.New("no Rego tests found: name test rules test_... in _test.rego files")
	}

	notPassed := 0
	for _, result := range results {
		if !result.Pass() {
			notPassed++
		}
		if trace && cfg.Verbose {
			result.Trace = lineage.Filter(result.Trace, isNoteOrFailure)
		}
	}
	if err := reporter(cfg, w).Report(resultChannel(results)); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if notPassed > 0 {
		return failed("%d of %d Rego tests did not pass", notPassed, len(results))
	}
	return nil
}

// isNoteOrFailure keeps the trace events that opa test -v shows: notes and
// failed expressions.
func isNoteOrFailure(event *topdown.Event) bool {
	return event.Op == topdown.NoteOp || event.Op == topdown.FailOp
}

func reporter(cfg TestConfig, w io.Writer) tester.Reporter {
	if cfg.Format == FormatJSON {
		return tester.JSONReporter{Output: w}
	}
	return tester.PrettyReporter{Output: w, Verbose: cfg.Verbose, FailureLine: true}
}

// resultChannel returns a closed channel that yields results in order.
func resultChannel(results []*tester.Result) chan *tester.Result {
	channel := make(chan *tester.Result, len(results))
	for _, result := range results {
		channel <- result
	}
	close(channel)
	return channel
}
