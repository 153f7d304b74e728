// Command probe is a test app for pith run: each subcommand exercises one behaviour the
// end-to-end tests compare with a native run.
package main

import (
	"fmt"
	"os"
)

// modes maps each subcommand to the function that runs it; its arguments, if any, are
// os.Args[2:].
var modes = map[string]func(){
	"args":          args,
	"env":           env,
	"exit":          exitWith,
	"panic":         panicMode,
	"stderr":        stderr,
	"nil":           nilDeref,
	"threads":       threads,
	"spin":          spin,
	"sleep":         sleep,
	"signal":        signalSelf,
	"files":         files,
	"tmpops":        tmpops,
	"escape":        escape,
	"spawn":         spawn,
	"longsleep":     longSleep,
	"stopself":      stopSelf,
	"sigchld":       sigchld,
	"exeswap":       exeSwap,
	"read":          read,
	"write":         write,
	"create":        create,
	"layer":         layer,
	"cat":           cat,
	"notify":        notify,
	"killself":      killSelf,
	"ids":           ids,
	"ignorepending": ignorePending,
	"efault":        efault,
	"readv":         readv,
	"badtid":        badTID,
	"tstppending":   tstpPending,
	"shmfixed":      shmFixed,
	"idloop":        idLoop,
	"eintr":         eintr,
	"loopback":      loopback,
	"neterrors":     neterrors,
	"interfaces":    interfaces,
	"sockopts":      sockopts,
	"udpnoroom":     udpNoRoom,
	"pipedeadlines": pipeDeadlines,
	"serve":         serve,
	"fetch":         fetch,
	"names":         names,
	"tls":           tlsLoopback,
	"unix":          unixSockets,
	"hog":           hog,
	"forever":       forever,
	"fastcalls":     fastCalls,
	"shortsleeps":   shortSleeps,
}

func main() {
	if len(os.Args) < 2 {
		fmt.Println("probe: no command")
		os.Exit(3)
	}
	mode, ok := modes[os.Args[1]]
	if !ok {
		fmt.Println("probe: unknown command", os.Args[1])
		os.Exit(3)
	}
	mode()
}
