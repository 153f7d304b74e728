package kernel

import (
	"debug/elf"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
)

// stub is the code a rewritten system-call site (abi.FastCallPattern) jumps to: the
// instruction the jump replaced, the identity calls answered from constants, and for any
// other call a jump into tier 1 without a trap (tier 0's BootInfo.AppExit, which returns
// to the SYSCALL's return) or, where the thread cannot switch so, the SYSCALL itself;
// then a jump back.
type stub struct {
	start, end uint64   // the stub's code
	site, back uint64   // the rewritten instructions, and the instruction after them
	done       []uint64 // the stub's jumps back: a thread at one has made its call
	answers    []uint64 // where each fastIdentity call's answer sits in the stub's code
}

// stubs are the app's rewritten sites, set before the app runs and read-only after.
var stubs []stub

// stubsStart and stubsEnd bound the page holding every stub.
var stubsStart, stubsEnd uint64

// fastIdentity are the calls a stub answers, with what tier 0 would answer.
var fastIdentity = [...]struct{ nr, value uint32 }{
	{syscall.SYS_GETPPID, abi.AppPPID}, {syscall.SYS_GETPID, abi.AppPID},
	{syscall.SYS_GETUID, abi.AppUID}, {syscall.SYS_GETEUID, abi.AppUID},
	{syscall.SYS_GETGID, abi.AppGID}, {syscall.SYS_GETEGID, abi.AppGID},
}

// RewriteSyscalls rewrites the system-call sites the monitor found in the app's file
// (sites: "KIND@VADDR" items, comma-separated, KIND indexing abi.FastCallPatterns and
// VADDR as the file places it) into jumps to stubs on a page just below the image. A
// site whose bytes are not the pattern's is left alone, as is every site if that page is
// taken: the app then traps for every call, as it would anyway.
func (im *Image) RewriteSyscalls(sites string) {
	if sites == "" || im.start < abi.LowMapEnd+pageSize {
		return
	}
	page := im.start - pageSize
	if _, err := mmapFixed(page, pageSize); err != nil {
		return
	}
	code := appBytes(page, pageSize)
	at := page
	for _, item := range strings.Split(sites, ",") {
		kind, vaddr, ok := strings.Cut(item, "@")
		k, err1 := strconv.Atoi(kind)
		fn, err2 := strconv.ParseUint(vaddr, 0, 64)
		if !ok || err1 != nil || err2 != nil || k < 0 || k >= len(abi.FastCallPatterns) {
			continue
		}
		p := &abi.FastCallPatterns[k]
		fn += im.bias
		if fn%abi.FastCallAlign != 0 || !im.inText(fn, uint64(len(p.Code))) ||
			string(appBytes(fn, uint64(len(p.Code)))) != string(p.Code) {
			continue
		}
		site := fn + uint64(p.Patch)
		s, b := buildStub(p, at, site, bootInfo().AppExit)
		if at+uint64(len(b)) > page+pageSize || !fitsRel32(site+5, at) {
			break
		}
		copy(code[at-page:], b)
		jumpTo(appBytes(site, uint64(p.Len)), site, at)
		stubs = append(stubs, s)
		at += (uint64(len(b)) + 15) &^ 15
	}
	stubsStart, stubsEnd = page, at
}

// buildStub is the stub for pattern p's site, placed at at, handing other calls to
// tier 1 through exit (0: by SYSCALL only).
func buildStub(p *abi.FastCallPattern, at, site, exit uint64) (stub, []byte) {
	s := stub{start: at, site: site, back: site + uint64(p.Len)}
	b := slices.Clone(p.Code[p.Patch : p.Patch+p.Len-2]) // what the jump replaces, less SYSCALL
	le := binary.LittleEndian
	jumpBack := func() {
		s.done = append(s.done, at+uint64(len(b)))
		b = le.AppendUint32(append(b, 0xe9), uint32(s.back-(at+uint64(len(b))+5))) // JMP back
	}
	for _, id := range fastIdentity {
		b = le.AppendUint32(append(b, 0x48, 0x3d), id.nr) // CMPQ AX, $nr
		b = append(b, 0x75, 10)                           // JNE past the next two
		s.answers = append(s.answers, at+uint64(len(b))+1)
		b = le.AppendUint32(append(b, 0xb8), id.value) // MOVL $value, AX
		jumpBack()
	}
	if exit != 0 {
		// The thread's context, from its vCPU's block; none yet: SYSCALL. The context's
		// RIP gets the SYSCALL's return, which is where tier 1 resumes the app, and
		// where a thread interrupted in exit makes the call with a trap, 2 bytes back.
		const fastLen = 7 + 7 + 10 + 3
		b = le.AppendUint32(append(b, 0x48, 0x8b, 0x0c, 0x25), abi.PerCPUAddr+abi.PerCPUFastCtx) // MOVQ abs32, CX
		b = append(b, 0x48, 0x85, 0xc9, 0x74, fastLen)                                           // TESTQ CX, CX; JZ SYSCALL
		lea := at + uint64(len(b))
		done := lea + fastLen + 2
		b = le.AppendUint32(append(b, 0x4c, 0x8d, 0x1d), uint32(done-(lea+7)))                    // LEAQ done(RIP), R11
		b = le.AppendUint32(append(b, 0x4c, 0x89, 0x99), uint32(unsafe.Offsetof(abi.Regs{}.RIP))) // MOVQ R11, RIP(CX)
		b = le.AppendUint64(append(b, 0x49, 0xbb), exit)                                          // MOVQ $exit, R11
		b = append(b, 0x41, 0xff, 0xe3)                                                           // JMP R11
	}
	b = append(b, 0x0f, 0x05) // SYSCALL
	jumpBack()
	s.end = at + uint64(len(b))
	return s, b
}

// atSyscallReturn reports whether pc is a stub's SYSCALL or the return from it: a
// thread there is between a system call and the Go function that made it, where only
// its general registers and FS base hold anything (AppContext.Fast).
func atSyscallReturn(pc uint64) bool {
	if pc < stubsStart || pc >= stubsEnd {
		return false
	}
	for _, s := range stubs {
		if done := s.done[len(s.done)-1]; pc == done || pc == done-2 {
			return true
		}
	}
	return false
}

// setFastAnswer makes every stub answer value to system call nr, one of fastIdentity's:
// a fork's child has a process ID of its own. No other thread runs the app's code.
func setFastAnswer(nr, value uint32) {
	for i, id := range fastIdentity {
		if id.nr != nr {
			continue
		}
		for _, s := range stubs {
			binary.LittleEndian.PutUint32(appBytes(s.answers[i], 4), value)
		}
	}
}

// jumpTo rewrites code, at address from, into a JMP to address to; the bytes left over
// become INT3s, never reached: nothing jumps into the rewritten instructions.
func jumpTo(code []byte, from, to uint64) {
	for i := range code {
		code[i] = 0xcc
	}
	code[0] = 0xe9
	binary.LittleEndian.PutUint32(code[1:], uint32(to-(from+5)))
}

func fitsRel32(from, to uint64) bool {
	d := int64(to - from)
	return d == int64(int32(d))
}

// inText reports whether [va, va+n) lies in one of the image's executable segments.
func (im *Image) inText(va, n uint64) bool {
	for _, prog := range im.elf.Progs {
		if prog.Type == elf.PT_LOAD && prog.Flags&elf.PF_X != 0 &&
			va >= prog.Vaddr+im.bias && va+n <= prog.Vaddr+im.bias+prog.Filesz && va+n > va {
			return true
		}
	}
	return false
}

// appPC is where a thread at pc is as the app's code knows it: in a stub that has not
// made its call, the rewritten site (the stub's first instructions redo only what the
// jump replaced); at a stub's jump back, the instruction after the site. Signal frames
// carry it, so no handler, traceback or rt_sigreturn ever sees a stub.
func appPC(pc uint64) uint64 {
	if pc < stubsStart || pc >= stubsEnd {
		return pc
	}
	for _, s := range stubs {
		if pc >= s.start && pc < s.end {
			if slices.Contains(s.done, pc) {
				return s.back
			}
			return s.site
		}
	}
	return pc
}
