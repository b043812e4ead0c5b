package certs

import (
	"container/list"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/bordergate/bordergate/gateway/servername"
)

// Defaults of [InterceptorOptions].
const (
	DefaultLeafValidity  = 24 * time.Hour
	DefaultLeafCacheSize = 1024
)

// renewMargin is how long before NotAfter a cached leaf is replaced, so that
// a client never receives a certificate that expires during its connection.
const renewMargin = time.Hour

// ErrInvalidHost is wrapped by the errors of [Interceptor.CertificateFor]
// and [Interceptor.GetCertificate] for a host that is neither a valid DNS
// name nor an IP literal.
var ErrInvalidHost = errors.New("host is not a valid DNS name or IP literal")

// InterceptorOptions configures an [Interceptor]. Zero or negative values
// select the defaults.
type InterceptorOptions struct {
	// LeafValidity is the lifetime of a minted leaf certificate, capped at
	// the CA's NotAfter. Default [DefaultLeafValidity].
	LeafValidity time.Duration

	// CacheSize is the number of hosts whose leaf stays cached. The least
	// recently used host is evicted first. Default [DefaultLeafCacheSize].
	CacheSize int

	// Now returns the current time, for NotBefore, NotAfter and renewal.
	// Default [time.Now].
	Now func() time.Time
}

// Interceptor mints server certificates from an internal CA for the hosts
// that the local homeserver connects to, so that the gateway can terminate
// the homeserver's outbound TLS. The homeserver must trust the CA.
//
// Leaves have an ECDSA P-256 key, the ServerAuth extended key usage and one
// subject alternative name: the host. The chain sent to the client is the
// leaf only, because the client trusts the CA itself. An Interceptor is safe
// for concurrent use. It mints at most one leaf per host at a time, and
// concurrent requests for that host wait for it.
type Interceptor struct {
	ca       *CA
	validity time.Duration
	capacity int
	now      func() time.Time

	mu      sync.Mutex // guards entries and recency
	entries map[string]*list.Element
	recency *list.List // of *leafEntry, most recently used first
}

// leafEntry is the cached leaf of one host, or the mint in progress for it.
type leafEntry struct {
	host string
	done chan struct{} // closed once cert or err is set
	cert *tls.Certificate
	err  error
}

// NewInterceptor returns an Interceptor that signs leaves with ca. It panics
// if ca is nil.
func NewInterceptor(ca *CA, opts InterceptorOptions) *Interceptor {
	if ca == nil {
		panic("certs: NewInterceptor called with a nil CA")
	}
	ic := &Interceptor{
		ca:       ca,
		validity: opts.LeafValidity,
		capacity: opts.CacheSize,
		now:      opts.Now,
		entries:  make(map[string]*list.Element),
		recency:  list.New(),
	}
	if ic.validity <= 0 {
		ic.validity = DefaultLeafValidity
	}
	if ic.capacity <= 0 {
		ic.capacity = DefaultLeafCacheSize
	}
	if ic.now == nil {
		ic.now = time.Now
	}
	return ic
}

// GetCertificate returns the leaf for the SNI server name of hello, for
// [tls.Config.GetCertificate]. A ClientHello without SNI returns an error.
// Clients omit SNI when they connect to an IP address, so for those use
// [Interceptor.GetCertificateWithDefault] with the host known from the
// CONNECT request or the original destination.
func (ic *Interceptor) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		return nil, errors.New("mint interception certificate: ClientHello has no SNI server name")
	}
	return ic.certificate(helloContext(hello), hello.ServerName)
}

// GetCertificateWithDefault returns a [tls.Config.GetCertificate] callback
// that mints for the SNI server name, or for host when the ClientHello has
// no SNI. host is a DNS name or an IP literal, as for
// [Interceptor.CertificateFor].
func (ic *Interceptor) GetCertificateWithDefault(host string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := hello.ServerName
		if name == "" {
			name = host
		}
		return ic.certificate(helloContext(hello), name)
	}
}

// helloContext returns the handshake context of hello, which is nil when
// hello was not built by crypto/tls.
func helloContext(hello *tls.ClientHelloInfo) context.Context {
	if ctx := hello.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// CertificateFor returns the leaf for host: a DNS name, an IPv4 address or
// an IPv6 address with or without brackets, all without a port. DNS names
// are matched case-insensitively, so "HS9.example" and "hs9.example" share
// one leaf.
//
// A cached leaf is returned until one hour before it expires, or half its
// validity when [InterceptorOptions.LeafValidity] is under two hours. A leaf
// that the CA's NotAfter cut short is kept until it expires, because a new
// one could not last longer. A host that is not a valid DNS name or IP
// literal returns an error wrapping [ErrInvalidHost].
func (ic *Interceptor) CertificateFor(host string) (*tls.Certificate, error) {
	return ic.certificate(context.Background(), host)
}

// certificate returns a fresh cached leaf for host or mints one. ctx bounds
// only the wait for a mint that another goroutine started.
func (ic *Interceptor) certificate(ctx context.Context, host string) (*tls.Certificate, error) {
	key, ip, err := normalizeHost(host)
	if err != nil {
		return nil, fmt.Errorf("mint interception certificate: %w", err)
	}
	now := ic.now()

	ic.mu.Lock()
	if elem, ok := ic.entries[key]; ok {
		entry := elem.Value.(*leafEntry)
		select {
		case <-entry.done:
			if entry.err == nil && ic.fresh(entry.cert.Leaf, now) {
				ic.recency.MoveToFront(elem)
				ic.mu.Unlock()
				return entry.cert, nil
			}
			ic.removeLocked(elem)
		default:
			ic.mu.Unlock()
			return entry.wait(ctx)
		}
	}
	entry := &leafEntry{host: key, done: make(chan struct{})}
	ic.entries[key] = ic.recency.PushFront(entry)
	ic.evictLocked()
	ic.mu.Unlock()

	entry.cert, entry.err = ic.mint(key, ip, now)
	close(entry.done)
	if entry.err != nil {
		// Drop the failed entry so that the next request tries again.
		ic.mu.Lock()
		if elem, ok := ic.entries[key]; ok && elem.Value == entry {
			ic.removeLocked(elem)
		}
		ic.mu.Unlock()
	}
	return entry.cert, entry.err
}

func (e *leafEntry) wait(ctx context.Context) (*tls.Certificate, error) {
	select {
	case <-e.done:
		return e.cert, e.err
	case <-ctx.Done():
		return nil, fmt.Errorf("mint interception certificate for %s: %w", e.host, ctx.Err())
	}
}

// fresh reports whether leaf may still be handed out at now.
func (ic *Interceptor) fresh(leaf *x509.Certificate, now time.Time) bool {
	renewAt := leaf.NotAfter.Add(-ic.renewMargin())
	if !leaf.NotAfter.Before(ic.ca.cert.NotAfter) {
		renewAt = leaf.NotAfter
	}
	return now.Before(renewAt)
}

func (ic *Interceptor) renewMargin() time.Duration {
	return min(renewMargin, ic.validity/2)
}

func (ic *Interceptor) removeLocked(elem *list.Element) {
	entry := ic.recency.Remove(elem).(*leafEntry)
	delete(ic.entries, entry.host)
}

// evictLocked removes least recently used entries beyond the capacity. An
// evicted mint in progress still completes for the requests waiting on it.
func (ic *Interceptor) evictLocked() {
	for ic.recency.Len() > ic.capacity {
		ic.removeLocked(ic.recency.Back())
	}
}

// mint signs a new leaf for host, which is an IP literal when ip is valid.
func (ic *Interceptor) mint(host string, ip netip.Addr, now time.Time) (*tls.Certificate, error) {
	caCert := ic.ca.cert
	if !now.Before(caCert.NotAfter) {
		return nil, fmt.Errorf("mint interception certificate for %s: CA certificate expired at %s",
			host, caCert.NotAfter.Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("mint interception certificate for %s: %w", host, err)
	}
	notAfter := now.Add(ic.validity)
	if notAfter.After(caCert.NotAfter) {
		notAfter = caCert.NotAfter
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: host},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	if ip.IsValid() {
		template.IPAddresses = []net.IP{ip.AsSlice()}
	} else {
		template.DNSNames = []string{host}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("mint interception certificate for %s: generate key: %w", host, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, caCert, &key.PublicKey, ic.ca.key)
	if err != nil {
		return nil, fmt.Errorf("mint interception certificate for %s: sign: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("mint interception certificate for %s: parse: %w", host, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// normalizeHost checks host and returns its cache key: the lower-case DNS
// name, or the IP address in canonical form together with the address.
// DNS names follow the Matrix server name grammar of [servername.Validate].
func normalizeHost(host string) (key string, ip netip.Addr, err error) {
	if host == "" {
		return "", netip.Addr{}, fmt.Errorf("%w: empty host", ErrInvalidHost)
	}
	if _, port, err := servername.Split(host); err == nil && port != 0 {
		return "", netip.Addr{}, fmt.Errorf("%w: %q contains a port, pass the host part only", ErrInvalidHost, host)
	}

	literal := host
	bracketed := len(host) >= 2 && host[0] == '[' && host[len(host)-1] == ']'
	if bracketed {
		literal = host[1 : len(host)-1]
	}
	if addr, err := netip.ParseAddr(literal); err == nil {
		if addr.Zone() != "" {
			return "", netip.Addr{}, fmt.Errorf("%w: %q has an IPv6 zone", ErrInvalidHost, host)
		}
		if bracketed && !addr.Is6() {
			return "", netip.Addr{}, fmt.Errorf("%w: %q puts brackets around an IPv4 address", ErrInvalidHost, host)
		}
		return addr.String(), addr, nil
	}
	if bracketed {
		return "", netip.Addr{}, fmt.Errorf("%w: %q is not an IPv6 address in brackets", ErrInvalidHost, host)
	}

	// Only DNS names are left, because netip accepts every IP literal
	// that the server name grammar accepts.
	if _, _, err := servername.Split(host); err != nil {
		return "", netip.Addr{}, fmt.Errorf("%w: %w", ErrInvalidHost, err)
	}
	return strings.ToLower(host), netip.Addr{}, nil
}
