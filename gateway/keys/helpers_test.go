package keys

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/canonicaljson"
)

// testCA issues TLS certificates for test servers on loopback.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate CA key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bordergate keys test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatalf("create CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse CA certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns a server certificate for names, each a DNS name or an IP
// address.
func (ca *testCA) issue(t *testing.T, names ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("generate server key: %v", err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatalf("generate serial: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, name := range names {
		if ip := net.ParseIP(name); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, name)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatalf("create server certificate: %v", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startHTTPS starts an HTTPS server on 127.0.0.1 with a certificate for
// names and stops it when the test ends.
func startHTTPS(t *testing.T, ca *testCA, handler http.Handler, names ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(handler)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, names...)}}
	// Handshake failures are expected in tests of certificate checks.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// testKey is an Ed25519 signing key with its key ID.
type testKey struct {
	id   string
	priv ed25519.PrivateKey
}

func newTestKey(id string, seed byte) testKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return testKey{id: id, priv: ed25519.NewKeyFromSeed(s)}
}

func (k testKey) public() ed25519.PublicKey { return k.priv.Public().(ed25519.PublicKey) }

func (k testKey) publicBase64() string { return base64.RawStdEncoding.EncodeToString(k.public()) }

func member(key string, v canonicaljson.Value) canonicaljson.Member {
	return canonicaljson.Member{Key: key, Value: v}
}

// keyResponse builds an unsigned /_matrix/key/v2/server object.
func keyResponse(serverName string, validUntil time.Time, current ...testKey) canonicaljson.Value {
	verify := make([]canonicaljson.Member, 0, len(current))
	for _, k := range current {
		verify = append(verify, member(k.id, canonicaljson.ObjectValue(
			member("key", canonicaljson.StringValue(k.publicBase64())),
		)))
	}
	return canonicaljson.ObjectValue(
		member("server_name", canonicaljson.StringValue(serverName)),
		member("valid_until_ts", canonicaljson.IntValue(validUntil.UnixMilli())),
		member("verify_keys", canonicaljson.ObjectValue(verify...)),
		member("old_verify_keys", canonicaljson.ObjectValue()),
	)
}

// withOldKey adds k to old_verify_keys with expired_ts expired.
func withOldKey(v canonicaljson.Value, k testKey, expired time.Time) canonicaljson.Value {
	old, _ := v.Get("old_verify_keys")
	if old.Kind() != canonicaljson.Object {
		old = canonicaljson.ObjectValue()
	}
	old = old.With(k.id, canonicaljson.ObjectValue(
		member("key", canonicaljson.StringValue(k.publicBase64())),
		member("expired_ts", canonicaljson.IntValue(expired.UnixMilli())),
	))
	return v.With("old_verify_keys", old)
}

// sign adds the signature of entity with k to v.
func sign(v canonicaljson.Value, entity string, k testKey) canonicaljson.Value {
	message := canonicaljson.Encode(v.Without("signatures", "unsigned"))
	sig := base64.RawStdEncoding.EncodeToString(ed25519.Sign(k.priv, message))
	sigs, _ := v.Get("signatures")
	if sigs.Kind() != canonicaljson.Object {
		sigs = canonicaljson.ObjectValue()
	}
	byEntity, _ := sigs.Get(entity)
	if byEntity.Kind() != canonicaljson.Object {
		byEntity = canonicaljson.ObjectValue()
	}
	return v.With("signatures", sigs.With(entity, byEntity.With(k.id, canonicaljson.StringValue(sig))))
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Millisecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
