package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// tapName is the tap device the shim makes in a pod's network namespace for the guest.
const tapName = "pith0"

// networkFile records, in the bundle, the network namespace the shim changed, so that
// a cleanup after the shim died can undo it.
const networkFile = "pith.network"

// podNetwork is a unikernel's place in a network namespace that CNI set up for a pod
// (or any namespace holding a link with an IPv4 address): the guest takes over the
// link's address, and every frame the link receives goes to the guest's tap and every
// frame the guest sends leaves through the link (tc mirred redirects both ways, as Kata
// and urunc do). The namespace's own stack sees none of them.
type podNetwork struct {
	Netns   string       `json:"netns"`
	Link    string       `json:"link"`             // the namespace's link, CNI's veth
	Address netip.Prefix `json:"address,omitzero"` // its IPv4 address, the guest's now
	Gateway netip.Addr   `json:"gateway,omitzero"` // the namespace's default route
	MAC     string       `json:"mac,omitempty"`    // the link's, the guest's now: the pod's neighbours know it
	Tap     bool         `json:"tap,omitempty"`    // the tap was made
	// OwnIngress: the shim made the link's ingress qdisc (else another's filters are on it).
	OwnIngress bool `json:"own_ingress,omitempty"`
}

// inNetns runs fn on a thread in the network namespace at path. The thread is never
// given back to Go's scheduler: it ends with the goroutine.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := netns.GetFromPath(path)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		defer ns.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("entering network namespace %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// setUpPodNetwork gives the guest the network namespace at path: a tap joined to the
// namespace's link. A namespace with no such link (only its loopback) gets no tap: the
// guest has no network, as a container in it would have its loopback only.
func setUpPodNetwork(path, bundle string) (*podNetwork, error) {
	n := &podNetwork{Netns: path}
	err := inNetns(path, func() error {
		if _, err := netlink.LinkByName(tapName); err == nil {
			return errTaken
		}
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		var link netlink.Link
		for _, l := range links {
			if l.Attrs().Flags&net.FlagLoopback != 0 || l.Attrs().Name == tapName {
				continue
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_V4)
			if err != nil || len(addrs) == 0 {
				continue
			}
			a, _ := netip.AddrFromSlice(addrs[0].IP.To4())
			bits, _ := addrs[0].Mask.Size()
			link, n.Link, n.Address, n.MAC = l, l.Attrs().Name, netip.PrefixFrom(a, bits), l.Attrs().HardwareAddr.String()
			break
		}
		if link == nil {
			return nil
		}
		routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		for _, r := range routes {
			if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
				n.Gateway, _ = netip.AddrFromSlice(r.Gw.To4())
			}
		}
		if err := n.record(bundle); err != nil {
			return err
		}
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: tapName, MTU: link.Attrs().MTU},
			Mode: netlink.TUNTAP_MODE_TAP, Flags: netlink.TUNTAP_NO_PI | netlink.TUNTAP_ONE_QUEUE}
		if err := netlink.LinkAdd(tap); err != nil {
			return fmt.Errorf("making tap %s: %w", tapName, err)
		}
		n.Tap = true
		if err := n.record(bundle); err != nil {
			return err
		}
		tapLink, err := netlink.LinkByName(tapName)
		if err != nil {
			return err
		}
		// Made with 1500 whatever it was asked; the guest takes the tap's MTU, which
		// must be the link's (1450 on a VXLAN overlay) or large frames are dropped.
		if err := netlink.LinkSetMTU(tapLink, link.Attrs().MTU); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(tapLink); err != nil {
			return err
		}
		if n.OwnIngress, err = redirect(link, tapLink); err != nil {
			return fmt.Errorf("redirecting %s to %s: %w", n.Link, tapName, err)
		}
		if _, err := redirect(tapLink, link); err != nil {
			return fmt.Errorf("redirecting %s to %s: %w", tapName, n.Link, err)
		}
		return n.record(bundle)
	})
	if err == errTaken {
		return nil, err // the other unikernel's tap stays
	}
	if err != nil {
		n.remove()
		return nil, err
	}
	return n, nil
}

// errTaken refuses a second unikernel in one pod: each takes over the pod's address.
var errTaken = errors.New("the pod's network is taken by another unikernel of the pod: pith gives a pod's address to one container")

// redirect sends every frame from receives to to's transmit queue. made says whether it
// made from's ingress qdisc.
func redirect(from, to netlink.Link) (made bool, err error) {
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: from.Attrs().Index,
		Parent: netlink.HANDLE_INGRESS, Handle: netlink.MakeHandle(0xffff, 0)}}
	if err := netlink.QdiscAdd(ingress); err == nil {
		made = true
	} else if !errors.Is(err, unix.EEXIST) {
		return false, err
	}
	return made, netlink.FilterAdd(&netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: from.Attrs().Index, Parent: netlink.MakeHandle(0xffff, 0), Protocol: unix.ETH_P_ALL},
		Actions:     []netlink.Action{netlink.NewMirredAction(to.Attrs().Index)},
	})
}

func (n *podNetwork) record(bundle string) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, networkFile), b, 0o644)
}

// flags are pith run's arguments args with the pod network's: a tap with the link's
// address, route and Ethernet address, and dns as its nameservers; with no link, no
// network.
func (n *podNetwork) flags(args []string, dns []string) []string {
	var net []string
	if !n.Tap {
		net = []string{"--net", "none"}
	} else {
		net = []string{"--net", "tap:" + tapName, "--ip", n.Address.String(), "--mac-address", n.MAC}
		if n.Gateway.IsValid() {
			net = append(net, "--gateway", n.Gateway.String())
		}
		for _, d := range dns {
			net = append(net, "--dns", d)
		}
	}
	for i, a := range args {
		if a == "--" {
			return append(append(append([]string{}, args[:i]...), net...), args[i:]...)
		}
	}
	return append(args, net...)
}

// start starts the monitor in the namespace, where it opens the tap.
func (n *podNetwork) start(cmd *exec.Cmd) error {
	return inNetns(n.Netns, cmd.Start)
}

// remove undoes the set-up: the link's redirect (with its ingress queue, if the shim
// made it), then the tap, whose own redirect goes with it.
func (n *podNetwork) remove() {
	if n.Link == "" {
		return
	}
	inNetns(n.Netns, func() error {
		tap, tapErr := netlink.LinkByName(tapName)
		if l, err := netlink.LinkByName(n.Link); err == nil {
			ingress := netlink.MakeHandle(0xffff, 0)
			if n.OwnIngress {
				netlink.QdiscDel(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
					Parent: netlink.HANDLE_INGRESS, Handle: ingress}})
			} else if filters, err := netlink.FilterList(l, ingress); err == nil && tapErr == nil {
				for _, f := range filters { // only the shim's: a redirect to the tap
					if u, ok := f.(*netlink.U32); ok {
						for _, a := range u.Actions {
							if m, ok := a.(*netlink.MirredAction); ok && m.Ifindex == tap.Attrs().Index {
								netlink.FilterDel(f)
							}
						}
					}
				}
			}
		}
		if tapErr == nil && n.Tap {
			netlink.LinkDel(tap)
		}
		return nil
	})
}

// removePodNetwork undoes the set-up recorded in bundle, for a shim that died.
func removePodNetwork(bundle string) {
	b, err := os.ReadFile(filepath.Join(bundle, networkFile))
	if err != nil {
		return
	}
	var n podNetwork
	if json.Unmarshal(b, &n) == nil {
		n.remove()
	}
	os.Remove(filepath.Join(bundle, networkFile))
}
