package policy

import (
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// InputRead is a part of the input document that the policy reads.
type InputRead struct {
	// Path is the location below input, one element per object key or
	// array index. An element of nil is a wildcard: the policy reads a key
	// or index that is only known at evaluation time.
	Path []*string
	// Shallow means that the policy reads only whether the value exists and
	// its type (is_object, is_string, ...), not what it contains.
	Shallow bool
	// Location is the place in the policy that reads it.
	Location *ast.Location
}

// String returns the path in Rego form, such as input.pdu.content[_].
func (r InputRead) String() string {
	var b strings.Builder
	b.WriteString("input")
	for _, element := range r.Path {
		switch {
		case element == nil:
			b.WriteString("[_]")
		case isRegoName(*element):
			b.WriteString("." + *element)
		default:
			fmt.Fprintf(&b, "[%q]", *element)
		}
	}
	return b.String()
}

// isRegoName reports whether key can follow a dot in a Rego reference.
func isRegoName(key string) bool {
	if key == "" || (key[0] >= '0' && key[0] <= '9') {
		return false
	}
	for _, c := range []byte(key) {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Overlaps reports whether the value at tokens, the reference tokens of a
// JSON pointer below /input, can change what r reads: the value lies at or
// above r's path, or, unless r is shallow, below it.
func (r InputRead) Overlaps(tokens []string) bool {
	common := min(len(tokens), len(r.Path))
	for i := range common {
		if r.Path[i] != nil && *r.Path[i] != tokens[i] {
			return false
		}
	}
	return len(tokens) <= len(r.Path) || !r.Shallow
}

// InputReads returns the parts of the input document that the loaded policy
// reads, found in the compiled modules. It errs on the side of reading more:
// a value passed whole to a function counts as read with everything below
// it. The result is nil for an Engine built without the analysis, which
// [Engine.ReadMasked] treats as reading everything.
func (e *Engine) InputReads() []InputRead {
	return slices.Clone(e.inputReads)
}

// ReadMasked returns the first place where the policy reads a value that
// masking removed at pointer, a JSON pointer such as
// "/input/pdu/content/body", and whether there is one. A pointer that does
// not start with /input never matters to evaluation. An invalid pointer, or
// an Engine whose reads are unknown, counts as read, so that a caller never
// takes a masked record for a faithful one.
func (e *Engine) ReadMasked(pointer string) (InputRead, bool) {
	tokens, err := ParsePointer(pointer)
	if err != nil {
		return InputRead{}, true
	}
	if len(tokens) == 0 || tokens[0] != "input" {
		return InputRead{}, false
	}
	if !e.inputReadsKnown {
		return InputRead{}, true
	}
	for _, read := range e.inputReads {
		if read.Overlaps(tokens[1:]) {
			return read, true
		}
	}
	return InputRead{}, false
}

// ParsePointer splits a JSON pointer (RFC 6901) into its unescaped reference
// tokens: "/input/a~1b" is ["input", "a/b"]. The empty pointer, which names
// the whole document, has no tokens.
func ParsePointer(pointer string) ([]string, error) {
	if pointer == "" {
		return nil, nil
	}
	if pointer[0] != '/' {
		return nil, fmt.Errorf("invalid JSON pointer %q: must be empty or start with /", pointer)
	}
	tokens := strings.Split(pointer[1:], "/")
	for i, token := range tokens {
		if !strings.Contains(token, "~") {
			continue
		}
		var b strings.Builder
		for j := 0; j < len(token); j++ {
			if token[j] != '~' {
				b.WriteByte(token[j])
				continue
			}
			if j+1 == len(token) || (token[j+1] != '0' && token[j+1] != '1') {
				return nil, fmt.Errorf("invalid JSON pointer %q: ~ must be followed by 0 or 1", pointer)
			}
			b.WriteByte("~/"[token[j+1]-'0'])
			j++
		}
		tokens[i] = b.String()
	}
	return tokens, nil
}

// collectInputReads finds the input reads of compiled modules, sorted by
// location so that the first read named for a pointer is stable.
func collectInputReads(modules map[string]*ast.Module) []InputRead {
	var reads []InputRead
	for _, module := range modules {
		for _, rule := range module.Rules {
			c := newReadCollector(rule)
			c.rule(rule)
			reads = append(reads, c.reads...)
		}
	}
	slices.SortStableFunc(reads, func(a, b InputRead) int {
		return a.Location.Compare(b.Location)
	})
	return reads
}

// readCollector finds the input reads of one compiled rule. The compiler
// moves every call argument into a local variable first (__local1__ =
// input.x; is_object(__local1__)), so the collector follows such aliases to
// tell a type check or an object.get lookup from a read of a whole value.
type readCollector struct {
	// aliases maps a variable to the input paths that it was unified with.
	aliases map[ast.Var][][]*string
	// printed are the variables that the compiler made for the arguments
	// of print calls: those that a print call reads and that occur only
	// there and where they are set.
	printed map[ast.Var]bool
	reads   []InputRead
}

func newReadCollector(rule *ast.Rule) *readCollector {
	c := &readCollector{aliases: make(map[ast.Var][][]*string), printed: make(map[ast.Var]bool)}
	occurrences := map[ast.Var]int{}
	ast.WalkVars(rule, func(name ast.Var) bool {
		occurrences[name]++
		return false
	})
	ast.WalkExprs(rule, func(expr *ast.Expr) bool {
		if expr.IsCall() && expr.Operator().String() == printOperator {
			for _, operand := range expr.Operands() {
				ast.WalkVars(operand, func(name ast.Var) bool {
					// A variable that a rule also uses elsewhere, as one
					// passed to internal.print by hand can be, is read
					// where it is set.
					c.printed[name] = occurrences[name] == 2
					return false
				})
			}
		}
		return false
	})
	// An alias of an alias (__local2__ = __local1__.a) needs its source
	// first, in whichever order the expressions come, and a variable
	// unified with two paths aliases both.
	changed := true
	for round := 0; changed && round < maxAliasRounds; round++ {
		changed = false
		ast.WalkExprs(rule, func(expr *ast.Expr) bool {
			name, paths, ok := c.aliasDefinition(expr)
			for _, path := range paths {
				if ok && !slices.ContainsFunc(c.aliases[name], func(known []*string) bool { return samePath(known, path) }) {
					c.aliases[name] = append(c.aliases[name], path)
					changed = true
				}
			}
			return false
		})
	}
	if changed {
		// Aliases that refer to each other in a cycle grow without end.
		// Each of them then counts as the whole input.
		for name := range c.aliases {
			c.aliases[name] = [][]*string{{}}
		}
	}
	return c
}

// maxAliasRounds bounds the passes that resolve aliases of aliases. Real
// policies need one pass per level of nesting, rarely more than three.
const maxAliasRounds = 32

func samePath(a, b []*string) bool {
	return slices.EqualFunc(a, b, func(x, y *string) bool {
		return (x == nil && y == nil) || (x != nil && y != nil && *x == *y)
	})
}

// aliasDefinition reports whether expr unifies a variable with an input
// path, and returns the variable and the paths.
func (c *readCollector) aliasDefinition(expr *ast.Expr) (ast.Var, [][]*string, bool) {
	if !expr.IsEquality() || expr.Negated || len(expr.With) > 0 {
		return "", nil, false
	}
	left, right := expr.Operand(0), expr.Operand(1)
	for _, pair := range [][2]*ast.Term{{left, right}, {right, left}} {
		name, isVar := pair[0].Value.(ast.Var)
		if !isVar || name == ast.InputRootDocument.Value {
			continue
		}
		if paths, ok := c.inputPaths(pair[1]); ok {
			return name, paths, true
		}
	}
	return "", nil, false
}

// inputPaths returns the input paths that term refers to: input itself, a
// reference below input, or an alias variable and references below it.
func (c *readCollector) inputPaths(term *ast.Term) ([][]*string, bool) {
	switch value := term.Value.(type) {
	case ast.Var:
		return c.varPaths(value)
	case ast.Ref:
		head, ok := value[0].Value.(ast.Var)
		if !ok {
			return nil, false
		}
		base, ok := c.varPaths(head)
		if !ok {
			return nil, false
		}
		tail := refElements(value[1:])
		paths := make([][]*string, len(base))
		for i, path := range base {
			paths[i] = append(slices.Clone(path), tail...)
		}
		return paths, true
	}
	return nil, false
}

func (c *readCollector) varPaths(name ast.Var) ([][]*string, bool) {
	if name.Equal(ast.InputRootDocument.Value) {
		return [][]*string{{}}, true
	}
	paths, ok := c.aliases[name]
	return paths, ok
}

// refElements converts reference elements to path elements: a string or
// number is a key, anything else a wildcard.
func refElements(terms []*ast.Term) []*string {
	path := make([]*string, len(terms))
	for i, term := range terms {
		switch value := term.Value.(type) {
		case ast.String:
			key := string(value)
			path[i] = &key
		case ast.Number:
			key := value.String()
			path[i] = &key
		}
	}
	return path
}

// rule collects the reads of the rule's head, body and else branches.
func (c *readCollector) rule(rule *ast.Rule) {
	ast.NewGenericVisitor(c.visit).Walk(rule)
}

// visit is the generic visitor: it handles each expression itself and
// records every reference to input, or to an alias, as a whole read.
func (c *readCollector) visit(node any) bool {
	switch node := node.(type) {
	case *ast.Expr:
		c.expr(node)
		return true
	case *ast.Term:
		if paths, ok := c.inputPaths(node); ok {
			c.add(paths, false, node.Location)
			c.walkElements(node)
			return true
		}
	}
	return false
}

// walkElements walks the elements of a reference that are not plain keys,
// because they may read input themselves (input.a[input.b]).
func (c *readCollector) walkElements(term *ast.Term) {
	ref, ok := term.Value.(ast.Ref)
	if !ok {
		return
	}
	for _, element := range ref[1:] {
		if !ast.IsScalar(element.Value) {
			c.walk(element)
		}
	}
}

func (c *readCollector) walk(node any) {
	ast.NewGenericVisitor(c.visit).Walk(node)
}

// typeChecks are the built-in functions that read only the type of their
// argument.
var typeChecks = map[string]bool{
	"is_array": true, "is_boolean": true, "is_null": true, "is_number": true,
	"is_object": true, "is_set": true, "is_string": true, "type_name": true,
}

// expr records the reads of one expression, in a body or a nested one.
func (c *readCollector) expr(expr *ast.Expr) {
	for _, with := range expr.With {
		c.walk(with.Target)
		c.walk(with.Value)
	}
	if _, paths, ok := c.aliasDefinition(expr); ok {
		// The alias is read where it is used. Here only the existence of
		// the value counts, because a missing value makes the expression
		// undefined.
		c.add(paths, true, expr.Location)
		for _, operand := range []*ast.Term{expr.Operand(0), expr.Operand(1)} {
			c.walkElements(operand)
		}
		return
	}
	if c.printArgument(expr) {
		return
	}
	if !expr.IsCall() {
		c.walk(expr.Terms)
		return
	}

	operator := expr.Operator().String()
	args := expr.Operands()
	switch {
	case operator == printOperator:
		// print output does not change the decision.
		return
	case typeChecks[operator] && len(args) > 0:
		if paths, ok := c.inputPaths(args[0]); ok {
			c.add(paths, true, args[0].Location)
			c.walkElements(args[0])
			args = args[1:]
		}
	case operator == "object.get" && len(args) >= 2:
		if paths, ok := c.inputPaths(args[0]); ok {
			c.objectGet(paths, args[0], args[1])
			args = args[1:]
		}
	}
	for _, arg := range args {
		c.walk(arg)
	}
}

// printOperator is the call that the compiler makes of print(). It
// evaluates each argument in a set comprehension of its own, in a
// variable set just before the call, so that an undefined argument prints
// as <undefined> instead of making the rule undefined.
const printOperator = "internal.print"

// printArgument reports whether expr sets a variable that only a print call
// reads: __local1__ = {__local0__ | __local0__ = input.x}.
func (c *readCollector) printArgument(expr *ast.Expr) bool {
	if !expr.IsEquality() || expr.Negated {
		return false
	}
	name, ok := expr.Operand(0).Value.(ast.Var)
	if !ok || !c.printed[name] {
		return false
	}
	_, ok = expr.Operand(1).Value.(*ast.SetComprehension)
	return ok
}

// objectGet records object.get(object, key, default) on an input path: the
// value at the key, or the whole object when the key is only known at
// evaluation time.
func (c *readCollector) objectGet(paths [][]*string, object, key *ast.Term) {
	var tail []*string
	switch value := key.Value.(type) {
	case ast.String, ast.Number:
		tail = refElements([]*ast.Term{key})
	case *ast.Array:
		terms := make([]*ast.Term, value.Len())
		for i := range terms {
			terms[i] = value.Elem(i)
		}
		tail = refElements(terms)
	}
	extended := make([][]*string, len(paths))
	for i, path := range paths {
		extended[i] = append(slices.Clone(path), tail...)
	}
	c.add(extended, false, object.Location)
	c.walkElements(object)
}

func (c *readCollector) add(paths [][]*string, shallow bool, location *ast.Location) {
	for _, path := range paths {
		c.reads = append(c.reads, InputRead{Path: path, Shallow: shallow, Location: location})
	}
}
