package monitor

import (
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/host/monitor/boot"
)

// guestProfile is a sampling profile of where the guest's vCPUs are (Config.Profile,
// PITH_GUESTPROFILE): what no profiler inside the guest could see, tier 0 included. A
// ticker kicks each vCPU thread out of KVM_RUN; the vCPU's loop, on that exit, records
// RIP and the return addresses up its frame-pointer chain (Go's code keeps frame
// pointers: tier 1's and a Go app's). A vCPU idle in tier 0's halt is sampled there, so
// the profile is of wall time, not only of busy time. It is written when the guest ends
// as folded stacks, "outer;...;inner COUNT" a line, the input of flame-graph tools, each
// frame named "kernel:" or "app:" and the function.
type guestProfile struct {
	due    []atomic.Bool // per vCPU: kicked for a sample
	kernel boot.Symbols
	app    boot.Symbols

	mu     sync.Mutex
	stacks map[string]int
}

// profileHz is how often each vCPU is sampled: each sample is an exit, so this is a
// trade between detail and how much the profile slows what it measures.
const profileHz = 250

func newGuestProfile(m *machine) *guestProfile {
	p := &guestProfile{due: make([]atomic.Bool, len(m.cpus)), kernel: m.kernel.Symbols(), stacks: map[string]int{}}
	if f, err := os.Open(m.cfg.App); err == nil {
		p.app = boot.ReadSymbols(f)
		f.Close()
	}
	return p
}

// kick asks every vCPU for a sample, profileHz times a second, until the guest ends.
func (p *guestProfile) kick(m *machine) {
	t := time.NewTicker(time.Second / profileHz)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-m.ended:
			return
		}
		for i := range m.tids {
			if tid := m.tids[i].Load(); tid != 0 {
				p.due[i].Store(true)
				unix.Tgkill(unix.Getpid(), int(tid), unix.SIGURG)
			}
		}
	}
}

// sample records where vCPU i is, if a sample of it is due.
func (p *guestProfile) sample(m *machine, i int) {
	if !p.due[i].Swap(false) {
		return
	}
	cpu := m.cpus[i]
	r, err := cpu.Regs()
	if err != nil {
		return
	}
	s, err := cpu.Sregs()
	if err != nil {
		return
	}
	mmu := m.guest.Virtual(s.CR3)
	frames := []string{p.name(r.RIP)}
	var link [16]byte // the saved frame pointer, then the return address
	for fp := r.RBP; len(frames) < 64 && fp != 0 && fp%8 == 0; {
		if mmu.Read(fp, link[:]) != nil {
			break
		}
		next, ret := binary.LittleEndian.Uint64(link[:8]), binary.LittleEndian.Uint64(link[8:])
		if ret == 0 {
			break
		}
		frames = append(frames, p.name(ret-1)) // inside the call, not after it
		if next <= fp {
			break
		}
		fp = next
	}
	for a, b := 0, len(frames)-1; a < b; a, b = a+1, b-1 {
		frames[a], frames[b] = frames[b], frames[a]
	}
	p.mu.Lock()
	p.stacks[strings.Join(frames, ";")]++
	p.mu.Unlock()
}

// name names the function at pc for a folded stack. A Go name can hold ";", the
// format's separator (generic shapes: unique.Make[go.shape.struct { a bool; b string }]):
// it becomes ",".
func (p *guestProfile) name(pc uint64) string {
	if name, _ := p.kernel.Find(pc); name != "" {
		return "kernel:" + strings.ReplaceAll(name, ";", ",")
	}
	if name, _ := p.app.Find(pc); name != "" {
		return "app:" + strings.ReplaceAll(name, ";", ",")
	}
	return fmt.Sprintf("%#x", pc)
}

// write writes the folded stacks to path, the most sampled first.
func (p *guestProfile) write(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.stacks))
	for k := range p.stacks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return p.stacks[keys[a]] > p.stacks[keys[b]] })
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %d\n", k, p.stacks[k])
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
