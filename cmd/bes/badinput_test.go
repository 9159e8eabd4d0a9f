package main

import (
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrongPassword(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 41, 10, 1<<20)
	r.backup(src)
	for _, cmd := range [][]string{{"points"}, {"backup", src}, {"restore", "latest", "--target", t.TempDir()}, {"catalog", "rebuild"}} {
		out, errOut, code := r.runEnv([]string{"BES_PASSWORD=wrong"}, cmd...)
		if code == 0 {
			t.Fatalf("%v with a wrong password succeeded", cmd)
		}
		if !strings.Contains(errOut, "wrong password") {
			t.Errorf("%v: unclear error: %s%s", cmd, out, errOut)
		}
	}
	if len(r.points()) != 1 {
		t.Fatal("wrong-password attempts changed the points")
	}
}

func TestBadFlagsAndArgs(t *testing.T) {
	r := newRepo(t, 2, 1)
	cases := [][]string{
		{"init", "--ec", "0+1"},
		{"init", "--ec", "banana"},
		{"backup"},
		{"backup", "/nonexistent/path/for/bes"},
		{"backup", "/tmp", "--compression", "brotli"},
		{"backup", "/tmp", "--exclude", "[unterminated"},
		{"restore", "nosuchpoint", "--target", t.TempDir()},
		{"restore", "latest"},
		{"ls"},
		{"find", "latest", "[bad"},
		{"frobnicate"},
	}
	for _, c := range cases {
		out, errOut, code := r.run(c...)
		if code == 0 {
			t.Errorf("%v succeeded: %s", c, out)
		}
		if strings.Contains(errOut, "panic") || strings.TrimSpace(errOut) == "" {
			t.Errorf("%v: no clear error: %q", c, errOut)
		}
	}
}

// More disks lost than parity: a clear error, nothing stored is harmed.
func TestMissingDisksBeyondParity(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 43, 20, 2<<20)
	id := r.backup(src)
	moved := map[string]string{}
	for _, d := range r.disks[:3] {
		moved[d] = d + ".away"
		os.Rename(d, d+".away")
	}
	_, out, code := r.restoreTo(id, src, t.TempDir())
	if code == 0 {
		t.Fatal("restore succeeded with 3 of 6 disks missing")
	}
	if !strings.Contains(out, "unrecoverable") && !strings.Contains(out, "damaged") {
		t.Errorf("unclear error: %s", out)
	}
	// A backup never writes onto missing disks (an empty mount point).
	if _, errOut, code := r.run("backup", src, "--host", "h1"); code == 0 || !strings.Contains(errOut, "disk missing") {
		t.Fatalf("backup with 3 disks missing: exit %d: %s", code, errOut)
	}
	if n := len(r.points()); n != 1 {
		t.Fatalf("%d points after the refused backup, want 1", n)
	}
	for d, a := range moved {
		os.RemoveAll(d)
		os.Rename(a, d)
	}
	got, out, code := r.restoreTo(id, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore after the disks came back: %s", out)
	}
	sameTree(t, src, got)
}

// A full disk fails the backup with a clear error; earlier points survive.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	base := t.TempDir()
	small := filepath.Join(base, "small")
	os.MkdirAll(small, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", small).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v %s", err, out)
	}
	defer exec.Command("umount", "-l", small).Run()
	r := &repo{t: t, dir: filepath.Join(base, "repo")}
	for i := 1; i <= 6; i++ {
		d := filepath.Join(base, "disk"+string(rune('0'+i)))
		if i == 3 {
			d = filepath.Join(small, "disk3")
		}
		r.disks = append(r.disks, d)
	}
	r.env = append(os.Environ(), "BES_REPO="+r.dir, "BES_PASSWORD=test-pw-123")
	r.must("init", "--disks", strings.Join(r.disks, ","), "--ec", "4+2")
	src := filepath.Join(base, "src")
	genTree(t, src, 51, 10, 4<<20)
	id := r.backup(src)
	big := filepath.Join(base, "big")
	os.MkdirAll(big, 0o755)
	f, err := os.Create(filepath.Join(big, "random.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 160<<20); err != nil { // incompressible: a quarter lands on the small disk
		t.Fatal(err)
	}
	f.Close()
	_, errOut, code := r.run("backup", big, "--host", "h1")
	if code == 0 {
		t.Fatal("backup onto a full disk succeeded")
	}
	if !strings.Contains(errOut, "no space left") {
		t.Errorf("unclear error: %s", errOut)
	}
	if n := len(r.points()); n != 1 {
		t.Fatalf("%d points after the failed backup, want 1", n)
	}
	got, out, code := r.restoreTo(id, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore after a full disk: %s", out)
	}
	sameTree(t, src, got)
	r.must("verify", "--read-data")
}

// A corrupt pack trailer or manifest: a clear error naming what is
// damaged; no panic.
func TestCorruptTrailerAndManifest(t *testing.T) {
	r := newRepo(t, 1, 0)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 61, 20, 1<<20)
	id := r.backup(src)
	shards := shardFiles(t, r.disks[0])
	for _, f := range shards { // with 1+0 there is no parity: damage the end of every pack
		b, _ := os.ReadFile(f)
		// the pack trailer sits just before the shard footer; flip bytes in the last 4 KiB of data
		for i := len(b) - 600; i < len(b)-400 && i > 0; i++ {
			b[i] ^= 0x55
		}
		os.WriteFile(f, b, 0o600)
	}
	out, errOut, code := r.run("verify", "--read-data")
	if code == 0 {
		t.Fatal("verify passed with corrupt packs")
	}
	if strings.Contains(out+errOut, "panic") {
		t.Fatalf("panic: %s%s", out, errOut)
	}
	_, msg, code := r.restoreTo(id, src, t.TempDir())
	if code == 0 || strings.Contains(msg, "panic") {
		t.Fatalf("restore from corrupt packs: exit %d %s", code, msg)
	}
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(r.dir, "catalog.db"+sfx))
	}
	out, errOut, _ = r.run("catalog", "rebuild")
	if strings.Contains(out+errOut, "panic") {
		t.Fatalf("rebuild panicked: %s%s", out, errOut)
	}
}
