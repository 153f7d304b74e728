// Command ticker is a long-running test program for pith's lifecycle commands: it prints
// "start", then "tick N" every -every, and exits with -exit after -n ticks (never if -n
// is negative); on SIGTERM it prints "terminated" and exits with -code.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	every := flag.Duration("every", time.Second, "time between ticks")
	n := flag.Int("n", -1, "ticks before exiting with -exit; negative: tick until signalled")
	exit := flag.Int("exit", 0, "exit status after -n ticks")
	code := flag.Int("code", 0, "exit status on SIGTERM")
	flag.Parse()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("start")
	fmt.Fprintln(os.Stderr, "ticker on stderr")
	t := time.NewTicker(*every)
	for i := 0; *n < 0 || i < *n; i++ {
		select {
		case <-t.C:
			fmt.Printf("tick %d\n", i)
		case <-term:
			fmt.Println("terminated")
			os.Exit(*code)
		}
	}
	fmt.Println("done")
	os.Exit(*exit)
}
