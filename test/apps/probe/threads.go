package main

import (
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Goroutines on several threads, synchronising through futexes.
func threads() {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				mu.Lock()
				total++
				mu.Unlock()
				if j%100 == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()
	fmt.Println("total", total)
}

// A CPU-bound goroutine with no calls must not starve the ticker (async preemption).
func spin() {
	runtime.GOMAXPROCS(1)
	go func() {
		for {
		}
	}()
	t := time.NewTicker(5 * time.Millisecond)
	for i := 0; i < 5; i++ {
		<-t.C
	}
	fmt.Println("ticked")
}

// A short sleep, and whether it lasted as long as asked.
func sleep() {
	t0 := time.Now()
	time.Sleep(20 * time.Millisecond)
	fmt.Println("slept", time.Since(t0) >= 20*time.Millisecond)
}

// A timeout of "forever" (sleep infinity passes the largest time_t) sleeps.
func longSleep() {
	done := make(chan struct{})
	go func() {
		ts := syscall.Timespec{Sec: 1<<63 - 1}
		// A handled signal for this thread ends the sleep with EINTR, natively as in
		// pith (where one reached it in ~1 run of 20): only a sleep that ends by
		// itself counts.
		for syscall.Nanosleep(&ts, nil) == syscall.EINTR {
		}
		close(done)
	}()
	select {
	case <-done:
		fmt.Println("woke at once")
	case <-time.After(300 * time.Millisecond):
		fmt.Println("still sleeping")
	}
}

// forever sleeps until a signal ends it.
func forever() {
	fmt.Println("sleeping until a signal")
	for {
		time.Sleep(time.Hour)
	}
}

// shortSleeps makes 200 nanosleeps of 10 us through the syscall package (which tier 1
// passes on to tier 0) and says whether they took less than 1 ms each on average: tier 0
// stretches the sleeps of tier 1's own runtime to 1 ms, never an app's.
func shortSleeps() {
	const n = 200
	ts := syscall.Timespec{Nsec: 10_000}
	start := time.Now()
	for i := 0; i < n; i++ {
		if err := syscall.Nanosleep(&ts, nil); err != nil {
			fmt.Println("nanosleep:", err)
			return
		}
	}
	if took := time.Since(start); took >= n*time.Millisecond {
		fmt.Printf("%d sleeps of 10us took %v\n", n, took)
		return
	}
	fmt.Println("ok")
}

// fastCalls has goroutines pass checked data through pipes (system calls that tier 1
// serves, which pith switches to without a trap) while others copy and hash memory with
// the vector registers and spin, so that the runtime preempts them with signals and
// collects garbage throughout: every byte must arrive, every hash must match.
func fastCalls() {
	const rounds = 20000
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for p := 0; p < 3; p++ {
		var fds [2]int
		if err := syscall.Pipe(fds[:]); err != nil {
			fmt.Println("pipe:", err)
			return
		}
		wg.Add(2)
		go func(w int) {
			defer wg.Done()
			buf := make([]byte, 64)
			for i := 0; i < rounds; i++ {
				for j := range buf {
					buf[j] = byte(i + j + w)
				}
				if n, err := syscall.Write(w, buf); n != len(buf) || err != nil {
					errs <- fmt.Sprint("write: ", n, err)
					return
				}
			}
			syscall.Close(w)
		}(fds[1])
		go func(r int) {
			defer wg.Done()
			buf := make([]byte, 64)
			for i := 0; i < rounds; i++ {
				if n, err := io.ReadFull(fdReader(r), buf); n != len(buf) || err != nil {
					errs <- fmt.Sprint("read: ", n, err)
					return
				}
				for j := range buf {
					if buf[j] != byte(i+j+fds[1]) {
						errs <- fmt.Sprintf("round %d byte %d: %d", i, j, buf[j])
						return
					}
				}
			}
		}(fds[0])
	}
	stop := make(chan struct{})
	var work sync.WaitGroup
	for g := 0; g < 3; g++ {
		work.Add(1)
		go func(g int) {
			defer work.Done()
			// Go copies 129-256 bytes through X0-X15; hashing a long buffer keeps
			// the vector registers busy in assembly most of the time.
			src := make([]byte, 200)
			for i := range src {
				src[i] = byte(i * (g + 3))
			}
			want := sha256.Sum256(src)
			long := make([]byte, 64<<10)
			for i := range long {
				long[i] = byte(i * (g + 7))
			}
			wantLong := sha256.Sum256(long)
			f := 1.0
			for n := 0; ; n++ {
				select {
				case <-stop:
					if f != f { // NaN: a vector register changed under the loop
						errs <- "float state lost"
					}
					return
				default:
				}
				dst := make([]byte, len(src))
				copy(dst, src)
				if sha256.Sum256(dst) != want {
					errs <- fmt.Sprint("copy ", g, " corrupted at ", n)
					return
				}
				syscall.Syscall(syscall.SYS_READ, ^uintptr(0), 0, 0) // a call tier 1 answers (EBADF), then back to vector work
				if sha256.Sum256(long) != wantLong {
					errs <- fmt.Sprint("hash ", g, " wrong at ", n)
					return
				}
				f = f*1.0000001 + 0.5/f
				if n%200 == 0 {
					runtime.GC()
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	work.Wait()
	close(errs)
	for e := range errs {
		fmt.Println("error:", e)
		return
	}
	fmt.Println("fast calls: all data arrived intact")
}

// fdReader reads a descriptor with read(2).
type fdReader int

func (r fdReader) Read(b []byte) (int, error) {
	n, err := syscall.Read(int(r), b)
	if n < 0 {
		n = 0
	}
	if err == nil && n == 0 {
		err = io.EOF
	}
	return n, err
}
