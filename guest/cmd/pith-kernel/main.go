// Command pith-kernel is the pith guest kernel: tier 0 (package tier0) is linked in as the
// ELF entry point, and this program's own Go runtime and main are tier 1.
package main

import (
	"fmt"
	"os"

	_ "github.com/pithvm/pith/guest/tier0" // the supervisor, entered through the ELF entry
)

func main() {
	fmt.Println("hello from tier 1", os.Args)
	os.Exit(3)
}
