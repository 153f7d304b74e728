package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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
	tx, rx  abi.NetRing // the guest's transmit ring (we consume) and receive ring (we fill)
	link    *channel.Endpoint
	net     *network.Network
	kicks   chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	dropped atomic.Uint64 // frames for the guest dropped while its receive ring was full
	stderr  io.Writer
	stopped sync.Once // the guest corrupted a ring
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
	n.stderr = m.cfg.Stderr
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
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
		// A ring's worth at a time, then a look at ctx: a guest can refill the ring (or
		// wind its Head back) as fast as it is drained, and must not keep this goroutine.
		for range abi.NetSlots {
			k, ok, err := n.tx.Pop(buf)
			if err != nil {
				n.corrupt("transmit", err)
				return
			}
			if !ok {
				break
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(buf[:k])})
			n.link.InjectInbound(0, pkt) // the Ethernet endpoint reads the type from the frame
			pkt.DecRef()
		}
		if ctx.Err() != nil {
			return
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
// when it sleeps.
func (n *nic) receive(ctx context.Context, m *machine) {
	for {
		pkt := n.link.ReadContext(ctx)
		if pkt == nil {
			return
		}
		v := pkt.ToView()
		ok, notify, err := n.rx.Push(v.AsSlice())
		v.Release()
		pkt.DecRef()
		if err != nil {
			n.corrupt("receive", err)
			return
		}
		if !ok {
			n.dropped.Add(1) // TCP sends it again; a full ring means the guest is busy anyway
		}
		if notify {
			atomic.StoreUint64(&m.info.NetRx, 1)
			m.vm.SignalMSI(0, abi.VectorWakeup)
		}
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

// kick wakes transmit (PortNetKick).
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
	n.net.Close()
	n.link.Close()
}
