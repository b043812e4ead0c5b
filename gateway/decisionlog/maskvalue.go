package decisionlog

import (
	"slices"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// editValue returns v with rule applied at tokens, which must not be
// empty, and whether it applied. A remove rule applies when the value
// exists: an object member is removed and an array element becomes null,
// as editDecoded does on decoded documents. An upsert rule sets the value,
// creating missing object members on the way as objects; an array element
// must exist, and a step into a value that is neither an object nor an
// array fails.
func editValue(v canonicaljson.Value, tokens []string, rule *MaskRule) (canonicaljson.Value, bool) {
	token, last := tokens[0], len(tokens) == 1
	switch v.Kind() {
	case canonicaljson.Object:
		child, ok := v.Get(token)
		switch {
		case last && rule.op == MaskUpsert:
			return v.With(token, rule.encoded), true
		case last && ok:
			return v.Without(token), true
		case !ok && rule.op == MaskUpsert:
			child = canonicaljson.ObjectValue()
		case !ok:
			return v, false
		}
		child, applied := editValue(child, tokens[1:], rule)
		if !applied {
			return v, false
		}
		return v.With(token, child), true
	case canonicaljson.Array:
		i, ok := arrayIndex(token, v.Len())
		if !ok {
			return v, false
		}
		child := canonicaljson.NullValue()
		switch {
		case last && rule.op == MaskUpsert:
			child = rule.encoded
		case !last:
			var applied bool
			if child, applied = editValue(v.Items()[i], tokens[1:], rule); !applied {
				return v, false
			}
		}
		items := slices.Clone(v.Items())
		items[i] = child
		return canonicaljson.ArrayValue(items...), true
	default:
		return v, false
	}
}
