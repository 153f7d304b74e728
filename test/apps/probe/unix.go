package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// unixSockets: AF_UNIX sockets as Go programs use them: a stream listener at a path and
// at an abstract name, datagrams, socketpair, seqpacket, the names each end reports,
// EPIPE and SIGPIPE, SO_PEERCRED, descriptors passed (SCM_RIGHTS) and what failures
// answer. Paths and abstract names are printed with their varying parts replaced.
func unixSockets() {
	dir, err := os.MkdirTemp("", "probe-unix")
	if err != nil {
		fmt.Println("mkdirtemp", err)
		os.Exit(1)
	}
	defer os.RemoveAll(dir)
	abstract := "@probe-unix-" + strconv.Itoa(os.Getpid())
	name := strings.NewReplacer(dir, "DIR", abstract, "@NAME").Replace
	addr := func(a net.Addr) string {
		if a == nil {
			return "<nil>"
		}
		return name(a.String())
	}

	stream := filepath.Join(dir, "stream.sock")
	for _, where := range []string{stream, abstract} {
		ln, err := net.Listen("unix", where)
		if err != nil {
			fmt.Println("listen:", err)
			os.Exit(1)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				fmt.Println(name(where), "accepted: local", addr(c.LocalAddr()), "remote", addr(c.RemoteAddr()))
				go func() { io.Copy(c, c); c.Close() }()
			}
		}()
		c, err := net.Dial("unix", where)
		if err != nil {
			fmt.Println("dial:", err)
			os.Exit(1)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		sent := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, many times the socket's buffer
		go func() { c.Write(sent); c.(*net.UnixConn).CloseWrite() }()
		got, err := io.ReadAll(c)
		fmt.Println(name(where), "echoed", len(got), "bytes, same:", bytes.Equal(got, sent), err)
		fmt.Println(name(where), "dialled: local", addr(c.LocalAddr()), "remote", addr(c.RemoteAddr()), "listener", addr(ln.Addr()))
		c.Close()
		if where == stream {
			fi, err := os.Stat(stream)
			fmt.Println("the path is a socket:", err == nil && fi.Mode()&os.ModeSocket != 0)
			_, err = net.Listen("unix", stream)
			fmt.Println("listen there again: in use:", errors.Is(err, syscall.EADDRINUSE))
			_, err = net.Dial("unixgram", stream)
			fmt.Println("a datagram socket dialling it: wrong type:", errors.Is(err, syscall.EPROTOTYPE))
		}
		ln.Close() // a path is unlinked
		_, err = net.Dial("unix", where)
		fmt.Println(name(where), "dial after close: missing:", errors.Is(err, syscall.ENOENT), "refused:", errors.Is(err, syscall.ECONNREFUSED))
	}
	_, err = os.Stat(stream)
	fmt.Println("the path is gone:", os.IsNotExist(err))

	// Datagrams between two bound sockets, both ways, a truncated one, and a send to a
	// closed peer.
	srv, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "server.sock"), Net: "unixgram"})
	if err != nil {
		fmt.Println("listen unixgram:", err)
		os.Exit(1)
	}
	cli, err := net.DialUnix("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "client.sock"), Net: "unixgram"}, srv.LocalAddr().(*net.UnixAddr))
	if err != nil {
		fmt.Println("dial unixgram:", err)
		os.Exit(1)
	}
	srv.SetDeadline(time.Now().Add(10 * time.Second))
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	cli.Write([]byte("one"))
	cli.Write([]byte("two two"))
	cli.Write([]byte("a long datagram"))
	buf := make([]byte, 64)
	for range 2 {
		n, from, err := srv.ReadFromUnix(buf)
		fmt.Printf("unixgram %q from %s %v\n", buf[:n], addr(from), err)
		srv.WriteToUnix(bytes.ToUpper(buf[:n]), from)
		n, err = cli.Read(buf)
		fmt.Printf("unixgram reply %q %v\n", buf[:n], err)
	}
	n, _, flags, _, err := srv.ReadMsgUnix(buf[:6], nil)
	fmt.Printf("unixgram truncated %q %v %v\n", buf[:n], flags&syscall.MSG_TRUNC != 0, err)
	fmt.Println("unixgram names:", addr(cli.LocalAddr()), addr(cli.RemoteAddr()), addr(srv.LocalAddr()), addr(srv.RemoteAddr()))
	srv.Close()
	_, err = cli.Write([]byte("lost"))
	fmt.Println("unixgram to a closed peer: refused:", errors.Is(err, syscall.ECONNREFUSED))
	_, err = cli.Write([]byte("lost"))
	fmt.Println("and again: not connected:", errors.Is(err, syscall.ENOTCONN))
	cli.Close()

	// Seqpacket: a connection that keeps message boundaries.
	ln, err := net.Listen("unixpacket", filepath.Join(dir, "packet.sock"))
	if err != nil {
		fmt.Println("listen unixpacket:", err)
		os.Exit(1)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write([]byte("first message"))
		c.Write([]byte("second"))
		c.Close()
	}()
	pc, err := net.Dial("unixpacket", ln.Addr().String())
	if err != nil {
		fmt.Println("dial unixpacket:", err)
		os.Exit(1)
	}
	pc.SetDeadline(time.Now().Add(10 * time.Second))
	for range 3 {
		n, err := pc.Read(buf[:5])
		fmt.Printf("unixpacket %q %v\n", buf[:n], err)
	}
	pc.Close()
	ln.Close()

	socketpairs()
	passDescriptors(dir)

	_, err = syscall.Socketpair(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	fmt.Println("socketpair(AF_INET):", err)
}

// socketpairs: stream and datagram pairs, as net.FileConn takes them, SO_PEERCRED, and
// writes to a closed peer.
func socketpairs() {
	for _, typ := range []int{syscall.SOCK_STREAM, syscall.SOCK_DGRAM} {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, typ, 0)
		if err != nil {
			fmt.Println("socketpair:", err)
			continue
		}
		var conns [2]net.Conn
		for i, fd := range fds {
			f := os.NewFile(uintptr(fd), "pair")
			conns[i], err = net.FileConn(f)
			f.Close()
			if err != nil {
				fmt.Println("fileconn:", err)
				return
			}
			conns[i].SetDeadline(time.Now().Add(10 * time.Second))
		}
		conns[0].Write([]byte("ab"))
		conns[0].Write([]byte("cd"))
		buf := make([]byte, 64)
		n, err := conns[1].Read(buf)
		if typ == syscall.SOCK_STREAM && n == 2 { // the second write may come apart from the first
			var m int
			m, err = conns[1].Read(buf[n:])
			n += m
		}
		fmt.Printf("socketpair type %d: read %q %v, names %s %s\n", typ, buf[:n], err, conns[0].LocalAddr(), conns[1].RemoteAddr())
		conns[0].Close()
		conns[1].Close()
	}

	fds, _ := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	cred, err := syscall.GetsockoptUcred(fds[0], syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	fmt.Println("SO_PEERCRED is this process:", err == nil && int(cred.Pid) == os.Getpid() && int(cred.Uid) == os.Getuid() && int(cred.Gid) == os.Getgid())
	typ, err := syscall.GetsockoptInt(fds[0], syscall.SOL_SOCKET, syscall.SO_TYPE)
	fmt.Println("SO_TYPE", typ, err)

	sigpipe := make(chan os.Signal, 4)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	got := func(wait time.Duration) bool {
		select {
		case <-sigpipe:
			return true
		case <-time.After(wait):
			return false
		}
	}
	syscall.Close(fds[1])
	_, err = syscall.Write(fds[0], []byte("x"))
	fmt.Println("stream write to a closed peer:", err, "SIGPIPE:", got(5*time.Second))
	err = syscall.Sendmsg(fds[0], []byte("x"), nil, nil, syscall.MSG_NOSIGNAL)
	fmt.Println("with MSG_NOSIGNAL:", err, "SIGPIPE:", got(100*time.Millisecond))
	syscall.Close(fds[0])
	fds, _ = syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET, 0)
	syscall.Close(fds[1])
	_, err = syscall.Write(fds[0], []byte("x"))
	fmt.Println("seqpacket write to a closed peer:", err, "SIGPIPE:", got(100*time.Millisecond))
	syscall.Close(fds[0])
}

// passDescriptors passes a pipe's read end and an open file over a socketpair
// (SCM_RIGHTS), closes them, and reads both through the descriptors received.
func passDescriptors(dir string) {
	fds, _ := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	r, w, _ := os.Pipe()
	file, _ := os.Create(filepath.Join(dir, "passed"))
	file.WriteString("the file's contents")
	err := syscall.Sendmsg(fds[0], []byte("fds"), syscall.UnixRights(int(r.Fd()), int(file.Fd())), nil, 0)
	r.Close()
	file.Close()
	buf, oob := make([]byte, 64), make([]byte, 64)
	n, oobn, flags, _, err2 := syscall.Recvmsg(fds[1], buf, oob, 0)
	fmt.Printf("passed: sent %v, received %q, flags %#x %v\n", err, buf[:n], flags, err2)
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		fmt.Println("control messages:", len(msgs), err)
		return
	}
	got, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != 2 {
		fmt.Println("rights:", got, err)
		return
	}
	w.WriteString("through the pipe")
	w.Close()
	n, err = syscall.Read(got[0], buf)
	fmt.Printf("read the passed pipe: %q %v\n", buf[:n], err)
	n, err = syscall.Pread(got[1], buf, 0)
	fmt.Printf("read the passed file: %q %v\n", buf[:n], err)
	syscall.Close(got[0])
	syscall.Close(got[1])
}
