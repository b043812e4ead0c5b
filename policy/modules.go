package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Module is one Rego module held in memory, such as a file of a policy
// bundle.
type Module struct {
	// Name identifies the module in parse and compile errors, such as
	// "bordergate/request.rego". Names must be unique.
	Name string
	// Source is the Rego v1 text of the module.
	Source []byte
}

// ModulesConfig is the in-memory policy of [NewFromModules].
type ModulesConfig struct {
	// Modules are the policy's Rego modules. Unlike [Config.Paths], test
	// modules are not skipped: leave them out.
	Modules []Module
	// Data is loaded as data.bordergate.config. Nil means no data. Values
	// are those of encoding/json, with numbers as json.Number or float64.
	Data map[string]any
	// Revision names the policy in decision records. Empty means the hex
	// SHA-256 over the modules, in name order, and the JSON encoding of
	// Data.
	Revision string
	// Logger receives load messages and the output of print() calls in the
	// policy, at debug level. Nil discards them.
	Logger *slog.Logger
	// DecisionCacheSize is the size of the decision cache, as in
	// [Config.DecisionCacheSize].
	DecisionCacheSize int
}

// NewFromModules parses and compiles the modules of cfg and prepares the
// query of each kind, as [New] does for files. It fails when a module does
// not parse, the policy does not compile, or a kind has no decision rule.
func NewFromModules(ctx context.Context, cfg ModulesConfig) (*Engine, error) {
	if len(cfg.Modules) == 0 {
		return nil, &LoadError{Stage: StageRead, Err: errors.New("no policy modules")}
	}
	files := make([]policyFile, 0, len(cfg.Modules))
	names := make(map[string]bool, len(cfg.Modules))
	for _, m := range cfg.Modules {
		if names[m.Name] {
			return nil, &LoadError{Stage: StageRead, Err: fmt.Errorf("policy module %q is given twice", m.Name)}
		}
		names[m.Name] = true
		files = append(files, policyFile{path: m.Name, name: m.Name, src: m.Source})
	}
	modules, err := parseModules(files)
	if err != nil {
		return nil, &LoadError{Stage: StageParse, Err: err}
	}
	rev := cfg.Revision
	if rev == "" {
		if rev, err = modulesRevision(cfg.Modules, cfg.Data); err != nil {
			return nil, &LoadError{Stage: StageData, Err: err}
		}
	}
	return build(ctx, modules, cfg.Data, rev, cfg.Logger, cfg.DecisionCacheSize, "source", "modules")
}

// modulesRevision hashes modules in name order and data, each prefixed by
// its length as the file revision does.
func modulesRevision(modules []Module, data map[string]any) (string, error) {
	sorted := slices.SortedFunc(slices.Values(modules), func(a, b Module) int { return strings.Compare(a.Name, b.Name) })
	hash := sha256.New()
	for _, m := range sorted {
		fmt.Fprintf(hash, "module %d:%s %d:", len(m.Name), m.Name, len(m.Source))
		hash.Write(m.Source)
	}
	if data != nil {
		// encoding/json writes object keys in sorted order, so equal data
		// hashes equal.
		encoded, err := json.Marshal(data)
		if err != nil {
			return "", fmt.Errorf("encode policy data: %w", err)
		}
		fmt.Fprintf(hash, "data %d:", len(encoded))
		hash.Write(encoded)
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

// LoadStage is the step at which loading a policy failed.
type LoadStage string

// Stages of loading a policy, the values of [LoadError.Stage].
const (
	// StageRead means a policy file or directory could not be read, or
	// none was given.
	StageRead LoadStage = "read"
	// StageData means the policy data could not be read or decoded.
	StageData LoadStage = "data"
	// StageParse means a module is not valid Rego v1.
	StageParse LoadStage = "parse"
	// StageCompile means the modules parse but do not compile together.
	StageCompile LoadStage = "compile"
	// StageDecisionRule means a kind of decision has no decision rule.
	StageDecisionRule LoadStage = "decision_rule"
)

// LoadError is the error of [New] and [NewFromModules]. Its message is
// that of Err.
type LoadError struct {
	// Stage is the step that failed.
	Stage LoadStage
	// Err is the underlying error.
	Err error
}

// Error returns the message of the underlying error.
func (e *LoadError) Error() string {
	return e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *LoadError) Unwrap() error {
	return e.Err
}

// Stage returns the stage of a load error from [New] or [NewFromModules],
// wrapped or not, and "" for any other error.
func Stage(err error) LoadStage {
	var loadErr *LoadError
	if errors.As(err, &loadErr) {
		return loadErr.Stage
	}
	return ""
}
