package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// allowlistFile is the top level of the allow-list file. Entries stay YAML
// nodes so that each field can be checked by name and line.
type allowlistFile struct {
	Servers yaml.Node `yaml:"servers"`
}

// entryField is one field of an allow-list entry as the file spells it.
type entryField struct {
	name   string
	shape  string // the YAML value the field needs, for type errors
	decode func(value *yaml.Node, e *Entry) error
}

// entryFields lists the fields of [Entry] in the order of the file format.
var entryFields = []entryField{
	{"server_name", "a string", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.ServerName)
	}},
	{"administration", "a string", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.Administration)
	}},
	{"pinned_keys", "a mapping of key IDs to base64 public keys", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.PinnedKeys)
	}},
	{"revoked_keys", "a list of key IDs or base64 public keys", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.RevokedKeys)
	}},
	{"address", "a host:port string", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.Address)
	}},
	{"require_mtls", "true or false", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.RequireMTLS)
	}},
	{"endpoints", "a list of endpoint IDs", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.Endpoints)
	}},
	{"event_types", "a list of event types", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.EventTypes)
	}},
	{"expires", expectExpires, decodeExpires},
	{"labels", "a mapping of strings to strings", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.Labels)
	}},
	{"deny", "true or false", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.Deny)
	}},
	{"note", "a string", func(n *yaml.Node, e *Entry) error {
		return n.Decode(&e.Note)
	}},
}

// gatewayFields are the fields of [Entry] that the gateway sets and a file
// must not.
var gatewayFields = map[string]bool{"source": true, "changed_by": true, "changed_at": true}

// LoadAllowlist reads the allow-list file at path, YAML or JSON, and
// validates every entry as [ValidateEntries] does. The file is a mapping with
// one key, servers, holding a list of entries in the form of [Entry]. Unknown
// fields are rejected. For require_mtls, the YAML 1.1 words yes, no, on and
// off also work, because go.yaml.in/yaml/v3 decodes them into a bool.
//
// An invalid file returns an error that joins one [*EntryError] per problem,
// each naming the file, the line, the entry, the field and the expected value.
// A file that is not YAML, or whose top level is wrong, returns a plain error.
func LoadAllowlist(path string) ([]Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read allowlist: %w", err)
	}
	return ParseAllowlist(path, data)
}

// ParseAllowlist parses and validates allow-list data as [LoadAllowlist]
// does; name stands for the file in error messages.
func ParseAllowlist(name string, data []byte) ([]Entry, error) {
	path := name
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)

	var file allowlistFile
	switch err := decoder.Decode(&file); {
	case errors.Is(err, io.EOF):
		return nil, fmt.Errorf("%s: allowlist is empty (expected a mapping with the key servers)", path)
	case err != nil:
		return nil, fmt.Errorf("%s: invalid allowlist (expected a mapping with the key servers): %w", path, err)
	}
	if err := decoder.Decode(new(yaml.Node)); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: allowlist has more than one YAML document (expected one)", path)
	}

	servers := resolveAlias(&file.Servers)
	if servers.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s: servers is missing or not a list (expected servers: followed by a list of entries)", path)
	}

	entries := make([]Entry, len(servers.Content))
	lines := make([]map[string]int, len(servers.Content))
	undecoded := make(map[int]bool)
	var errs []*EntryError
	for i, node := range servers.Content {
		entry, fieldLines, decodeErrs := decodeEntry(path, i, node)
		entries[i], lines[i] = entry, fieldLines
		if len(decodeErrs) > 0 {
			undecoded[i] = true
			errs = append(errs, decodeErrs...)
		}
	}

	// Validate the entries that decoded, because the others would add
	// problems caused by the fields that failed to decode.
	for _, problem := range validateEntries(entries) {
		if undecoded[problem.index] {
			continue
		}
		line, ok := lines[problem.index][baseField(problem.field)]
		if !ok {
			line = lines[problem.index][""]
		}
		errs = append(errs, &EntryError{
			File:       path,
			Line:       line,
			Index:      problem.index,
			ServerName: entries[problem.index].ServerName,
			Field:      problem.field,
			Problem:    problem.problem,
			Expected:   problem.expected,
		})
	}
	if len(errs) > 0 {
		// List the problems in file order, entry by entry.
		slices.SortStableFunc(errs, func(a, b *EntryError) int { return cmp.Compare(a.Index, b.Index) })
		joined := make([]error, len(errs))
		for i, err := range errs {
			joined[i] = err
		}
		return nil, errors.Join(joined...)
	}
	return entries, nil
}

// ParseEntry parses one entry, a JSON or YAML mapping in the form of an
// allow-list file's entry, and validates it as [ValidateEntry] does. Its
// errors are [*EntryError] values with Index -1, one per problem.
func ParseEntry(data []byte) (Entry, error) {
	var node yaml.Node
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	if err := decoder.Decode(&node); err != nil {
		return Entry{}, fmt.Errorf("invalid entry (expected a JSON object with the fields of an allow-list entry): %w", err)
	}
	if node.Kind != yaml.DocumentNode || len(node.Content) != 1 || !errors.Is(decoder.Decode(new(yaml.Node)), io.EOF) {
		return Entry{}, errors.New("invalid entry (expected one JSON object)")
	}
	entry, _, errs := decodeEntry("", -1, node.Content[0])
	if len(errs) > 0 {
		joined := make([]error, len(errs))
		for i, err := range errs {
			err.Line = 0
			joined[i] = err
		}
		return Entry{}, errors.Join(joined...)
	}
	if err := ValidateEntry(entry); err != nil {
		return Entry{}, err
	}
	return entry, nil
}

// decodeEntry decodes the entry at index from node, field by field. It
// returns the line of each field, with "" for the line of the entry itself.
func decodeEntry(path string, index int, node *yaml.Node) (Entry, map[string]int, []*EntryError) {
	var entry Entry
	node = resolveAlias(node)
	lines := map[string]int{"": node.Line}
	fail := func(line int, field, problem, expected string) *EntryError {
		return &EntryError{
			File: path, Line: line, Index: index, ServerName: entry.ServerName,
			Field: field, Problem: problem, Expected: expected,
		}
	}
	if node.Kind != yaml.MappingNode {
		return entry, lines, []*EntryError{fail(node.Line, "", describeNode(node), "a mapping with the keys server_name and endpoints")}
	}

	// Decode server_name first, so that every later error can name it.
	pairs := node.Content
	if value := findKey(pairs, "server_name"); value != nil {
		_ = value.Decode(&entry.ServerName)
	}

	var errs []*EntryError
	for i := 0; i+1 < len(pairs); i += 2 {
		key, value := pairs[i], pairs[i+1]
		name := key.Value
		if _, dup := lines[name]; dup {
			errs = append(errs, fail(key.Line, name, fmt.Sprintf("duplicate field, first at line %d", lines[name]), "each field at most once"))
			continue
		}
		lines[name] = key.Line

		if gatewayFields[name] {
			errs = append(errs, fail(key.Line, name, "field is set by the gateway", "no "+name+" field in the file"))
			continue
		}
		field, ok := lookupField(name)
		if !ok {
			errs = append(errs, fail(key.Line, name, "unknown field", "one of "+fieldNames()))
			continue
		}
		if err := field.decode(value, &entry); err != nil {
			errs = append(errs, fail(key.Line, name, describeNode(value), field.shape))
		}
	}
	return entry, lines, errs
}

// decodeExpires accepts an RFC 3339 timestamp, or null for no expiry. It
// does not use the YAML timestamp type, which also accepts forms such as a
// bare date.
func decodeExpires(n *yaml.Node, e *Entry) error {
	n = resolveAlias(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		e.Expires = nil
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return errors.New("expires is not a scalar")
	}
	t, err := time.Parse(time.RFC3339, n.Value)
	if err != nil {
		return fmt.Errorf("parse expires: %w", err)
	}
	e.Expires = &t
	return nil
}

func lookupField(name string) (entryField, bool) {
	for _, field := range entryFields {
		if field.name == name {
			return field, true
		}
	}
	return entryField{}, false
}

func fieldNames() string {
	names := make([]string, len(entryFields))
	for i, field := range entryFields {
		names[i] = field.name
	}
	return strings.Join(names, ", ")
}

// findKey returns the value of key in the key/value list of a mapping node.
func findKey(pairs []*yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i].Value == key {
			return pairs[i+1]
		}
	}
	return nil
}

// describeNode names the YAML value that a field could not take.
func describeNode(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.ScalarNode:
		return fmt.Sprintf("invalid value %q", n.Value)
	case yaml.SequenceNode:
		return "invalid list"
	case yaml.MappingNode:
		return "invalid mapping"
	default:
		return "invalid value"
	}
}

// resolveAlias follows a YAML alias to the node it names.
func resolveAlias(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// baseField returns the field name of a problem field such as
// "endpoints[2]".
func baseField(field string) string {
	name, _, _ := strings.Cut(field, "[")
	return name
}
