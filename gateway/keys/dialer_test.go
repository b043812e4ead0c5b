package keys

import (
	"context"
	"errors"
	"github.com/bordergate/bordergate/gateway/internal/testdns"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestDialerCheckAddress(t *testing.T) {
	tests := []struct {
		addr      string
		forbidden bool
	}{
		{"127.0.0.1", true},
		{"127.8.9.10", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"192.168.1.1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"169.254.169.254", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"100.64.0.1", true},
		{"100.127.255.255", true},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"::", true},
		{"224.0.0.1", true},
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"ff0e::1", true},
		{"255.255.255.255", true},
		{"fec0::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.1.1", true},
		{"::ffff:100.64.0.1", true},
		{"::ffff:0.0.0.0", true},
		// Documentation ranges stand in for public addresses: only the
		// check runs, nothing is dialled.
		{"192.0.2.1", false},
		{"198.51.100.7", false},
		{"2001:db8::1", false},
		{"::ffff:192.0.2.1", false},
		{"172.32.0.1", false},
		{"100.128.0.1", false},
	}
	var d Dialer
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := d.CheckAddress(netip.MustParseAddr(tt.addr))
			if !tt.forbidden {
				if err != nil {
					t.Fatalf("CheckAddress(%s) = %v, want nil", tt.addr, err)
				}
				return
			}
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Fatalf("CheckAddress(%s) = %v, want ErrForbiddenAddress", tt.addr, err)
			}
			if !strings.Contains(err.Error(), tt.addr) {
				t.Errorf("error %q does not name %s", err, tt.addr)
			}
		})
	}
}

func TestDialerCheckAddressAllowed(t *testing.T) {
	tests := []struct {
		name    string
		dialer  Dialer
		addr    string
		allowed bool
	}{
		{"allow private", Dialer{AllowPrivate: true}, "10.0.0.1", true},
		{"allowed network", Dialer{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "10.9.8.7", true},
		{"allowed network matches mapped form", Dialer{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "::ffff:10.9.8.7", true},
		{"other network still rejected", Dialer{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "192.168.0.1", false},
		{"allowed IPv6 network", Dialer{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("fd00::/8")}}, "fd00::5", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.dialer.CheckAddress(netip.MustParseAddr(tt.addr))
			if tt.allowed && err != nil {
				t.Errorf("CheckAddress(%s) = %v, want nil", tt.addr, err)
			}
			if !tt.allowed && !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("CheckAddress(%s) = %v, want ErrForbiddenAddress", tt.addr, err)
			}
		})
	}
}

// listenLoopback accepts and closes connections on 127.0.0.1 until the test
// ends.
func listenLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

func TestDialerDialLoopback(t *testing.T) {
	addr := listenLoopback(t)
	_, port, _ := net.SplitHostPort(addr)
	dnsSrv := testdns.Start(t)
	dnsSrv.Add(t, "loopback.test. 60 IN A 127.0.0.1")
	resolver := dnsSrv.Resolver()

	tests := []struct {
		name    string
		dialer  Dialer
		address string
		allowed bool
	}{
		{"IP rejected by default", Dialer{}, addr, false},
		{"name rejected by default", Dialer{Resolver: resolver}, net.JoinHostPort("loopback.test", port), false},
		{"IPv4-mapped rejected by default", Dialer{}, net.JoinHostPort("::ffff:127.0.0.1", port), false},
		{"IP accepted with AllowPrivate", Dialer{AllowPrivate: true}, addr, true},
		{"name accepted with AllowPrivate", Dialer{AllowPrivate: true, Resolver: resolver}, net.JoinHostPort("loopback.test", port), true},
		{"IP accepted in allowed network", Dialer{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, addr, true},
		{"IP rejected outside allowed network", Dialer{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, addr, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := tt.dialer.DialContext(ctx, "tcp", tt.address)
			if tt.allowed {
				if err != nil {
					t.Fatalf("DialContext(%s): %v", tt.address, err)
				}
				conn.Close()
				return
			}
			if err == nil {
				conn.Close()
				t.Fatalf("DialContext(%s) connected, want ErrForbiddenAddress", tt.address)
			}
			if !errors.Is(err, ErrForbiddenAddress) {
				t.Errorf("DialContext(%s) = %v, want ErrForbiddenAddress", tt.address, err)
			}
			if !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q does not name 127.0.0.1", err)
			}
		})
	}
}

func TestDialerControlRejects(t *testing.T) {
	var d Dialer
	if err := d.control("tcp4", "127.0.0.1:8448", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("control(127.0.0.1:8448) = %v, want ErrForbiddenAddress", err)
	}
	if err := d.control("tcp4", "not an address", nil); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("control(unparsable) = %v, want ErrForbiddenAddress", err)
	}
	if err := d.control("tcp4", "192.0.2.1:8448", nil); err != nil {
		t.Errorf("control(192.0.2.1:8448) = %v, want nil", err)
	}
}

func TestDialOperatorSkipsCheck(t *testing.T) {
	addr := listenLoopback(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := dialOperator(ctx, net.DefaultResolver, time.Second, "tcp", addr)
	if err != nil {
		t.Fatalf("dialOperator(%s): %v", addr, err)
	}
	conn.Close()
}

func TestDialerUnknownName(t *testing.T) {
	dnsSrv := testdns.Start(t)
	d := Dialer{AllowPrivate: true, Resolver: dnsSrv.Resolver()}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := d.DialContext(ctx, "tcp", "missing.test:8448")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
		t.Errorf("DialContext(missing.test) = %v, want a not-found DNS error", err)
	}
}
