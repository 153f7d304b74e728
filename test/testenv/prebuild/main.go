// Command prebuild builds pith, its kernel and the end-to-end tests' programs into one
// directory, for running the tests with PITH_TEST_BIN where there is no Go or gcc.
package main

import (
	"fmt"
	"os"

	"github.com/pithvm/pith/test/testenv"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: prebuild DIR")
		os.Exit(2)
	}
	if err := testenv.BuildAll(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "prebuild:", err)
		os.Exit(1)
	}
}
