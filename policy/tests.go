package policy

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// RunTests runs the Rego unit tests (rules named test_*) of the policy files in
// cfg.Paths, _test.rego files included, with cfg.DataFile loaded as
// data.bordergate.config. Built-in function errors fail the test that raised
// them, as they fail a decision in the Engine. Results are sorted by package
// and name. The error reports files that do not load or compile, not failed
// tests: check Result.Pass for those.
func RunTests(ctx context.Context, cfg Config) ([]*tester.Result, error) {
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
		CapturePrintOutput(true)
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
