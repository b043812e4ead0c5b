package certs

import (
	"crypto/x509"
	"net"
	"strings"

	"github.com/bordergate/bordergate/gateway/servername"
)

// PeerNames returns the identities a certificate can prove: its DNS subject
// alternative names, then its IP address SANs in string form. The subject
// common name is not included, as [MatchesServerName] ignores it.
func PeerNames(cert *x509.Certificate) []string {
	if cert == nil {
		return nil
	}
	names := make([]string, 0, len(cert.DNSNames)+len(cert.IPAddresses))
	names = append(names, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return names
}

// MatchesServerName reports whether cert proves the identity of the Matrix
// server serverName.
//
// Only the host part of the server name counts: the port is removed, and so
// are the brackets of an IPv6 literal. An IP literal must equal one of the
// certificate's IP address SANs. A DNS name must equal one of its DNS SANs,
// compared case-insensitively, where a SAN may start with a wildcard label
// "*." that matches exactly one label (RFC 6125 section 6.4.3). The subject
// common name is ignored. A server name that [servername.Validate] rejects
// returns false.
func MatchesServerName(cert *x509.Certificate, serverName string) bool {
	if cert == nil {
		return false
	}
	host, _, err := servername.Split(serverName)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		for _, certIP := range cert.IPAddresses {
			if certIP.Equal(ip) {
				return true
			}
		}
		return false
	}
	for _, pattern := range cert.DNSNames {
		if matchDNSName(pattern, host) {
			return true
		}
	}
	return false
}

// matchDNSName compares a DNS SAN with a host name. Both are compared without
// a single trailing dot, so "example.org." matches "example.org".
func matchDNSName(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if pattern == "" || host == "" || strings.Contains(host, "*") {
		return false
	}

	suffix, wildcard := strings.CutPrefix(pattern, "*.")
	if !wildcard {
		return pattern == host
	}
	if suffix == "" || strings.Contains(suffix, "*") {
		return false
	}
	label, rest, found := strings.Cut(host, ".")
	return found && label != "" && rest == suffix
}
