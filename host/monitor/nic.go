package monitor

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

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
// on one side; on the other, the guest's user-mode network (host/network) or a tap device.
type nic struct {
	tx, rx    abi.NetRing // the guest's transmit ring (we consume) and receive ring (we fill)
	numbering network.Numbering
	mtu       uint16            // the link's
	link      *channel.Endpoint // the user-mode network's side of the link
	net       *network.Network
	tap       *os.File // or a tap's
	kicks     chan struct{}
	kickFD    *os.File // the eventfd KVM counts PortNetKick writes on (nil: they exit)
	cancel    context.CancelFunc
	done      chan struct{}
	counts    nicCounts
	stderr    io.Writer
	stopped   sync.Once // the guest corrupted a ring
	poll      bool      // the host has a CPU to spare for polling the transmit ring (abi.NetRing.Poll)
}

// nicCounts are what the NIC did, for pith run --timing: under load, frames should
// far outnumber notifications.
type nicCounts struct {
	sent, received atomic.Uint64 // frames from the guest, and to it
	sentBytes      atomic.Uint64 // ... and their bytes
	receivedBytes  atomic.Uint64
	dropped        atomic.Uint64 // frames for the guest dropped while its receive ring was full
	kicks          atomic.Uint64 // notifications from the guest through the ioeventfd
	kickExits      atomic.Uint64 // ... and through an exit (no ioeventfd)
	interrupts     atomic.Uint64 // interrupts injected to wake the guest's receiver
	txFull         atomic.Uint64 // drains that found the guest's transmit ring full: it may have waited
}

// NICStats is what the guest's NIC did in a run.
type NICStats struct {
	FramesSent, FramesReceived, Dropped uint64 // as the guest sees it: sent by the guest
	Kicks, KickExits, Interrupts        uint64
	TransmitFull                        uint64
	BytesSent, BytesReceived            uint64
}

func (n *nic) stats() NICStats {
	c := &n.counts
	return NICStats{c.sent.Load(), c.received.Load(), c.dropped.Load(), c.kicks.Load(), c.kickExits.Load(), c.interrupts.Load(), c.txFull.Load(),
		c.sentBytes.Load(), c.receivedBytes.Load()}
}

// hostMAC is the user-mode network's Ethernet address on the guest's link.
const hostMAC = "\x52\x54\x00\x00\x00\x02"

// newNIC starts the guest's user-mode network: with ports to publish, before the guest
// boots, so that a port the host cannot give fails pith run at once; otherwise when the
// guest attaches its NIC (at its first socket).
func newNIC(publish []network.Port) (*nic, error) {
	n := &nic{kicks: make(chan struct{}, 1), done: make(chan struct{}), numbering: network.UserNumbering, mtu: abi.NetMTU}
	n.link = channel.New(abi.NetSlots, abi.NetMTU, hostMAC)
	var err error
	if n.net, err = network.New(ethernet.New(n.link), publish); err != nil {
		n.link.Close()
		return nil, err
	}
	return n, nil
}

// newTapNIC opens the tap device name for the guest's NIC, before the guest boots: a
// missing tap or one pith may not use fails pith run at once.
func newTapNIC(name string, numbering network.Numbering) (*nic, error) {
	tap, mtu, err := network.OpenTap(name)
	if err != nil {
		return nil, err
	}
	return &nic{kicks: make(chan struct{}, 1), done: make(chan struct{}), numbering: numbering, tap: tap, mtu: uint16(min(mtu, abi.NetMTU))}, nil
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
	cfg := (*abi.NetConfig)(unsafe.Pointer(&pages[0][abi.NetConfigOffset]))
	*cfg = abi.NetConfig{MAC: n.numbering.MAC(), PrefixLen: uint8(n.numbering.Address.Bits()), Addr: n.numbering.Address.Addr().As4(), MTU: n.mtu}
	if n.numbering.Gateway.IsValid() {
		cfg.Gateway = n.numbering.Gateway.As4()
	}
	n.tx, n.rx = abi.NetRings(func(i int) []byte { return pages[i] })
	n.poll = runtime.NumCPU() > 1
	n.stderr = m.cfg.Stderr
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
	if n.tap != nil {
		go n.receiveTap(m)
	} else {
		go n.receive(ctx, m)
	}
	m.nicAttached = true
	atomic.StoreUint64(&m.info.NetReadyFD, r.Handle+1)
	return 0
}

// transmit carries the guest's frames to the network, waiting for a kick when the ring
// is empty.
func (n *nic) transmit(ctx context.Context) {
	defer close(n.done)
	for {
		// A ring's worth at a time, then a look at ctx: a guest can refill the ring (or
		// wind its Head back) as fast as it is drained, and must not keep this goroutine.
		if n.tx.Full() {
			n.counts.txFull.Add(1)
		}
		for range abi.NetSlots {
			// Popped straight into the packet's own view, of the frame's size: netstack
			// keeps it, no copy.
			var v *buffer.View
			k, ok, err := n.tx.PopInto(func(size int) []byte { v = buffer.NewViewSize(size); return v.AsSlice() })
			if err != nil {
				n.corrupt("transmit", err)
				return
			}
			if !ok {
				break
			}
			n.counts.sent.Add(1)
			n.counts.sentBytes.Add(uint64(k))
			if n.tap != nil {
				n.tap.Write(v.AsSlice()) // a frame the tap refuses is lost, as on a wire
				v.Release()
				continue
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
			n.link.InjectInbound(0, pkt) // the Ethernet endpoint reads the type from the frame
			pkt.DecRef()
		}
		if ctx.Err() != nil {
			return
		}
		if n.poll && n.tx.Poll(abi.NetPollWindow) {
			continue
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
			size := uint64(pkt.Size())
			ok, notify, err := n.rx.Push(pkt.AsSlices()...)
			pkt.DecRef()
			if err != nil {
				n.corrupt("receive", err)
				return
			}
			if ok {
				n.counts.received.Add(1)
				n.counts.receivedBytes.Add(size)
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

// receiveTap puts the frames the tap receives in the guest's receive ring, waking its
// NIC thread once for all the frames at hand. It ends when close closes the tap.
func (n *nic) receiveTap(m *machine) {
	raw, err := n.tap.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, abi.NetFrameMax)
	raw.Read(func(fd uintptr) bool {
		wake := false
		for {
			k, err := unix.Read(int(fd), buf)
			if err != nil {
				break // EAGAIN: wait for more; anything else: the tap is gone
			}
			ok, notify, err := n.rx.Push(buf[:k])
			if err != nil {
				n.corrupt("receive", err)
				return true
			}
			if ok {
				n.counts.received.Add(1)
				n.counts.receivedBytes.Add(uint64(k))
			} else {
				n.counts.dropped.Add(1)
			}
			wake = wake || notify
		}
		if wake {
			n.counts.interrupts.Add(1)
			atomic.StoreUint64(&m.info.NetRx, 1)
			m.vm.SignalMSI(0, abi.VectorWakeup)
		}
		return false
	})
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

// corrupt stops the NIC, once, for a ring whose counters the guest corrupted: nothing
// it puts there can be trusted to mean frames any more. The guest runs on without a
// network; the monitor says why.
func (n *nic) corrupt(ring string, err error) {
	n.stopped.Do(func() {
		var c abi.NetRingCorruptError
		errors.As(err, &c)
		fmt.Fprintf(n.stderr, "pith: the guest's NIC wrote a corrupt %s ring (tail %d head %d): its network is stopped\n", ring, c.Tail, c.Head)
		n.cancel()
	})
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
	if n.tap != nil {
		n.tap.Close()
		return
	}
	n.net.Close()
	n.link.Close()
}
