// Command ticker is a long-running test program for pith's lifecycle commands: it prints
// "start", then "tick N" every -every, and exits with -exit after -n ticks (never if -n
// is negative); on SIGTERM it prints "terminated" and exits with -code. -show prints,
// after "start", what pith run's flags set: the variables named, the file named, the
// working directory and the number of CPUs.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	every := flag.Duration("every", time.Second, "time between ticks")
	n := flag.Int("n", -1, "ticks before exiting with -exit; negative: tick until signalled")
	exit := flag.Int("exit", 0, "exit status after -n ticks")
	code := flag.Int("code", 0, "exit status on SIGTERM")
	vars := flag.String("show-env", "", "variables to print, comma-separated")
	file := flag.String("show-file", "", "a file to print")
	show := flag.Bool("show", false, "print the working directory and CPU count")
	flag.Parse()
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Println("start")
	for _, v := range strings.Split(*vars, ",") {
		if v != "" {
			fmt.Printf("%s=%s\n", v, os.Getenv(v))
		}
	}
	if *file != "" {
		b, err := os.ReadFile(*file)
		fmt.Printf("file %q %v\n", b, err)
	}
	if *show {
		wd, _ := os.Getwd()
		fmt.Printf("cwd %s cpus %d\n", wd, runtime.NumCPU())
	}
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
