package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"bes/store"
	"bes/store/crypt"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitError   = 1
	ExitPartial = 3 // backup committed but some files could not be read
)

// ExitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode maps an error from Run to a process exit code.
func ExitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return ExitError
	}
	return ExitOK
}

// Env is what a command sees of its process: tests pass their own.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	IsTerminal     func(fd uintptr) bool
}

// global flags shared by every command.
type globals struct {
	env          Env
	repo         string
	passwordFile string
	keyFile      string
	server       string // a running daemon's URL (remote commands)
	token        string // its API token
	cacert       string // the daemon's certificate (PEM) to trust
	kekName      string // external KEK provider: account | pam_vault | command
	kekCommand   string // its secret command
	json         bool
	quiet        bool
	verbose      bool
	log          *slog.Logger
}

// Run executes the bes command line args (without the program name).
func Run(ctx context.Context, args []string, env Env) error {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.IsTerminal == nil {
		env.IsTerminal = func(uintptr) bool { return false }
	}
	g := &globals{env: env}
	root := &cobra.Command{
		Use:           "bes",
		Short:         "BES, the Backup Engine Service: deduplicated, encrypted, erasure-coded backups",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.repo == "" {
				g.repo = env.Getenv("BES_REPO")
			}
			if g.passwordFile == "" {
				g.passwordFile = env.Getenv("BES_PASSWORD_FILE")
			}
			if g.keyFile == "" {
				g.keyFile = env.Getenv("BES_KEY_FILE")
			}
			if g.kekName == "" {
				g.kekName = env.Getenv("BES_KEK")
			}
			if g.kekCommand == "" {
				g.kekCommand = env.Getenv("BES_KEK_COMMAND")
			}
			lvl := slog.LevelWarn
			if g.verbose {
				lvl = slog.LevelInfo
			}
			g.log = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: lvl}))
			return nil
		},
	}
	root.SetArgs(args)
	root.SetOut(env.Stdout)
	root.SetErr(env.Stderr)
	root.SetIn(env.Stdin)
	pf := root.PersistentFlags()
	pf.StringVarP(&g.repo, "repo", "r", "", "repository directory (default $BES_REPO)")
	pf.StringVar(&g.passwordFile, "password-file", "", "read the repository password from a file (default $BES_PASSWORD_FILE)")
	pf.StringVar(&g.keyFile, "key-file", "", "use a key file instead of a password (default $BES_KEY_FILE)")
	pf.StringVar(&g.server, "server", "", "a running daemon, https://HOST:PORT (default $BES_SERVER), for policies, run-policy, jobs, retry-job")
	pf.StringVar(&g.token, "token", "", "API token for --server (default $BES_TOKEN)")
	pf.StringVar(&g.cacert, "cacert", "", "the daemon's TLS certificate to trust, e.g. DATA/tls/cert.pem (default $BES_CACERT)")
	pf.StringVar(&g.kekName, "kek", "", "external key-encryption key source: account, pam_vault or command (default $BES_KEK; needs --kek-command)")
	pf.StringVar(&g.kekCommand, "kek-command", "", "command (run with /bin/sh -c) that prints the external KEK source's secret (default $BES_KEK_COMMAND)")
	pf.BoolVar(&g.json, "json", false, "machine-readable JSON output")
	pf.BoolVarP(&g.quiet, "quiet", "q", false, "no progress output")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log more")
	root.AddCommand(
		initCmd(g), backupCmd(g), imageCmd(g), pointsCmd(g), lsCmd(g), findCmd(g), restoreCmd(g),
		mountCmd(g), verifyCmd(g), scrubCmd(g), catalogCmd(g), serveCmd(g),
		forgetCmd(g), lockCmd(g), gcCmd(g), reportCmd(g), replicateCmd(g), replicaCmd(g), synthCmd(g), drillCmd(g),
	)
	root.AddCommand(remoteCmds(g)...)
	return root.ExecuteContext(ctx)
}

func (g *globals) repoDir() (string, error) {
	if g.repo == "" {
		return "", errors.New("no repository: set BES_REPO or pass --repo DIR")
	}
	return g.repo, nil
}

// kek resolves the key-encryption key provider: a key file, $BES_PASSWORD,
// a password file, or a prompt on a terminal.
func (g *globals) kek(confirm bool) (crypt.KEKProvider, error) {
	if g.keyFile != "" {
		return crypt.KeyFile(g.keyFile), nil
	}
	if g.kekCommand != "" || g.kekName != "" {
		name := g.kekName
		if name == "" {
			name = "command"
		}
		return crypt.Command(name, g.kekCommand)
	}
	if pw := g.env.Getenv("BES_PASSWORD"); pw != "" {
		return crypt.Passphrase([]byte(pw)), nil
	}
	if g.passwordFile != "" {
		return passwordFileKEK(g.passwordFile)
	}
	f, ok := g.env.Stdin.(*os.File)
	if !ok || !g.env.IsTerminal(f.Fd()) {
		return nil, errors.New("no password given: set BES_PASSWORD or BES_PASSWORD_FILE, or pass --password-file or --key-file")
	}
	pw, err := g.prompt(f, "enter repository password: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := g.prompt(f, "enter the password again: ")
		if err != nil {
			return nil, err
		}
		if again != pw {
			return nil, errors.New("the passwords do not match")
		}
	}
	if pw == "" {
		return nil, errors.New("empty password")
	}
	return crypt.Passphrase([]byte(pw)), nil
}

// passwordFileKEK reads a passphrase from the first line of a file.
func passwordFileKEK(path string) (crypt.KEKProvider, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("password file: %w", err)
	}
	pw := strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
	if pw == "" {
		return nil, fmt.Errorf("password file %s is empty", path)
	}
	return crypt.Passphrase([]byte(pw)), nil
}

func (g *globals) prompt(f *os.File, msg string) (string, error) {
	fmt.Fprint(g.env.Stderr, msg)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(g.env.Stderr)
	if err != nil {
		// not a real terminal after all: read a line
		s, rerr := bufio.NewReader(f).ReadString('\n')
		if rerr != nil && s == "" {
			return "", fmt.Errorf("read password: %w", err)
		}
		return strings.TrimRight(s, "\r\n"), nil
	}
	return string(b), nil
}

// open opens the repository; write takes the writer lock.
func (g *globals) open(ctx context.Context, write bool, command string) (*store.Repo, error) {
	return g.openWith(ctx, store.OpenOptions{Write: write, Command: command})
}

// openWith opens a repository with o, filling in what the command line
// gives: the repository (--repo), its key, the logger and the environment.
func (g *globals) openWith(ctx context.Context, o store.OpenOptions) (*store.Repo, error) {
	if o.Dir == "" {
		dir, err := g.repoDir()
		if err != nil {
			return nil, err
		}
		o.Dir = dir
	}
	if o.KEK == nil {
		kek, err := g.kek(false)
		if err != nil {
			return nil, err
		}
		o.KEK = kek
	}
	o.Logger, o.Getenv = g.log, g.env.Getenv
	return store.Open(ctx, o)
}

func (g *globals) printJSON(v any) error {
	enc := json.NewEncoder(g.env.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (g *globals) printf(format string, args ...any) {
	fmt.Fprintf(g.env.Stdout, format, args...)
}

// showProgress reports whether a progress bar belongs on stderr.
func (g *globals) showProgress() bool {
	if g.json || g.quiet {
		return false
	}
	f, ok := g.env.Stderr.(*os.File)
	return ok && g.env.IsTerminal(f.Fd())
}
