package admin

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync/atomic"

	"go.yaml.in/yaml/v3"
)

// tokenNamePattern is the syntax of a token name: it names the principal
// in the records of changes, so it is kept short and plain.
var tokenNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Token is one bearer token of the token file, kept as the SHA-256 of the
// token so that the file does not hold the secret itself.
type Token struct {
	// Name is the principal that the token authenticates.
	Name string `yaml:"name"`
	// SHA256 is the hexadecimal SHA-256 of the token.
	SHA256 string `yaml:"sha256"`
}

// tokenFile is the content of the token file.
type tokenFile struct {
	Tokens []Token `yaml:"tokens"`
}

// hashedToken is a Token with its hash decoded.
type hashedToken struct {
	name string
	sum  [sha256.Size]byte
}

// LoadTokens reads the token file at path: a YAML mapping with the key
// tokens, a list of {name, sha256}. Names must be unique and hashes
// distinct. An empty list is an error, because it would lock every
// client out without saying so, and so is a file that every local user
// may write.
func LoadTokens(path string) ([]Token, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	if perm := info.Mode().Perm(); perm&0o002 != 0 {
		return nil, fmt.Errorf("%s: mode %04o lets every local user add a token (run chmod o-w %s)", path, perm, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	var file tokenFile
	decoder := yaml.NewDecoder(bytes.NewReader(data))
	decoder.KnownFields(true)
	if err := decoder.Decode(&file); err != nil {
		return nil, fmt.Errorf("%s: invalid token file (expected tokens: followed by a list of name and sha256): %w", path, err)
	}
	if len(file.Tokens) == 0 {
		return nil, fmt.Errorf("%s: no tokens (expected tokens: followed by a list of name and sha256)", path)
	}
	if _, err := hashTokens(file.Tokens); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return file.Tokens, nil
}

func hashTokens(tokens []Token) ([]hashedToken, error) {
	names := make(map[string]bool)
	sums := make(map[[sha256.Size]byte]string)
	hashed := make([]hashedToken, len(tokens))
	for i, token := range tokens {
		if !tokenNamePattern.MatchString(token.Name) {
			return nil, fmt.Errorf("tokens[%d]: invalid name %q (expected 1 to 64 characters of letters, digits, '.', '_', '@' and '-')", i, token.Name)
		}
		if names[token.Name] {
			return nil, fmt.Errorf("tokens[%d]: duplicate name %q (expected each name once)", i, token.Name)
		}
		names[token.Name] = true
		raw, err := hex.DecodeString(token.SHA256)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("tokens[%d] (%s): invalid sha256 %q (expected 64 hexadecimal digits, the output of sha256sum on the token)", i, token.Name, token.SHA256)
		}
		sum := [sha256.Size]byte(raw)
		if other, dup := sums[sum]; dup {
			return nil, fmt.Errorf("tokens[%d] (%s): same token as %s (expected a distinct token per name)", i, token.Name, other)
		}
		sums[sum] = token.Name
		hashed[i] = hashedToken{name: token.Name, sum: sum}
	}
	return hashed, nil
}

// HashToken returns the hexadecimal SHA-256 of a token, the form the
// token file keeps.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Authenticator identifies the principal behind an admin request, from a
// bearer token or a verified client certificate. Its tokens can be
// replaced while it is in use.
type Authenticator struct {
	tokens atomic.Pointer[[]hashedToken]
	// certificates is true when the listener verifies client
	// certificates against an admin CA.
	certificates bool
}

// NewAuthenticator returns an authenticator that accepts tokens, and
// client certificates when certificates is true. Both may be absent, and
// then every request that needs a principal is rejected.
func NewAuthenticator(tokens []Token, certificates bool) (*Authenticator, error) {
	a := &Authenticator{certificates: certificates}
	if err := a.SetTokens(tokens); err != nil {
		return nil, err
	}
	return a, nil
}

// SetTokens replaces the accepted tokens.
func (a *Authenticator) SetTokens(tokens []Token) error {
	hashed, err := hashTokens(tokens)
	if err != nil {
		return err
	}
	a.tokens.Store(&hashed)
	return nil
}

// Configured reports whether any way to authenticate is configured.
func (a *Authenticator) Configured() bool {
	return a.certificates || len(*a.tokens.Load()) > 0
}

// Errors of Authenticate.
var (
	errNoAuthentication = errors.New("the admin API needs authentication, and none is configured: set admin.token_file or admin.tls.client_ca_file")
	errMissingToken     = errors.New("authentication required: send Authorization: Bearer TOKEN, or a client certificate from the admin CA")
	errMalformedAuth    = errors.New("Authorization header is not a bearer token (expected Authorization: Bearer TOKEN)")
	errUnknownToken     = errors.New("unknown or revoked admin token")
)

// Authenticate returns the principal of r: the name of its bearer token,
// or the subject of its verified client certificate. A request with an
// Authorization header is judged by that header alone, so a bad token is
// rejected even when a valid certificate comes with it.
func (a *Authenticator) Authenticate(r *http.Request) (string, error) {
	if !a.Configured() {
		return "", errNoAuthentication
	}
	if header := r.Header.Get("Authorization"); header != "" {
		scheme, token, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return "", errMalformedAuth
		}
		return a.matchToken(strings.TrimSpace(token))
	}
	if a.certificates && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return r.TLS.VerifiedChains[0][0].Subject.String(), nil
	}
	return "", errMissingToken
}

// matchToken compares the token's hash with every configured hash in
// constant time, without stopping at a match, so that the time taken does
// not tell which token, or which prefix, matched.
func (a *Authenticator) matchToken(token string) (string, error) {
	sum := sha256.Sum256([]byte(token))
	name := ""
	for _, candidate := range *a.tokens.Load() {
		if subtle.ConstantTimeCompare(sum[:], candidate.sum[:]) == 1 {
			name = candidate.name
		}
	}
	if name == "" {
		return "", errUnknownToken
	}
	return name, nil
}
