// Command bes is the Backup Engine Service: the appliance daemon (bes serve)
// and the operator command line. All logic lives in package appliance/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"runtime/trace"
	"syscall"

	"golang.org/x/term"

	"bes/appliance/cli"
)

// tuneGC keeps the heap close to what is live: backups and restores hold
// large noscan buffers, so collecting more often costs little CPU and keeps
// peak memory down. No memory limit: near a limit the collector runs
// continuously and a big backup slows down several times. GOGC still wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
}

func main() {
	if path := os.Getenv("BES_CPUPROFILE"); path != "" { // developer aid: go tool pprof
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if path := os.Getenv("BES_TRACE"); path != "" { // developer aid: go tool trace
		if f, err := os.Create(path); err == nil {
			trace.Start(f)
			defer trace.Stop()
		}
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		IsTerminal: func(fd uintptr) bool { return term.IsTerminal(int(fd)) },
	})
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bes: %v\n", err)
	}
	code := cli.ExitCode(err)
	if code != 0 {
		pprof.StopCPUProfile()
		trace.Stop()
		os.Exit(code)
	}
}
