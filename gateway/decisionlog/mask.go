package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// defaultMaskPointers are the values that a default Masker erases: the text
// of messages and encrypted payloads in PDUs, and to-device message content
// in EDUs.
var defaultMaskPointers = []string{
	"/input/pdu/content/body",
	"/input/pdu/content/formatted_body",
	"/input/pdu/content/ciphertext",
	"/input/edu/content/messages",
}

// Masker erases values from the input and result of records before they are
// written, the way OPA erases the JSON pointers that a decision-log mask
// policy returns. A Masker is immutable and safe for concurrent use.
type Masker struct {
	pointers []maskPointer
	// trees holds the pointers of "input" and of "result" as trees for
	// masking encoded documents, nil for a root whose pointers need the
	// parsed form (see buildMaskTree).
	trees map[string]*maskNode
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
	m := &Masker{}
	seen := make(map[string]bool, len(pointers))
	for _, text := range pointers {
		if seen[text] {
			continue
		}
		seen[text] = true

		p, err := parseMaskPointer(text)
		if err != nil {
			return nil, err
		}
		m.pointers = append(m.pointers, p)
	}
	m.trees = map[string]*maskNode{
		"input":  buildMaskTree(m.pointers, "input"),
		"result": buildMaskTree(m.pointers, "result"),
	}
	return m, nil
}

// Pointers returns the JSON pointers that m erases, in the order it applies
// them.
func (m *Masker) Pointers() []string {
	texts := make([]string, len(m.pointers))
	for i, p := range m.pointers {
		texts[i] = p.text
	}
	return texts
}

// Apply returns a copy of rec whose Input and Result no longer contain the
// values at m's pointers, with the pointers that matched a value appended to
// Erased. When a pointer targets Input or Result, the copy holds that
// document as decoded from its JSON encoding (objects as map[string]any,
// numbers as json.Number), so that rec and the values it references are
// never modified. Apply returns an error when Input or Result cannot be
// encoded as JSON.
//
// An object member is removed. An array element is replaced by null, so
// that the other elements keep their indices and later pointers still refer
// to the elements they name.
func (m *Masker) Apply(rec Record) (Record, error) {
	if len(m.pointers) == 0 {
		return rec, nil
	}

	erased := slices.Clone(rec.Erased)
	var err error
	rec.Input, erased, err = m.applyToRoot("input", rec.Input, erased)
	if err != nil {
		return Record{}, fmt.Errorf("mask input: %w", err)
	}
	rec.Result, erased, err = m.applyToRoot("result", rec.Result, erased)
	if err != nil {
		return Record{}, fmt.Errorf("mask result: %w", err)
	}
	rec.Erased = erased
	return rec, nil
}

// applyToRoot erases the pointers of one root ("input" or "result") from a
// decoded copy of doc.
func (m *Masker) applyToRoot(root string, doc any, erased []string) (any, []string, error) {
	if doc == nil || !m.hasRoot(root) {
		return doc, erased, nil
	}

	doc, err := decodedCopy(doc)
	if err != nil {
		return nil, erased, err
	}
	for _, p := range m.pointers {
		if p.root != root {
			continue
		}
		var found bool
		doc, found = erase(doc, p.tokens)
		if found {
			erased = append(erased, p.text)
		}
	}
	return doc, erased, nil
}

func (m *Masker) hasRoot(root string) bool {
	for _, p := range m.pointers {
		if p.root == root {
			return true
		}
	}
	return false
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

// erase removes the value at tokens from doc and returns the new document
// (nil when tokens is empty, because the whole document is erased) and
// whether the value existed.
func erase(doc any, tokens []string) (any, bool) {
	if len(tokens) == 0 {
		return nil, true
	}

	parent := doc
	for _, token := range tokens[:len(tokens)-1] {
		child, ok := lookup(parent, token)
		if !ok {
			return doc, false
		}
		parent = child
	}

	last := tokens[len(tokens)-1]
	switch container := parent.(type) {
	case map[string]any:
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
		return doc, true
	default:
		return doc, false
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
