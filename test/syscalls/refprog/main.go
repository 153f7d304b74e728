// Command refprog runs the kernel self-test natively: test/syscalls traces it under strace
// to learn which system calls Go's runtime makes for that workload.
package main

import (
	"os"
	"runtime"

	"github.com/pithvm/pith/guest/selftest"
)

func main() {
	if !selftest.Run(os.Stdout, selftest.Config{Memory: 64 << 20, CPUs: runtime.NumCPU()}) {
		os.Exit(1)
	}
}
