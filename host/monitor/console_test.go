package monitor

import (
	"bytes"
	"testing"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/host/monitor/memory"
)

func newTestMachine(t testing.TB) (*machine, *bytes.Buffer, *bytes.Buffer) {
	g, err := memory.New(2 << 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	var out, errOut bytes.Buffer
	m := &machine{cfg: Config{Stdout: &out, Stderr: &errOut}, guest: g}
	m.info = (*abi.BootInfo)(unsafe.Pointer(&g.Bytes()[abi.BootInfoAddr]))
	return m, &out, &errOut
}

// put appends a console record the way tier 0 does (guest/tier0/console.go).
func put(m *machine, fd byte, data string) {
	ring, _ := m.guest.Slice(abi.ConsoleAddr, abi.ConsoleSize)
	b := func(v byte) {
		ring[m.info.ConsoleTail%abi.ConsoleSize] = v
		m.info.ConsoleTail++
	}
	n := len(data)
	b(fd)
	b(byte(n))
	b(byte(n >> 8))
	b(byte(n >> 16))
	for i := 0; i < n; i++ {
		b(data[i])
	}
}

func TestDrainSplitsStdoutAndStderrAcrossTheRingEnd(t *testing.T) {
	m, out, errOut := newTestMachine(t)
	m.info.ConsoleHead = abi.ConsoleSize - 6 // make records wrap around the end
	m.info.ConsoleTail = m.info.ConsoleHead
	put(m, abi.ConsoleStdout, "hello ")
	put(m, abi.ConsoleStderr, "oops\n")
	put(m, abi.ConsoleStdout, "world\n")
	m.drain()
	if out.String() != "hello world\n" || errOut.String() != "oops\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
	if m.info.ConsoleHead != m.info.ConsoleTail {
		t.Error("ring not consumed")
	}
}

func TestDrainRejectsACorruptRing(t *testing.T) {
	m, out, errOut := newTestMachine(t)
	m.info.ConsoleHead, m.info.ConsoleTail = 10, 10+abi.ConsoleSize+1
	m.drain()
	if out.Len() != 0 || !bytes.Contains(errOut.Bytes(), []byte("console ring corrupt")) {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

// The ring is written by the untrusted guest: any contents must drain without a panic,
// never read outside the ring, and leave it consumed.
func FuzzDrain(f *testing.F) {
	f.Add(uint64(0), uint64(9), []byte{1, 5, 0, 0, 'h', 'e', 'l', 'l', 'o'})
	f.Add(uint64(abi.ConsoleSize-2), uint64(abi.ConsoleSize+40), []byte{2, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, head, tail uint64, data []byte) {
		m, out, errOut := newTestMachine(t)
		ring, _ := m.guest.Slice(abi.ConsoleAddr, abi.ConsoleSize)
		for i, b := range data {
			ring[(head+uint64(i))%abi.ConsoleSize] = b
		}
		m.info.ConsoleHead, m.info.ConsoleTail = head, tail
		m.drain()
		if m.info.ConsoleHead != tail {
			t.Fatalf("head %d after drain, tail %d", m.info.ConsoleHead, tail)
		}
		if out.Len()+errOut.Len() > abi.ConsoleSize+200 {
			t.Fatalf("drained %d bytes from a %d-byte ring", out.Len()+errOut.Len(), abi.ConsoleSize)
		}
	})
}
