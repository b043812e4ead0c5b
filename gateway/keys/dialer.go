package keys

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress reports that a dial target is in a range the
// [Dialer] does not connect to.
var ErrForbiddenAddress = errors.New("forbidden address")

// Resolver looks up the DNS records server discovery needs. *net.Resolver
// implements it; tests give a net.Resolver aimed at their own DNS server.
type Resolver interface {
	// LookupSRV returns the SRV records of _service._proto.name, sorted by
	// priority and shuffled by weight.
	LookupSRV(ctx context.Context, service, proto, name string) (string, []*net.SRV, error)
	// LookupNetIP returns the addresses of host; network is "ip", "ip4"
	// or "ip6".
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// forbiddenPrefixes are the ranges a [Dialer] rejects beyond those the
// netip.Addr predicates cover: 0.0.0.0/8 ("this network", which Linux
// connects to the local host), CGNAT shared space (RFC 6598), the IPv4
// broadcast address and deprecated IPv6 site-local addresses.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("255.255.255.255/32"),
	netip.MustParsePrefix("fec0::/10"),
}

// Dialer opens TCP connections for discovery and key fetches. It rejects
// addresses that a remote server name should never lead to. These are
// loopback, private (RFC 1918 and IPv6 unique local fc00::/7), link-local,
// CGNAT 100.64.0.0/10, unspecified, multicast, 0.0.0.0/8, broadcast, IPv6
// site-local, and the IPv4-mapped IPv6 forms of all of these. Without the
// check, a server name or .well-known delegation that resolves to an
// internal address would make the gateway connect into its own network.
//
// Addresses configured by the operator, such as the address of an
// allow-list entry or of a notary, are dialled with a plain net.Dialer
// instead: the operator chose them, so they may be internal.
//
// The zero Dialer rejects every address listed above and resolves names
// with net.DefaultResolver.
type Dialer struct {
	// AllowPrivate turns the address check off, for closed federations on
	// private networks and for tests on loopback.
	AllowPrivate bool
	// AllowedNetworks are ranges accepted even though the check would
	// reject them.
	AllowedNetworks []netip.Prefix
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// Timeout bounds each connection attempt; zero means no limit beyond
	// the context's deadline.
	Timeout time.Duration
}

// CheckAddress returns an error wrapping [ErrForbiddenAddress] when the
// dialer must not connect to addr.
func (d *Dialer) CheckAddress(addr netip.Addr) error {
	if d.AllowPrivate {
		return nil
	}
	plain := addr.Unmap().WithZone("")
	for _, p := range d.AllowedNetworks {
		if p.Contains(plain) || p.Contains(addr.WithZone("")) {
			return nil
		}
	}
	if isForbidden(plain) {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, addr)
	}
	return nil
}

func isForbidden(addr netip.Addr) bool {
	if !addr.IsValid() ||
		addr.IsLoopback() ||
		addr.IsPrivate() ||
		addr.IsLinkLocalUnicast() ||
		addr.IsMulticast() ||
		addr.IsUnspecified() {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// DialContext connects to address, a host:port on network "tcp", "tcp4" or
// "tcp6". It resolves a host name with d.Resolver and tries each permitted
// address in order. The check runs again in the socket's Control hook on
// the exact address being connected, so no address can bypass it. The
// error wraps [ErrForbiddenAddress] when every address was rejected.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	nd := net.Dialer{Timeout: d.Timeout, Control: d.control}
	return dialResolved(ctx, &nd, d.resolver(), network, address, d.CheckAddress)
}

func (d *Dialer) resolver() Resolver {
	if d.Resolver == nil {
		return net.DefaultResolver
	}
	return d.Resolver
}

func (d *Dialer) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
	}
	return d.CheckAddress(ap.Addr())
}

// dialOperator connects to an address the operator configured, resolving
// it with resolver but without any address check.
func dialOperator(ctx context.Context, resolver Resolver, timeout time.Duration, network, address string) (net.Conn, error) {
	nd := net.Dialer{Timeout: timeout}
	return dialResolved(ctx, &nd, resolver, network, address, nil)
}

// dialResolved resolves the host of address with resolver, drops the
// addresses check rejects, and connects to the rest in order until one
// connection succeeds.
func dialResolved(
	ctx context.Context,
	nd *net.Dialer,
	resolver Resolver,
	network, address string,
	check func(netip.Addr) error,
) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}
	addrs, err := resolveHost(ctx, resolver, network, host)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", address, err)
	}

	var errs []error
	for _, addr := range addrs {
		if check != nil {
			if err := check(addr); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		conn, err := nd.DialContext(ctx, network, net.JoinHostPort(addr.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("dial %s: %w", address, errors.Join(errs...))
}

func resolveHost(ctx context.Context, resolver Resolver, network, host string) ([]netip.Addr, error) {
	if addr, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{addr}, nil
	}
	ipNetwork := "ip"
	switch network {
	case "tcp4":
		ipNetwork = "ip4"
	case "tcp6":
		ipNetwork = "ip6"
	}
	addrs, err := resolver.LookupNetIP(ctx, ipNetwork, host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return addrs, nil
}
