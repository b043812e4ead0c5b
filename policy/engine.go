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
	"time"

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
	// DecisionCacheSize is the number of decisions kept per kind for reuse
	// by later inputs that agree on every input path the policy reads.
	// Zero means DefaultDecisionCacheSize, and a negative value turns the
	// cache off.
	DecisionCacheSize int
}

// Engine evaluates prepared policy queries. It is safe for concurrent use.
//
// An Engine reuses decisions. When it loads the policy, it finds for each
// kind the input paths that the decision rule and the rules it depends on
// can read. Some rules make a decision depend on more than those values: a
// rule that reads the input as a whole, uses the with keyword, or calls a
// built-in function whose result is not a function of its arguments
// (time.now_ns, http.send, print and the like). Without such rules, Decide
// keeps each decision under the values at those paths, and returns it for
// a later input that has the same values, without evaluating the policy
// again. A rule that reads input.now therefore makes every decision of its
// kind unique.
type Engine struct {
	queries  map[Kind]rego.PreparedEvalQuery
	caches   map[Kind]*decisionCache
	revision string
	// mask is nil when the policy defines no data.system.log.mask rule.
	mask *maskQuery

	// inputReads are the parts of the input that the policy reads, valid
	// when inputReadsKnown is set; see InputReads.
	inputReads      []InputRead
	inputReadsKnown bool
}

// New loads, parses and compiles the policy of cfg and prepares the query of
// each kind. It fails when a file cannot be read or parsed, the policy does not
// compile, or a kind has no decision rule.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	files, err := collectPolicyFiles(cfg.Paths, false)
	if err != nil {
		return nil, &LoadError{Stage: StageRead, Err: err}
	}
	modules, err := parseModules(files)
	if err != nil {
		return nil, &LoadError{Stage: StageParse, Err: err}
	}
	data, err := loadDataFile(cfg.DataFile)
	if err != nil {
		return nil, &LoadError{Stage: StageData, Err: err}
	}
	var value map[string]any
	if data != nil {
		value = data.value
	}
	return build(ctx, modules, value, revision(files, data), cfg.Logger, cfg.DecisionCacheSize, "data_file", cfg.DataFile)
}

// build compiles modules, prepares the query of each kind against data,
// loaded as data.bordergate.config, with a decision cache of cacheSize
// (as Config.DecisionCacheSize), and logs the loaded policy with the extra
// log attributes attrs.
func build(ctx context.Context, modules map[string]*ast.Module, data map[string]any, rev string, logger *slog.Logger, cacheSize int, attrs ...any) (*Engine, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(true)
	if compiler.Compile(modules); compiler.Failed() {
		return nil, &LoadError{Stage: StageCompile, Err: fmt.Errorf("compile policy: %w", compiler.Errors)}
	}
	// A set or function decision rule compiles, but no input would get a
	// decision object from it, so every item of its kind would be denied.
	if problems := decisionProblems(compiler); len(problems) > 0 {
		return nil, &LoadError{Stage: StageDecisionRule, Err: problemsError(sortProblems(problems))}
	}

	store := newStore(data)
	hook := printHook{logger: logger}
	engine := &Engine{
		queries:  make(map[Kind]rego.PreparedEvalQuery, len(kinds)),
		caches:   make(map[Kind]*decisionCache, len(kinds)),
		revision: rev,

		inputReads:      collectInputReads(compiler.Modules),
		inputReadsKnown: true,
	}
	for _, kind := range kinds {
		query, err := prepareQuery(ctx, compiler, store, hook, kind)
		if err != nil {
			return nil, err
		}
		engine.queries[kind] = query
		engine.caches[kind] = newCacheFor[Decision](ctx, logger, compiler, decisionRef(kind), string(kind), cacheSize)
	}
	mask, err := prepareMask(ctx, compiler, store, hook, logger, cacheSize)
	if err != nil {
		return nil, err
	}
	engine.mask = mask

	logger.InfoContext(ctx, "policy loaded",
		append([]any{"revision", engine.revision, "module_count", len(modules)}, attrs...)...)
	return engine, nil
}

// newCacheFor returns the result cache of the rule ref, or nil when size
// turns caching off or the rule's result is not a function of input paths.
// kind names the rule in the log.
func newCacheFor[T any](ctx context.Context, logger *slog.Logger, compiler *ast.Compiler, ref ast.Ref, kind string, size int) *resultCache[T] {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultDecisionCacheSize
	}
	reads := analyzeInputReads(compiler, ref)
	if !reads.pure {
		logger.InfoContext(ctx, "policy decisions not cached", "kind", kind, "reason", reads.reason)
		return nil
	}
	return newResultCache[T](reads.paths, size)
}

// decisionRef returns the reference of the decision rule of kind.
func decisionRef(kind Kind) ast.Ref {
	return ast.MustParseRef("data.bordergate." + string(kind) + ".decision")
}

// prepareQuery checks that the policy defines the decision of kind and
// prepares its query.
func prepareQuery(ctx context.Context, compiler *ast.Compiler, store storage.Store, hook print.Hook, kind Kind) (rego.PreparedEvalQuery, error) {
	query := decisionRef(kind).String()
	if len(compiler.GetRules(decisionRef(kind))) == 0 {
		return rego.PreparedEvalQuery{}, &LoadError{
			Stage: StageDecisionRule,
			Err:   fmt.Errorf("policy defines no %s rule: add one to package bordergate.%s", query, kind),
		}
	}

	return prepareEval(ctx, query, compiler, store, hook)
}

// prepareEval prepares query against the compiled policy and its store.
func prepareEval(ctx context.Context, query string, compiler *ast.Compiler, store storage.Store, hook print.Hook) (rego.PreparedEvalQuery, error) {
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
		return rego.PreparedEvalQuery{}, &LoadError{Stage: StageCompile, Err: fmt.Errorf("prepare %s: %w", query, err)}
	}
	return prepared, nil
}

// newStore returns the policy data store, with data under bordergate.config.
// The store keeps AST values, so that a read from the policy does not convert
// the data again on every evaluation.
func newStore(data map[string]any) storage.Store {
	root := map[string]any{}
	if data != nil {
		root["bordergate"] = map[string]any{"config": data}
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

	return cachedEval(e.caches[kind], input, func() (Decision, error) {
		return e.evaluate(ctx, kind, query, input)
	})
}

// EvaluationTimeout bounds one evaluation of a decision rule. Decisions of
// the default policy take well under a millisecond. A policy that waits
// longer, for example on http.send, fails and its item is denied.
const EvaluationTimeout = time.Second

// ErrEvaluationPanic is wrapped by the error of a decision whose evaluation
// panicked inside Open Policy Agent.
var ErrEvaluationPanic = errors.New("policy evaluation panicked")

// evaluate converts input and evaluates the prepared query of kind.
//
// A panic inside the evaluation becomes an error, so that the caller denies
// the item instead of the process crashing, and an evaluation that runs
// longer than EvaluationTimeout is stopped and fails.
func (e *Engine) evaluate(ctx context.Context, kind Kind, query rego.PreparedEvalQuery, input any) (decision Decision, err error) {
	value, err := toValue(input)
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: convert input: %w", kind, err)
	}
	defer func() {
		if r := recover(); r != nil {
			decision, err = Decision{}, fmt.Errorf("decide %s: %w: %v", kind, ErrEvaluationPanic, r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, EvaluationTimeout)
	defer cancel()
	results, err := query.Eval(ctx, rego.EvalParsedInput(value))
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: evaluate: %w", kind, err)
	}
	decision, err = decisionFromResults(results)
	if err != nil {
		return Decision{}, fmt.Errorf("decide %s: %w", kind, err)
	}
	return decision, nil
}

// CacheStats returns how many decisions of kind the cache returned (hits)
// and how many it did not have (misses). Both are zero when decisions of
// kind are not cached.
func (e *Engine) CacheStats(kind Kind) (hits, misses uint64) {
	return e.caches[kind].stats()
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
