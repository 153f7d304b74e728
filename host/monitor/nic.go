package monitor

import (
	"context"
	"encoding/binary"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
	"github.com/pithvm/pith/host/network"
)

// nic is the monitor's end of the guest's NIC: the rings in tier-1 memory (abi.NetRing)
// on one side, the guest's user-mode network (host/network) on the other.
type nic struct {
	tx, rx abi.NetRing // the guest's transmit ring (we consume) and receive ring (we fill)
	link   *channel.Endpoint
	net    *network.Network
	kicks  chan struct{}
	kickFD *os.File // the eventfd KVM counts PortNetKick writes on (nil: they exit)
	cancel context.CancelFunc
	done   chan struct{}
	counts nicCounts
}

// nicCounts are what the NIC did, for pith run --timing: under load, frames should
// far outnumber notifications.
type nicCounts struct {
	sent, received atomic.Uint64 // frames from the guest, and to it
	dropped        atomic.Uint64 // frames for the guest dropped while its receive ring was full
	kicks          atomic.Uint64 // notifications from the guest through the ioeventfd
	kickExits      atomic.Uint64 // ... and through an exit (no ioeventfd)
	interrupts     atomic.Uint64 // interrupts injected to wake the guest's receiver
}

// NICStats is what the guest's NIC did in a run.
type NICStats struct {
	FramesSent, FramesReceived, Dropped uint64 // as the guest sees it: sent by the guest
	Kicks, KickExits, Interrupts        uint64
}

func (n *nic) stats() NICStats {
	c := &n.counts
	return NICStats{c.sent.Load(), c.received.Load(), c.dropped.Load(), c.kicks.Load(), c.kickExits.Load(), c.interrupts.Load()}
}

// The host's and the guest's Ethernet addresses on the guest's link.
const (
	hostMAC  = "\x52\x54\x00\x00\x00\x02"
	guestMAC = "\x52\x54\x00\x00\x00\x0f"
)

// newNIC starts the guest's network: with ports to publish, before the guest boots, so
// that a port the host cannot give fails pith run at once; otherwise when the guest
// attaches its NIC (at its first socket).
func newNIC(publish []network.Port) (*nic, error) {
	n := &nic{kicks: make(chan struct{}, 1), done: make(chan struct{})}
	n.link = channel.New(abi.NetSlots, abi.NetMTU, hostMAC)
	var err error
	if n.net, err = network.New(ethernet.New(n.link), publish); err != nil {
		n.link.Close()
		return nil, err
	}
	return n, nil
}

// attachNIC serves FileNetAttach: it checks the rings tier 1 offers, reaches them page
// by page through the guest's page tables, and starts moving frames.
func (m *machine) attachNIC(mmu memory.Virtual, r *abi.FileRequest) int64 {
	if m.cfg.Network == "none" {
		return -int64(unix.ENODEV)
	}
	if m.nicAttached {
		return -int64(unix.EBUSY)
	}
	if r.Buf%4096 != 0 || r.Len != abi.NetRegionSize || r.Handle >= 1<<20 {
		return -int64(unix.EINVAL)
	}
	pages := make([][]byte, abi.NetRegionSize/4096)
	for i := range pages {
		gpa, perm, err := mmu.Translate(r.Buf + uint64(i)*4096)
		if err != nil || perm&memory.PTEWritable == 0 {
			return -int64(unix.EFAULT)
		}
		if pages[i], err = m.guest.Slice(gpa&^4095, 4096); err != nil {
			return -int64(unix.EFAULT)
		}
	}
	n := m.nic.Load()
	if n == nil {
		var err error
		if n, err = newNIC(nil); err != nil {
			return -int64(unix.ENODEV)
		}
		m.nic.Store(n)
	}
	n.tx, n.rx = abi.NetRings(func(i int) []byte { return pages[i] })
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err == nil {
		if m.vm.IOEventFD(abi.PortNetKick, fd) == nil {
			n.kickFD = os.NewFile(uintptr(fd), "pith-net-kick")
			go n.watchKicks()
		} else {
			unix.Close(fd) // the kicks exit instead: slower, as correct
		}
	}
	go n.transmit(ctx)
	go n.receive(ctx, m)
	m.nicAttached = true
	atomic.StoreUint64(&m.info.NetReadyFD, r.Handle+1)
	return 0
}

// transmit carries the guest's frames to the network, waiting for a kick when the ring
// is empty.
func (n *nic) transmit(ctx context.Context) {
	defer close(n.done)
	buf := make([]byte, abi.NetSlotSize)
	for {
		for {
			k, ok := n.tx.Pop(buf)
			if !ok {
				break
			}
			n.counts.sent.Add(1)
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:k])})
			n.link.InjectInbound(0, pkt) // the Ethernet endpoint reads the type from the frame
			pkt.DecRef()
		}
		if !n.tx.Sleep() {
			continue
		}
		select {
		case <-n.kicks:
		case <-ctx.Done():
			return
		}
	}
}

// receive puts the network's frames in the guest's receive ring, waking its NIC thread
// when it sleeps: once for all the frames at hand, not per frame.
func (n *nic) receive(ctx context.Context, m *machine) {
	for {
		pkt := n.link.ReadContext(ctx)
		if pkt == nil {
			return
		}
		wake := false
		for pkt != nil {
			v := pkt.ToView()
			ok, notify := n.rx.Push(v.AsSlice())
			v.Release()
			pkt.DecRef()
			if ok {
				n.counts.received.Add(1)
			} else {
				n.counts.dropped.Add(1) // TCP sends it again; a full ring means the guest is busy anyway
			}
			wake = wake || notify
			pkt = n.link.Read()
		}
		if wake {
			n.counts.interrupts.Add(1)
			atomic.StoreUint64(&m.info.NetRx, 1)
			m.vm.SignalMSI(0, abi.VectorWakeup)
		}
	}
}

// watchKicks turns the ioeventfd's counts into kicks. It ends when close closes the
// eventfd.
func (n *nic) watchKicks() {
	var count [8]byte
	for {
		if _, err := n.kickFD.Read(count[:]); err != nil {
			return
		}
		n.counts.kicks.Add(binary.LittleEndian.Uint64(count[:]))
		n.kick()
	}
}

// kickExit is a PortNetKick that exited to the monitor (no ioeventfd).
func (n *nic) kickExit() {
	n.counts.kickExits.Add(1)
	n.kick()
}

// kick wakes transmit.
func (n *nic) kick() {
	select {
	case n.kicks <- struct{}{}:
	default:
	}
}

func (n *nic) close() {
	if n.cancel != nil {
		n.cancel()
		<-n.done
	}
	if n.kickFD != nil {
		n.kickFD.Close()
	}
	n.net.Close()
	n.link.Close()
}
