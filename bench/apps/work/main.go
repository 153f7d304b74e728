// Command work is bench/run's workload, run natively and inside pith: it times a trivial
// system call and a CPU-bound loop itself, so that boot time does not count.
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	switch os.Args[1] {
	case "syscall":
		const n = 200000
		t0 := time.Now()
		for i := 0; i < n; i++ {
			syscall.Getppid()
		}
		fmt.Println(time.Since(t0).Nanoseconds() / n)
	case "gettid":
		// A call tier 0 serves (pith answers getppid without a trap).
		const n = 200000
		t0 := time.Now()
		for i := 0; i < n; i++ {
			syscall.Gettid()
		}
		fmt.Println(time.Since(t0).Nanoseconds() / n)
	case "sigaction":
		// A call tier 1 serves: reading SIGUSR1's action.
		const n = 50000
		var old [4]uint64
		t0 := time.Now()
		for i := 0; i < n; i++ {
			syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(syscall.SIGUSR1), 0, uintptr(unsafe.Pointer(&old[0])), 8, 0, 0)
		}
		fmt.Println(time.Since(t0).Nanoseconds() / n)
	case "output":
		// 256 MiB to stdout in 4 KiB writes; the rate goes to stderr.
		buf := make([]byte, 4096)
		for i := range buf {
			buf[i] = 'x'
		}
		const total = 256 << 20
		t0 := time.Now()
		for n := 0; n < total; n += len(buf) {
			os.Stdout.Write(buf)
		}
		fmt.Fprintln(os.Stderr, int(float64(total)/time.Since(t0).Seconds()/1e6))
	case "cpu":
		buf := make([]byte, 1<<20)
		t0 := time.Now()
		sum := sha256.Sum256(buf)
		for i := 0; i < 300; i++ {
			sum = sha256.Sum256(append(buf[:0:0], sum[:]...))
			h := sha256.New()
			h.Write(buf)
			copy(buf, h.Sum(nil))
		}
		fmt.Println(time.Since(t0).Microseconds())
	}
}
