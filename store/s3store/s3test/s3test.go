// Package s3test runs a real S3 server for tests: versitygw (Apache-2.0)
// with its posix backend, as a separate process on 127.0.0.1 with a fresh
// data directory, random credentials and a free port. The binary is built
// once into a tools cache (see Binary). Only tests may import this package.
package s3test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 5 * time.Second
	logTail      = 64 << 10
)

// Server is a running versitygw. It is stopped when the test ends, and its
// log is added to the test output if the test failed.
type Server struct {
	// Endpoint is "127.0.0.1:PORT".
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per server.
	AccessKey, SecretKey string
	// Region is the region the server reports.
	Region string
	// Dir is the posix backend's root: one subdirectory per bucket.
	Dir string
	// VersioningDir is where object versions live ("" without versioning).
	VersioningDir string
	// LogPath is the file holding the server's stdout and stderr.
	LogPath string
}

// Options adjusts Start. The zero value is a plain server.
type Options struct {
	// Versioning gives the posix backend a versioning directory, so buckets
	// can be versioned (and Object Lock buckets are versioned, as in AWS).
	Versioning bool
}

// URL returns "s3:http://ENDPOINT/bucket[/prefix]" for s3store.ParseURL.
func (s *Server) URL(bucket, prefix string) string {
	u := "s3:http://" + s.Endpoint + "/" + bucket
	if prefix != "" {
		u += "/" + strings.Trim(prefix, "/")
	}
	return u
}

// Start runs a versitygw server for the rest of the test.
func Start(t testing.TB) *Server { return StartOptions(t, Options{}) }

// StartOptions runs a versitygw server configured by o.
func StartOptions(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary(t)
	base := t.TempDir()
	s := &Server{
		AccessKey: "bes" + randomHex(t, 8),
		SecretKey: randomHex(t, 20),
		Region:    "us-east-1",
		Dir:       filepath.Join(base, "root"),
		LogPath:   filepath.Join(base, "versitygw.log"),
	}
	dirs := []string{s.Dir}
	if o.Versioning {
		s.VersioningDir = filepath.Join(base, "versions")
		dirs = append(dirs, s.VersioningDir)
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatalf("s3test: %v", err)
		}
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ { // the free port may be taken meanwhile
		if err = s.launch(t, bin); err == nil {
			return s
		}
	}
	t.Fatalf("s3test: start versitygw: %v\n--- versitygw log ---\n%s", err, s.logTail())
	return nil
}

func (s *Server) launch(t testing.TB, bin string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Endpoint = "127.0.0.1:" + strconv.Itoa(port)
	logf, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	args := []string{"--port", s.Endpoint, "--region", s.Region, "posix"}
	if s.VersioningDir != "" {
		args = append(args, "--versioning-dir", s.VersioningDir)
	}
	cmd := exec.Command(bin, append(args, s.Dir)...)
	// Credentials go through the environment, not argv, so ps cannot show them.
	env := envWithout(envWithoutPrefix(os.Environ(), "VGW_", "ROOT_"), "LOGFILE", "WEBHOOK")
	cmd.Env = append(env,
		"ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with a crashed test
	fmt.Fprintf(logf, "=== s3test: starting versitygw %s on %s\n", Version, s.Endpoint)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := s.waitReady(exited); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		return err
	}
	t.Cleanup(func() {
		stop(cmd, exited)
		if t.Failed() {
			t.Logf("--- versitygw log (%s) ---\n%s", s.LogPath, s.logTail())
		}
	})
	return nil
}

// waitReady polls until the server answers HTTP (any status) or exits.
func (s *Server) waitReady(exited <-chan error) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("versitygw exited before answering: %v", err)
		default:
		}
		resp, err := client.Get("http://" + s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("versitygw did not answer on %s within %v", s.Endpoint, readyTimeout)
}

func stop(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		<-exited
	}
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(b, logTail)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("listener has no TCP address")
	}
	return addr.Port, nil
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("s3test: %v", err)
	}
	return hex.EncodeToString(b)
}

func envWithoutPrefix(env []string, prefixes ...string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}
