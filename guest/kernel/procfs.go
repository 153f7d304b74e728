package kernel

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
	"github.com/pithvm/pith/guest/x86"
)

// /proc is tier 1's own, made from what it knows of the app when a file is opened, as
// Linux makes it: the files C libraries, shells and Python read (cpuinfo, meminfo,
// uptime, self/maps, self/fd, self/status, self/cmdline...). The app is process
// abi.AppPID, or a fork's child its own (selfPID); /proc/self names it.

// procNode is one /proc entry: a file's bytes, a directory's names, or a link's target.
type procNode struct {
	mode    uint32 // S_IFREG, S_IFDIR or S_IFLNK, with the permission bits
	content []byte
	names   []string
	target  string
}

// procRel is p's path beneath the app's /proc directory ("" for /proc itself, "self/x"
// for /proc/self/x and /proc/1/x), and whether p is in /proc at all.
func procRel(p string) (string, bool) {
	rel, ok := strings.CutPrefix(p, "/proc")
	if !ok || rel != "" && rel[0] != '/' {
		return "", false
	}
	rel = strings.TrimPrefix(rel, "/")
	first, rest, _ := strings.Cut(rel, "/")
	if first == strconv.Itoa(int(selfPID.Load())) || first == "thread-self" {
		first = "self"
	}
	if rest != "" {
		return first + "/" + rest, true
	}
	return first, true
}

// procLookup makes the node at rel (procRel), or answers ENOENT.
func procLookup(p *Process, rel string) (*procNode, int64) {
	file := func(s string) (*procNode, int64) {
		return &procNode{mode: syscall.S_IFREG | 0o444, content: []byte(s)}, 0
	}
	switch rel {
	case "":
		return &procNode{mode: syscall.S_IFDIR | 0o555, names: []string{strconv.Itoa(int(selfPID.Load())), "cpuinfo", "loadavg",
			"meminfo", "self", "stat", "thread-self", "uptime", "version"}}, 0
	case "self": // a link to "1" on Linux (readlinkat answers so), followed here
		return &procNode{mode: syscall.S_IFDIR | 0o555, names: []string{"cmdline", "comm", "cwd", "environ",
			"exe", "fd", "maps", "stat", "status"}}, 0
	case "cpuinfo":
		return file(cpuinfo())
	case "meminfo":
		total, used := memory()
		return file(fmt.Sprintf("MemTotal:       %8d kB\nMemFree:        %8d kB\nMemAvailable:   %8d kB\n"+
			"Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n",
			total>>10, (total-used)>>10, (total-used)>>10))
	case "uptime":
		up := float64(uptime()) / 1e9
		return file(fmt.Sprintf("%.2f %.2f\n", up, up*float64(runtime.NumCPU())))
	case "loadavg":
		return file(fmt.Sprintf("0.00 0.00 0.00 1/%d %d\n", p.threads(), selfPID.Load()))
	case "version":
		return file(kernelVersion() + "\n")
	case "stat":
		return file(fmt.Sprintf("cpu  0 0 0 0 0 0 0 0 0 0\nbtime %d\nprocesses 1\nprocs_running 1\nprocs_blocked 0\n", bootTime()))
	case "self/cmdline":
		return file(nulJoined(p.argv))
	case "self/environ":
		return &procNode{mode: syscall.S_IFREG | 0o400, content: []byte(nulJoined(p.envp))}, 0
	case "self/comm":
		return file(p.comm() + "\n")
	case "self/status":
		return file(p.status())
	case "self/stat":
		return file(p.stat())
	case "self/maps":
		return file(p.maps())
	case "self/exe":
		return &procNode{mode: syscall.S_IFLNK | 0o777, target: p.exe}, 0
	case "self/cwd":
		p.mu.Lock()
		defer p.mu.Unlock()
		return &procNode{mode: syscall.S_IFLNK | 0o777, target: p.cwd}, 0
	case "self/fd":
		p.mu.Lock()
		defer p.mu.Unlock()
		var names []string
		for _, fd := range slices.Sorted(mapKeys(p.fds)) {
			names = append(names, strconv.Itoa(fd))
		}
		return &procNode{mode: syscall.S_IFDIR | 0o500, names: names}, 0
	}
	if n, ok := strings.CutPrefix(rel, "self/fd/"); ok {
		fd, err := strconv.Atoi(n)
		if err != nil {
			return nil, -linux.ENOENT
		}
		f := p.fd(uint64(fd))
		if f == nil {
			return nil, -linux.ENOENT
		}
		return &procNode{mode: syscall.S_IFLNK | 0o700, target: fdTarget(f)}, 0
	}
	return nil, -linux.ENOENT
}

func mapKeys(m map[int]*file) func(func(int) bool) {
	return func(yield func(int) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// fdTarget is what /proc/self/fd/N links to for f, as Linux names it.
func fdTarget(f *file) string {
	st := tier1Stat(f)
	switch f.kind {
	case kindHost, kindNull, kindZero, kindRandom:
		return f.path
	case kindProc:
		return "/proc/" + f.path
	case kindSocket, kindUnix:
		return fmt.Sprintf("socket:[%d]", st.Ino)
	case kindTier0:
		return "anon_inode:[eventpoll]"
	}
	return fmt.Sprintf("pipe:[%d]", st.Ino)
}

func nulJoined(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return strings.Join(s, "\x00") + "\x00"
}

// comm is the app's name as Linux keeps it: the file name it was started by, at most
// 15 bytes.
func (p *Process) comm() string {
	c := p.name
	if len(c) > 15 {
		c = c[:15]
	}
	return c
}

func (p *Process) threads() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.tasks)
}

func (p *Process) status() string {
	_, used := memory()
	return fmt.Sprintf("Name:\t%s\nUmask:\t%04o\nState:\tR (running)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"+
		"TracerPid:\t0\nUid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\nFDSize:\t64\nGroups:\t\n"+
		"VmRSS:\t%8d kB\nThreads:\t%d\nSigQ:\t0/63936\nCpus_allowed_list:\t0-%d\n",
		p.comm(), p.creationMask(), selfPID.Load(), selfPID.Load(), parentPID.Load(), abi.AppUID, abi.AppUID, abi.AppUID, abi.AppUID,
		abi.AppGID, abi.AppGID, abi.AppGID, abi.AppGID, used>>10, p.threads(), runtime.NumCPU()-1)
}

// stat is /proc/self/stat: its 52 fields, those pith does not keep as 0.
func (p *Process) stat() string {
	_, used := memory()
	f := make([]string, 52)
	for i := range f {
		f[i] = "0"
	}
	// A fork's child is in its parent's process group and session, the first app's.
	f[0], f[1], f[2], f[3], f[4], f[5] = strconv.Itoa(int(selfPID.Load())), "("+p.comm()+")", "R", strconv.Itoa(int(parentPID.Load())),
		strconv.Itoa(abi.AppPID), strconv.Itoa(abi.AppPID)
	f[6], f[17], f[18], f[19] = "-1", "20", "0", strconv.Itoa(p.threads())
	f[23], f[24] = strconv.FormatUint(used/pageSize, 10), "18446744073709551615"
	return strings.Join(f, " ") + "\n"
}

// maps is /proc/self/maps from the mappings tier 1 made or saw made: the executable,
// the dynamic linker, the heap, the stack, the vDSO and the app's mmap calls. Protection
// changed by mprotect (which tier 0 serves alone) is not shown.
func (p *Process) maps() string {
	p.mu.Lock()
	ms := slices.Clone(p.mappings)
	brkStart, brk := p.brkStart, p.brk
	p.mu.Unlock()
	if brk > brkStart {
		ms = append(ms, mapping{start: brkStart, end: (brk + pageSize - 1) &^ (pageSize - 1), prot: 3, name: "[heap]"})
	}
	ms = append(ms, mapping{start: abi.AppStackTop - stackSize, end: abi.AppStackTop, prot: 3, name: "[stack]"},
		mapping{start: abi.VDSOAddr, end: abi.VDSOAddr + abi.VDSOSize, prot: 5, name: "[vdso]"})
	slices.SortFunc(ms, func(a, b mapping) int { return cmpUint(a.start, b.start) })
	var b strings.Builder
	for _, m := range ms {
		perm := []byte("---p")
		for i, c := range "rwx" {
			if m.prot&(1<<i) != 0 {
				perm[i] = byte(c)
			}
		}
		if m.shared {
			perm[3] = 's'
		}
		line := fmt.Sprintf("%08x-%08x %s %08x 00:00 0", m.start, m.end, perm, m.off)
		if m.name != "" {
			line += strings.Repeat(" ", max(1, 73-len(line))) + m.name // Linux pads names to a column
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end, off uint64
	prot            uint64
	shared          bool
	name            string
}

// mapped records [start, start+length) as mapped, replacing what was there.
func (p *Process) mapped(m mapping) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mappings = cutMappings(p.mappings, m.start, m.end)
	p.mappings = append(p.mappings, m)
}

// unmapped removes [start, end) from the recorded mappings.
func (p *Process) unmapped(start, end uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mappings = cutMappings(p.mappings, start, end)
}

// cutMappings removes [start, end) from ms, splitting the mappings it cuts through.
func cutMappings(ms []mapping, start, end uint64) []mapping {
	var kept []mapping
	for _, m := range ms {
		if end <= m.start || start >= m.end {
			kept = append(kept, m)
			continue
		}
		if m.start < start {
			below := m
			below.end = start
			kept = append(kept, below)
		}
		if end < m.end {
			above := m
			above.off += end - m.start
			above.start = end
			kept = append(kept, above)
		}
	}
	return kept
}

// cpuinfo is /proc/cpuinfo: one entry per vCPU, from CPUID, with the flags programs
// look for.
func cpuinfo() string {
	var vendor [12]byte
	_, ebx, ecx, edx := x86.CPUID(0, 0)
	binary.LittleEndian.PutUint32(vendor[0:], ebx)
	binary.LittleEndian.PutUint32(vendor[4:], edx)
	binary.LittleEndian.PutUint32(vendor[8:], ecx)
	eax, _, ecx1, edx1 := x86.CPUID(1, 0)
	_, ebx7, ecx7, _ := x86.CPUID(7, 0)
	_, _, ecx81, edx81 := x86.CPUID(0x80000001, 0)
	var brand []byte
	for leaf := uint32(0x80000002); leaf <= 0x80000004; leaf++ {
		a, b, c, d := x86.CPUID(leaf, 0)
		for _, r := range []uint32{a, b, c, d} {
			brand = binary.LittleEndian.AppendUint32(brand, r)
		}
	}
	family, model := (eax>>8)&0xf, (eax>>4)&0xf
	if family == 0xf {
		family += (eax >> 20) & 0xff
	}
	if family >= 6 {
		model |= (eax >> 12) & 0xf0
	}
	var flags []string
	for _, set := range []struct {
		reg   uint32
		names []string
	}{
		{edx1, []string{"fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge", "mca", "cmov",
			"pat", "pse36", "", "clflush", "", "", "", "mmx", "fxsr", "sse", "sse2", "", "ht"}},
		{ecx1, []string{"pni", "pclmulqdq", "", "", "", "", "", "", "", "ssse3", "", "", "fma", "cx16", "", "", "", "pcid",
			"sse4_1", "sse4_2", "x2apic", "movbe", "popcnt", "", "aes", "xsave", "", "avx", "f16c", "rdrand", "hypervisor"}},
		{edx81, []string{"", "", "", "", "", "", "", "", "", "", "", "syscall", "", "", "", "", "", "", "", "", "nx", "", "", "",
			"", "", "pdpe1gb", "rdtscp", "", "lm"}},
		{ecx81, []string{"lahf_lm", "", "", "", "", "abm", "sse4a"}},
		{ebx7, []string{"fsgsbase", "", "", "bmi1", "", "", "", "", "bmi2", "erms", "", "", "", "", "", "", "avx512f", "avx512dq",
			"rdseed", "adx", "", "", "", "clflushopt", "", "", "", "", "avx512cd", "sha_ni", "avx512bw", "avx512vl"}},
		{ecx7, []string{"", "avx512vbmi", "", "", "", "", "", "", "gfni", "vaes", "vpclmulqdq"}},
	} {
		for bit, name := range set.names {
			if name != "" && set.reg&(1<<bit) != 0 {
				flags = append(flags, name)
			}
		}
	}
	if ebx7&(1<<5) != 0 {
		flags = append(flags, "avx2")
	}
	var b strings.Builder
	for cpu := range runtime.NumCPU() {
		fmt.Fprintf(&b, "processor\t: %d\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: %d\nmodel name\t: %s\n"+
			"stepping\t: %d\nphysical id\t: 0\nsiblings\t: %d\ncore id\t\t: %d\ncpu cores\t: %d\nfpu\t\t: yes\n"+
			"flags\t\t: %s\nclflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 46 bits physical, 48 bits virtual\n\n",
			cpu, vendor[:], family, model, strings.TrimSpace(string(bytes.TrimRight(brand, "\x00"))), eax&0xf,
			runtime.NumCPU(), cpu, runtime.NumCPU(), strings.Join(flags, " "))
	}
	return b.String()
}

// kernelVersion is /proc/version: what uname says.
func kernelVersion() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	str := func(b [65]int8) string {
		s := make([]byte, 0, len(b))
		for _, c := range b {
			if c == 0 {
				break
			}
			s = append(s, byte(c))
		}
		return string(s)
	}
	return str(u.Sysname) + " version " + str(u.Release) + " (pith) " + str(u.Version)
}

// bootTime is when the guest booted, in seconds since the epoch.
func bootTime() int64 {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 0 /* CLOCK_REALTIME */, uintptr(unsafe.Pointer(&ts)), 0)
	return ts.Sec - uptime()/1e9
}

// procOpen opens /proc entry rel with open's flags.
func procOpen(t *Task, rel string, flags uint64) int64 {
	n, e := procLookup(t.proc, rel)
	if e != 0 {
		return e
	}
	if n.mode&syscall.S_IFMT == syscall.S_IFLNK {
		if fd, ok := strings.CutPrefix(rel, "self/fd/"); ok { // the same file again, opened anew
			num, _ := strconv.Atoi(fd)
			f := t.proc.fd(uint64(num))
			if f == nil {
				return -linux.ENOENT
			}
			g := f.dup()
			g.desc = &description{} // an offset of its own, from 0, as Linux opens it
			g.cloexec = flags&syscall.O_CLOEXEC != 0
			return t.proc.installFD(g)
		}
		r := abi.FileRequest{Op: abi.FileOpen, Flags: flags}
		defer runtime.KeepAlive(hostString(&r.Path, &r.PathLen, n.target))
		h := fileRequest(&r)
		if h < 0 {
			return h
		}
		return t.proc.installFD(&file{kind: kindHost, handle: uint64(h), path: n.target, flags: flags,
			cloexec: flags&syscall.O_CLOEXEC != 0})
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_CREAT|syscall.O_TRUNC) != 0 {
		return -linux.EACCES
	}
	if flags&syscall.O_DIRECTORY != 0 && n.names == nil {
		return -linux.ENOTDIR
	}
	return t.proc.installFD(&file{kind: kindProc, proc: n, path: path.Join("/proc", rel), flags: flags,
		cloexec: flags&syscall.O_CLOEXEC != 0})
}

// procStat is what stat says of /proc entry n at path p: Linux's sizes, 0 for files.
func procStat(p string, n *procNode) syscall.Stat_t {
	st := syscall.Stat_t{Mode: n.mode, Nlink: 1, Blksize: 1024, Dev: procDev, Uid: abi.AppUID, Gid: abi.AppGID}
	for _, c := range p { // an inode number of its own for each path
		st.Ino = st.Ino*31 + uint64(c)
	}
	switch {
	case n.names != nil:
		st.Nlink = 2
	case n.mode&syscall.S_IFMT == syscall.S_IFLNK:
		st.Size = int64(len(n.target))
	}
	return st
}

// procStatAt is stat of /proc entry rel (path p), following a final link unless nofollow.
func procStatAt(t *Task, rel, p string, nofollow bool) (syscall.Stat_t, int64) {
	n, e := procLookup(t.proc, rel)
	if e != 0 {
		return syscall.Stat_t{}, e
	}
	if n.mode&syscall.S_IFMT == syscall.S_IFLNK && !nofollow {
		if fd, ok := strings.CutPrefix(rel, "self/fd/"); ok {
			num, _ := strconv.Atoi(fd)
			return fdStat(t, uint64(num))
		}
		var st syscall.Stat_t
		return st, hostStat(0, n.target, &st, false)
	}
	return procStat(p, n), 0
}

// procGetdents writes the entries of /proc directory f to app memory at addr (n bytes)
// as linux_dirent64 records, from the one its offset names on.
func procGetdents(t *Task, f *file, addr, n uint64) int64 {
	if f.proc.names == nil {
		return -linux.ENOTDIR
	}
	names := append([]string{".", ".."}, f.proc.names...)
	var out []byte
	next := f.pos()
	for ; next < uint64(len(names)); next++ {
		name := names[next]
		reclen := (19 + len(name) + 1 + 7) &^ 7
		if len(out)+reclen > int(n) {
			break
		}
		rec := make([]byte, reclen)
		binary.LittleEndian.PutUint64(rec[0:], next+1) // d_ino
		binary.LittleEndian.PutUint64(rec[8:], next+1) // d_off: the next entry's
		binary.LittleEndian.PutUint16(rec[16:], uint16(reclen))
		rec[18] = 4 // DT_DIR: . and ..
		if next >= 2 {
			rec[18] = direntType(t, path.Join(strings.TrimPrefix(f.path, "/proc"), name)[1:])
		}
		copy(rec[19:], name)
		out = append(out, rec...)
	}
	f.setPos(next)
	if len(out) == 0 && next < uint64(len(names)) {
		return -linux.EINVAL // too small for the next entry
	}
	dst, ok := appSlice(addr, uint64(len(out)))
	if !ok {
		return -linux.EFAULT
	}
	return int64(copy(dst, out))
}

// direntType is the d_type of /proc entry rel: /proc/self and /proc/thread-self are
// links on Linux.
func direntType(t *Task, rel string) byte {
	const dtDir, dtReg, dtLnk = 4, 8, 10
	switch rel {
	case "self", "thread-self":
		return dtLnk
	case strconv.Itoa(int(selfPID.Load())):
		return dtDir
	}
	n, e := procLookup(t.proc, rel)
	switch {
	case e != 0:
		return 0 // DT_UNKNOWN
	case n.names != nil:
		return dtDir
	case n.mode&syscall.S_IFMT == syscall.S_IFLNK:
		return dtLnk
	}
	return dtReg
}

// procDev is /proc's device number, 0:22.
const procDev = 22
