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
	// read, sorted, none a prefix of another. The whole value at each path
	// is what the decision can see. An empty list means that the decision
	// reads no input.
	paths [][]string
	// pure is true when the decision is a function of the values at paths
	// and the policy data alone. It is false when a reachable rule reads
	// the input as a whole, uses the with keyword, or calls a built-in
	// function that reads the clock, draws random numbers, performs I/O or
	// prints, and reason then says which. A whole-input read would keep the
	// decision a function of its input, but a cache keyed by whole inputs
	// would cost memory and almost never hit.
	pure   bool
	reason string
}

// analyzeInputReads finds the input paths that the decision rule query and
// every rule it depends on, directly or through other rules and functions,
// can read. The paths come from the same reading of the compiled rules as
// [Engine.InputReads], cut at the first element that is only known at
// evaluation time, because a cache key needs the whole value below it.
func analyzeInputReads(compiler *ast.Compiler, query ast.Ref) inputReads {
	purity := &purityCheck{}
	paths := map[string][]string{}
	for _, rule := range reachableRules(compiler, query) {
		purity.visitRule(rule)
		collector := newReadCollector(rule)
		collector.rule(rule)
		for _, read := range collector.reads {
			if read.Shallow && len(read.Path) == 0 {
				// Decide takes only inputs that are objects, so whether
				// the input exists and its type never vary.
				continue
			}
			path := knownPrefix(read.Path)
			paths[strings.Join(path, "\x00")] = path
		}
	}
	if purity.reason != "" {
		return inputReads{reason: purity.reason}
	}
	if _, whole := paths[""]; whole {
		// The whole input would be the key: a cache of them would cost
		// memory and almost never hit.
		return inputReads{reason: "a rule reads the input document as a whole"}
	}
	return inputReads{paths: minimalPaths(paths), pure: true}
}

// knownPrefix returns the leading keys of path, up to its first wildcard.
func knownPrefix(path []*string) []string {
	prefix := make([]string, 0, len(path))
	for _, element := range path {
		if element == nil {
			break
		}
		prefix = append(prefix, *element)
	}
	return prefix
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

// purityCheck looks for what makes a decision depend on more than its
// input values and the policy data.
type purityCheck struct {
	// reason is the first reason found why the decision is not a function
	// of its input values.
	reason string
}

// visitRule checks one rule, without its else branch, which is a rule of
// its own.
func (p *purityCheck) visitRule(rule *ast.Rule) {
	visitor := ast.NewGenericVisitor(func(x any) bool {
		switch node := x.(type) {
		case *ast.With:
			p.impure("the policy uses the with keyword")
			return true
		case *ast.Expr:
			if node.IsCall() {
				p.checkCall(node.Operator())
			}
		case ast.Call:
			if len(node) > 0 {
				if ref, ok := node[0].Value.(ast.Ref); ok {
					p.checkCall(ref)
				}
			}
		}
		return false
	})
	visitor.Walk(rule.Head)
	visitor.Walk(rule.Body)
}

// checkCall marks the check impure when operator names a built-in function
// whose result is not a function of its arguments.
func (p *purityCheck) checkCall(operator ast.Ref) {
	name := operator.String()
	if volatileBuiltins[name] {
		p.impure(fmt.Sprintf("the policy calls %s", name))
		return
	}
	if builtin, ok := ast.BuiltinMap[name]; ok && builtin.Nondeterministic {
		p.impure(fmt.Sprintf("the policy calls %s, which is nondeterministic", name))
	}
}

func (p *purityCheck) impure(reason string) {
	if p.reason == "" {
		p.reason = reason
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
