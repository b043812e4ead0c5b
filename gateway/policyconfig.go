package gateway

import (
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/bordergate/bordergate/gateway/bundle"
	"github.com/bordergate/bordergate/policy"
)

// Defaults of the policy sources, applied by [LoadConfig].
const (
	DefaultBundlePollInterval = 60 * time.Second
	DefaultBundleTimeout      = 10 * time.Second
	DefaultReloadDebounce     = 500 * time.Millisecond
	// DefaultShadowTimeout bounds one shadow decision. It is hundreds of
	// times what a decision of the default policy costs (docs/benchmarks.md),
	// so that only a candidate that waits or loops reaches it, and it keeps
	// the delay such a candidate adds to an exchange small.
	DefaultShadowTimeout = 100 * time.Millisecond
)

// PolicyConfig names the Rego policy: files (Paths and DataFile) or a
// bundle, and optionally a shadow policy.
type PolicyConfig struct {
	// Paths are .rego files or directories; files ending in _test.rego
	// are skipped.
	Paths []string `yaml:"paths"`
	// DataFile is an optional JSON or YAML document, readable from policy
	// as data.bordergate.config.
	DataFile string `yaml:"data_file"`
	// Bundle takes the policy from a bundle server instead of Paths.
	Bundle *BundleConfig `yaml:"bundle"`
	// Shadow is a candidate policy that is evaluated and recorded beside
	// the enforced one, without effect on traffic.
	Shadow *ShadowConfig `yaml:"shadow"`
	// DecisionCacheSize is the number of decisions kept per kind for
	// reuse, by the enforced and the shadow policy each. Zero means
	// policy.DefaultDecisionCacheSize, and -1 turns the cache off.
	DecisionCacheSize int `yaml:"decision_cache_size"`
}

// BundleConfig is a policy bundle polled from a bundle server.
type BundleConfig struct {
	// URL is the http or https URL of the bundle archive.
	URL string `yaml:"url"`
	// PollInterval is the time between two fetches. Default 60s.
	PollInterval time.Duration `yaml:"poll_interval"`
	// Timeout bounds one fetch. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// CAFile is a PEM bundle that the bundle server's certificate is
	// verified against. Empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// TokenFile holds a bearer token sent to the bundle server.
	TokenFile string `yaml:"token_file"`
	// MaxBytes caps the bundle's size, downloaded and decompressed.
	// Default 32 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// Signing lists the public keys that bundle signatures are verified
	// with. Without it, only unsigned bundles are accepted.
	Signing *SigningConfig `yaml:"signing"`
}

// SigningConfig lists the keys that bundle signatures may be made with.
type SigningConfig struct {
	// Keys are the accepted public keys, chosen by the key ID of each
	// signature.
	Keys []SigningKeyConfig `yaml:"keys"`
	// Scope, when set, must equal the scope claim of the signature.
	Scope string `yaml:"scope"`
}

// SigningKeyConfig is one public key for bundle signatures.
type SigningKeyConfig struct {
	// KeyID is the kid that signatures made with the key carry.
	KeyID string `yaml:"key_id"`
	// Algorithm is the JWS algorithm, such as EdDSA, ES256 or RS256.
	Algorithm string `yaml:"algorithm"`
	// PublicKeyFile is the PEM public key or certificate.
	PublicKeyFile string `yaml:"public_key_file"`
}

// ShadowConfig is a candidate policy, from files or a bundle, that the
// gateway evaluates beside the enforced one for the packages listed.
type ShadowConfig struct {
	// Packages are the policy packages the candidate is evaluated for:
	// bordergate.request, bordergate.pdu and bordergate.edu. Empty means
	// all three.
	Packages []string `yaml:"packages"`
	// Paths are the candidate's .rego files or directories.
	Paths []string `yaml:"paths"`
	// DataFile is the candidate's data file.
	DataFile string `yaml:"data_file"`
	// Bundle takes the candidate from a bundle server instead of Paths.
	Bundle *BundleConfig `yaml:"bundle"`
	// Timeout is the time one shadow decision may take, after which its
	// evaluation is stopped and recorded as an error. Once one has timed
	// out, the rest of the exchange is not shadowed, so an exchange waits
	// for the candidate about this long at most. Default
	// DefaultShadowTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// ReloadConfig configures how file changes are noticed.
type ReloadConfig struct {
	// Watch reloads the policy files, the data files and the allow-list
	// file when they change. Default true.
	Watch *bool `yaml:"watch"`
	// Debounce is the quiet time after the last change to a watched file
	// before it is reloaded. Default 500ms.
	Debounce time.Duration `yaml:"debounce"`
}

// watching reports whether files are watched.
func (r ReloadConfig) watching() bool {
	return r.Watch == nil || *r.Watch
}

// shadowPackages maps the package names of policy.shadow.packages to
// the kinds of decision.
var shadowPackages = map[string]policy.Kind{
	"bordergate.request": policy.KindRequest,
	"bordergate.pdu":     policy.KindPDU,
	"bordergate.edu":     policy.KindEDU,
}

// kinds returns the kinds of decision that the shadow policy covers.
func (s *ShadowConfig) kinds() map[policy.Kind]bool {
	out := map[policy.Kind]bool{}
	for name, kind := range shadowPackages {
		if len(s.Packages) == 0 || slices.Contains(s.Packages, name) {
			out[kind] = true
		}
	}
	return out
}

func (c *Config) setPolicyDefaults() {
	for _, b := range []*BundleConfig{c.Policy.Bundle, c.shadowBundle()} {
		if b == nil {
			continue
		}
		setDefaultDuration(&b.PollInterval, DefaultBundlePollInterval)
		setDefaultDuration(&b.Timeout, DefaultBundleTimeout)
		if b.MaxBytes == 0 {
			b.MaxBytes = bundle.DefaultMaxBytes
		}
	}
	setDefaultDuration(&c.Reload.Debounce, DefaultReloadDebounce)
	if s := c.Policy.Shadow; s != nil {
		setDefaultDuration(&s.Timeout, DefaultShadowTimeout)
	}
}

func (c *Config) shadowBundle() *BundleConfig {
	if c.Policy.Shadow == nil {
		return nil
	}
	return c.Policy.Shadow.Bundle
}

// validatePolicy checks the policy, shadow, allow-list and reload fields.
func (c *Config) validatePolicy() error {
	p := c.Policy
	if err := validateSource("policy", p.Paths, p.DataFile, p.Bundle); err != nil {
		return err
	}
	if err := c.validateAllowlistSource(); err != nil {
		return err
	}
	if s := p.Shadow; s != nil {
		if err := validateSource("policy.shadow", s.Paths, s.DataFile, s.Bundle); err != nil {
			return err
		}
		for i, name := range s.Packages {
			if _, ok := shadowPackages[name]; !ok {
				return bad(fmt.Sprintf("policy.shadow.packages[%d]", i), fmt.Sprintf("unknown package %q", name),
					"write bordergate.request, bordergate.pdu or bordergate.edu, or leave the list empty for all three")
			}
			if slices.Index(s.Packages, name) != i {
				return bad(fmt.Sprintf("policy.shadow.packages[%d]", i), fmt.Sprintf("package %q is listed twice", name), "list it once")
			}
		}
		if s.Timeout < 0 {
			return bad("policy.shadow.timeout", "negative duration", `write a duration such as "100ms"`)
		}
	}
	if p.DecisionCacheSize < -1 {
		return bad("policy.decision_cache_size", fmt.Sprintf("invalid value %d", p.DecisionCacheSize),
			"write a number of decisions, 0 for the default or -1 to turn the cache off")
	}
	if c.Reload.Debounce < 0 {
		return bad("reload.debounce", "negative duration", `write a duration such as "500ms"`)
	}
	return nil
}

// validateSource checks that a policy comes from files or from a bundle.
func validateSource(field string, paths []string, dataFile string, b *BundleConfig) error {
	switch {
	case b == nil && len(paths) == 0:
		return bad(field+".paths", "missing", "list the .rego files or directories of the policy, or configure "+field+".bundle")
	case b != nil && (len(paths) > 0 || dataFile != ""):
		return bad(field+".bundle", "set together with paths or data_file",
			"take the policy from files or from a bundle, not both; a bundle carries its data under bordergate/config")
	case b != nil:
		return validateBundle(field+".bundle", b)
	}
	return nil
}

func validateBundle(field string, b *BundleConfig) error {
	u, err := url.Parse(b.URL)
	if b.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad(field+".url", fmt.Sprintf("%q is not an http or https URL", b.URL),
			`write the bundle's URL, such as "https://bundles.example.org/bordergate/bundle.tar.gz"`)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
		if b.Signing == nil {
			return bad(field+".url", fmt.Sprintf("%q is plain http to another host and the bundle is not signed, so anyone on the network path could replace the policy", b.URL),
				"use https, or configure "+field+".signing")
		}
		if b.TokenFile != "" {
			return bad(field+".token_file", fmt.Sprintf("the token would travel in clear to %s over plain http", u.Hostname()), "use an https URL")
		}
	}
	if b.PollInterval < time.Second {
		return bad(field+".poll_interval", fmt.Sprintf("%s is shorter than 1s", b.PollInterval), `write a duration such as "60s"`)
	}
	if b.Timeout <= 0 {
		return bad(field+".timeout", "not a positive duration", `write a duration such as "10s"`)
	}
	if b.MaxBytes < 1024 {
		return bad(field+".max_bytes", fmt.Sprintf("%d is too small", b.MaxBytes), fmt.Sprintf("write at least 1024; the default is %d", bundle.DefaultMaxBytes))
	}
	if b.Signing == nil {
		return nil
	}
	if len(b.Signing.Keys) == 0 {
		return bad(field+".signing.keys", "missing", "list the public keys that bundles are signed with, or remove signing")
	}
	for i, k := range b.Signing.Keys {
		keyField := fmt.Sprintf("%s.signing.keys[%d]", field, i)
		if k.KeyID == "" {
			return bad(keyField+".key_id", "missing", "write the key ID that signatures carry in their kid header")
		}
		if k.Algorithm == "" {
			return bad(keyField+".algorithm", "missing", "write the JWS algorithm of the signatures, such as EdDSA, ES256 or RS256")
		}
		if k.PublicKeyFile == "" {
			return bad(keyField+".public_key_file", "missing", "name the PEM public key file")
		}
	}
	return nil
}

func (c *Config) validateAllowlistSource() error {
	switch {
	case c.Allowlist.FromBundle && c.Policy.Bundle == nil:
		return bad("allowlist.from_bundle", "set without policy.bundle", "configure policy.bundle, or name allowlist.file")
	case c.Allowlist.FromBundle && c.Allowlist.File != "":
		return bad("allowlist.file", "set together with allowlist.from_bundle", "take the allow-list from the file or from the bundle, not both")
	case !c.Allowlist.FromBundle && c.Allowlist.File == "":
		return bad("allowlist.file", "missing", "name the YAML allow-list of federated servers, or set allowlist.from_bundle")
	}
	return nil
}

// policyPaths lists the file fields of the policy sections, for
// resolving them against the configuration's directory.
func (c *Config) policyPaths() []*string {
	paths := []*string{&c.Policy.DataFile}
	for i := range c.Policy.Paths {
		paths = append(paths, &c.Policy.Paths[i])
	}
	paths = append(paths, bundlePaths(c.Policy.Bundle)...)
	if s := c.Policy.Shadow; s != nil {
		paths = append(paths, &s.DataFile)
		for i := range s.Paths {
			paths = append(paths, &s.Paths[i])
		}
		paths = append(paths, bundlePaths(s.Bundle)...)
	}
	return paths
}

func bundlePaths(b *BundleConfig) []*string {
	if b == nil {
		return nil
	}
	paths := []*string{&b.CAFile, &b.TokenFile}
	if b.Signing != nil {
		for i := range b.Signing.Keys {
			paths = append(paths, &b.Signing.Keys[i].PublicKeyFile)
		}
	}
	return paths
}

// isLoopbackHost reports whether host, the host of a URL without its port,
// is localhost or a loopback address, which traffic never leaves the
// machine to reach.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
