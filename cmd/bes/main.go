// Command bes is the Backup Engine Service: the appliance daemon (bes serve)
// and the operator command line. All logic lives in package appliance/cli.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"bes/appliance/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.Env{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		IsTerminal: func(fd uintptr) bool { return term.IsTerminal(int(fd)) },
	})
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bes: %v\n", err)
	}
	os.Exit(cli.ExitCode(err))
}
