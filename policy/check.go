package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/types"
)

// Problem is one error that Check found in a policy.
type Problem struct {
	// File is the policy file, "" when the problem concerns the policy as
	// a whole, such as a missing decision rule.
	File string `json:"file,omitempty"`
	// Row and Col are the 1-based line and column, 0 when unknown.
	Row int `json:"row,omitempty"`
	Col int `json:"col,omitempty"`
	// Code is OPA's error code, such as rego_parse_error or
	// rego_type_error, or ProblemDecision or ProblemLoad.
	Code string `json:"code"`
	// Message describes the problem.
	Message string `json:"message"`
}

// Codes of the problems that Check finds beyond OPA's own.
const (
	// ProblemDecision is a decision rule that is missing, or not a rule
	// with a single value.
	ProblemDecision = "bordergate_decision_error"
	// ProblemLoad is a policy that compiles with its test files but fails
	// to load without them, as the gateway loads it.
	ProblemLoad = "bordergate_load_error"
)

// Location returns "file:row:col", leaving out the parts that are unknown.
func (p Problem) Location() string {
	text := p.File
	if p.Row > 0 {
		text += ":" + strconv.Itoa(p.Row)
		if p.Col > 0 {
			text += ":" + strconv.Itoa(p.Col)
		}
	}
	return text
}

// Check parses and compiles the policy of cfg with its _test.rego files, as
// opa check does, and checks that it defines the three decision rules, each
// with a single value. It returns every problem found, sorted by file and
// position, and no problem when the gateway would load the policy. The
// error reports what stopped the check itself: a missing or unreadable
// policy path or data file.
func Check(ctx context.Context, cfg Config) ([]Problem, error) {
	files, err := collectPolicyFiles(cfg.Paths, true)
	if err != nil {
		return nil, err
	}
	if _, err := loadDataFile(cfg.DataFile); err != nil {
		return nil, err
	}

	modules, problems := parseForCheck(files)
	if len(problems) > 0 {
		// The files that parsed would give misleading compile errors, such
		// as calls to functions of the files that did not.
		return sortProblems(problems), nil
	}
	compiler := ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(true).
		SetErrorLimit(0)
	if compiler.Compile(modules); compiler.Failed() {
		return sortProblems(astProblems(compiler.Errors)), nil
	}
	problems = decisionProblems(compiler)
	if len(problems) > 0 {
		return sortProblems(problems), nil
	}

	// The gateway loads the policy without the test files. Loading it the
	// same way finds what compiling the files together cannot.
	if _, err := New(ctx, cfg); err != nil {
		return []Problem{{Code: ProblemLoad, Message: err.Error()}}, nil
	}
	return nil, nil
}

// parseForCheck parses every file and returns the problems of all of them.
func parseForCheck(files []policyFile) (map[string]*ast.Module, []Problem) {
	options := ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}
	modules := make(map[string]*ast.Module, len(files))
	var problems []Problem
	for _, file := range files {
		module, err := ast.ParseModuleWithOpts(file.path, string(file.src), options)
		if err != nil {
			problems = append(problems, errorProblems(file.path, err)...)
			continue
		}
		modules[file.path] = module
	}
	return modules, problems
}

// errorProblems converts a parse error of file.
func errorProblems(file string, err error) []Problem {
	var astErrors ast.Errors
	if errors.As(err, &astErrors) {
		return astProblems(astErrors)
	}
	return []Problem{{File: file, Code: ast.ParseErr, Message: err.Error()}}
}

func astProblems(astErrors ast.Errors) []Problem {
	problems := make([]Problem, 0, len(astErrors))
	for _, astErr := range astErrors {
		problem := Problem{Code: astErr.Code, Message: astErr.Message}
		if location := astErr.Location; location != nil {
			problem.File, problem.Row, problem.Col = location.File, location.Row, location.Col
		}
		problems = append(problems, problem)
	}
	return problems
}

// decisionProblems checks the decision rule of each kind.
func decisionProblems(compiler *ast.Compiler) []Problem {
	var problems []Problem
	for _, kind := range kinds {
		name := "data.bordergate." + string(kind) + ".decision"
		rules := compiler.GetRules(ast.MustParseRef(name))
		if len(rules) == 0 {
			problems = append(problems, Problem{
				Code:    ProblemDecision,
				Message: "policy defines no " + name + " rule: add one to package bordergate." + string(kind),
			})
			continue
		}
		shapeOK := true
		for _, rule := range rules {
			message := ""
			switch {
			case len(rule.Head.Args) > 0:
				message = name + " is a function, expected a rule with a decision object as its value"
			case rule.Head.RuleKind() == ast.MultiValue:
				message = name + " is a set (contains) rule, expected a rule with a decision object as its value"
			default:
				continue
			}
			shapeOK = false
			problems = append(problems, ruleProblem(rule, message))
		}
		if typ := compiler.TypeEnv.Get(ast.MustParseRef(name)); shapeOK && !mayBeObject(typ) {
			first := slices.MinFunc(rules, func(a, b *ast.Rule) int { return a.Location.Compare(b.Location) })
			problems = append(problems, ruleProblem(first, fmt.Sprintf(
				`%s is of type %s, expected a decision object such as {"allow": true, "reasons": []}`, name, types.Sprint(typ))))
		}
	}
	return problems
}

// ruleProblem returns a decision problem located at rule.
func ruleProblem(rule *ast.Rule, message string) Problem {
	problem := Problem{Code: ProblemDecision, Message: message}
	if rule.Location != nil {
		problem.File, problem.Row, problem.Col = rule.Location.File, rule.Location.Row, rule.Location.Col
	}
	return problem
}

// mayBeObject reports whether a value of the type that the compiler
// inferred may be an object. A type it could not infer may be anything.
func mayBeObject(typ types.Type) bool {
	switch typ := typ.(type) {
	case nil, *types.Object:
		return true
	case types.Any:
		return len(typ) == 0 || slices.ContainsFunc(typ, mayBeObject)
	default:
		return false
	}
}

// problemsError joins problems into one error, one problem a line, each
// after its location when it has one.
func problemsError(problems []Problem) error {
	errs := make([]error, len(problems))
	for i, p := range problems {
		if location := p.Location(); location != "" {
			errs[i] = errors.New(location + ": " + p.Message)
		} else {
			errs[i] = errors.New(p.Message)
		}
	}
	return errors.Join(errs...)
}

func sortProblems(problems []Problem) []Problem {
	slices.SortStableFunc(problems, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Row, b.Row), cmp.Compare(a.Col, b.Col))
	})
	return problems
}
