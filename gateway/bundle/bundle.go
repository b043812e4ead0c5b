// Package bundle reads, verifies, fetches and keeps the policy bundles of
// the gateway: Open Policy Agent bundles (gzipped tar archives) that carry
// the Rego policy, its data and optionally the allow-list, signed with
// keys that the gateway trusts. Reading and signature checks use OPA's own
// bundle package.
//
// A bordergate bundle holds data only under two paths: bordergate/config,
// loaded as the policy's data.bordergate.config, and bordergate/allowlist,
// an object with the key "servers" whose entries have the shape of the
// allow-list file.
package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"

	"github.com/bordergate/bordergate/gateway/store"
	"github.com/bordergate/bordergate/policy"
)

// DefaultMaxBytes is the default cap on the size of a bundle, both as
// downloaded and as its files add up once decompressed.
const DefaultMaxBytes = 32 << 20

// Data paths of a bordergate bundle.
const (
	// ConfigPath holds the policy data, data.bordergate.config.
	ConfigPath = "bordergate/config"
	// AllowlistPath holds the allow-list: {"servers": [entries]}.
	AllowlistPath = "bordergate/allowlist"
)

// Bundle is a verified policy bundle.
type Bundle struct {
	// Revision names the bundle in decision records: the manifest's
	// revision, "@sha256:" and Digest, or "sha256:" and Digest when the
	// manifest has no revision.
	Revision string
	// ManifestRevision is the revision in the bundle's manifest, possibly
	// empty.
	ManifestRevision string
	// Digest is the hex SHA-256 over the bundle's modules, in path order,
	// and its data. It does not depend on the archive's timestamps or file
	// order.
	Digest string
	// KeyID is the ID of the key whose signature was verified, empty for an
	// unsigned bundle.
	KeyID string
	// Modules are the Rego modules, without test modules (names ending in
	// _test.rego).
	Modules []policy.Module
	// Config is the data under bordergate/config, nil when there is none.
	Config map[string]any
	// Allowlist holds the entries under bordergate/allowlist; HasAllowlist
	// reports whether the bundle carries that path at all.
	Allowlist    []store.Entry
	HasAllowlist bool
}

// Reason is why a bundle was rejected, for logs and counters.
type Reason string

// Reasons for rejecting a bundle, the values of [Error.Reason].
const (
	// ReasonMalformed means the archive, a file in it or its manifest is
	// not valid, or it is larger than allowed.
	ReasonMalformed Reason = "bundle"
	// ReasonUnsigned means signatures are required and the bundle has none.
	ReasonUnsigned Reason = "unsigned"
	// ReasonSignature means a signature or a file digest did not verify.
	ReasonSignature Reason = "signature"
	// ReasonData means the bundle's data is outside the paths of a
	// bordergate bundle or of the wrong type.
	ReasonData Reason = "data"
	// ReasonAllowlist means the allow-list in the bundle is not valid.
	ReasonAllowlist Reason = "allowlist"
)

// Error is a rejected bundle.
type Error struct {
	// Reason classifies the failure.
	Reason Reason
	// Err is the underlying error.
	Err error
}

// Error returns the message of the underlying error.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

func reject(reason Reason, format string, args ...any) error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// Read reads and verifies the gzipped tar archive raw. With a non-nil
// verifier the bundle must carry a signature by one of its keys; with a
// nil verifier the bundle must carry none. maxBytes caps the decompressed
// size of the archive (DefaultMaxBytes when zero or negative). Every error
// is an *Error.
func Read(raw []byte, verifier *Verifier, maxBytes int64) (*Bundle, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if err := checkExpandedSize(raw, maxBytes); err != nil {
		return nil, &Error{Reason: ReasonMalformed, Err: err}
	}
	b, err := readArchive(raw, verifier.config(), maxBytes)
	if err != nil {
		reason := classify(raw, verifier, maxBytes)
		switch {
		case reason == ReasonUnsigned:
			err = errors.New("the bundle carries no signature and signing is configured; sign it with opa build --signing-key")
		case reason == ReasonSignature && verifier == nil:
			err = fmt.Errorf("the bundle is signed but no signing keys are configured; add its public key: %w", err)
		}
		return nil, &Error{Reason: reason, Err: fmt.Errorf("read bundle: %w", err)}
	}
	if err := checkContents(&b); err != nil {
		return nil, err
	}
	out := &Bundle{ManifestRevision: b.Manifest.Revision}
	if len(b.Signatures.Signatures) > 0 {
		out.KeyID = signatureKeyID(b.Signatures.Signatures[0])
	}
	for _, m := range b.Modules {
		if strings.HasSuffix(m.Path, "_test.rego") {
			continue
		}
		out.Modules = append(out.Modules, policy.Module{Name: strings.TrimPrefix(m.Path, "/"), Source: m.Raw})
	}
	if len(out.Modules) == 0 {
		return nil, reject(ReasonMalformed, "read bundle: the bundle holds no .rego module other than tests")
	}
	if err := splitData(b.Data, out); err != nil {
		return nil, err
	}
	if out.Digest, err = digest(b); err != nil {
		return nil, &Error{Reason: ReasonData, Err: err}
	}
	out.Revision = "sha256:" + out.Digest
	if out.ManifestRevision != "" {
		out.Revision = out.ManifestRevision + "@" + out.Revision
	}
	return out, nil
}

func readArchive(raw []byte, config *opabundle.VerificationConfig, maxBytes int64) (opabundle.Bundle, error) {
	loader := opabundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "").WithSizeLimitBytes(maxBytes)
	reader := opabundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true).
		WithLazyLoadingMode(false).
		WithSizeLimitBytes(maxBytes)
	// Without keys (a nil config) the bundle must be unsigned: OPA refuses
	// a signature that it cannot check.
	return reader.WithBundleVerificationConfig(config).Read()
}

// classify finds why OPA rejected a bundle by reading it again with weaker
// checks. If it reads with signatures optional, the signature was missing.
// If it reads without verification, a signature did not verify or could
// not be checked. Otherwise the archive itself is bad.
func classify(raw []byte, verifier *Verifier, maxBytes int64) Reason {
	if verifier != nil {
		if _, err := readArchive(raw, verifier.optionalConfig(), maxBytes); err == nil {
			return ReasonUnsigned
		}
	}
	loader := opabundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "").WithSizeLimitBytes(maxBytes)
	_, err := opabundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithLazyLoadingMode(false).
		WithSizeLimitBytes(maxBytes).
		WithSkipBundleVerification(true).
		Read()
	if err == nil {
		return ReasonSignature
	}
	return ReasonMalformed
}

// checkExpandedSize rejects an archive whose files add up to more than
// maxBytes once decompressed, before OPA holds them all in memory.
func checkExpandedSize(raw []byte, maxBytes int64) error {
	gz, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("read bundle: not a gzip archive: %w", err)
	}
	tr := tar.NewReader(io.LimitReader(gz, 4*maxBytes))
	var total int64
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read bundle: not a tar archive: %w", err)
		}
		total += header.Size
		if total > maxBytes {
			return fmt.Errorf("read bundle: files add up to more than %d bytes; raise the bundle's max_bytes or shrink the bundle", maxBytes)
		}
	}
}

// checkContents rejects what a bordergate bundle cannot hold.
func checkContents(b *opabundle.Bundle) error {
	if b.Type() == opabundle.DeltaBundleType {
		return reject(ReasonMalformed, "read bundle: delta bundles are not supported; serve a snapshot bundle")
	}
	if len(b.WasmModules) > 0 || len(b.PlanModules) > 0 {
		return reject(ReasonMalformed, "read bundle: the bundle holds Wasm or plan modules, which bordergate does not load; build it from .rego files")
	}
	// Records name the bundle "REVISION@sha256:DIGEST", so a revision that
	// holds the separator or the digest form could pass off another
	// bundle's digest as this one's.
	if rev := b.Manifest.Revision; strings.Contains(rev, "@") || strings.HasPrefix(rev, "sha256:") {
		return reject(ReasonMalformed, "read bundle: the manifest revision %q contains @ or starts with sha256:, which decision records use to show the bundle's digest; build it with another --revision", rev)
	}
	if v := b.Manifest.RegoVersion; v != nil && *v != 1 {
		return reject(ReasonMalformed, "read bundle: the manifest sets rego_version %d; bordergate loads Rego v1 only", *v)
	}
	for path, v := range b.Manifest.FileRegoVersions {
		if v != 1 {
			return reject(ReasonMalformed, "read bundle: the manifest sets rego_version %d for %s; bordergate loads Rego v1 only", v, path)
		}
	}
	return nil
}

// splitData takes the policy data and the allow-list out of the bundle's
// data, and rejects data under any other path.
func splitData(data map[string]any, out *Bundle) error {
	for key, value := range data {
		if key != "bordergate" {
			return reject(ReasonData, "bundle data %s: a bordergate bundle holds data only under %s and %s", key, ConfigPath, AllowlistPath)
		}
		inner, ok := value.(map[string]any)
		if !ok {
			return reject(ReasonData, "bundle data bordergate: is %s, expected an object", policy.JSONTypeName(value))
		}
		for name := range inner {
			if name != "config" && name != "allowlist" {
				return reject(ReasonData, "bundle data bordergate/%s: a bordergate bundle holds data only under %s and %s",
					name, ConfigPath, AllowlistPath)
			}
		}
		if config, present := inner["config"]; present {
			if out.Config, ok = config.(map[string]any); !ok {
				return reject(ReasonData, "bundle data %s: is %s, expected an object", ConfigPath, policy.JSONTypeName(config))
			}
		}
		if list, present := inner["allowlist"]; present {
			entries, err := decodeAllowlist(list)
			if err != nil {
				return &Error{Reason: ReasonAllowlist, Err: fmt.Errorf("bundle data %s: %w", AllowlistPath, err)}
			}
			out.Allowlist, out.HasAllowlist = entries, true
		}
	}
	return nil
}

// decodeAllowlist decodes {"servers": [entries]} strictly and validates
// the entries as the allow-list file's are.
func decodeAllowlist(value any) ([]store.Entry, error) {
	object, ok := value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("is %s, expected an object with the key servers", policy.JSONTypeName(value))
	}
	for key := range object {
		if key != "servers" {
			return nil, fmt.Errorf("unknown key %q; the allow-list has the single key servers", key)
		}
	}
	servers, ok := object["servers"].([]any)
	if !ok {
		return nil, fmt.Errorf("servers is %s, expected a list of entries", policy.JSONTypeName(object["servers"]))
	}
	entries := make([]store.Entry, 0, len(servers))
	for i, item := range servers {
		encoded, err := json.Marshal(item)
		if err != nil {
			return nil, fmt.Errorf("servers[%d]: %w", i, err)
		}
		decoder := json.NewDecoder(bytes.NewReader(encoded))
		decoder.DisallowUnknownFields()
		var entry store.Entry
		if err := decoder.Decode(&entry); err != nil {
			return nil, fmt.Errorf("servers[%d]: %w", i, err)
		}
		entries = append(entries, entry)
	}
	if err := store.ValidateEntries(entries); err != nil {
		return nil, err
	}
	return entries, nil
}

// digest hashes the modules in path order and the data, each prefixed by
// its length, so that no two different bundles hash the same input.
func digest(b opabundle.Bundle) (string, error) {
	modules := slices.Clone(b.Modules)
	slices.SortFunc(modules, func(x, y opabundle.ModuleFile) int { return strings.Compare(x.Path, y.Path) })
	hash := sha256.New()
	for _, m := range modules {
		fmt.Fprintf(hash, "module %d:%s %d:", len(m.Path), m.Path, len(m.Raw))
		hash.Write(m.Raw)
	}
	// encoding/json writes object keys in sorted order.
	data, err := json.Marshal(b.Data)
	if err != nil {
		return "", fmt.Errorf("encode bundle data: %w", err)
	}
	fmt.Fprintf(hash, "data %d:", len(data))
	hash.Write(data)
	return hex.EncodeToString(hash.Sum(nil)), nil
}
