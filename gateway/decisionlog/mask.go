package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// defaultMaskPointers are the values that a default Masker erases: the text
// of messages, of their edits and of polls, and encrypted payloads in PDUs,
// and to-device message content in EDUs. They are sorted, which is the
// order in which a Rego set of the same pointers, as in rego/mask.rego,
// lists them.
var defaultMaskPointers = []string{
	"/input/edu/content/messages",
	"/input/pdu/content/body",
	"/input/pdu/content/ciphertext",
	"/input/pdu/content/formatted_body",
	"/input/pdu/content/m.message",
	"/input/pdu/content/m.new_content",
	"/input/pdu/content/m.poll.start",
	"/input/pdu/content/m.text",
	"/input/pdu/content/org.matrix.msc1767.text",
	"/input/pdu/content/org.matrix.msc3381.poll.start",
}

// Masker erases and replaces values in the input and result of records
// before they are written, the way Open Policy Agent applies the rules of a
// decision-log mask policy. It applies the rules of its [MaskPolicy], when
// it has one, and then erases its own fixed JSON pointers. A Masker is
// immutable and safe for concurrent use.
type Masker struct {
	// fixed holds the remove rules of the fixed pointers.
	fixed   *ruleSet
	policy  MaskPolicy
	onError MaskErrorFunc
	// sets caches the rule set of each rule slice that the policy
	// returned, keyed by the address of its first rule; see ruleSetFor.
	sets     sync.Map
	setCount atomic.Int64
}

// maskPointer is a parsed JSON pointer into a record.
type maskPointer struct {
	text   string   // the pointer as configured, listed in Record.Erased
	root   string   // "input" or "result"
	tokens []string // unescaped reference tokens below the root
}

// DefaultMaskPointers returns the JSON pointers that [DefaultMasker] erases.
func DefaultMaskPointers() []string {
	return slices.Clone(defaultMaskPointers)
}

// DefaultMasker returns a Masker that erases [DefaultMaskPointers].
func DefaultMasker() *Masker {
	return defaultMasker()
}

var defaultMasker = sync.OnceValue(func() *Masker {
	m, err := NewMasker(defaultMaskPointers)
	if err != nil {
		panic("decisionlog: invalid default mask pointer: " + err.Error())
	}
	return m
})

// NewMasker returns a Masker that erases the values at the given JSON
// pointers (RFC 6901). Each pointer must be "/input", "/result" or start
// with "/input/" or "/result/", and "~" may only appear as the escapes "~0"
// (for "~") and "~1" (for "/"). Duplicates are ignored. A Masker without
// pointers erases nothing.
func NewMasker(pointers []string) (*Masker, error) {
	var rules []MaskRule
	seen := make(map[string]bool, len(pointers))
	for _, text := range pointers {
		if seen[text] {
			continue
		}
		seen[text] = true

		rule, err := NewMaskRule(MaskRemove, text, nil)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rule)
	}
	return &Masker{fixed: newRuleSet(nil, rules)}, nil
}

// Pointers returns the fixed JSON pointers that m erases, in the order it
// applies them, after the rules of its policy.
func (m *Masker) Pointers() []string {
	texts := make([]string, len(m.fixed.rules))
	for i, rule := range m.fixed.rules {
		texts[i] = rule.pointer.text
	}
	return texts
}

// Apply returns a copy of rec whose Input and Result are masked. The values
// at the paths of remove rules are erased, and those paths that matched a
// value are appended to Erased. The values at the paths of upsert rules are
// set, and those paths are appended to Masked. When a rule targets Input or
// Result, the copy holds that document as decoded from its JSON encoding
// (objects as map[string]any, numbers as json.Number), so that rec and the
// values it references are never modified. When the mask policy fails, the
// copy has no Input and no Result and MaskError says why, as for a record
// that a Writer writes. Apply returns an error when Input or Result cannot
// be encoded as JSON.
//
// An object member is removed. An array element is replaced by null, so
// that the other elements keep their indices and later pointers still refer
// to the elements they name.
func (m *Masker) Apply(rec Record) (Record, error) {
	set, err := m.ruleSetFor(&rec)
	if err != nil {
		rec.Erased, rec.MaskError = m.failClosed(&rec, err)
		rec.Input, rec.Result = nil, nil
		return rec, nil
	}
	if len(set.rules) == 0 {
		return rec, nil
	}

	edits := maskEdits{erased: slices.Clone(rec.Erased), masked: slices.Clone(rec.Masked)}
	rec.Input, err = edits.applyToRoot("input", rec.Input, set)
	if err != nil {
		return Record{}, fmt.Errorf("mask input: %w", err)
	}
	rec.Result, err = edits.applyToRoot("result", rec.Result, set)
	if err != nil {
		return Record{}, fmt.Errorf("mask result: %w", err)
	}
	rec.Erased, rec.Masked = edits.erased, edits.masked
	return rec, nil
}

// maskEdits collects the paths that masking erased and replaced.
type maskEdits struct {
	erased, masked []string
}

// record appends the path of rule to the list of its operation.
func (e *maskEdits) record(rule *MaskRule) {
	if rule.op == MaskUpsert {
		e.masked = append(e.masked, rule.pointer.text)
		return
	}
	e.erased = append(e.erased, rule.pointer.text)
}

// applyToRoot applies the rules of one root ("input" or "result") to a
// decoded copy of doc.
func (e *maskEdits) applyToRoot(root string, doc any, set *ruleSet) (any, error) {
	if doc == nil || !set.hasRoot(root) {
		return doc, nil
	}

	doc, err := decodedCopy(doc)
	if err != nil {
		return nil, err
	}
	for i := range set.rules {
		rule := &set.rules[i]
		if rule.pointer.root != root || doc == nil {
			continue
		}
		var applied bool
		if doc, applied = editDecoded(doc, rule.pointer.tokens, rule); applied {
			e.record(rule)
		}
	}
	return doc, nil
}

// decodedCopy encodes v as JSON and decodes it again into generic values,
// keeping numbers exact as json.Number.
func decodedCopy(v any) (any, error) {
	encoded, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(encoded))
	dec.UseNumber()
	var decoded any
	if err := dec.Decode(&decoded); err != nil {
		return nil, err
	}
	return decoded, nil
}

// editDecoded applies rule at tokens to the decoded document doc and
// returns the new document and whether the rule applied. With no tokens, a
// remove rule erases the whole document (nil) and an upsert rule replaces
// it. Otherwise a remove rule applies when the value exists: an object
// member is deleted and an array element becomes null. An upsert rule sets
// a copy of its value, creating missing object members on the way as
// objects. An array element must exist, and a step into a value that is
// neither an object nor an array fails.
func editDecoded(doc any, tokens []string, rule *MaskRule) (any, bool) {
	upsert := rule.op == MaskUpsert
	if len(tokens) == 0 {
		if upsert {
			return copyDecoded(rule.value), true
		}
		return nil, true
	}

	parent := doc
	for _, token := range tokens[:len(tokens)-1] {
		if object, ok := parent.(map[string]any); ok && upsert {
			if _, exists := object[token]; !exists {
				object[token] = map[string]any{}
			}
		}
		child, ok := lookup(parent, token)
		if !ok {
			return doc, false
		}
		parent = child
	}

	last := tokens[len(tokens)-1]
	switch container := parent.(type) {
	case map[string]any:
		if upsert {
			container[last] = copyDecoded(rule.value)
			return doc, true
		}
		if _, ok := container[last]; !ok {
			return doc, false
		}
		delete(container, last)
		return doc, true
	case []any:
		i, ok := arrayIndex(last, len(container))
		if !ok {
			return doc, false
		}
		container[i] = nil
		if upsert {
			container[i] = copyDecoded(rule.value)
		}
		return doc, true
	default:
		return doc, false
	}
}

// copyDecoded returns a deep copy of a value decoded from JSON, so that a
// rule's value placed in one record is never changed through another.
func copyDecoded(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for key, item := range x {
			out[key] = copyDecoded(item)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, item := range x {
			out[i] = copyDecoded(item)
		}
		return out
	default:
		return v
	}
}

// lookup returns the member or element of v that token refers to.
func lookup(v any, token string) (any, bool) {
	switch container := v.(type) {
	case map[string]any:
		child, ok := container[token]
		return child, ok
	case []any:
		i, ok := arrayIndex(token, len(container))
		if !ok {
			return nil, false
		}
		return container[i], true
	default:
		return nil, false
	}
}

// arrayIndex parses an RFC 6901 array index: "0" or digits without a leading
// zero, below length. The token "-", which refers to the element after the
// last, never matches an existing element.
func arrayIndex(token string, length int) (int, bool) {
	if token == "" || (len(token) > 1 && token[0] == '0') {
		return 0, false
	}
	for _, c := range []byte(token) {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	i, err := strconv.Atoi(token)
	if err != nil || i >= length {
		return 0, false
	}
	return i, true
}

// parseMaskPointer parses and checks one configured mask pointer.
func parseMaskPointer(text string) (maskPointer, error) {
	if !utf8.ValidString(text) {
		// A JSON document has no such key, and an upsert under it would
		// write invalid JSON.
		return maskPointer{}, fmt.Errorf("invalid mask pointer %q: not valid UTF-8", text)
	}
	if !strings.HasPrefix(text, "/") {
		return maskPointer{}, fmt.Errorf("invalid mask pointer %q: must start with /input or /result", text)
	}

	tokens := strings.Split(text[1:], "/")
	for i, token := range tokens {
		unescaped, err := unescapeToken(token)
		if err != nil {
			return maskPointer{}, fmt.Errorf("invalid mask pointer %q: %w", text, err)
		}
		tokens[i] = unescaped
	}

	root := tokens[0]
	if root != "input" && root != "result" {
		return maskPointer{}, fmt.Errorf("invalid mask pointer %q: must start with /input or /result", text)
	}
	return maskPointer{text: text, root: root, tokens: tokens[1:]}, nil
}

// unescapeToken decodes the RFC 6901 escapes "~1" (to "/") and "~0" (to
// "~"), in that order of meaning: "~01" is the text "~1".
func unescapeToken(token string) (string, error) {
	if !strings.Contains(token, "~") {
		return token, nil
	}

	var b strings.Builder
	for i := 0; i < len(token); i++ {
		if token[i] != '~' {
			b.WriteByte(token[i])
			continue
		}
		if i+1 >= len(token) {
			return "", fmt.Errorf("reference token %q ends with ~, use ~0 for a literal ~", token)
		}
		switch token[i+1] {
		case '0':
			b.WriteByte('~')
		case '1':
			b.WriteByte('/')
		default:
			return "", fmt.Errorf("reference token %q contains invalid escape ~%c, only ~0 and ~1 are defined", token, token[i+1])
		}
		i++
	}
	return b.String(), nil
}
