package kernel

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"github.com/pithvm/pith/abi"
)

// syscall6Rest is the rest of internal/runtime/syscall/linux.Syscall6 after its
// abi.FastCallPatterns bytes, as Go assembles it: the error check and the returns.
var syscall6Rest = []byte{
	0x76, 0x15, // JBE ok
	0x48, 0xf7, 0xd8, // NEGQ AX
	0x48, 0x89, 0xc1, // MOVQ AX, CX
	0x48, 0xc7, 0xc0, 0xff, 0xff, 0xff, 0xff, // MOVQ $-1, AX
	0x48, 0xc7, 0xc3, 0x00, 0x00, 0x00, 0x00, // MOVQ $0, BX
	0xc3,             // RET
	0x48, 0x89, 0xd3, // ok: MOVQ DX, BX
	0x48, 0xc7, 0xc1, 0x00, 0x00, 0x00, 0x00, // MOVQ $0, CX
	0xc3, // RET
}

// rewrittenSyscall6 builds, in executable host memory, a copy of Go's Syscall6 whose
// site is rewritten as RewriteSyscalls does, and returns it callable with Syscall6's
// own signature (Go's register ABI is the one it was written for).
func rewrittenSyscall6(t *testing.T) (call func(num, a1, a2, a3, a4, a5, a6 uintptr) (r1, r2, errno uintptr), s stub) {
	mem, err := syscall.Mmap(-1, 0, 2*pageSize, syscall.PROT_READ|syscall.PROT_WRITE|syscall.PROT_EXEC,
		syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatalf("executable memory for the test: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(mem) })
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	p := &abi.FastCallPatterns[0]
	fn := append(append([]byte{}, p.Code...), syscall6Rest...)
	copy(mem, fn)
	site, at := base+uint64(p.Patch), base+pageSize
	s, code := buildStub(p, at, site, 0)
	copy(mem[pageSize:], code)
	jumpTo(mem[p.Patch:p.Patch+p.Len], site, at)
	entry := uintptr(base)
	fv := &entry
	return *(*func(num, a1, a2, a3, a4, a5, a6 uintptr) (r1, r2, errno uintptr))(unsafe.Pointer(&fv)), s
}

// The stub answers the identity calls itself and makes every other call, errors
// included, as the instructions it replaced would.
func TestStubRunsAsTheCodeItReplaces(t *testing.T) {
	call, _ := rewrittenSyscall6(t)
	for _, id := range fastIdentity {
		if r1, _, e := call(uintptr(id.nr), 0, 0, 0, 0, 0, 0); r1 != uintptr(id.value) || e != 0 {
			t.Errorf("call %d: got (%d, errno %d), want %d from the stub", id.nr, r1, e, id.value)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r1, _, e := call(syscall.SYS_GETTID, 0, 0, 0, 0, 0, 0); int(r1) != syscall.Gettid() || e != 0 {
		t.Errorf("gettid through the stub: (%d, errno %d), want %d", r1, e, syscall.Gettid())
	}
	if _, _, e := call(syscall.SYS_CLOSE, ^uintptr(0), 0, 0, 0, 0, 0); e != uintptr(syscall.EBADF) {
		t.Errorf("close(-1) through the stub: errno %d, want EBADF", e)
	}
	if r1, _, e := call(syscall.SYS_GETPPID|1<<32, 0, 0, 0, 0, 0, 0); r1 == abi.AppPPID && e == 0 {
		t.Errorf("a number that is not getppid's in all 64 bits was answered as getppid")
	}
}

// A fork's child answers its own process ID and its parent's from the stubs.
func TestStubAnswersAForksPIDs(t *testing.T) {
	call, s := rewrittenSyscall6(t)
	stubs = []stub{s}
	t.Cleanup(func() { stubs = nil })
	setFastAnswer(syscall.SYS_GETPID, 100002)
	setFastAnswer(syscall.SYS_GETPPID, 100001)
	for _, c := range []struct{ nr, want uintptr }{{syscall.SYS_GETPID, 100002}, {syscall.SYS_GETPPID, 100001}, {syscall.SYS_GETUID, abi.AppUID}} {
		if r1, _, e := call(c.nr, 0, 0, 0, 0, 0, 0); r1 != c.want || e != 0 {
			t.Errorf("call %d after a fork: (%d, errno %d), want %d", c.nr, r1, e, c.want)
		}
	}
}

// A signal frame never shows a stub: before its call a thread is at the rewritten site,
// after it at the instruction the site returns to.
func TestAppPCHidesStubs(t *testing.T) {
	_, s := rewrittenSyscall6(t)
	stubs, stubsStart, stubsEnd = []stub{s}, s.start, s.end
	t.Cleanup(func() { stubs, stubsStart, stubsEnd = nil, 0, 0 })
	if len(s.done) != len(fastIdentity)+1 {
		t.Fatalf("%d jumps back, want one per identity call and one after SYSCALL", len(s.done))
	}
	done := map[uint64]bool{}
	for _, pc := range s.done {
		done[pc] = true
	}
	for pc := s.start; pc < s.end; pc++ {
		want := s.site
		if done[pc] {
			want = s.back
		}
		if got := appPC(pc); got != want {
			t.Errorf("appPC(stub+%d) = %#x, want %#x", pc-s.start, got, want)
		}
	}
	if got := appPC(s.site); got != s.site {
		t.Errorf("appPC of app code moved it: %#x", got)
	}
}

// With tier 0's exit, a stub's other calls go there when its vCPU block names the
// thread's context, and to its SYSCALL when not; both return to the same place. (The
// block is at a guest address, so this reads the bytes rather than running them.)
func TestStubHandsOtherCallsToTheExit(t *testing.T) {
	p := &abi.FastCallPatterns[0]
	const at, site, exit = 0x3ff000, 0x401009, 0x7e0000500000
	s, b := buildStub(p, at, site, exit)
	done := s.done[len(s.done)-1]
	code := func(pc uint64, n int) []byte { return b[pc-at : pc-at+uint64(n)] }
	if !bytes.Equal(code(done-2, 2), []byte{0x0f, 0x05}) {
		t.Fatalf("the stub's last return does not follow its SYSCALL: % x", code(done-2, 2))
	}
	load := bytes.Index(b, []byte{0x48, 0x8b, 0x0c, 0x25})
	if load < 0 || binary.LittleEndian.Uint32(b[load+4:]) != abi.PerCPUAddr+abi.PerCPUFastCtx {
		t.Fatalf("the stub does not read its vCPU's FastCtx")
	}
	jz := uint64(load) + 8 + 3
	if b[jz] != 0x74 || at+jz+2+uint64(b[jz+1]) != done-2 {
		t.Errorf("with no context the stub does not go to its SYSCALL")
	}
	lea := jz + 2
	if rel := binary.LittleEndian.Uint32(b[lea+3:]); at+lea+7+uint64(rel) != done {
		t.Errorf("the context's RIP is not the SYSCALL's return")
	}
	if !bytes.Equal(b[lea+7:lea+10], []byte{0x4c, 0x89, 0x99}) || binary.LittleEndian.Uint32(b[lea+10:]) != uint32(unsafe.Offsetof(abi.Regs{}.RIP)) {
		t.Errorf("the return is not stored in the context's RIP")
	}
	if binary.LittleEndian.Uint64(b[lea+16:]) != exit || !bytes.Equal(b[lea+24:lea+27], []byte{0x41, 0xff, 0xe3}) {
		t.Errorf("the stub does not jump to the exit")
	}
	stubs, stubsStart, stubsEnd = []stub{s}, s.start, s.end
	t.Cleanup(func() { stubs, stubsStart, stubsEnd = nil, 0, 0 })
	for pc := s.start; pc < s.end; pc++ {
		if got, want := atSyscallReturn(pc), pc == done || pc == done-2; got != want {
			t.Errorf("atSyscallReturn(stub+%d) = %v", pc-s.start, got)
		}
	}
}
