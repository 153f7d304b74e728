// Command pith runs programs as unikernels on KVM.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/pithvm/pith/host/cli"
)

func main() {
	os.Exit(run())
}

// run is pith's command line, with a CPU profile of the whole process written to
// $PITH_CPUPROFILE where it is set: the monitor's own share of a run (its netstack, the
// file service, its vCPU threads' exits) is then `go tool pprof`'s to read.
func run() int {
	if path := os.Getenv("PITH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "pith: PITH_CPUPROFILE: %v\n", err)
			return 125
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	return cli.Main(os.Args[1:])
}
