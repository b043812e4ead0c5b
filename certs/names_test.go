package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/bordergate/bordergate/gateway/servername"
)

// serverCert issues a server certificate for names and parses it.
func serverCert(t *testing.T, ca *CA, names ...string) *x509.Certificate {
	t.Helper()
	certPEM, _, err := ca.IssueServer(names, time.Hour)
	if err != nil {
		t.Fatalf("IssueServer(%q): %v", names, err)
	}
	return parsePEMCert(t, certPEM)
}

func parsePEMCert(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatalf("no PEM block in %q", certPEM)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return cert
}

// commonNameOnlyCert returns a self-signed certificate whose subject common
// name is cn and which carries no subject alternative names.
func commonNameOnlyCert(t *testing.T, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newTestCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA("bordergate test CA", 24*time.Hour)
	if err != nil {
		t.Fatalf("NewCA: %v", err)
	}
	return ca
}

func TestMatchesServerName(t *testing.T) {
	ca := newTestCA(t)
	hs1 := serverCert(t, ca, "hs1.localhost")
	mixedCase := serverCert(t, ca, "HS1.Example.ORG")
	wildcard := serverCert(t, ca, "*.example.org")
	addresses := serverCert(t, ca, "127.0.0.1", "::1", "[2001:db8::7]")
	trailingDot := serverCert(t, ca, "example.net.")
	commonNameOnly := commonNameOnlyCert(t, "hs1.localhost")
	underscore := serverCert(t, ca, "hs_1.localhost")
	numeric := serverCert(t, ca, "1.2.3")

	tests := []struct {
		name       string
		cert       *x509.Certificate
		serverName string
		want       bool
	}{
		{"exact name", hs1, "hs1.localhost", true},
		{"name with port", hs1, "hs1.localhost:8481", true},
		{"name with port 8448", hs1, "hs1.localhost:8448", true},
		{"other name", hs1, "hs2.localhost:8448", false},
		{"parent domain", hs1, "localhost", false},
		{"subdomain", hs1, "a.hs1.localhost", false},
		{"upper case server name", hs1, "HS1.LOCALHOST:8481", true},
		{"mixed case SAN", mixedCase, "hs1.example.org", true},
		{"wildcard one label", wildcard, "hs1.example.org:8448", true},
		{"wildcard upper case", wildcard, "HS1.EXAMPLE.ORG", true},
		{"wildcard no label", wildcard, "example.org", false},
		{"wildcard two labels", wildcard, "a.b.example.org", false},
		{"wildcard empty label", wildcard, ".example.org", false},
		{"wildcard other suffix", wildcard, "a.example.net", false},
		{"literal star in server name", wildcard, "*.example.org", false},
		{"IPv4", addresses, "127.0.0.1", true},
		{"IPv4 with port", addresses, "127.0.0.1:8448", true},
		{"IPv4 not listed", addresses, "127.0.0.2:8448", false},
		{"IPv6 bracketed", addresses, "[::1]", true},
		{"IPv6 with port", addresses, "[::1]:8448", true},
		{"IPv6 other form of same address", addresses, "[0:0:0:0:0:0:0:1]:8448", true},
		{"IPv6 SAN given in brackets", addresses, "[2001:db8::7]:443", true},
		{"IPv6 not bracketed", addresses, "::1", false},
		{"IPv6 not listed", addresses, "[::2]", false},
		{"IPv4 in brackets", addresses, "[127.0.0.1]", false},
		{"IP server name against DNS SAN", hs1, "127.0.0.1", false},
		{"trailing dot in SAN", trailingDot, "example.net", true},
		{"trailing dot in server name", hs1, "hs1.localhost.", false},
		{"underscore in server name and SAN", underscore, "hs_1.localhost", false},
		{"numeric last label in server name and SAN", numeric, "1.2.3", false},
		{"IPv6 port out of range", addresses, "[::1]:99999", false},
		{"port 0", hs1, "hs1.localhost:0", false},
		{"port with leading zero", hs1, "hs1.localhost:08481", false},
		{"common name only", commonNameOnly, "hs1.localhost", false},
		{"common name only with port", commonNameOnly, "hs1.localhost:8481", false},
		{"empty server name", hs1, "", false},
		{"port only", hs1, ":8481", false},
		{"empty port", hs1, "hs1.localhost:", false},
		{"non-numeric port", hs1, "hs1.localhost:http", false},
		{"port with six digits", hs1, "hs1.localhost:123456", false},
		{"unclosed bracket", addresses, "[::1:8448", false},
		{"nil certificate", nil, "hs1.localhost", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MatchesServerName(tt.cert, tt.serverName)
			if got != tt.want {
				t.Errorf("MatchesServerName(%v, %q) = %v, want %v", PeerNames(tt.cert), tt.serverName, got, tt.want)
			}
		})
	}
}

func TestPeerNames(t *testing.T) {
	ca := newTestCA(t)
	tests := []struct {
		name string
		cert *x509.Certificate
		want []string
	}{
		{"DNS then IP", serverCert(t, ca, "127.0.0.1", "hs1.localhost", "::1", "*.example.org"),
			[]string{"hs1.localhost", "*.example.org", "127.0.0.1", "::1"}},
		{"common name ignored", commonNameOnlyCert(t, "hs1.localhost"), []string{}},
		{"nil certificate", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PeerNames(tt.cert)
			if !slices.Equal(got, tt.want) {
				t.Errorf("PeerNames() = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzMatchesServerName checks that a certificate whose only SAN is the host
// part of a valid server name matches that server name, and that invalid
// server names never match.
func FuzzMatchesServerName(f *testing.F) {
	for _, seed := range []string{"hs1.localhost:8481", "[::1]:8448", "127.0.0.1", "Example.ORG", "a.b", "[::ffff:1.2.3.4]", "x:"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, serverName string) {
		host, _, err := servername.Split(serverName)
		if err != nil {
			cert := &x509.Certificate{DNSNames: []string{serverName}}
			if MatchesServerName(cert, serverName) {
				t.Fatalf("invalid server name %q matched", serverName)
			}
			return
		}

		template := &x509.Certificate{}
		if err := addSubjectAltName(template, host); err != nil {
			t.Fatalf("addSubjectAltName(%q) error = %v for the host of a valid server name", host, err)
		}
		if !MatchesServerName(template, serverName) {
			t.Fatalf("certificate with SANs %v does not match server name %q", PeerNames(template), serverName)
		}
	})
}
