package network

import (
	"fmt"
	"net/netip"
	"strings"
)

// ParseHost parses --add-host's NAME:IP (or NAME=IP), as Docker does: IP may be IPv6,
// and "host-gateway" stands for the address at which the guest reaches the host.
func ParseHost(spec string) (name string, ip netip.Addr, err error) {
	name, addr, ok := strings.Cut(spec, "=")
	if !ok {
		name, addr, ok = strings.Cut(spec, ":")
	}
	if !ok || name == "" || addr == "" {
		return "", netip.Addr{}, fmt.Errorf("--add-host %s: give NAME:IP, e.g. db:10.0.2.2", spec)
	}
	if !ValidHostname(name) {
		return "", netip.Addr{}, fmt.Errorf("--add-host %s: %q is not a host name (letters, digits, '-' and '.')", spec, name)
	}
	if addr == "host-gateway" {
		return name, Gateway, nil
	}
	ip, err = netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"))
	if err != nil || ip.Zone() != "" {
		return "", netip.Addr{}, fmt.Errorf("--add-host %s: %q is not an IP address (or host-gateway)", spec, addr)
	}
	return name, ip, nil
}

// ValidHostname reports whether name can be a host name: 1 to 64 letters, digits, '-'
// and '.', in labels that neither start nor end with '-' (RFC 1123; 64 is what uname has
// room for).
func ValidHostname(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
