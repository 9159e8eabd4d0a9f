package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mountInfo returns the /proc/self/mountinfo line of mount point dir, or "".
func mountInfo(t *testing.T, dir string) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == dir {
			return sc.Text()
		}
	}
	return ""
}

// syncBuffer is a bytes.Buffer safe for a process to write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// mountProc is a running `bes mount`.
type mountProc struct {
	t              *testing.T
	dir            string
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	exited         chan struct{}
	err            error
}

// startMount runs `bes mount POINT DIR ARGS...` and waits until DIR is
// mounted. The test never leaves the process or the mount behind.
func (r *repo) startMount(point string, args ...string) *mountProc {
	r.t.Helper()
	t := r.t
	m := &mountProc{t: t, dir: t.TempDir(), exited: make(chan struct{})}
	m.cmd = exec.Command(besBin, append([]string{"mount", point, m.dir}, args...)...)
	m.cmd.Env = r.env
	m.cmd.Stdout, m.cmd.Stderr = &m.stdout, &m.stderr
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		m.err = m.cmd.Wait()
		close(m.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-m.exited:
		default:
			m.cmd.Process.Kill()
			<-m.exited
		}
		if mountInfo(t, m.dir) != "" {
			exec.Command("fusermount3", "-u", "-z", m.dir).Run()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for mountInfo(t, m.dir) == "" {
		select {
		case <-m.exited:
			t.Fatalf("bes mount exited before mounting: %v\n%s%s", m.err, m.stdout.String(), m.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not mounted after 30 s\n%s%s", m.dir, m.stdout.String(), m.stderr.String())
		}
	}
	return m
}

// wait waits for the process to exit and returns its exit code.
func (m *mountProc) wait() int {
	m.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(30 * time.Second):
		m.t.Fatalf("bes mount did not exit\n%s%s", m.stdout.String(), m.stderr.String())
	}
	if ee, ok := m.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if m.err != nil {
		m.t.Fatal(m.err)
	}
	return 0
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

func TestMountSIGTERM(t *testing.T) {
	needRoot(t)
	r := newRepo(t, 2, 1)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 21, 40, 5<<20)
	id := r.backup(src)

	m := r.startMount(id[:8])
	info := mountInfo(t, m.dir)
	if !strings.Contains(info, " - fuse.bes bes:"+id+" ") || !strings.Contains(strings.Fields(info)[5], "ro") {
		t.Errorf("mountinfo: %s", info)
	}
	sameTree(t, src, filepath.Join(m.dir, src))
	want := "mounted point " + id + " at " + m.dir + " (Ctrl-C to unmount)\n"
	if got := m.stdout.String(); got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}

	m.cmd.Process.Signal(syscall.SIGTERM)
	if code := m.wait(); code != 0 {
		t.Fatalf("exit %d after SIGTERM\n%s", code, m.stderr.String())
	}
	if mountInfo(t, m.dir) != "" {
		t.Fatal("still mounted after SIGTERM")
	}
	if !strings.Contains(m.stdout.String(), "unmounted "+m.dir) {
		t.Errorf("stdout %q", m.stdout.String())
	}
}

// A busy mount is retried for --busy-wait, then detached lazily.
func TestMountBusySIGINT(t *testing.T) {
	needRoot(t)
	r := newRepo(t, 2, 1)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("held open"), 0o644)
	id := r.backup(src)

	m := r.startMount(id, "--busy-wait", "1s")
	f, err := os.Open(filepath.Join(m.dir, src, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m.cmd.Process.Signal(os.Interrupt)
	if code := m.wait(); code != 0 {
		t.Fatalf("exit %d after SIGINT\n%s", code, m.stderr.String())
	}
	if mountInfo(t, m.dir) != "" {
		t.Fatal("still mounted after SIGINT")
	}
	if e := m.stderr.String(); !strings.Contains(e, "is busy") || !strings.Contains(e, "detached "+m.dir+" lazily") {
		t.Errorf("stderr %q", e)
	}
}

// Unmounting from outside ends the command.
func TestMountExternalUnmount(t *testing.T) {
	needRoot(t)
	r := newRepo(t, 2, 1)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	r.backup(src)

	m := r.startMount("latest")
	if out, err := exec.Command("fusermount3", "-u", m.dir).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u: %v %s", err, out)
	}
	if code := m.wait(); code != 0 {
		t.Fatalf("exit %d after fusermount3 -u\n%s", code, m.stderr.String())
	}
}

func TestMountErrors(t *testing.T) {
	needRoot(t)
	r := newRepo(t, 2, 1)
	src := filepath.Join(t.TempDir(), "src")
	os.MkdirAll(src, 0o755)
	r.backup(src)
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"mount", "latest", filepath.Join(full, "missing")}, "no such file or directory"},
		{[]string{"mount", "latest", filepath.Join(full, "x")}, "not a directory"},
		{[]string{"mount", "latest", full}, "not empty"},
		{[]string{"mount", "ffffffffff", t.TempDir()}, "ffffffffff"},
		{[]string{"mount", "latest"}, "accepts 2 arg"},
	} {
		out, errOut, code := r.run(c.args...)
		if code != 1 || !strings.Contains(errOut, c.want) {
			t.Errorf("bes %s: exit %d, stderr %q, want exit 1 and %q (stdout %q)", strings.Join(c.args, " "), code, errOut, c.want, out)
		}
	}
}
