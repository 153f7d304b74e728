package kernel

import (
	"bytes"
	"encoding/binary"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/pithvm/pith/abi"
	"github.com/pithvm/pith/guest/linux"
)

// fakeTier0 stands in for tier 0's readiness descriptors and the monitor's stat: the
// unit tests run on the host.
type fakeTier0 struct {
	mu     sync.Mutex
	next   uintptr
	level  map[uintptr]uint32
	closed map[uintptr]bool
	stray  []uintptr         // descriptors told of events after they closed
	files  map[string]uint32 // host paths and their modes
}

func useFakeTier0(t *testing.T) *fakeTier0 {
	f := &fakeTier0{next: 100, level: map[uintptr]uint32{}, closed: map[uintptr]bool{},
		files: map[string]uint32{"/": syscall.S_IFDIR, "/tmp": syscall.S_IFDIR, "/tmp/file": syscall.S_IFREG}}
	open, set, closeFD, stat := openReady, setReady, closeReady, unixHostStat
	t.Cleanup(func() { openReady, setReady, closeReady, unixHostStat = open, set, closeFD, stat })
	openReady = func() (uintptr, int64) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.next++
		return f.next, 0
	}
	setReady = func(fd uintptr, ev uint32) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.closed[fd] {
			f.stray = append(f.stray, fd)
		}
		f.level[fd] = ev
	}
	closeReady = func(fd uintptr) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.closed[fd] = true
	}
	unixHostStat = func(p string, nofollow bool) (uint32, int64) {
		if m, ok := f.files[p]; ok {
			return m, 0
		}
		return 0, -linux.ENOENT
	}
	return f
}

// events is what tier 0 was last told of descriptor fd's socket or pipe end, through
// fd's own readiness descriptor, made as epoll_ctl makes it.
func (f *fakeTier0) events(t *Task, fd int64) uint32 {
	file := t.proc.fd(uint64(fd))
	var ready uintptr
	if file.kind == kindPipe {
		ready, _ = file.pipe.readyFD(file)
	} else {
		ready, _ = file.unix.readyFD(file)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed[ready] {
		return 1 << 31
	}
	return f.level[ready]
}

func newTestTask() *Task {
	p := &Process{tasks: map[int32]*Task{}, fds: map[int]*file{}, unsupported: map[uint64]bool{}, cwd: "/tmp"}
	return &Task{proc: p, tid: 1, ctx: &abi.AppContext{}, wake: make(chan struct{}, 1)}
}

// call makes system call nr as the app would.
func call(t *Task, nr uint64, args ...uint64) int64 {
	var a [6]uint64
	copy(a[:], args)
	return serve(syscalls[nr].handler, t, a)
}

// mem is app memory for a test: on the heap, where it does not move.
func mem(n int) []byte { return hostBuffer(n) }

func addrOf(b []byte) uint64 { return uint64(uintptr(unsafe.Pointer(&b[0]))) }

// sockaddr is a sockaddr_un of name, as Go's syscall package builds it ("@" abstract).
func sockaddrOf(name string) ([]byte, uint64) {
	b := mem(sockaddrUnSize)
	binary.LittleEndian.PutUint16(b, afUnix)
	copy(b[2:], name)
	n := uint64(2 + len(name) + 1)
	if name[0] == '@' {
		b[2] = 0
		n--
	}
	return b, n
}

func pair(t *testing.T, task *Task, typ int) (int64, int64) {
	t.Helper()
	sv := mem(8)
	if r := call(task, unix.SYS_SOCKETPAIR, afUnix, uint64(typ), 0, addrOf(sv)); r != 0 {
		t.Fatalf("socketpair: %d", r)
	}
	return int64(int32(binary.LittleEndian.Uint32(sv))), int64(int32(binary.LittleEndian.Uint32(sv[4:])))
}

func write(task *Task, fd int64, s string) int64 {
	b := mem(max(len(s), 1))
	copy(b, s)
	return call(task, unix.SYS_WRITE, uint64(fd), addrOf(b), uint64(len(s)))
}

func read(task *Task, fd int64, n int) (string, int64) {
	b := mem(n)
	r := call(task, unix.SYS_READ, uint64(fd), addrOf(b), uint64(n))
	if r < 0 {
		return "", r
	}
	return string(b[:r]), r
}

func recvFlags(task *Task, fd int64, n int, flags uint64) (string, int64) {
	b := mem(n)
	r := call(task, unix.SYS_RECVFROM, uint64(fd), addrOf(b), uint64(n), flags, 0, 0)
	if r < 0 {
		return "", r
	}
	return string(b[:min(int(r), n)]), r
}

const in, out = linux.EPOLLIN, linux.EPOLLOUT

// A stream pair carries bytes both ways, with readiness as Linux reports it; a closed
// peer reads as the end, and a write to it is EPIPE with SIGPIPE unless MSG_NOSIGNAL.
func TestUnixStreamPair(t *testing.T) {
	tier0 := useFakeTier0(t)
	task := newTestTask()
	a, b := pair(t, task, sockStream|sockNonblock)
	if ev := tier0.events(task, a); ev&(in|out) != out {
		t.Errorf("a fresh pair's events %#x, want writable only", ev)
	}
	if r := write(task, a, "hello"); r != 5 {
		t.Fatalf("write: %d", r)
	}
	if ev := tier0.events(task, b); ev&in == 0 {
		t.Errorf("events %#x after a write to it, want readable", ev)
	}
	d := call(task, unix.SYS_DUP, uint64(b))
	if ev := tier0.events(task, d); ev&in == 0 {
		t.Errorf("a dup's events %#x, want readable", ev)
	}
	if tier0.events(task, b) == 1<<31 || task.proc.fd(uint64(d)).ready == task.proc.fd(uint64(b)).ready {
		t.Errorf("a dup shares its readiness descriptor: epoll could not watch both")
	}
	if got, r := read(task, b, 3); got != "hel" || r != 3 {
		t.Errorf("read %q %d", got, r)
	}
	if got, _ := read(task, b, 10); got != "lo" {
		t.Errorf("read the rest %q", got)
	}
	if ev := tier0.events(task, b); ev&in != 0 {
		t.Errorf("events %#x after reading all, want not readable", ev)
	}
	dupReady := task.proc.fd(uint64(d)).ready
	call(task, unix.SYS_CLOSE, uint64(d))
	if !tier0.closed[dupReady] {
		t.Errorf("closing a dup left its readiness descriptor open")
	}
	if _, r := read(task, b, 10); r != -linux.EAGAIN {
		t.Errorf("read of nothing, non-blocking: %d", r)
	}
	write(task, a, "bye")
	call(task, unix.SYS_CLOSE, uint64(a))
	if ev := tier0.events(task, b); ev&(linux.EPOLLHUP|linux.EPOLLRDHUP|in) != linux.EPOLLHUP|linux.EPOLLRDHUP|in {
		t.Errorf("events %#x after the peer closed, want HUP, RDHUP and IN", ev)
	}
	if got, _ := read(task, b, 10); got != "bye" {
		t.Errorf("what the peer wrote before closing: %q", got)
	}
	if _, r := read(task, b, 10); r != 0 {
		t.Errorf("read after the peer closed: %d, want 0", r)
	}
	msg := mem(1)
	if r := call(task, unix.SYS_SENDTO, uint64(b), addrOf(msg), 1, msgNosignal, 0, 0); r != -linux.EPIPE || task.pending != 0 {
		t.Errorf("send to a closed peer, MSG_NOSIGNAL: %d, pending %#x", r, task.pending)
	}
	if r := write(task, b, "x"); r != -linux.EPIPE || task.pending&sigbit(sigPIPE) == 0 {
		t.Errorf("write to a closed peer: %d, pending %#x; want EPIPE and SIGPIPE", r, task.pending)
	}
}

// A peer that closes with data unread leaves ECONNRESET: after the data on a stream,
// before it on a seqpacket socket, as Linux.
func TestUnixResetOrder(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	for _, tc := range []struct {
		typ   int
		reads []int64
	}{
		{sockStream, []int64{4, -linux.ECONNRESET, 0}},
		{sockSeqpacket, []int64{-linux.ECONNRESET, 4, 0}},
	} {
		a, b := pair(t, task, tc.typ|sockNonblock)
		write(task, a, "unread")
		write(task, b, "data")
		call(task, unix.SYS_CLOSE, uint64(b))
		for i, want := range tc.reads {
			if _, r := read(task, a, 16); r != want {
				t.Errorf("type %d, read %d: %d, want %d", tc.typ, i, r, want)
			}
		}
	}
}

// Datagrams and seqpacket messages keep their boundaries; a short buffer truncates one
// (MSG_TRUNC gives its length), and MSG_PEEK leaves it.
func TestUnixMessageBoundaries(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	for _, typ := range []int{sockDgram, sockSeqpacket} {
		a, b := pair(t, task, typ|sockNonblock)
		write(task, a, "first")
		write(task, a, "second")
		write(task, a, "")
		if got, r := recvFlags(task, b, 3, msgPeek); got != "fir" || r != 3 {
			t.Errorf("type %d: peek %q %d", typ, got, r)
		}
		if got, r := recvFlags(task, b, 3, msgTrunc); got != "fir" || r != 5 {
			t.Errorf("type %d: truncated %q %d, want fir 5", typ, got, r)
		}
		if got, _ := read(task, b, 100); got != "second" {
			t.Errorf("type %d: second %q", typ, got)
		}
		if _, r := read(task, b, 100); r != 0 {
			t.Errorf("type %d: an empty message: %d", typ, r)
		}
		if _, r := read(task, b, 100); r != -linux.EAGAIN {
			t.Errorf("type %d: nothing left: %d", typ, r)
		}
	}
}

// A listener takes connections by name, abstract or a path (kept in tier 1: stat and
// unlink see it); connect answers as Linux where none listens or the type differs.
func TestUnixListenConnectAccept(t *testing.T) {
	tier0 := useFakeTier0(t)
	task := newTestTask()
	for _, name := range []string{"@pith-test", "/tmp/sock", "sock2"} {
		l := call(task, unix.SYS_SOCKET, afUnix, sockStream|sockNonblock, 0)
		sa, n := sockaddrOf(name)
		if r := call(task, unix.SYS_BIND, uint64(l), addrOf(sa), n); r != 0 {
			t.Fatalf("%s: bind: %d", name, r)
		}
		c := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
		if r := call(task, unix.SYS_CONNECT, uint64(c), addrOf(sa), n); r != -linux.ECONNREFUSED {
			t.Errorf("%s: connect before listen: %d", name, r)
		}
		call(task, unix.SYS_LISTEN, uint64(l), 1)
		if r := call(task, unix.SYS_CONNECT, uint64(c), addrOf(sa), n); r != 0 {
			t.Fatalf("%s: connect: %d", name, r)
		}
		if ev := tier0.events(task, l); ev&in == 0 {
			t.Errorf("%s: listener's events %#x with a connection waiting", name, ev)
		}
		peer, plen := mem(128), mem(4)
		binary.LittleEndian.PutUint32(plen, 128)
		s := call(task, unix.SYS_ACCEPT4, uint64(l), addrOf(peer), addrOf(plen), sockNonblock)
		if s < 0 || binary.LittleEndian.Uint32(plen) != 2 {
			t.Fatalf("%s: accept: %d, peer address of %d bytes, want 2 (unbound)", name, s, binary.LittleEndian.Uint32(plen))
		}
		got, glen := mem(128), mem(4)
		binary.LittleEndian.PutUint32(glen, 128)
		call(task, unix.SYS_GETPEERNAME, uint64(c), addrOf(got), addrOf(glen))
		if l := binary.LittleEndian.Uint32(glen); !bytes.Equal(got[:l], sa[:n]) {
			t.Errorf("%s: the client's peer %q, want %q", name, got[:l], sa[:n])
		}
		write(task, c, "ping")
		if got, _ := read(task, s, 10); got != "ping" {
			t.Errorf("%s: accepted end read %q", name, got)
		}
		if r := call(task, unix.SYS_ACCEPT4, uint64(l), 0, 0, 0); r != -linux.EAGAIN {
			t.Errorf("%s: accept with none waiting: %d", name, r)
		}
		dup := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
		if r := call(task, unix.SYS_BIND, uint64(dup), addrOf(sa), n); r != -linux.EADDRINUSE {
			t.Errorf("%s: bind twice: %d", name, r)
		}
		dg := call(task, unix.SYS_SOCKET, afUnix, sockDgram, 0)
		want := int64(-linux.EPROTOTYPE)
		if name[0] == '@' {
			want = -linux.ECONNREFUSED // abstract names are looked up by type
		}
		if r := call(task, unix.SYS_CONNECT, uint64(dg), addrOf(sa), n); r != want {
			t.Errorf("%s: a datagram socket connecting: %d, want %d", name, r, want)
		}
		call(task, unix.SYS_CLOSE, uint64(l))
		c2 := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
		if r := call(task, unix.SYS_CONNECT, uint64(c2), addrOf(sa), n); r != -linux.ECONNREFUSED {
			t.Errorf("%s: connect after the listener closed: %d", name, r)
		}
	}
	if !unixNamed("/tmp/sock2") {
		t.Errorf("a relative path is not bound in the working directory")
	}
	for _, p := range []string{"/tmp/sock", "/tmp/sock2"} {
		st := mem(int(unsafe.Sizeof(syscall.Stat_t{})))
		name := mem(len(p) + 1)
		copy(name, p)
		if r := call(task, unix.SYS_STAT, addrOf(name), addrOf(st)); r != 0 || (*syscall.Stat_t)(unsafe.Pointer(&st[0])).Mode&syscall.S_IFMT != syscall.S_IFSOCK {
			t.Errorf("stat %s: %d, not a socket", p, r)
		}
		if r := call(task, unix.SYS_UNLINK, addrOf(name)); r != 0 || unixNamed(p) {
			t.Errorf("unlink %s: %d", p, r)
		}
	}
	d := call(task, unix.SYS_SOCKET, afUnix, sockDgram, 0)
	sa, n := sockaddrOf("/tmp/dgram")
	call(task, unix.SYS_BIND, uint64(d), addrOf(sa), n)
	unixUnlinkUnder("/tmp") // as rmdir does, once the host removed the directory
	if unixNamed("/tmp/dgram") {
		t.Errorf("a name outlives its directory")
	}
	c := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
	for _, tc := range []struct {
		name string
		want int64
	}{
		{"/tmp/sock", -linux.ENOENT}, {"/tmp/file", -linux.ECONNREFUSED}, {"@nothing", -linux.ECONNREFUSED},
	} {
		sa, n := sockaddrOf(tc.name)
		if r := call(task, unix.SYS_CONNECT, uint64(c), addrOf(sa), n); r != tc.want {
			t.Errorf("connect to %s: %d, want %d", tc.name, r, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		want int64
	}{
		{"/tmp/file", -linux.EADDRINUSE}, {"/nonexistent/sock", -linux.ENOENT}, {"/tmp/file/sock", -linux.ENOTDIR},
	} {
		sa, n := sockaddrOf(tc.name)
		if r := call(task, unix.SYS_BIND, uint64(c), addrOf(sa), n); r != tc.want {
			t.Errorf("bind to %s: %d, want %d", tc.name, r, tc.want)
		}
	}
}

// bind with the family alone gives an abstract name of five hex digits.
func TestUnixAutobind(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	s := call(task, unix.SYS_SOCKET, afUnix, sockDgram, 0)
	sa := mem(2)
	sa[0] = afUnix
	if r := call(task, unix.SYS_BIND, uint64(s), addrOf(sa), 2); r != 0 {
		t.Fatalf("bind: %d", r)
	}
	got, glen := mem(128), mem(4)
	binary.LittleEndian.PutUint32(glen, 128)
	call(task, unix.SYS_GETSOCKNAME, uint64(s), addrOf(got), addrOf(glen))
	if n := binary.LittleEndian.Uint32(glen); n != 8 || got[2] != 0 {
		t.Errorf("autobound name %q, want NUL and five hex digits", got[:n])
	}
	if r := call(task, unix.SYS_BIND, uint64(s), addrOf(sa), 2); r != -linux.EINVAL {
		t.Errorf("bind again: %d", r)
	}
}

// Datagrams go to a name or the connected peer; an unbound sender's address is empty; a
// receiver not connected back takes max_dgram_qlen+1 before EAGAIN; a closed connected
// peer is ECONNREFUSED once, then ENOTCONN.
func TestUnixDatagrams(t *testing.T) {
	tier0 := useFakeTier0(t)
	task := newTestTask()
	r := call(task, unix.SYS_SOCKET, afUnix, sockDgram|sockNonblock, 0)
	sa, n := sockaddrOf("@pith-dgram")
	call(task, unix.SYS_BIND, uint64(r), addrOf(sa), n)
	s := call(task, unix.SYS_SOCKET, afUnix, sockDgram|sockNonblock, 0)
	msg := mem(4)
	copy(msg, "ping")
	sent := 0
	for ; sent < 20; sent++ {
		if e := call(task, unix.SYS_SENDTO, uint64(s), addrOf(msg), 4, 0, addrOf(sa), n); e != 4 {
			if e != -linux.EAGAIN {
				t.Errorf("send %d: %d", sent, e)
			}
			break
		}
	}
	if sent != unixMaxDgramQlen+1 {
		t.Errorf("sent %d before the queue was full, want %d", sent, unixMaxDgramQlen+1)
	}
	call(task, unix.SYS_CONNECT, uint64(s), addrOf(sa), n)
	if ev := tier0.events(task, s); ev&out != 0 {
		t.Errorf("events %#x connected to a full queue, want not writable", ev)
	}
	from, flen, buf := mem(128), mem(4), mem(16)
	binary.LittleEndian.PutUint32(flen, 128)
	if e := call(task, unix.SYS_RECVFROM, uint64(r), addrOf(buf), 16, 0, addrOf(from), addrOf(flen)); e != 4 || binary.LittleEndian.Uint32(flen) != 0 {
		t.Errorf("recvfrom: %d, address of %d bytes; want 4, 0 (the sender is unbound)", e, binary.LittleEndian.Uint32(flen))
	}
	if ev := tier0.events(task, s); ev&out == 0 {
		t.Errorf("events %#x once the queue has room, want writable", ev)
	}
	call(task, unix.SYS_CLOSE, uint64(r))
	if e := write(task, s, "x"); e != -linux.ECONNREFUSED {
		t.Errorf("send to a closed peer: %d", e)
	}
	if e := write(task, s, "x"); e != -linux.ENOTCONN {
		t.Errorf("send again: %d", e)
	}
}

// A blocking read waits for a write, and a blocking accept for a connection.
func TestUnixBlocking(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	a, b := pair(t, task, sockStream)
	done := make(chan string)
	go func() {
		got, _ := read(task, b, 10)
		done <- got
	}()
	time.Sleep(10 * time.Millisecond)
	write(task, a, "late")
	if got := <-done; got != "late" {
		t.Errorf("blocked read got %q", got)
	}
	l := call(task, unix.SYS_SOCKET, afUnix, sockSeqpacket, 0)
	sa, n := sockaddrOf("@pith-blocking")
	call(task, unix.SYS_BIND, uint64(l), addrOf(sa), n)
	call(task, unix.SYS_LISTEN, uint64(l), 0)
	accepted := make(chan int64)
	go func() { accepted <- call(task, unix.SYS_ACCEPT, uint64(l), 0, 0) }()
	time.Sleep(10 * time.Millisecond)
	c := call(task, unix.SYS_SOCKET, afUnix, sockSeqpacket, 0)
	if r := call(task, unix.SYS_CONNECT, uint64(c), addrOf(sa), n); r != 0 {
		t.Fatalf("connect: %d", r)
	}
	if s := <-accepted; s < 0 {
		t.Errorf("blocked accept: %d", s)
	}
}

// sendmsg and recvmsg pass descriptors (SCM_RIGHTS): the receiver gets new ones for the
// same files; what does not fit in its control buffer is closed, with MSG_CTRUNC.
func TestUnixPassesDescriptors(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	a, b := pair(t, task, sockStream|sockNonblock)
	pfd := mem(8)
	call(task, unix.SYS_PIPE2, addrOf(pfd), 0)
	pr, pw := uint64(binary.LittleEndian.Uint32(pfd)), uint64(binary.LittleEndian.Uint32(pfd[4:]))
	sendmsg := func(data string, fds ...uint64) int64 {
		ctl := mem(cmsgHdrLen + 8)
		binary.LittleEndian.PutUint64(ctl, uint64(cmsgHdrLen+4*len(fds)))
		binary.LittleEndian.PutUint32(ctl[8:], solSocket)
		binary.LittleEndian.PutUint32(ctl[12:], scmRights)
		for i, fd := range fds {
			binary.LittleEndian.PutUint32(ctl[cmsgHdrLen+4*i:], uint32(fd))
		}
		iov, buf := mem(16), mem(len(data))
		copy(buf, data)
		binary.LittleEndian.PutUint64(iov, addrOf(buf))
		binary.LittleEndian.PutUint64(iov[8:], uint64(len(data)))
		m := &msghdr{iov: addrOf(iov), iovlen: 1, control: addrOf(ctl), controllen: uint64(len(ctl))}
		return call(task, unix.SYS_SENDMSG, uint64(a), uint64(uintptr(unsafe.Pointer(m))), 0)
	}
	recvmsg := func(ctlLen int) (*msghdr, []byte, int64) {
		ctl, iov, buf := mem(max(ctlLen, 1)), mem(16), mem(16)
		binary.LittleEndian.PutUint64(iov, addrOf(buf))
		binary.LittleEndian.PutUint64(iov[8:], 16)
		m := &msghdr{iov: addrOf(iov), iovlen: 1, control: addrOf(ctl), controllen: uint64(ctlLen)}
		r := call(task, unix.SYS_RECVMSG, uint64(b), uint64(uintptr(unsafe.Pointer(m))), 0)
		return m, ctl, r
	}
	if r := sendmsg("x", pr, pw); r != 1 {
		t.Fatalf("sendmsg: %d", r)
	}
	call(task, unix.SYS_CLOSE, pr) // the message holds the pipe's read end open
	m, ctl, r := recvmsg(64)
	if r != 1 || m.controllen != cmsgHdrLen+8 || m.flags != 0 {
		t.Fatalf("recvmsg: %d, control %d bytes, flags %#x", r, m.controllen, m.flags)
	}
	gotR := binary.LittleEndian.Uint32(ctl[cmsgHdrLen:])
	write(task, int64(pw), "through")
	if got, _ := read(task, int64(gotR), 16); got != "through" {
		t.Errorf("read through the passed read end: %q", got)
	}
	sendmsg("y", pw)
	if m, _, r := recvmsg(cmsgHdrLen); r != 1 || m.flags != msgCtrunc || m.controllen != 0 {
		t.Errorf("recvmsg with no room for a descriptor: %d, control %d bytes, flags %#x", r, m.controllen, m.flags)
	}
	gotW := binary.LittleEndian.Uint32(ctl[cmsgHdrLen+4:])
	call(task, unix.SYS_CLOSE, pw)
	call(task, unix.SYS_CLOSE, uint64(gotW))
	if _, r := read(task, int64(gotR), 16); r != 0 {
		t.Errorf("read of the pipe with every write end closed: %d, want 0 (end of file)", r)
	}
	if r := sendmsg("z", 999); r != -linux.EBADF {
		t.Errorf("passing a descriptor that is not open: %d", r)
	}
}

// SO_PEERCRED answers the app's own credentials for a connected socket, Linux's "none"
// for another; SO_TYPE, SO_DOMAIN and SO_SNDBUF as Linux.
func TestUnixOptions(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	a, _ := pair(t, task, sockSeqpacket)
	lone := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
	get := func(fd int64, name uint64, n int) []byte {
		v, l := mem(n), mem(4)
		binary.LittleEndian.PutUint32(l, uint32(n))
		if r := call(task, unix.SYS_GETSOCKOPT, uint64(fd), solSocket, name, addrOf(v), addrOf(l)); r != 0 {
			t.Errorf("getsockopt %d: %d", name, r)
		}
		return v[:binary.LittleEndian.Uint32(l)]
	}
	if c := get(a, soPeercred, 12); !bytes.Equal(c, []byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("SO_PEERCRED of a pair: %v, want pid 1, uid 0, gid 0", c)
	}
	if c := get(lone, soPeercred, 12); !bytes.Equal(c, []byte{0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255}) {
		t.Errorf("SO_PEERCRED unconnected: %v", c)
	}
	if v := get(a, soType, 4); v[0] != sockSeqpacket {
		t.Errorf("SO_TYPE %v", v)
	}
	if v := get(a, soDomain, 4); v[0] != afUnix {
		t.Errorf("SO_DOMAIN %v", v)
	}
	v := mem(4)
	binary.LittleEndian.PutUint32(v, 1000)
	call(task, unix.SYS_SETSOCKOPT, uint64(a), solSocket, soSndbuf, addrOf(v), 4)
	if got := binary.LittleEndian.Uint32(get(a, soSndbuf, 4)); got != unixMinSndbuf {
		t.Errorf("SO_SNDBUF set to 1000 reads %d, want Linux's minimum %d", got, unixMinSndbuf)
	}
	if r := call(task, unix.SYS_SOCKETPAIR, afInet, sockStream, 0, addrOf(mem(8))); r != -linux.EOPNOTSUPP {
		t.Errorf("socketpair(AF_INET): %d", r)
	}
}

// setTimeo sets SO_RCVTIMEO or SO_SNDTIMEO on fd as a struct timeval.
func setTimeo(task *Task, fd int64, opt uint64, d time.Duration) int64 {
	tv := mem(16)
	binary.LittleEndian.PutUint64(tv, uint64(d/time.Second))
	binary.LittleEndian.PutUint64(tv[8:], uint64(d%time.Second/time.Microsecond))
	return call(task, unix.SYS_SETSOCKOPT, uint64(fd), solSocket, opt, addrOf(tv), 16)
}

// SO_RCVTIMEO and SO_SNDTIMEO limit a blocking receive, accept, send and connect: EAGAIN
// when the time is up (or the part a stream send made), a signal then ends the wait with
// EINTR, never a restart; getsockopt reads them back.
func TestUnixTimeouts(t *testing.T) {
	useFakeTier0(t)
	task := newTestTask()
	const limit = 50 * time.Millisecond
	timed := func(what string, want int64, f func() int64) {
		t.Helper()
		t0 := time.Now()
		if r := f(); r != want {
			t.Errorf("%s: %d, want %d", what, r, want)
		}
		if took := time.Since(t0); took < limit || took > limit+2*time.Second {
			t.Errorf("%s: took %v, want about %v", what, took, limit)
		}
	}

	a, b := pair(t, task, sockStream)
	if r := setTimeo(task, b, soRcvtimeo, limit); r != 0 {
		t.Fatalf("SO_RCVTIMEO: %d", r)
	}
	got, gotLen := mem(16), mem(4)
	binary.LittleEndian.PutUint32(gotLen, 16)
	if r := call(task, unix.SYS_GETSOCKOPT, uint64(b), solSocket, soRcvtimeo, addrOf(got), addrOf(gotLen)); r != 0 ||
		binary.LittleEndian.Uint64(got[8:]) != uint64(limit/time.Microsecond) || binary.LittleEndian.Uint32(gotLen) != 16 {
		t.Errorf("getsockopt SO_RCVTIMEO: %d, %x", r, got)
	}
	timed("read", -linux.EAGAIN, func() int64 { _, r := read(task, b, 10); return r })
	write(task, a, "x")
	if s, r := read(task, b, 10); s != "x" {
		t.Errorf("read after the timeout: %q %d", s, r)
	}

	// A send that fills the peer's buffer sends what fits, then times out: that part.
	setTimeo(task, a, soSndtimeo, limit)
	big := string(make([]byte, 4*unixBufDefault))
	timed("write of more than fits", -1, func() int64 {
		if r := write(task, a, big); r <= 0 || r >= int64(len(big)) {
			return r
		}
		return -1
	})
	timed("write to a full buffer", -linux.EAGAIN, func() int64 { return write(task, a, "y") })

	l := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
	sa, n := sockaddrOf("@pith-timeouts")
	call(task, unix.SYS_BIND, uint64(l), addrOf(sa), n)
	call(task, unix.SYS_LISTEN, uint64(l), 0)
	setTimeo(task, l, soRcvtimeo, limit)
	timed("accept", -linux.EAGAIN, func() int64 { return call(task, unix.SYS_ACCEPT, uint64(l), 0, 0) })
	c1 := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
	if r := call(task, unix.SYS_CONNECT, uint64(c1), addrOf(sa), n); r != 0 { // backlog 0 takes one
		t.Fatalf("connect: %d", r)
	}
	c2 := call(task, unix.SYS_SOCKET, afUnix, sockStream, 0)
	setTimeo(task, c2, soSndtimeo, limit)
	timed("connect to a full backlog", -linux.EAGAIN, func() int64 { return call(task, unix.SYS_CONNECT, uint64(c2), addrOf(sa), n) })

	// With a timeout, a signal ends the wait with EINTR (no restart); without, errRestart.
	for _, tc := range []struct {
		timeout time.Duration
		want    int64
	}{{time.Minute, -linux.EINTR}, {0, -errRestart}} {
		task := newTestTask()
		withHandler(task, sigUSR1)
		_, b := pair(t, task, sockStream)
		setTimeo(task, b, soRcvtimeo, tc.timeout)
		done := make(chan int64, 1)
		go func() {
			task.beginCall()
			_, r := read(task, b, 10)
			done <- r
		}()
		time.Sleep(20 * time.Millisecond)
		task.proc.post(task, sigUSR1)
		select {
		case r := <-done:
			if r != tc.want {
				t.Errorf("timeout %v: a signal made the read answer %d, want %d", tc.timeout, r, tc.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("timeout %v: a signal did not end the read", tc.timeout)
		}
	}
	if r := setTimeo(task, b, soRcvtimeo, 0); r != 0 {
		t.Errorf("clearing SO_RCVTIMEO: %d", r)
	}
	tv := mem(16)
	binary.LittleEndian.PutUint64(tv[8:], 1e6)
	if r := call(task, unix.SYS_SETSOCKOPT, uint64(b), solSocket, soRcvtimeo, addrOf(tv), 16); r != -linux.EDOM {
		t.Errorf("a timeval of 1e6 microseconds: %d, want EDOM", r)
	}
}
