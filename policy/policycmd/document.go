package policycmd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/bordergate/bordergate/policy"
)

// maxDocumentDepth bounds the nesting of an input document, so that a
// hostile file cannot exhaust the stack. Policy inputs nest about six
// levels deep.
const maxDocumentDepth = 512

// decodeDocument decodes one JSON object strictly: a key that appears twice
// in an object is an error, because the policy and a reader of the file
// could otherwise see different values, and so is anything after the
// object. Numbers stay exact as json.Number. Errors name the line and column.
func decodeDocument(src []byte) (map[string]any, error) {
	decoder := json.NewDecoder(bytes.NewReader(src))
	decoder.UseNumber()
	value, err := decodeValue(decoder, src, 0)
	if err != nil {
		return nil, err
	}
	end := decoder.InputOffset()
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: unexpected data after the top-level value", position(src, nextToken(src, end)))
	}
	object, ok := value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("top level is %s, expected an object", policy.TypeName(value))
	}
	return object, nil
}

// decodeValue decodes the next value of decoder.
func decodeValue(decoder *json.Decoder, src []byte, depth int) (any, error) {
	offset := decoder.InputOffset()
	token, err := decoder.Token()
	if err != nil {
		return nil, syntaxError(src, offset, err)
	}
	delim, ok := token.(json.Delim)
	if !ok {
		return token, nil
	}
	if depth >= maxDocumentDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d levels", position(src, offset), maxDocumentDepth)
	}

	if delim == '[' {
		items := []any{}
		for decoder.More() {
			item, err := decodeValue(decoder, src, depth+1)
			if err != nil {
				return nil, err
			}
			items = append(items, item)
		}
		return items, closeDelim(decoder, src)
	}

	object := map[string]any{}
	for decoder.More() {
		keyOffset := decoder.InputOffset()
		token, err := decoder.Token()
		if err != nil {
			return nil, syntaxError(src, keyOffset, err)
		}
		key := token.(string) // the decoder returns only strings as object keys
		if _, duplicate := object[key]; duplicate {
			return nil, fmt.Errorf("%s: key %q appears twice in the same object", position(src, nextToken(src, keyOffset)), key)
		}
		value, err := decodeValue(decoder, src, depth+1)
		if err != nil {
			return nil, err
		}
		object[key] = value
	}
	return object, closeDelim(decoder, src)
}

// closeDelim reads the ] or } that ends an array or object.
func closeDelim(decoder *json.Decoder, src []byte) error {
	offset := decoder.InputOffset()
	if _, err := decoder.Token(); err != nil {
		return syntaxError(src, offset, err)
	}
	return nil
}

// syntaxError adds the position to a decoding error. A *json.SyntaxError
// carries its own offset, after the offending byte.
func syntaxError(src []byte, offset int64, err error) error {
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &syntax):
		return fmt.Errorf("%s: %w", position(src, max(syntax.Offset-1, 0)), err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: unexpected end of JSON input", position(src, int64(len(src))))
	default:
		return fmt.Errorf("%s: %w", position(src, offset), err)
	}
}

// nextToken returns the offset of the first byte at or after offset that is
// not white space or a separator (, or :). The decoder's offsets point to
// the end of the previous token.
func nextToken(src []byte, offset int64) int64 {
	for offset < int64(len(src)) && bytes.IndexByte([]byte(" \t\r\n,:"), src[offset]) >= 0 {
		offset++
	}
	return offset
}

// position returns "line L, column C" (both from 1) of a byte offset in
// src. The column counts bytes.
func position(src []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(src)))
	before := src[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	column := int(offset) - bytes.LastIndexByte(before, '\n')
	return "line " + strconv.Itoa(line) + ", column " + strconv.Itoa(column)
}
