package network

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Port is one published port: connections to HostIP:HostPort on the host go to the
// guest's GuestPort. A HostPort of 0 is one the host picks (Network.Published says which).
type Port struct {
	HostIP    netip.Addr
	HostPort  uint16
	GuestPort uint16
	Proto     string // "tcp" or "udp"
}

func (p Port) String() string {
	return fmt.Sprintf("%s:%d:%d/%s", p.HostIP, p.HostPort, p.GuestPort, p.Proto)
}

// ParsePort reads Docker's -p grammar: [IP:][HOSTPORT:]GUESTPORT[/tcp|/udp]. Without a
// host port the host picks a free one (HostPort 0), as Docker does; without an IP, every
// host address (0.0.0.0).
func ParsePort(spec string) (Port, error) {
	p := Port{HostIP: netip.IPv4Unspecified(), Proto: "tcp"}
	rest := spec
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		p.Proto = rest[i+1:]
		rest = rest[:i]
		if p.Proto != "tcp" && p.Proto != "udp" {
			return Port{}, fmt.Errorf("-p %s: the protocol is tcp or udp, not %q", spec, p.Proto)
		}
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		// An IPv6 host address is bracketed, as in [::1]:8080:80.
		if i := strings.LastIndex(rest, "]:"); strings.HasPrefix(rest, "[") && i > 0 {
			parts = append([]string{rest[1:i]}, strings.Split(rest[i+2:], ":")...)
		}
	}
	if len(parts) == 3 {
		ip, err := netip.ParseAddr(strings.Trim(parts[0], "[]"))
		if err != nil {
			return Port{}, fmt.Errorf("-p %s: %q is not an IP address", spec, parts[0])
		}
		p.HostIP = ip
		parts = parts[1:]
	}
	if len(parts) > 2 || len(parts) == 0 {
		return Port{}, fmt.Errorf("-p %s: expected [IP:][HOSTPORT:]GUESTPORT[/tcp|/udp]", spec)
	}
	port := func(s string) (uint16, error) {
		v, err := strconv.ParseUint(s, 10, 16)
		if err != nil || v == 0 {
			return 0, fmt.Errorf("-p %s: %q is not a port (1-65535)", spec, s)
		}
		return uint16(v), nil
	}
	var err error
	if p.GuestPort, err = port(parts[len(parts)-1]); err != nil {
		return Port{}, err
	}
	if len(parts) == 2 {
		if p.HostPort, err = port(parts[0]); err != nil {
			return Port{}, err
		}
	}
	return p, nil
}
