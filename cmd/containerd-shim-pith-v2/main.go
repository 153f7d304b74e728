// Command containerd-shim-pith-v2 is containerd's runtime v2 shim for pith
// (io.containerd.pith.v2): it runs each container as a unikernel.
package main

import (
	"os"

	"github.com/containerd/containerd/runtime/v2/shim"

	pithshim "github.com/pithvm/pith/host/shim"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == pithshim.PauseArg {
		pithshim.Pause()
	}
	shim.Run(pithshim.RuntimeName, pithshim.New, func(c *shim.Config) {
		// The shim waits for its monitor itself; pith's own helpers (the teardown holder)
		// outlive the monitor by design and belong to init, not to the shim.
		c.NoSubreaper, c.NoReaper = true, true
	})
}
