package policy

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// TestOptions select and instrument the tests of RunTestsWithOptions.
type TestOptions struct {
	// Run is a regular expression (Go syntax) that the full name of a test,
	// such as data.bordergate.pdu_test.test_denied_type, must match. ""
	// runs every test.
	Run string
	// Trace records the evaluation trace of each test in Result.Trace.
	Trace bool
	// Timeout bounds each test. Zero keeps OPA's default of five seconds.
	Timeout time.Duration
}

// RunTests runs the Rego unit tests (rules named test_*) of the policy files in
// cfg.Paths, _test.rego files included, with cfg.DataFile loaded as
// data.bordergate.config. Built-in function errors fail the test that raised
// them, as they fail a decision in the Engine. Results are sorted by package
// and name. The error reports files that do not load or compile, not failed
// tests: check Result.Pass for those.
func RunTests(ctx context.Context, cfg Config) ([]*tester.Result, error) {
	return RunTestsWithOptions(ctx, cfg, TestOptions{})
}

// RunTestsWithOptions is RunTests with the tests selected and instrumented by
// opts. An invalid opts.Run is an error.
func RunTestsWithOptions(ctx context.Context, cfg Config, opts TestOptions) ([]*tester.Result, error) {
	if _, err := regexp.Compile(opts.Run); err != nil {
		return nil, fmt.Errorf("invalid test name pattern %q: %w", opts.Run, err)
	}
	files, err := collectPolicyFiles(cfg.Paths, true)
	if err != nil {
		return nil, err
	}
	modules, err := parseModules(files)
	if err != nil {
		return nil, err
	}
	data, err := loadDataFile(cfg.DataFile)
	if err != nil {
		return nil, err
	}

	var value map[string]any
	if data != nil {
		value = data.value
	}
	store := newStore(value)
	txn, err := store.NewTransaction(ctx, storage.TransactionParams{})
	if err != nil {
		return nil, fmt.Errorf("open policy store: %w", err)
	}
	defer store.Abort(ctx, txn)

	runner := tester.NewRunner().
		SetStore(store).
		SetModules(modules).
		RaiseBuiltinErrors(true).
		CapturePrintOutput(true).
		EnableTracing(opts.Trace).
		Filter(opts.Run)
	if opts.Timeout > 0 {
		runner = runner.SetTimeout(opts.Timeout)
	}
	channel, err := runner.RunTests(ctx, txn)
	if err != nil {
		return nil, fmt.Errorf("compile policy tests: %w", err)
	}

	var results []*tester.Result
	for result := range channel {
		results = append(results, result)
	}
	slices.SortFunc(results, func(a, b *tester.Result) int {
		return cmp.Or(cmp.Compare(a.Package, b.Package), cmp.Compare(a.Name, b.Name))
	})
	return results, nil
}
