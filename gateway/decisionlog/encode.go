package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// maxMaskDepth is the nesting limit of the parser that reads an encoded
// input for masking. It is far above what a policy input holds, so that
// only a pathological document takes the slower generic path.
const maxMaskDepth = 10000

// Encode returns the JSON line, newline included, that a Writer whose
// Masker is m writes for rec, except that Encode fills in nothing: the
// decision ID, timestamp and labels are those of rec. A nil m means
// DefaultMasker().
func Encode(rec *Record, m *Masker) ([]byte, error) {
	if m == nil {
		m = DefaultMasker()
	}
	return appendRecord(nil, rec, m)
}

// appendRecord appends the JSON encoding of rec, with its input and result
// masked by m, and a newline to dst. The members, their order, omitempty
// rules and string escapes are those of encoding/json with HTML escaping
// off, so that a record reads the same whichever encoder wrote it. Input
// and Result are encoded once; masking then edits the encoded document
// instead of decoding it into Go maps.
func appendRecord(dst []byte, rec *Record, m *Masker) ([]byte, error) {
	var input, result []byte
	edits := maskEdits{erased: rec.Erased, masked: rec.Masked}
	maskError := rec.MaskError
	set, err := m.ruleSetFor(rec)
	if err != nil {
		edits.erased, maskError = m.failClosed(rec, err)
	} else {
		if input, err = edits.encodeRoot("input", rec.Input, set); err != nil {
			return nil, fmt.Errorf("mask input: %w", err)
		}
		if result, err = edits.encodeRoot("result", rec.Result, set); err != nil {
			return nil, fmt.Errorf("mask result: %w", err)
		}
	}

	dst = append(dst, `{"decision_id":`...)
	dst = appendJSONString(dst, rec.DecisionID)
	dst = append(dst, `,"timestamp":"`...)
	dst = rec.Timestamp.AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","path":`...)
	dst = appendJSONString(dst, rec.Path)
	if len(rec.Labels) > 0 {
		dst = append(dst, `,"labels":`...)
		dst = appendStringMap(dst, rec.Labels)
	}
	if len(rec.Bundles) > 0 {
		dst = append(dst, `,"bundles":`...)
		dst = appendBundles(dst, rec.Bundles)
	}
	dst = appendOptionalString(dst, "trace_id", rec.TraceID)
	dst = appendOptionalString(dst, "span_id", rec.SpanID)
	if rec.Matrix != nil {
		dst = append(dst, `,"matrix":`...)
		dst = appendMatrix(dst, rec.Matrix)
	}
	dst = append(dst, `,"allow":`...)
	dst = strconv.AppendBool(dst, rec.Allow)
	dst = appendOptionalString(dst, "action", rec.Action)
	if rec.Status != 0 {
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(rec.Status), 10)
	}
	dst = appendOptionalString(dst, "withheld_by", rec.WithheldBy)
	dst = appendOptionalString(dst, "error", rec.Error)
	dst = appendOptionalRaw(dst, "input", input)
	dst = appendOptionalRaw(dst, "result", result)
	dst = appendOptionalStrings(dst, "erased", edits.erased)
	dst = appendOptionalStrings(dst, "masked", edits.masked)
	dst = appendOptionalString(dst, "mask_error", maskError)
	return append(dst, '}', '\n'), nil
}

// encodeRoot returns the JSON of doc, one root of a record, with the rules
// of set for that root applied, and records the paths they erased and
// replaced. It returns nil for a nil doc, or one that a rule erased whole,
// which the record then omits, as encoding/json's omitempty does.
func (e *maskEdits) encodeRoot(root string, doc any, set *ruleSet) ([]byte, error) {
	if doc == nil {
		return nil, nil
	}
	encoded, err := marshalNoHTMLEscape(doc)
	if err != nil {
		return nil, err
	}
	if !set.hasRoot(root) {
		return encoded, nil
	}
	if tree := set.trees[root]; tree != nil {
		if masked, found, ok := eraseJSON(encoded, tree, len(set.rules)); ok {
			for i, matched := range found {
				if matched {
					e.record(&set.rules[i])
				}
			}
			return masked, nil
		}
	}

	value, err := canonicaljson.ParseWith(encoded, canonicaljson.Options{MaxDepth: maxMaskDepth})
	if err != nil {
		// encoding/json can write what the strict parser rejects, such as
		// two map keys that differ only in invalid UTF-8, which both become
		// U+FFFD. The generic path decodes such a document as encoding/json
		// reads it.
		return e.encodeRootGeneric(root, doc, set)
	}
	present := true
	for i := range set.rules {
		rule := &set.rules[i]
		if rule.pointer.root != root || !present {
			continue
		}
		var applied bool
		switch {
		case len(rule.pointer.tokens) > 0:
			value, applied = editValue(value, rule.pointer.tokens, rule)
		case rule.op == MaskUpsert:
			value, applied = rule.encoded, true
		default:
			present, applied = false, true
		}
		if applied {
			e.record(rule)
		}
	}
	if !present {
		return nil, nil
	}
	return canonicaljson.Append(nil, value), nil
}

// encodeRootGeneric masks doc through a decoded copy, as Apply does.
func (e *maskEdits) encodeRootGeneric(root string, doc any, set *ruleSet) ([]byte, error) {
	masked, err := e.applyToRoot(root, doc, set)
	if err != nil || masked == nil {
		return nil, err
	}
	return marshalNoHTMLEscape(masked)
}

// marshalNoHTMLEscape encodes v as encoding/json does with HTML escaping
// off, without the trailing newline of an Encoder.
func marshalNoHTMLEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

func appendOptionalString(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendJSONString(dst, value)
}

func appendOptionalRaw(dst []byte, name string, raw []byte) []byte {
	if raw == nil {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return append(dst, raw...)
}

func appendOptionalStrings(dst []byte, name string, values []string) []byte {
	if len(values) == 0 {
		return dst
	}
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, `":[`...)
	for i, value := range values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, value)
	}
	return append(dst, ']')
}

// appendStringMap appends m as a JSON object with its keys sorted, as
// encoding/json writes maps.
func appendStringMap(dst []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, key := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, key)
		dst = append(dst, ':')
		dst = appendJSONString(dst, m[key])
	}
	return append(dst, '}')
}

func appendBundles(dst []byte, bundles map[string]BundleInfo) []byte {
	names := make([]string, 0, len(bundles))
	for name := range bundles {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, '{')
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, name)
		dst = append(dst, `:{"revision":`...)
		dst = appendJSONString(dst, bundles[name].Revision)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendMatrix appends the Matrix identifiers in the order of the fields of
// Matrix, each omitted when empty.
func appendMatrix(dst []byte, m *Matrix) []byte {
	start := len(dst)
	for _, field := range [...]struct{ name, value string }{
		{"direction", m.Direction},
		{"origin", m.Origin},
		{"destination", m.Destination},
		{"endpoint", m.Endpoint},
		{"method", m.Method},
		{"txn_id", m.TxnID},
		{"room_id", m.RoomID},
		{"room_version", m.RoomVersion},
		{"room_version_source", m.RoomVersionSource},
		{"event_id", m.EventID},
		{"event_type", m.EventType},
		{"edu_type", m.EDUType},
		{"sender", m.Sender},
	} {
		dst = appendOptionalString(dst, field.name, field.value)
	}
	if len(dst) == start {
		return append(dst, '{', '}')
	}
	// The first member was written with a leading comma, which becomes the
	// opening brace.
	dst[start] = '{'
	return append(dst, '}')
}

// appendJSONString appends s as a JSON string the way encoding/json of Go
// 1.26 writes it with HTML escaping off. The quote, the backslash and the
// control characters are escaped, and each invalid UTF-8 byte becomes
// \ufffd. U+2028 and U+2029 are escaped too, because JavaScript treats them
// as line ends. FuzzAppendJSONString checks it against encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
