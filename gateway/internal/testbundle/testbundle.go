// Package testbundle builds OPA policy bundles for tests, signed with OPA's
// own signing code as opa build --signing-key signs them.
package testbundle

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	opabundle "github.com/open-policy-agent/opa/v1/bundle"
)

// Signer is a private key that signs bundles.
type Signer struct {
	// KeyID is written in the kid header of signatures.
	KeyID string
	// Algorithm is the JWS algorithm, EdDSA for NewEd25519Signer.
	Algorithm string
	// PrivatePEM is the PKCS #8 private key.
	PrivatePEM []byte
	// PublicPEM is the PKIX public key, the form the gateway configures.
	PublicPEM []byte
}

// NewEd25519Signer returns a signer with a fresh Ed25519 key.
func NewEd25519Signer(keyID string) (*Signer, error) {
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	privateDER, err := x509.MarshalPKCS8PrivateKey(private)
	if err != nil {
		return nil, err
	}
	publicDER, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		return nil, err
	}
	return &Signer{
		KeyID:      keyID,
		Algorithm:  "EdDSA",
		PrivatePEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privateDER}),
		PublicPEM:  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: publicDER}),
	}, nil
}

// Spec describes a bundle.
type Spec struct {
	// Revision is the manifest revision.
	Revision string
	// Modules maps module paths, such as "bordergate/request.rego", to
	// their Rego source.
	Modules map[string]string
	// Data is the whole data document of the bundle.
	Data map[string]any
	// Signer signs the bundle; nil leaves it unsigned.
	Signer *Signer
	// TamperModule, when set, replaces the source of this module after
	// signing, so that its digest no longer matches the signature.
	TamperModule string
}

// Build writes the bundle of spec as a gzipped tar archive.
func Build(spec Spec) ([]byte, error) {
	b := opabundle.Bundle{Data: spec.Data, Manifest: opabundle.Manifest{Revision: spec.Revision}}
	if b.Data == nil {
		b.Data = map[string]any{}
	}
	b.Manifest.SetRegoVersion(ast.RegoV1)
	paths := make([]string, 0, len(spec.Modules))
	for path := range spec.Modules {
		paths = append(paths, path)
	}
	sort.Strings(paths)
	for _, path := range paths {
		b.Modules = append(b.Modules, opabundle.ModuleFile{URL: "/" + path, Path: "/" + path, Raw: []byte(spec.Modules[path])})
	}
	if spec.Signer != nil {
		config := opabundle.NewSigningConfig(string(spec.Signer.PrivatePEM), spec.Signer.Algorithm, "")
		if err := b.GenerateSignature(config, spec.Signer.KeyID, true); err != nil {
			return nil, fmt.Errorf("sign bundle: %w", err)
		}
	}
	if spec.TamperModule != "" {
		for i := range b.Modules {
			if b.Modules[i].Path == "/"+spec.TamperModule {
				b.Modules[i].Raw = append(b.Modules[i].Raw, []byte("\n# changed after signing\n")...)
			}
		}
	}
	var out bytes.Buffer
	if err := opabundle.NewWriter(&out).UseModulePath(true).DisableFormat(true).Write(b); err != nil {
		return nil, fmt.Errorf("write bundle: %w", err)
	}
	return out.Bytes(), nil
}

// ReadModules reads the .rego files of dir, without tests, as bundle
// modules under prefix, such as "bordergate/".
func ReadModules(dir, prefix string) (map[string]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	modules := map[string]string{}
	for _, entry := range entries {
		name := entry.Name()
		if !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		modules[prefix+name] = string(src)
	}
	return modules, nil
}
