// Package policy evaluates the gateway's Rego policy with Open Policy Agent,
// embedded as a library. An Engine loads and compiles the policy once and
// prepares one query per kind of decision (request, PDU, EDU); Decide then
// evaluates the prepared query against one input document.
package policy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown/print"
)

// Config selects the policy files and data of an Engine.
type Config struct {
	// Paths are .rego files or directories searched recursively. Files ending
	// in _test.rego are skipped. In directories, files and directories whose
	// name starts with a dot are skipped too.
	Paths []string
	// DataFile is an optional JSON (.json) or YAML (.yaml, .yml) file whose
	// top-level object is loaded as data.bordergate.config.
	DataFile string
	// Logger receives load messages and the output of print() calls in the
	// policy, at debug level. Nil discards them.
	Logger *slog.Logger
}

// Engine evaluates prepared policy queries. It is safe for concurrent use.
type Engine struct {
	queries  map[Kind]rego.PreparedEvalQuery
	revision string
}

// New loads, parses and compiles the policy of cfg and prepares the query of
// each kind. It fails when a file cannot be read or parsed, the policy does not
// compile, or a kind has no decision rule.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	files, err := collectPolicyFiles(cfg.Paths, false)
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

	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(true)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, fmt.Errorf("compile policy: %w", compiler.Errors)
	}

	store := newStore(data)
	hook := printHook{logger: logger}
	queries := make(map[Kind]rego.PreparedEvalQuery, len(kinds))
	for _, kind := range kinds {
		query, err := prepareQuery(ctx, compiler, store, hook, kind)
		if err != nil {
			return nil, err
		}
		queries[kind] = query
	}

	engine := &Engine{
		queries:  queries,
		revision: revision(files, data),
	}
	logger.InfoContext(ctx, "policy loaded",
		"revision", engine.revision,
		"module_count", len(modules),
		"data_file", cfg.DataFile)
	return engine, nil
}

// prepareQuery checks that the policy defines the decision of kind and
// prepares its query.
func prepareQuery(ctx context.Context, compiler *ast.Compiler, store storage.Store, hook print.Hook, kind Kind) (rego.PreparedEvalQuery, error) {
	query := "data.bordergate." + string(kind) + ".decision"
	if len(compiler.GetRules(ast.MustParseRef(query))) == 0 {
		return rego.PreparedEvalQuery{}, fmt.Errorf("policy defines no %s rule: add one to package bordergate.%s", query, kind)
	}

	prepared, err := rego.New(
		rego.Query(query),
		rego.Compiler(compiler),
		rego.Store(store),
		// A built-in function error, such as an unparsable time, ends the
		// evaluation with an error, so the caller denies instead of the
		// failing rule quietly becoming undefined.
		rego.StrictBuiltinErrors(true),
		rego.EnablePrintStatements(true),
		rego.PrintHook(hook),
	).PrepareForEval(ctx)
	if err != nil {
		return rego.PreparedEvalQuery{}, fmt.Errorf("prepare %s: %w", query, err)
	}
	return prepared, nil
}

// newStore returns the policy data store, with data under bordergate.config.
// The store keeps AST values, so that a read from the policy does not convert
// the data again on every evaluation.
func newStore(data *dataFile) storage.Store {
	root := map[string]any{}
	if data != nil {
		root["bordergate"] = map[string]any{"config": data.value}
	}
	return inmem.NewFromObjectWithOpts(root, inmem.OptReturnASTValuesOnRead(true))
}

// Decide evaluates the decision of kind for input. Input is a *RequestInput,
// *PDUInput or *EDUInput (or the struct itself), an ast.Value, or any value
// that encoding/json can marshal to an object. Decide returns an error when the
// input does not convert, the evaluation fails, or the result is not a valid
// decision object. The caller must deny on error.
func (e *Engine) Decide(ctx context.Context, kind Kind, input any) (Decision, error) {
	query, ok := e.queries[kind]
	if !ok {
		return Decision{}, fmt.Errorf("decide: %w: %q", ErrUnknownKind, kind)
	}
	if err := checkInput(kind, input); err != nil {
		return Decision{}, fmt.Errorf("decide %s: %w", kind, err)
	}

	value, err := toValue(input)
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: convert input: %w", kind, err)
	}
	results, err := query.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: evaluate: %w", kind, err)
	}
	decision, err := decisionFromResults(results)
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: %w", kind, err)
	}
	return decision, nil
}

// Path returns the decision-log path of kind, such as
// "bordergate/request/decision".
func (e *Engine) Path(kind Kind) string {
	return "bordergate/" + string(kind) + "/decision"
}

// Revision returns the hex SHA-256 of the loaded policy files and data file.
// It depends on file names relative to their configured path and on file
// contents, so the same policy loaded from another directory has the same
// revision.
func (e *Engine) Revision() string {
	return e.revision
}

// ErrUnknownKind is returned by Decide for a kind other than the Kind
// constants.
var ErrUnknownKind = errors.New("unknown decision kind")

// checkInput rejects a nil input, and a typed input whose kind or version does
// not match, because such a document is a caller bug that the policy would
// otherwise judge as if it were complete.
func checkInput(kind Kind, input any) error {
	var inputKind Kind
	var version int
	switch in := input.(type) {
	case nil:
		return errors.New("input is nil")
	case *RequestInput:
		if in == nil {
			return errors.New("input is nil")
		}
		inputKind, version = in.Kind, in.Version
	case RequestInput:
		inputKind, version = in.Kind, in.Version
	case *PDUInput:
		if in == nil {
			return errors.New("input is nil")
		}
		inputKind, version = in.Kind, in.Version
	case PDUInput:
		inputKind, version = in.Kind, in.Version
	case *EDUInput:
		if in == nil {
			return errors.New("input is nil")
		}
		inputKind, version = in.Kind, in.Version
	case EDUInput:
		inputKind, version = in.Kind, in.Version
	default:
		return nil
	}

	if inputKind != kind {
		return fmt.Errorf("input kind is %q, expected %q", inputKind, kind)
	}
	if version != InputVersion {
		return fmt.Errorf("input version is %d, expected %d", version, InputVersion)
	}
	return nil
}

// printHook sends the output of print() calls in the policy to the logger.
type printHook struct {
	logger *slog.Logger
}

// Print logs one print() call with its location in the policy.
func (h printHook) Print(pctx print.Context, message string) error {
	location := ""
	if pctx.Location != nil {
		location = pctx.Location.String()
	}
	h.logger.DebugContext(pctx.Context, "policy print", "location", location, "message", message)
	return nil
}

// kinds lists every Kind in a fixed order.
var kinds = []Kind{KindRequest, KindPDU, KindEDU}
