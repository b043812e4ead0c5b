package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// volatileBuiltins are the built-in functions whose result or effect is not
// a function of their arguments alone, beyond those that OPA marks as
// nondeterministic: they read the clock (JWT and certificate verification
// without an explicit time), draw random numbers (ECDSA signing), or write
// to the log.
var volatileBuiltins = map[string]bool{
	"crypto.x509.parse_and_verify_certificates":              true,
	"crypto.x509.parse_and_verify_certificates_with_options": true,
	"io.jwt.decode_verify":                                   true,
	"io.jwt.encode_sign":                                     true,
	"io.jwt.encode_sign_raw":                                 true,
	"internal.print":                                         true,
	"print":                                                  true,
	"trace":                                                  true,
	"internal.test_case":                                     true,
}

// inputReads describes the part of the input document that a decision can
// depend on, found by reading the compiled policy.
type inputReads struct {
	// paths are the input paths that the rules reachable from the decision
	// reference, sorted, none a prefix of another. A reference continues
	// below its path only through variables or numbers, so the whole value
	// at each path is what the decision sees. An empty list means that the
	// decision reads no input.
	paths [][]string
	// pure is true when the decision is a function of the values at paths
	// and the policy data alone. It is false when a reachable rule reads
	// the input as a whole, uses the with keyword, or calls a built-in
	// function that reads the clock, draws random numbers, performs I/O or
	// prints, and reason then says which.
	pure   bool
	reason string
}

// analyzeInputReads finds the input paths that the decision rule query and
// every rule it depends on, directly or through other rules and functions,
// can read.
func analyzeInputReads(compiler *ast.Compiler, query ast.Ref) inputReads {
	analysis := &readAnalysis{paths: map[string][]string{}}
	for _, rule := range reachableRules(compiler, query) {
		analysis.visitRule(rule)
	}
	if analysis.reason != "" {
		return inputReads{reason: analysis.reason}
	}
	return inputReads{paths: minimalPaths(analysis.paths), pure: true}
}

// reachableRules returns the rules of query and every rule that they depend
// on, else branches included, each once.
func reachableRules(compiler *ast.Compiler, query ast.Ref) []*ast.Rule {
	seen := map[*ast.Rule]bool{}
	stack := compiler.GetRulesDynamic(query)
	var rules []*ast.Rule
	for len(stack) > 0 {
		rule := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if rule == nil || seen[rule] {
			continue
		}
		seen[rule] = true
		rules = append(rules, rule)
		stack = append(stack, rule.Else)
		for dep := range compiler.Graph.Dependencies(rule) {
			if r, ok := dep.(*ast.Rule); ok {
				stack = append(stack, r)
			}
		}
	}
	return rules
}

// readAnalysis collects the input references of rules.
type readAnalysis struct {
	// paths maps a path joined with NUL bytes to the path.
	paths map[string][]string
	// reason is the first reason found why the decision is not a function
	// of paths.
	reason string
}

// visitRule records the input references of one rule, without its else
// branch, which is a rule of its own.
func (a *readAnalysis) visitRule(rule *ast.Rule) {
	visitor := ast.NewGenericVisitor(func(x any) bool {
		switch node := x.(type) {
		case *ast.With:
			a.impure("the policy uses the with keyword")
			return true
		case *ast.Expr:
			if node.IsCall() {
				a.checkCall(node.Operator())
			}
		case ast.Call:
			if len(node) > 0 {
				if ref, ok := node[0].Value.(ast.Ref); ok {
					a.checkCall(ref)
				}
			}
		case ast.Ref:
			if node.HasPrefix(ast.InputRootRef) {
				a.addRef(node)
				a.visitTerms(node[1:])
				return true
			}
		case ast.Var:
			if node.Equal(ast.InputRootDocument.Value) {
				a.impure("a rule reads the input document as a whole")
			}
		}
		return false
	})
	visitor.Walk(rule.Head)
	visitor.Walk(rule.Body)
}

// visitTerms walks terms inside an input reference, such as a variable key
// or a nested reference.
func (a *readAnalysis) visitTerms(terms []*ast.Term) {
	for _, term := range terms {
		if _, ok := term.Value.(ast.String); ok {
			continue
		}
		inner := &readAnalysis{paths: a.paths}
		ast.NewGenericVisitor(func(x any) bool {
			switch node := x.(type) {
			case ast.Ref:
				if node.HasPrefix(ast.InputRootRef) {
					inner.addRef(node)
				}
			case ast.Var:
				if node.Equal(ast.InputRootDocument.Value) {
					inner.impure("a rule reads the input document as a whole")
				}
			}
			return false
		}).Walk(term)
		if inner.reason != "" {
			a.impure(inner.reason)
		}
	}
}

// addRef records the path of an input reference: its leading string terms.
// A reference such as input.pdu[key] is recorded as input.pdu.
func (a *readAnalysis) addRef(ref ast.Ref) {
	var path []string
	for _, term := range ref[1:] {
		s, ok := term.Value.(ast.String)
		if !ok {
			break
		}
		path = append(path, string(s))
	}
	if len(path) == 0 {
		a.impure("a rule reads the input document as a whole")
		return
	}
	a.paths[strings.Join(path, "\x00")] = path
}

// checkCall marks the analysis impure when operator names a built-in
// function whose result is not a function of its arguments.
func (a *readAnalysis) checkCall(operator ast.Ref) {
	name := operator.String()
	if volatileBuiltins[name] {
		a.impure(fmt.Sprintf("the policy calls %s", name))
		return
	}
	if builtin, ok := ast.BuiltinMap[name]; ok && builtin.Nondeterministic {
		a.impure(fmt.Sprintf("the policy calls %s, which is nondeterministic", name))
	}
}

func (a *readAnalysis) impure(reason string) {
	if a.reason == "" {
		a.reason = reason
	}
}

// minimalPaths returns the paths sorted, without any path that extends
// another one, because the value at the shorter path contains it.
func minimalPaths(paths map[string][]string) [][]string {
	all := make([][]string, 0, len(paths))
	for _, path := range paths {
		all = append(all, path)
	}
	slices.SortFunc(all, slices.Compare)
	var minimal [][]string
	for _, path := range all {
		if n := len(minimal); n > 0 && isPrefix(minimal[n-1], path) {
			continue
		}
		minimal = append(minimal, path)
	}
	return minimal
}

// isPrefix reports whether prefix is path or a leading part of it.
func isPrefix(prefix, path []string) bool {
	return len(prefix) <= len(path) && slices.Equal(prefix, path[:len(prefix)])
}
