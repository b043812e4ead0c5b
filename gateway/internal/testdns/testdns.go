// Package testdns is an authoritative DNS server on 127.0.0.1 for tests
// of server discovery: tests add records in zone file syntax and point a
// Go resolver at it.
package testdns

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers DNS queries over UDP and TCP on loopback from the records
// added to it: NXDOMAIN for unknown names, an empty answer for known names
// without records of the requested type.
type Server struct {
	udpAddr string
	tcpAddr string

	mu       sync.Mutex // guards records and servfail
	records  map[string][]dns.RR
	servfail map[string]bool
}

// Start starts a server that stops when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{records: map[string][]dns.RR{}, servfail: map[string]bool{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen DNS on udp: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen DNS on tcp: %v", err)
	}
	s.udpAddr = pc.LocalAddr().String()
	s.tcpAddr = ln.Addr().String()

	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	t.Cleanup(func() {
		_ = udp.Shutdown()
		_ = tcp.Shutdown()
	})
	return s
}

// Add adds a record in zone file syntax, such as
// "_matrix-fed._tcp.example.test. 60 IN SRV 10 5 8448 host.example.test.".
func (s *Server) Add(t testing.TB, record string) {
	t.Helper()
	rr, err := dns.NewRR(record)
	if err != nil {
		t.Fatalf("parse DNS record %q: %v", record, err)
	}
	name := strings.ToLower(rr.Header().Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[name] = append(s.records[name], rr)
}

// Fail makes every query for name return SERVFAIL.
func (s *Server) Fail(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.servfail[dns.Fqdn(strings.ToLower(name))] = true
}

// ServeDNS answers one query from the records.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.Authoritative = true
	s.mu.Lock()
	for _, q := range req.Question {
		name := strings.ToLower(q.Name)
		if s.servfail[name] {
			resp.Rcode = dns.RcodeServerFailure
			continue
		}
		records, ok := s.records[name]
		if !ok {
			resp.Rcode = dns.RcodeNameError
			continue
		}
		for _, rr := range records {
			if rr.Header().Rrtype == q.Qtype {
				resp.Answer = append(resp.Answer, rr)
			}
		}
	}
	s.mu.Unlock()
	_ = w.WriteMsg(resp)
}

// Resolver returns a Go resolver that sends every query to s.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			if strings.HasPrefix(network, "tcp") {
				return d.DialContext(ctx, "tcp", s.tcpAddr)
			}
			return d.DialContext(ctx, "udp", s.udpAddr)
		},
	}
}
