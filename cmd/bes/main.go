// Command bes is the Backup Engine Service: the appliance daemon (bes serve)
// and the operator command line. All logic lives in package appliance/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"golang.org/x/term"

	"bes/appliance/cli"
)

func main() {
	if path := os.Getenv("BES_CPUPROFILE"); path != "" { // developer aid: go tool pprof
		if f, err := os.Create(path); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
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
		os.Exit(code)
	}
}
