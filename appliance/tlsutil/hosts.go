package tlsutil

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// DefaultHosts returns the names the appliance is reached by: its host
// name (when it has one) and the global unicast addresses of its
// interfaces, which include private (RFC 1918, ULA) ones but not loopback
// or link-local addresses. Interfaces that cannot be listed are skipped.
func DefaultHosts() []string {
	var hosts []string
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, strings.ToLower(h))
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return hosts
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || !ipn.IP.IsGlobalUnicast() {
			continue
		}
		hosts = append(hosts, ipn.IP.String())
	}
	return hosts
}

// normalizeHosts trims, lowercases and deduplicates hosts, writes IP
// addresses in canonical form (without brackets or zone) and rejects
// anything that is neither an address nor a DNS name.
func normalizeHosts(hosts []string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		h = strings.TrimSuffix(h, ".") // "bes.example." names bes.example
		if h == "" {
			continue
		}
		if ip, err := netip.ParseAddr(h); err == nil {
			h = ip.WithZone("").Unmap().String()
		} else if !validDNSName(h) {
			return nil, fmt.Errorf("tlsutil: %q: %w", h, ErrBadHost)
		}
		if !seen[h] {
			seen[h] = true
			out = append(out, h)
		}
	}
	return out, nil
}

// validDNSName accepts lowercase letters, digits, '-' and '_' in
// dot-separated labels of 1..63 bytes, 253 bytes in all. Wildcards are not
// for an appliance's own certificate.
func validDNSName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
