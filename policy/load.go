package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.yaml.in/yaml/v3"
)

// policyFile is one .rego file that the engine loads.
type policyFile struct {
	// path is the file's path under its configured root, used as the module
	// name, so parse and compile errors name it.
	path string
	// name is the path relative to the configured root, in slash form, used
	// in the revision.
	name string
	src  []byte
}

// dataFile is the loaded data file of Config.DataFile.
type dataFile struct {
	name  string
	src   []byte
	value map[string]any
}

// collectPolicyFiles reads the .rego files of paths, sorted by name. Test
// files are included only when includeTests is set.
func collectPolicyFiles(paths []string, includeTests bool) ([]policyFile, error) {
	if len(paths) == 0 {
		return nil, errors.New("no policy paths configured")
	}

	var files []policyFile
	seen := make(map[string]bool)
	for _, root := range paths {
		found, err := collectRoot(root, includeTests)
		if err != nil {
			return nil, err
		}
		for _, file := range found {
			// A file listed both on its own and through its directory is
			// loaded once, because two copies of a module conflict.
			key, err := filepath.Abs(file.path)
			if err != nil {
				return nil, fmt.Errorf("resolve policy file %s: %w", file.path, err)
			}
			if resolved, err := filepath.EvalSymlinks(key); err == nil {
				key = resolved
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			files = append(files, file)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .rego policy files found in %s", strings.Join(paths, ", "))
	}

	slices.SortStableFunc(files, func(a, b policyFile) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return strings.Compare(a.path, b.path)
	})
	return files, nil
}

// collectRoot reads the .rego files of one configured path, a file or a
// directory.
func collectRoot(root string, includeTests bool) ([]policyFile, error) {
	info, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("read policy path: %w", err)
	}
	if !info.IsDir() {
		if !strings.HasSuffix(root, ".rego") {
			return nil, fmt.Errorf("policy path %s: expected a .rego file or a directory", root)
		}
		if isTestFile(root) && !includeTests {
			return nil, nil
		}
		file, err := readPolicyFile(root, filepath.Base(root))
		if err != nil {
			return nil, err
		}
		return []policyFile{file}, nil
	}

	// WalkDir does not follow a symbolic link at the root, and a policy
	// directory is often one (a Kubernetes ConfigMap mount, say).
	walkRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("read policy path: %w", err)
	}
	var files []policyFile
	err = filepath.WalkDir(walkRoot, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		include, err := includeEntry(walkRoot, path, entry, includeTests)
		if !include || err != nil {
			return err
		}
		rel, err := filepath.Rel(walkRoot, path)
		if err != nil {
			return err
		}
		file, err := readPolicyFile(filepath.Join(root, rel), filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		files = append(files, file)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read policy directory %s: %w", root, err)
	}
	return files, nil
}

// includeEntry reports whether the directory walk loads entry. It skips
// hidden files and directories, which also skips the "..data" links and
// timestamped directories of a Kubernetes ConfigMap mount that would
// otherwise load every file twice. A symbolic link counts as the file it
// points to, but a linked directory is not entered.
func includeEntry(walkRoot, path string, entry fs.DirEntry, includeTests bool) (bool, error) {
	if path != walkRoot && strings.HasPrefix(entry.Name(), ".") {
		if entry.IsDir() {
			return false, filepath.SkipDir
		}
		return false, nil
	}
	if entry.IsDir() || !strings.HasSuffix(entry.Name(), ".rego") {
		return false, nil
	}
	if isTestFile(entry.Name()) && !includeTests {
		return false, nil
	}
	if entry.Type()&fs.ModeSymlink != 0 {
		info, err := os.Stat(path)
		if err != nil {
			return false, err
		}
		return info.Mode().IsRegular(), nil
	}
	return entry.Type().IsRegular(), nil
}

// isTestFile reports whether name is a Rego test file.
func isTestFile(name string) bool {
	return strings.HasSuffix(name, "_test.rego")
}

func readPolicyFile(path, name string) (policyFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return policyFile{}, fmt.Errorf("read policy file: %w", err)
	}
	return policyFile{path: path, name: name, src: src}, nil
}

// parseModules parses files as Rego v1 modules keyed by path. The error lists
// every file that failed, each message with its file and line.
func parseModules(files []policyFile) (map[string]*ast.Module, error) {
	options := ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}
	modules := make(map[string]*ast.Module, len(files))
	var errs []error
	for _, file := range files {
		module, err := ast.ParseModuleWithOpts(file.path, string(file.src), options)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		modules[file.path] = module
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("parse policy: %w", errors.Join(errs...))
	}
	return modules, nil
}

// loadDataFile reads the data file at path, nil when path is "". An empty
// file, or a YAML file with only comments, is an empty object.
func loadDataFile(path string) (*dataFile, error) {
	if path == "" {
		return nil, nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy data file: %w", err)
	}

	var value any
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		value, err = decodeJSONData(src)
	case ".yaml", ".yml":
		value, err = decodeYAMLData(src)
	default:
		err = fmt.Errorf("unsupported extension %q, expected .json, .yaml or .yml", ext)
	}
	if err != nil {
		return nil, fmt.Errorf("policy data file %s: %w", path, err)
	}

	if value == nil {
		value = map[string]any{}
	}
	object, ok := value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy data file %s: top level is %s, expected an object", path, typeName(value))
	}
	return &dataFile{name: filepath.Base(path), src: src, value: object}, nil
}

// decodeJSONData decodes one JSON value, keeping numbers exact. Syntax errors
// carry their line and column.
func decodeJSONData(src []byte) (any, error) {
	if len(bytes.TrimSpace(src)) == 0 {
		return nil, nil
	}
	decoder := json.NewDecoder(bytes.NewReader(src))
	decoder.UseNumber()
	var value any
	if err := decoder.Decode(&value); err != nil {
		return nil, withJSONPosition(src, err)
	}
	if _, err := decoder.Token(); !errors.Is(err, io.EOF) {
		offset := decoder.InputOffset()
		return nil, fmt.Errorf("%s: unexpected data after the top-level value", position(src, offset))
	}
	return value, nil
}

// withJSONPosition prefixes a JSON syntax or type error with line:column.
func withJSONPosition(src []byte, err error) error {
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return fmt.Errorf("%s: %w", position(src, syntaxErr.Offset), err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: unexpected end of JSON input", position(src, int64(len(src))))
	}
	return err
}

// position returns the 1-based "line:column" of a byte offset in src.
func position(src []byte, offset int64) string {
	offset = min(offset, int64(len(src)))
	before := src[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	column := int(offset) - bytes.LastIndexByte(before, '\n')
	return strconv.Itoa(line) + ":" + strconv.Itoa(column)
}

// decodeYAMLData decodes the first YAML document into JSON-compatible values.
// It walks the parsed node tree instead of decoding into any, because that
// would turn a timestamp such as 2027-01-01 into a time.Time and lose the text
// that the file contains.
func decodeYAMLData(src []byte) (any, error) {
	var document yaml.Node
	if err := yaml.Unmarshal(src, &document); err != nil {
		return nil, err
	}
	if document.Kind == 0 {
		return nil, nil // empty, or only comments
	}
	return yamlNodeValue(&document, "")
}

// yamlNodeValue converts one YAML node. at is the node's location in the
// document for error messages, such as ".labels".
func yamlNodeValue(node *yaml.Node, at string) (any, error) {
	switch node.Kind {
	case yaml.DocumentNode:
		return yamlNodeValue(node.Content[0], at)
	case yaml.AliasNode:
		return yamlNodeValue(node.Alias, at)
	case yaml.MappingNode:
		return yamlMappingValue(node, at)
	case yaml.SequenceNode:
		items := make([]any, len(node.Content))
		for i, child := range node.Content {
			item, err := yamlNodeValue(child, at+"["+strconv.Itoa(i)+"]")
			if err != nil {
				return nil, err
			}
			items[i] = item
		}
		return items, nil
	default:
		if node.ShortTag() == "!!timestamp" {
			return node.Value, nil
		}
		var value any
		if err := node.Decode(&value); err != nil {
			return nil, fmt.Errorf("line %d: %w", node.Line, err)
		}
		return value, nil
	}
}

func yamlMappingValue(node *yaml.Node, at string) (map[string]any, error) {
	object := make(map[string]any, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		key, child := node.Content[i], node.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("line %d: a key in %s is not a string", key.Line, locationName(at))
		}
		if key.ShortTag() != "!!str" {
			return nil, fmt.Errorf("line %d: key %s in %s is not a string, quote it", key.Line, key.Value, locationName(at))
		}
		if _, duplicate := object[key.Value]; duplicate {
			return nil, fmt.Errorf("line %d: key %q in %s is defined twice", key.Line, key.Value, locationName(at))
		}
		value, err := yamlNodeValue(child, at+"."+key.Value)
		if err != nil {
			return nil, err
		}
		object[key.Value] = value
	}
	return object, nil
}

func locationName(at string) string {
	if at == "" {
		return "the top level"
	}
	return strings.TrimPrefix(at, ".")
}

// revision returns the hex SHA-256 over the policy files, in name order, and
// the data file. Each name and content is prefixed by its length, so that no
// two different sets of files hash the same input.
func revision(files []policyFile, data *dataFile) string {
	hash := sha256.New()
	for _, file := range files {
		fmt.Fprintf(hash, "module %d:%s %d:", len(file.name), file.name, len(file.src))
		hash.Write(file.src)
	}
	if data != nil {
		fmt.Fprintf(hash, "data %d:%s %d:", len(data.name), data.name, len(data.src))
		hash.Write(data.src)
	}
	return hex.EncodeToString(hash.Sum(nil))
}
