package s3test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// Module and Version name the versitygw release the harness runs.
	Module  = "github.com/versity/versitygw/cmd/versitygw"
	Version = "v1.8.0"
	// buildTimeout bounds one build (about 1-4 minutes here) and the wait
	// for another process's build.
	buildTimeout = 15 * time.Minute
)

var (
	binaryMu   sync.Mutex
	binaryPath string // built or found once per test process
)

// Binary returns the path of the versitygw binary, building it on first use
// into the tools cache: $BES_TOOLS_CACHE, else /var/cache/bes-tools if
// writable, else os.UserCacheDir()/bes-tools. $BES_VERSITYGW names a
// ready binary instead. The build runs outside this module (go install in a
// temporary directory, GOWORK=off) under a file lock, so parallel test
// processes build it once. The first build takes minutes: give go test a
// -timeout of 20m.
func Binary(t testing.TB) string {
	t.Helper()
	binaryMu.Lock()
	defer binaryMu.Unlock()
	if binaryPath != "" {
		return binaryPath
	}
	if p := os.Getenv("BES_VERSITYGW"); p != "" {
		if !isExecutable(p) {
			t.Fatalf("s3test: BES_VERSITYGW=%s is not an executable file", p)
		}
		binaryPath = p
		return p
	}
	p, err := ensureBinary(t.Logf)
	if err != nil {
		t.Fatalf("s3test: versitygw %s: %v", Version, err)
	}
	binaryPath = p
	return p
}

func ensureBinary(logf func(string, ...any)) (string, error) {
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	verDir := filepath.Join(cache, "versitygw-"+Version)
	bin := filepath.Join(verDir, "versitygw")
	if isExecutable(bin) {
		return bin, nil
	}
	unlock, err := lockFile(filepath.Join(cache, "versitygw-"+Version+".lock"), buildTimeout)
	if err != nil {
		return "", err
	}
	defer unlock()
	if isExecutable(bin) { // another process built it while we waited
		return bin, nil
	}
	logf("s3test: building versitygw %s into %s; this takes minutes once (use go test -timeout 20m)", Version, verDir)
	start := time.Now()
	if err := build(cache, verDir); err != nil {
		return "", err
	}
	logf("s3test: built versitygw %s in %v", Version, time.Since(start).Round(time.Second))
	return bin, nil
}

// build runs go install in a scratch directory with GOBIN in the cache,
// then moves the binary into place, so a crash never leaves half a binary
// where isExecutable would accept it.
func build(cache, verDir string) error {
	gobin, err := os.MkdirTemp(cache, "versitygw-build-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(gobin)
	work, err := os.MkdirTemp("", "bes-versitygw-build-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	goTool, err := exec.LookPath("go") // go test puts GOROOT/bin first in PATH
	if err != nil {
		return fmt.Errorf("need the go command to build versitygw: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "install", Module+"@"+Version)
	cmd.Dir = work
	cmd.Env = append(envWithout(os.Environ(), "GOBIN", "GOWORK", "GOFLAGS", "GO111MODULE"),
		"GOBIN="+gobin, "GOWORK=off", "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go install %s@%s: %w\n%s", Module, Version, err, tail(out, 8<<10))
	}
	if err := os.MkdirAll(verDir, 0o755); err != nil {
		return err
	}
	return os.Rename(filepath.Join(gobin, "versitygw"), filepath.Join(verDir, "versitygw"))
}

func cacheDir() (string, error) {
	if d := os.Getenv("BES_TOOLS_CACHE"); d != "" {
		return d, os.MkdirAll(d, 0o755)
	}
	const system = "/var/cache/bes-tools"
	if os.MkdirAll(system, 0o755) == nil && unix.Access(system, unix.W_OK) == nil {
		return system, nil
	}
	user, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no tools cache: set BES_TOOLS_CACHE: %w", err)
	}
	d := filepath.Join(user, "bes-tools")
	return d, os.MkdirAll(d, 0o755)
}

// lockFile takes an exclusive flock on path, polling until timeout.
func lockFile(path string, timeout time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { _ = unix.Flock(int(f.Fd()), unix.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// envWithout drops the named variables from env.
func envWithout(env []string, names ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if k == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

func tail(b []byte, n int) string {
	if len(b) > n {
		return "...\n" + string(b[len(b)-n:])
	}
	return string(b)
}
