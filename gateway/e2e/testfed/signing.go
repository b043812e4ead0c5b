package testfed

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
)

// SigningKey is an Ed25519 server signing key: the key that signs a server's
// federation requests, its events and its key responses.
//
// Its signing code is written apart from the gateway's canonicaljson and
// xmatrix packages on purpose: requests that the end-to-end tests sign here
// check the gateway against a second implementation.
type SigningKey struct {
	// ServerName is the Matrix server name that the key belongs to.
	ServerName string
	// KeyID is the key ID, "ed25519:" followed by the key version.
	KeyID string
	// Private is the private key.
	Private ed25519.PrivateKey
}

// NewSigningKey generates a signing key for serverName with a random key
// version. A non-empty keyID is used as the key ID instead, for example to
// forge a signature under another server's real key ID.
func NewSigningKey(serverName, keyID string) (SigningKey, error) {
	_, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	if keyID == "" {
		version := make([]byte, 3)
		_, _ = rand.Read(version)
		keyID = "ed25519:t" + hex.EncodeToString(version)
	}
	return SigningKey{ServerName: serverName, KeyID: keyID, Private: private}, nil
}

// readDendriteKey reads a Dendrite key file: a PEM block of type
// "MATRIX PRIVATE KEY" with a Key-ID header, whose bytes are the 32-byte
// Ed25519 seed.
func readDendriteKey(path, serverName string) (SigningKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return SigningKey{}, fmt.Errorf("read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "MATRIX PRIVATE KEY" {
		return SigningKey{}, fmt.Errorf("signing key file %s: no MATRIX PRIVATE KEY PEM block", path)
	}
	keyID := block.Headers["Key-ID"]
	if keyID == "" {
		return SigningKey{}, fmt.Errorf("signing key file %s: no Key-ID header", path)
	}
	if len(block.Bytes) < ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("signing key file %s: seed is %d bytes, want %d", path, len(block.Bytes), ed25519.SeedSize)
	}
	private := ed25519.NewKeyFromSeed(block.Bytes[:ed25519.SeedSize])
	return SigningKey{ServerName: serverName, KeyID: keyID, Private: private}, nil
}

// PublicKeyBase64 returns the public key in unpadded standard base64, the
// encoding of "verify_keys" in key responses.
func (k SigningKey) PublicKeyBase64() string {
	return base64.RawStdEncoding.EncodeToString(k.Private.Public().(ed25519.PublicKey))
}

// SignJSON adds the key's signature to the JSON object object under
// signatures[ServerName][KeyID], following the Matrix JSON signing
// algorithm: the "signatures" and "unsigned" members are removed, the rest
// is encoded as canonical JSON and signed.
func (k SigningKey) SignJSON(object map[string]any) error {
	signatures, _ := object["signatures"].(map[string]any)
	unsigned, hasUnsigned := object["unsigned"]
	delete(object, "signatures")
	delete(object, "unsigned")
	payload, err := canonicalJSON(object)
	if err != nil {
		return err
	}
	if signatures == nil {
		signatures = map[string]any{}
	}
	serverSignatures, _ := signatures[k.ServerName].(map[string]any)
	if serverSignatures == nil {
		serverSignatures = map[string]any{}
	}
	serverSignatures[k.KeyID] = base64.RawStdEncoding.EncodeToString(ed25519.Sign(k.Private, payload))
	signatures[k.ServerName] = serverSignatures
	object["signatures"] = signatures
	if hasUnsigned {
		object["unsigned"] = unsigned
	}
	return nil
}

// SignRequest sets the X-Matrix Authorization header of req, signed by the
// key for destination. body is the request body, or nil for a request
// without one. It must be the body that req sends.
func (k SigningKey) SignRequest(req *http.Request, destination string, body []byte) error {
	object := map[string]any{
		"method":      req.Method,
		"uri":         req.URL.RequestURI(),
		"origin":      k.ServerName,
		"destination": destination,
	}
	if len(body) > 0 {
		var content any
		decoder := json.NewDecoder(bytes.NewReader(body))
		decoder.UseNumber()
		if err := decoder.Decode(&content); err != nil {
			return fmt.Errorf("sign request: decode body: %w", err)
		}
		object["content"] = content
	}
	if err := k.SignJSON(object); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	signature := object["signatures"].(map[string]any)[k.ServerName].(map[string]any)[k.KeyID].(string)
	req.Header.Set("Authorization", fmt.Sprintf(`X-Matrix origin="%s",destination="%s",key="%s",sig="%s"`,
		k.ServerName, destination, k.KeyID, signature))
	return nil
}

// canonicalJSON encodes v as Matrix canonical JSON: object keys sorted by
// code point, no insignificant whitespace, UTF-8 output.
//
// NOTE: encoding/json, which this relies on, escapes U+2028 and U+2029,
// which canonical JSON writes unescaped, and replaces invalid UTF-8 with
// U+FFFD. The harness signs only ASCII server names, paths and base64, where
// the output is canonical.
func canonicalJSON(v any) ([]byte, error) {
	// A round trip through any turns structs into maps, whose keys
	// encoding/json sorts, and keeps numbers exact.
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.UseNumber()
	var generic any
	if err := decoder.Decode(&generic); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	var out bytes.Buffer
	encoder := json.NewEncoder(&out)
	encoder.SetEscapeHTML(false)
	if err := encoder.Encode(generic); err != nil {
		return nil, fmt.Errorf("canonical JSON: %w", err)
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// FederationResponse is a response of a federation request sent by
// [SendFederationRequest].
type FederationResponse struct {
	// Status is the HTTP status code.
	Status int
	// Body is the response body.
	Body []byte
}

// SendFederationRequest sends method rawURL with an X-Matrix header signed by
// key for destination and returns the response, whatever its status. body
// is a JSON request body, or nil for none.
func SendFederationRequest(ctx context.Context, client *http.Client, key SigningKey, destination,
	method, rawURL string, body []byte) (*FederationResponse, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, reader)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := key.SignRequest(req, destination, body); err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read response of %s %s: %w", method, req.URL.Path, err)
	}
	return &FederationResponse{Status: resp.StatusCode, Body: data}, nil
}
