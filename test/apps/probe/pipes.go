package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"syscall"
	"time"
)

// pipeDeadlines reads and writes a pipe with deadlines, which os.File honours only for a
// descriptor Go's netpoller can watch (epoll on a pipe), then watches a pipe's ends
// with epoll directly, level- and edge-triggered.
func pipeDeadlines() {
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Println("pipe:", err)
		return
	}
	r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = r.Read(make([]byte, 1))
	fmt.Println("empty pipe, read deadline:", errors.Is(err, os.ErrDeadlineExceeded), err)
	go func() {
		time.Sleep(20 * time.Millisecond)
		w.Write([]byte("late"))
	}()
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 16)
	n, err := r.Read(b)
	fmt.Printf("a write 20 ms later: %q %v\n", b[:n], err)
	w.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err = w.Write(make([]byte, 1<<20))
	fmt.Println("a write into a pipe no one reads, write deadline:", n > 0 && n < 1<<20, errors.Is(err, os.ErrDeadlineExceeded))
	w.Close()
	r.SetReadDeadline(time.Time{})
	rest, err := io.ReadAll(r)
	fmt.Println("the rest:", len(rest) == n, err)
	r.Close()

	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		fmt.Println("pipe2:", err)
		return
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		fmt.Println("epoll_create1:", err)
		return
	}
	add := func(fd int, events uint32) {
		ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
		if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			fmt.Println("epoll_ctl:", err)
		}
	}
	wait := func(what string) {
		evs := make([]syscall.EpollEvent, 4)
		n, err := syscall.EpollWait(ep, evs, 100)
		fmt.Print(what, ":")
		evs = evs[:max(n, 0)]
		slices.SortFunc(evs, func(a, b syscall.EpollEvent) int { return int(a.Fd - b.Fd) }) // epoll's order is its own
		for _, e := range evs {
			fmt.Printf(" fd %d %#x", e.Fd-int32(p[0]), e.Events)
		}
		fmt.Println("", err)
	}
	const epollET = 1 << 31
	add(p[0], syscall.EPOLLIN|syscall.EPOLLRDHUP|epollET)
	add(p[1], syscall.EPOLLOUT)
	wait("empty")
	syscall.Write(p[1], []byte("x"))
	wait("written")
	wait("written, edge taken")
	syscall.Read(p[0], make([]byte, 8))
	syscall.Close(p[1])
	wait("writer closed")
	syscall.Close(p[0])
	syscall.Close(ep)
}
