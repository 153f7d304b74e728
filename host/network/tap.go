package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"
)

// Numbering is how the guest is numbered on its link: its address and prefix, and the
// next hop of its default route (none if not valid).
type Numbering struct {
	Address netip.Prefix
	Gateway netip.Addr
	Ether   [6]byte // its Ethernet address (--mac-address); zero, one made from Address
}

// UserNumbering is the user-mode network's: 10.0.2.15/24 through 10.0.2.2.
var UserNumbering = Numbering{Address: netip.PrefixFrom(GuestIP, Subnet.Bits()), Gateway: Gateway}

// MAC is the guest's Ethernet address: locally administered, and made from its IPv4
// address, so that guests on one bridge differ and a guest keeps its address across runs
// (neighbours' ARP caches stay right).
func (n Numbering) MAC() [6]byte {
	if n.Ether != [6]byte{} {
		return n.Ether
	}
	a := n.Address.Addr().As4()
	return [6]byte{0x02, 'p', a[0], a[1], a[2], a[3]}
}

// ParseNumbering reads --ip ADDR/PREFIX and --gateway IP (which may be empty) for
// --net tap:NAME.
func ParseNumbering(ip, gateway string) (Numbering, error) {
	var n Numbering
	p, err := netip.ParsePrefix(ip)
	if err != nil || !p.Addr().Is4() || p.Bits() < 1 || p.Bits() > 30 {
		return n, fmt.Errorf("--ip %s: give the guest's IPv4 address and prefix length, as 192.168.10.2/24", ip)
	}
	n.Address = p
	if gateway != "" {
		g, err := netip.ParseAddr(gateway)
		if err != nil || !g.Is4() || !p.Masked().Contains(g) || g == p.Addr() {
			return n, fmt.Errorf("--gateway %s: give an IPv4 address on the guest's subnet %s, not its own", gateway, p.Masked())
		}
		n.Gateway = g
	}
	return n, nil
}

// ParseMAC reads --mac-address: a unicast Ethernet address, as 02:42:ac:11:00:02.
func ParseMAC(s string) ([6]byte, error) {
	var mac [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 || hw[0]&1 != 0 || [6]byte(hw) == mac {
		return mac, fmt.Errorf("--mac-address %s: give a unicast Ethernet address, as 02:42:ac:11:00:02", s)
	}
	return [6]byte(hw), nil
}

// OpenTap opens the existing tap device name for the guest's NIC, and gives its MTU:
// frames written to it come out of the device on the host (onto its bridge), and frames
// it receives are read.
// It never creates the device: that is the administrator's (or the container runtime's)
// decision, made with the right owner.
func OpenTap(name string) (*os.File, int, error) {
	if len(name) == 0 || len(name) >= unix.IFNAMSIZ {
		return nil, 0, fmt.Errorf("--net tap:%s: a device name is 1 to %d characters", name, unix.IFNAMSIZ-1)
	}
	// Asked of this network namespace (netlink), not of /sys, which shows the namespace
	// that mounted it; TUNSETIFF would make a device that does not exist.
	dev, err := net.InterfaceByName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("--net tap:%s: no such network device; create it first: ip tuntap add %s mode tap user $(id -un)", name, name)
	}
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, 0, fmt.Errorf("--net tap:%s: /dev/net/tun is missing: load the tun module (modprobe tun)", name)
		}
		return nil, 0, fmt.Errorf("--net tap:%s: /dev/net/tun: %v", name, err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, 0, fmt.Errorf("--net tap:%s: %v", name, err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		switch {
		case errors.Is(err, unix.EPERM):
			return nil, 0, fmt.Errorf("--net tap:%s: no permission: run as root, or give the tap to this user (ip tuntap add %s mode tap user $(id -un))", name, name)
		case errors.Is(err, unix.EBUSY):
			return nil, 0, fmt.Errorf("--net tap:%s: the tap is in use by another program (a VM each)", name)
		case errors.Is(err, unix.EINVAL):
			return nil, 0, fmt.Errorf("--net tap:%s: the device is not a tap (a tun, a bridge or a NIC?): give a tap, as ip tuntap add %s mode tap makes", name, name)
		}
		return nil, 0, fmt.Errorf("--net tap:%s: %v", name, err)
	}
	return os.NewFile(uintptr(fd), "tap:"+name), dev.MTU, nil
}
