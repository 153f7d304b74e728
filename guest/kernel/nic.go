package kernel

import (
	"context"
	"os"
	"runtime"
	"syscall"
	"time"
	"unsafe"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/pithvm/pith/abi"
)

// The guest's NIC: Ethernet frames to and from the monitor's user-mode network through
// two rings in tier-1 memory (abi.NetRing). A goroutine moves what netstack sends into
// the transmit ring, kicking the monitor only when it sleeps; another drains the
// receive ring and, when it is empty, waits in tier 1's netpoller on a readiness
// descriptor that tier 0 makes readable when the monitor has put frames there.

const guestNIC tcpip.NICID = 2

// attachNIC gives s a NIC to the monitor's network, if the guest has one, numbered as
// the monitor says (abi.NetConfig), and returns the routes through it: the link's subnet
// and, with a gateway, the rest of IPv4.
func attachNIC(s *stack.Stack) ([]tcpip.Route, bool) {
	region, err := syscall.Mmap(-1, 0, abi.NetRegionSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS)
	if err != nil {
		return nil, false
	}
	for i := 0; i < len(region); i += 4096 {
		region[i] = 0 // backed now: the monitor reaches these pages through the page tables
	}
	ready, _, e := syscall.RawSyscall(abi.SysPithReadyFD, 0, 0, 0)
	if e != 0 {
		syscall.Munmap(region)
		return nil, false
	}
	r := abi.FileRequest{Op: abi.FileNetAttach, Buf: uint64(uintptr(unsafe.Pointer(&region[0]))), Len: abi.NetRegionSize, Handle: uint64(ready)}
	if fileRequest(&r) != 0 { // --net none
		syscall.RawSyscall(syscall.SYS_CLOSE, ready, 0, 0)
		syscall.Munmap(region)
		return nil, false
	}
	cfg := *(*abi.NetConfig)(unsafe.Pointer(&region[abi.NetConfigOffset]))
	tx, rx := abi.NetRings(func(i int) []byte { return region[i*4096 : (i+1)*4096] })
	mtu := uint32(min(max(cfg.MTU, 576), abi.NetMTU)) // a monitor's MTU out of range is taken as far as it is safe
	link := channel.New(abi.NetSlots, mtu, tcpip.LinkAddress(cfg.MAC[:]))
	if err := s.CreateNIC(guestNIC, ethernet.New(link)); err != nil {
		return nil, false
	}
	own := tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(cfg.Addr), PrefixLen: int(cfg.PrefixLen)}
	s.AddProtocolAddress(guestNIC, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: own}, stack.AddressProperties{})
	go nicTransmit(link, tx)
	go nicReceive(link, rx, ready)
	routes := []tcpip.Route{{Destination: own.Subnet(), NIC: guestNIC}}
	if cfg.Gateway != [4]byte{} {
		routes = append(routes, tcpip.Route{Destination: header.IPv4EmptySubnet, Gateway: tcpip.AddrFrom4(cfg.Gateway), NIC: guestNIC})
	}
	return routes, true
}

// nicTransmit moves netstack's frames into the transmit ring, kicking the monitor once
// for all the frames at hand, not per frame.
func nicTransmit(link *channel.Endpoint, tx abi.NetRing) {
	for {
		pkt := link.ReadContext(context.Background())
		if pkt == nil {
			return
		}
		kick := false
		for pkt != nil {
			frame := pkt.AsSlices() // pushed as they are: no copy but the ring's
			for {
				ok, notify, err := tx.Push(frame...)
				if err != nil {
					pkt.DecRef()
					return // corrupt counters: no frame can move through this ring again
				}
				kick = kick || notify
				if ok {
					break
				}
				if kick { // full with the monitor asleep: wake it before waiting for room
					syscall.RawSyscall(abi.SysPithNetKick, 0, 0, 0)
					kick = false
				}
				time.Sleep(50 * time.Microsecond) // full: the monitor is draining it
			}
			pkt.DecRef()
			pkt = link.Read()
		}
		if kick {
			syscall.RawSyscall(abi.SysPithNetKick, 0, 0, 0)
		}
	}
}

// nicReceive hands netstack the frames of the receive ring, waiting in tier 1's netpoller
// when it is empty: a goroutine parked there holds no thread and no P, where one blocked
// in a call of its own kept a P from netstack until the runtime's sysmon took it back.
// A notification is noticed when a thread of tier 1's next polls (one idle in the
// netpoller at once; otherwise at its scheduler's next look, or sysmon's, within 10 ms).
func nicReceive(link *channel.Endpoint, rx abi.NetRing, ready uintptr) {
	poll := runtime.NumCPU() > 1 // a vCPU to spare (abi.NetRing.Poll)
	// Taking the notification is a store into the readiness table, not a call into tier 0.
	take, _ := readyTable(ready)
	if take == nil {
		take = func(uint32) { syscall.RawSyscall(abi.SysPithSetReady, ready, 0, 0) }
	}
	drain := func(uintptr) bool {
		for {
			// Taken before the ring is looked at: a notification after it is an edge
			// that wakes this goroutine again.
			take(0)
			for {
				// Popped straight into the packet's own view, of the frame's size:
				// netstack keeps it, no copy.
				var v *buffer.View
				_, ok, err := rx.PopInto(func(size int) []byte { v = buffer.NewViewSize(size); return v.AsSlice() })
				if err != nil {
					return true // corrupt counters: no frame can move through this ring again
				}
				if !ok {
					break
				}
				pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
				link.InjectInbound(header.EthernetProtocolAll, pkt)
				pkt.DecRef()
			}
			if poll && rx.Poll(abi.NetPollWindow) {
				continue
			}
			if rx.Sleep() {
				return false // wait for the monitor's notification
			}
		}
	}
	// Never closed: tier 0 sets the descriptor at every notification (BootInfo.NetReadyFD),
	// so its number must not go to another object.
	nicFile = os.NewFile(ready, "nic")
	if rc, err := nicFile.SyscallConn(); err == nil && rc.Read(drain) == nil {
		return
	}
	// The netpoller could not watch it (no room in tier 0's epoll watches): wait on this
	// goroutine's own thread instead.
	runtime.LockOSThread()
	ep, ok := readyEpoll(ready)
	if !ok {
		return
	}
	var events [1]syscall.EpollEvent
	for !drain(ready) {
		syscall.Syscall6(syscall.SYS_EPOLL_PWAIT, ep, uintptr(unsafe.Pointer(&events[0])), 1, ^uintptr(0), 0, 0)
	}
}

// nicFile holds the NIC's readiness descriptor for tier 1's netpoller.
var nicFile *os.File
