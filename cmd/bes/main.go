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

func main() { os.Exit(run()) }

func run() int {
	defer profile()()
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		IsTerminal: func(fd uintptr) bool { return term.IsTerminal(int(fd)) },
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "bes: %v\n", err)
	}
	return cli.ExitCode(err)
}

// tuneGC keeps the heap close to what is live: backups and restores hold
// large noscan buffers, so collecting more often costs little CPU and keeps
// peak memory down. No memory limit: near a limit the collector runs
// continuously and a big backup slows down several times. GOGC still wins.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
}

// profile starts the developer aids BES_CPUPROFILE (go tool pprof) and
// BES_TRACE (go tool trace) and returns the function that stops them.
func profile() func() {
	var stops []func()
	if path := os.Getenv("BES_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil && pprof.StartCPUProfile(f) == nil {
			stops = append(stops, pprof.StopCPUProfile)
		}
	}
	if path := os.Getenv("BES_TRACE"); path != "" {
		if f, err := os.Create(path); err == nil && trace.Start(f) == nil {
			stops = append(stops, trace.Stop)
		}
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
