package decisionlog

import (
	"strconv"
)

// maskNode is one reference token of the mask pointers of a root, in a tree
// shared by the pointers that start alike.
type maskNode struct {
	children map[string]*maskNode
	// pointer is the index in ruleSet.rules, plus one, of the rule whose
	// pointer ends at this node, or 0 when none does.
	pointer int
}

// buildMaskTree returns the tree of the rules of root. It returns nil when
// a rule upserts, when a pointer names the whole root, or when one pointer
// of root is a prefix of another: erasing the shorter one would hide
// whether the longer one matched. Such rules are applied one by one on a
// parsed document instead.
func buildMaskTree(rules []MaskRule, root string) *maskNode {
	tree := &maskNode{}
	for i := range rules {
		p := rules[i].pointer
		if p.root != root {
			continue
		}
		if rules[i].op != MaskRemove {
			return nil
		}
		node := tree
		for _, token := range p.tokens {
			if node.pointer != 0 {
				return nil
			}
			if node.children == nil {
				node.children = map[string]*maskNode{}
			}
			child, ok := node.children[token]
			if !ok {
				child = &maskNode{}
				node.children[token] = child
			}
			node = child
		}
		if node == tree || node.pointer != 0 || len(node.children) > 0 {
			return nil
		}
		node.pointer = i + 1
	}
	return tree
}

// jsonEraser copies a JSON text without the values that a mask tree names.
// It reads the text once and allocates only its output, because the
// documents it masks come from encoding/json and need no validation. It
// gives up, and the caller then masks a parsed copy, on anything outside
// that: an escaped object key, or text that is not well formed.
type jsonEraser struct {
	src []byte
	pos int
	out []byte
	// found records, per pointer index, whether the pointer matched.
	found []bool
}

// eraseJSON returns src without the values at the pointers of tree, and
// reports which pointers matched. It returns false when it gave up.
func eraseJSON(src []byte, tree *maskNode, pointerCount int) ([]byte, []bool, bool) {
	e := &jsonEraser{src: src, out: make([]byte, 0, len(src)), found: make([]bool, pointerCount)}
	if !e.value(tree) {
		return nil, nil, false
	}
	e.skipSpace()
	if e.pos != len(e.src) {
		return nil, nil, false
	}
	return e.out, e.found, true
}

// value copies the value at pos, erasing below it what node names. A nil
// node or one without children copies the value unchanged.
func (e *jsonEraser) value(node *maskNode) bool {
	e.skipSpace()
	if e.pos >= len(e.src) {
		return false
	}
	if node != nil && len(node.children) > 0 {
		switch e.src[e.pos] {
		case '{':
			return e.object(node)
		case '[':
			return e.array(node)
		}
	}
	start := e.pos
	if !e.skip() {
		return false
	}
	e.out = append(e.out, e.src[start:e.pos]...)
	return true
}

// object copies an object, leaving out the members that node names and
// masking inside those that lead to a named value.
func (e *jsonEraser) object(node *maskNode) bool {
	e.pos++ // '{'
	e.out = append(e.out, '{')
	first := true
	e.skipSpace()
	if e.pos < len(e.src) && e.src[e.pos] == '}' {
		e.pos++
		e.out = append(e.out, '}')
		return true
	}
	for {
		e.skipSpace()
		keyStart := e.pos
		key, ok := e.plainKey()
		if !ok {
			return false
		}
		keyEnd := e.pos
		e.skipSpace()
		if e.pos >= len(e.src) || e.src[e.pos] != ':' {
			return false
		}
		e.pos++
		// The conversion in the index expression does not allocate.
		child := node.children[string(key)]
		if child != nil && child.pointer != 0 {
			e.skipSpace()
			if !e.skip() {
				return false
			}
			e.found[child.pointer-1] = true
		} else {
			if !first {
				e.out = append(e.out, ',')
			}
			first = false
			e.out = append(e.out, e.src[keyStart:keyEnd]...)
			e.out = append(e.out, ':')
			if !e.value(child) {
				return false
			}
		}
		e.skipSpace()
		if e.pos >= len(e.src) {
			return false
		}
		switch e.src[e.pos] {
		case ',':
			e.pos++
		case '}':
			e.pos++
			e.out = append(e.out, '}')
			return true
		default:
			return false
		}
	}
}

// array copies an array, replacing the elements that node names with null,
// so that the other elements keep their indices.
func (e *jsonEraser) array(node *maskNode) bool {
	e.pos++ // '['
	e.out = append(e.out, '[')
	e.skipSpace()
	if e.pos < len(e.src) && e.src[e.pos] == ']' {
		e.pos++
		e.out = append(e.out, ']')
		return true
	}
	for index := 0; ; index++ {
		if index > 0 {
			e.out = append(e.out, ',')
		}
		child := node.children[strconv.Itoa(index)]
		if child != nil && child.pointer != 0 {
			e.skipSpace()
			if !e.skip() {
				return false
			}
			e.out = append(e.out, "null"...)
			e.found[child.pointer-1] = true
		} else if !e.value(child) {
			return false
		}
		e.skipSpace()
		if e.pos >= len(e.src) {
			return false
		}
		switch e.src[e.pos] {
		case ',':
			e.pos++
		case ']':
			e.pos++
			e.out = append(e.out, ']')
			return true
		default:
			return false
		}
	}
}

// plainKey reads an object key without escapes and returns its text.
func (e *jsonEraser) plainKey() ([]byte, bool) {
	if e.pos >= len(e.src) || e.src[e.pos] != '"' {
		return nil, false
	}
	start := e.pos + 1
	for i := start; i < len(e.src); i++ {
		switch e.src[i] {
		case '"':
			e.pos = i + 1
			return e.src[start:i], true
		case '\\':
			return nil, false
		}
	}
	return nil, false
}

// skip moves pos past the value at pos.
func (e *jsonEraser) skip() bool {
	if e.pos >= len(e.src) {
		return false
	}
	switch e.src[e.pos] {
	case '"':
		return e.skipString()
	case '{', '[':
		return e.skipContainer()
	default:
		start := e.pos
		for e.pos < len(e.src) {
			switch e.src[e.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return e.pos > start
			case '{', '[', '"', ':':
				return false
			}
			e.pos++
		}
		return e.pos > start
	}
}

func (e *jsonEraser) skipString() bool {
	for i := e.pos + 1; i < len(e.src); i++ {
		switch e.src[i] {
		case '\\':
			i++
		case '"':
			e.pos = i + 1
			return true
		}
	}
	return false
}

// skipContainer moves past an object or array, counting brackets outside
// strings.
func (e *jsonEraser) skipContainer() bool {
	depth := 0
	for e.pos < len(e.src) {
		switch e.src[e.pos] {
		case '"':
			if !e.skipString() {
				return false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				e.pos++
				return true
			}
		}
		e.pos++
	}
	return false
}

func (e *jsonEraser) skipSpace() {
	for e.pos < len(e.src) {
		switch e.src[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}
