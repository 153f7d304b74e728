// Command pith runs programs as unikernels on KVM.
package main

import (
	"os"

	"github.com/pithvm/pith/host/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
