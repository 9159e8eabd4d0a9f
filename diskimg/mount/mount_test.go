package mount_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"bes/agent"
	"bes/diskimg"
	"bes/diskimg/mount"
	"bes/store"
	"bes/store/crypt"
	"bes/store/manifest"
	"bes/store/pack"
)

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (FUSE and loop mounts)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

func newRepo(t testing.TB) *store.Repo {
	t.Helper()
	r, err := store.Init(context.Background(), store.InitOptions{Dir: filepath.Join(t.TempDir(), "repo"),
		KEK: crypt.PassphraseWithCost([]byte("pw"), crypt.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 5))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// mounted reports whether dir is a mount point of this mount namespace.
func mounted(t testing.TB, dir string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && strings.ReplaceAll(fields[4], `\040`, " ") == dir {
			return true
		}
	}
	return false
}

// mountPoint mounts p on a fresh directory and makes sure the test leaves
// no mount behind, whatever happens.
func mountPoint(t *testing.T, r *store.Repo, p *store.Point, o mount.Options) (*mount.Server, string) {
	t.Helper()
	dir := t.TempDir()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	}
	s, err := mount.Mount(context.Background(), r, p, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
			s.Detach()
			exec.Command("fusermount3", "-u", "-z", dir).Run()
		}
		select {
		case <-s.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("the server of %s did not stop", dir)
		}
		if mounted(t, dir) {
			t.Errorf("%s still mounted", dir)
		}
	})
	if !mounted(t, dir) {
		t.Fatalf("%s is not in /proc/self/mountinfo", dir)
	}
	return s, dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// fileTree writes the tree the file point tests back up.
func fileTree(t *testing.T, src string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{
		"a/small.txt":       []byte("hello, mount\n"),
		"a/empty":           nil,
		"a/big.bin":         randBytes(1, 6<<20+12345),
		"b/c/d/deep.txt":    bytes.Repeat([]byte("deep "), 1000),
		"b/name with space": []byte("spaces"),
		"setuid":            []byte("#!/bin/sh\n"),
	}
	for name, data := range files {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// sparse: 8 MiB with data at 3 MiB and at the end
	sparse := make([]byte, 8<<20)
	copy(sparse[3<<20:], randBytes(2, 70000))
	copy(sparse[len(sparse)-100:], randBytes(3, 100))
	f, err := os.Create(filepath.Join(src, "a", "sparse.bin"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(int64(len(sparse)))
	f.WriteAt(sparse[3<<20:3<<20+70000], 3<<20)
	f.WriteAt(sparse[len(sparse)-100:], int64(len(sparse)-100))
	f.Close()
	files["a/sparse.bin"] = sparse

	must(t, os.Chmod(filepath.Join(src, "setuid"), 0o4755))
	must(t, os.Chmod(filepath.Join(src, "a", "small.txt"), 0o600))
	must(t, os.Chown(filepath.Join(src, "a", "small.txt"), 1234, 5678))
	must(t, os.Symlink("../a/small.txt", filepath.Join(src, "b", "link")))
	must(t, os.Lchown(filepath.Join(src, "b", "link"), 42, 43))
	must(t, os.Symlink("/nowhere/at/all", filepath.Join(src, "dangling")))
	must(t, os.Mkdir(filepath.Join(src, "sticky"), 0o755))
	must(t, os.Chmod(filepath.Join(src, "sticky"), 0o1777))
	must(t, unix.Mkfifo(filepath.Join(src, "b", "fifo"), 0o640))
	must(t, os.Chmod(filepath.Join(src, "b"), 0o700))
	old := time.Date(2001, 2, 3, 4, 5, 6, 789, time.UTC)
	must(t, os.Chtimes(filepath.Join(src, "a", "empty"), old, old))
	return files
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// compareTrees checks that got shows the same tree as want: names, types,
// modes, owners, sizes, mtimes, symlink targets and file contents.
func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	var wantNames, gotNames []string
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		wantNames = append(wantNames, rel)
		compareEntry(t, p, filepath.Join(got, rel), rel)
		return nil
	})
	must(t, err)
	must(t, filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(got, p)
		gotNames = append(gotNames, rel)
		return nil
	}))
	if !slices.Equal(wantNames, gotNames) {
		t.Errorf("names differ:\nwant %q\n got %q", wantNames, gotNames)
	}
}

func compareEntry(t *testing.T, wantPath, gotPath, rel string) {
	t.Helper()
	var ws, gs unix.Stat_t
	must(t, unix.Lstat(wantPath, &ws))
	if err := unix.Lstat(gotPath, &gs); err != nil {
		t.Errorf("%s: %v", rel, err)
		return
	}
	if ws.Mode != gs.Mode || ws.Uid != gs.Uid || ws.Gid != gs.Gid || ws.Mtim != gs.Mtim {
		t.Errorf("%s: mode %o uid %d gid %d mtime %v, want %o %d %d %v", rel, gs.Mode, gs.Uid, gs.Gid, gs.Mtim, ws.Mode, ws.Uid, ws.Gid, ws.Mtim)
	}
	switch ws.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if ws.Size != gs.Size {
			t.Errorf("%s: size %d, want %d", rel, gs.Size, ws.Size)
		}
		w, _ := os.ReadFile(wantPath)
		g, err := os.ReadFile(gotPath)
		if err != nil || !bytes.Equal(w, g) {
			t.Errorf("%s: content differs (%d bytes, want %d; %v)", rel, len(g), len(w), err)
		}
	case unix.S_IFLNK:
		w, _ := os.Readlink(wantPath)
		g, err := os.Readlink(gotPath)
		if w != g || err != nil || gs.Size != int64(len(w)) {
			t.Errorf("%s: link target %q size %d (%v), want %q", rel, g, gs.Size, err, w)
		}
	}
}

func TestFilePoint(t *testing.T) {
	needFUSE(t)
	ctx := context.Background()
	r := newRepo(t)
	src := t.TempDir()
	files := fileTree(t, src)
	p, err := agent.Backup(ctx, r, agent.BackupOptions{Paths: []string{src}, Host: "h", Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	s, mnt := mountPoint(t, r, p, mount.Options{CacheChunks: 3})

	got := filepath.Join(mnt, src)
	compareTrees(t, src, got)
	// the ancestors of the backed-up directory are there too
	if st, err := os.Stat(filepath.Join(mnt, strings.Split(strings.Trim(src, "/"), "/")[0])); err != nil || !st.IsDir() {
		t.Fatalf("top directory: %v", err)
	}
	randomReads(t, filepath.Join(got, "a", "big.bin"), files["a/big.bin"])
	randomReads(t, filepath.Join(got, "a", "sparse.bin"), files["a/sparse.bin"])
	denyWrites(t, got)

	var sfs unix.Statfs_t
	must(t, unix.Statfs(mnt, &sfs))
	if sfs.Blocks == 0 || sfs.Files < uint64(len(files)) {
		t.Errorf("statfs: %+v", sfs)
	}

	must(t, s.Unmount())
	if mounted(t, mnt) {
		t.Fatal("still mounted after Unmount")
	}
}

// randomReads reads random ranges of path concurrently and compares them
// with want.
func randomReads(t *testing.T, path string, want []byte) {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 11))
			for range 100 {
				off := rng.Int64N(int64(len(want)))
				buf := make([]byte, 1+rng.IntN(1<<20))
				n, err := f.ReadAt(buf, off)
				if err != nil && !(errors.Is(err, io.EOF) && off+int64(n) == int64(len(want))) {
					t.Errorf("%s: read at %d: %v", path, off, err)
					return
				}
				if !bytes.Equal(buf[:n], want[off:off+int64(n)]) {
					t.Errorf("%s: %d bytes at %d differ", path, n, off)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// denyWrites checks that every kind of change fails with EROFS.
func denyWrites(t *testing.T, dir string) {
	t.Helper()
	file := filepath.Join(dir, "a", "big.bin")
	checks := map[string]error{}
	_, checks["open for writing"] = os.OpenFile(file, os.O_WRONLY, 0)
	_, checks["open read-write"] = os.OpenFile(file, os.O_RDWR, 0)
	_, checks["create"] = os.Create(filepath.Join(dir, "new"))
	checks["mkdir"] = os.Mkdir(filepath.Join(dir, "newdir"), 0o755)
	checks["remove"] = os.Remove(file)
	checks["rename"] = os.Rename(file, file+".x")
	checks["chmod"] = os.Chmod(file, 0o777)
	checks["truncate"] = os.Truncate(file, 0)
	checks["symlink"] = os.Symlink("x", filepath.Join(dir, "newlink"))
	for what, err := range checks {
		if !errors.Is(err, syscall.EROFS) {
			t.Errorf("%s: %v, want EROFS", what, err)
		}
	}
	if err := unix.Access(file, unix.W_OK); !errors.Is(err, syscall.EROFS) {
		t.Errorf("access W_OK: %v", err)
	}
}

// A hand-written manifest: holes, ancestors missing from the manifest,
// special files, times before 1970.
func TestHandMadeManifest(t *testing.T) {
	needFUSE(t)
	ctx := context.Background()
	r := newRepo(t)
	saver, err := r.NewSaver(store.SaverOptions{})
	must(t, err)
	pt, _, err := r.NewPoint(ctx, store.KindFile, "hand")
	must(t, err)
	a, b := randBytes(7, 100<<10), randBytes(8, 3)
	ida, _, err := saver.Save(ctx, pack.TypeData, a)
	must(t, err)
	idb, _, err := saver.Save(ctx, pack.TypeData, b)
	must(t, err)
	refs := []manifest.ChunkRef{{Size: 1 << 20}, {ID: ida, Size: uint32(len(a))}, {Size: 3}, {ID: idb, Size: 3}, {ID: ida, Size: uint32(len(a))}, {Size: 2 << 20}}
	var want []byte
	for _, c := range refs {
		switch {
		case c.Hole():
			want = append(want, make([]byte, c.Size)...)
		case c.ID == ida:
			want = append(want, a...)
		default:
			want = append(want, b...)
		}
	}
	entries := []*manifest.Entry{
		{Path: "dev", Kind: manifest.KindDir, Mode: 0o755, MTime: -1_500_000_000, Nlink: 2},
		{Path: "dev/null", Kind: manifest.KindCharDevice, Mode: 0o666, Rdev: unix.Mkdev(1, 3), Nlink: 1},
		{Path: "x/y/holes.bin", Kind: manifest.KindFile, Mode: 0o444, UID: 7, GID: 8, Size: int64(len(want)), MTime: 1, Nlink: 1, Chunks: refs},
		{Path: "x/y/none", Kind: manifest.KindFile, Mode: 0, Nlink: 1},
	}
	mw := r.NewManifestWriter(ctx, saver)
	w := manifest.NewWriter(mw)
	for _, e := range entries {
		must(t, w.Write(e))
	}
	must(t, w.Close())
	pt.Manifest, err = mw.Close()
	must(t, err)
	pt.Entries, pt.Finished = w.Count(), time.Now().UTC()
	must(t, r.CommitPoint(ctx, saver, pt))

	_, mnt := mountPoint(t, r, pt, mount.Options{})
	got, err := os.ReadFile(filepath.Join(mnt, "x/y/holes.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("holes.bin: %d bytes, %v", len(got), err)
	}
	randomReads(t, filepath.Join(mnt, "x/y/holes.bin"), want)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(mnt, "dev"), &st))
	if st.Mtim.Sec != -2 || st.Mtim.Nsec != 500_000_000 {
		t.Errorf("dev mtime %v, want -1.5 s", st.Mtim)
	}
	must(t, unix.Lstat(filepath.Join(mnt, "dev/null"), &st))
	if st.Mode != unix.S_IFCHR|0o666 || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %x", st.Mode, st.Rdev)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "dev/null")); err == nil {
		t.Error("a device node opened on a nodev mount")
	}
	must(t, unix.Lstat(filepath.Join(mnt, "x"), &st))
	if st.Mode != unix.S_IFDIR|0o555 || st.Nlink != 3 {
		t.Errorf("made-up x: mode %o nlink %d", st.Mode, st.Nlink)
	}
	must(t, unix.Lstat(filepath.Join(mnt, "x/y/none"), &st))
	if st.Mode != unix.S_IFREG || st.Size != 0 {
		t.Errorf("none: mode %o size %d", st.Mode, st.Size)
	}
	names, _ := os.ReadDir(mnt)
	if len(names) != 2 || names[0].Name() != "dev" || names[1].Name() != "x" {
		t.Errorf("root holds %v", names)
	}
	if _, err := os.Stat(filepath.Join(mnt, "nothing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing name: %v", err)
	}
}

func TestMountDirChecks(t *testing.T) {
	needFUSE(t)
	r := newRepo(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	must(t, os.WriteFile(file, nil, 0o644))
	p := &store.Point{ID: "none", Kind: store.KindFile}
	for _, c := range []struct {
		dir  string
		want error
	}{{filepath.Join(dir, "missing"), fs.ErrNotExist}, {file, mount.ErrNotDir}, {dir, mount.ErrNotEmpty}} {
		if _, err := mount.Mount(context.Background(), r, p, c.dir, mount.Options{}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.dir, err, c.want)
		}
	}
}

// Unmounting from outside ends the server; a busy mount refuses a clean
// unmount and can be detached.
func TestExternalUnmountAndBusy(t *testing.T) {
	needFUSE(t)
	ctx := context.Background()
	r := newRepo(t)
	src := t.TempDir()
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	p, err := agent.Backup(ctx, r, agent.BackupOptions{Paths: []string{src}, Host: "h", Logger: slog.New(slog.DiscardHandler)})
	must(t, err)

	s, mnt := mountPoint(t, r, p, mount.Options{})
	run(t, "fusermount3", "-u", mnt)
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server still running after fusermount3 -u")
	}

	s, mnt = mountPoint(t, r, p, mount.Options{})
	f, err := os.Open(filepath.Join(mnt, src, "f"))
	must(t, err)
	if err := s.Unmount(); !errors.Is(err, mount.ErrBusy) {
		t.Fatalf("unmount with an open file: %v, want ErrBusy", err)
	}
	if b, err := io.ReadAll(f); string(b) != "data" || err != nil {
		t.Fatalf("read after a failed unmount: %q %v", b, err)
	}
	must(t, s.Detach())
	if mounted(t, mnt) {
		t.Fatal("still mounted after Detach")
	}
	if b, err := io.ReadAll(io.NewSectionReader(f, 0, 4)); string(b) != "data" || err != nil {
		t.Fatalf("read after Detach: %q %v", b, err)
	}
	f.Close()
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("server still running after the last file closed")
	}
}

// makeDisk builds a GPT disk image with an ext4 partition filled from tree
// and a raw data partition.
func makeDisk(t *testing.T, dir, tree string) (string, [][2]int64) {
	t.Helper()
	img := filepath.Join(dir, "disk.img")
	f, err := os.Create(img)
	must(t, err)
	f.Truncate(80 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: gpt\nsize=48MiB, type=L\nsize=16MiB, type=L\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	var parts [][2]int64
	for _, line := range strings.Split(run(t, "sfdisk", "-d", img), "\n") {
		if !strings.HasPrefix(line, img) {
			continue
		}
		var st, sz int64
		for _, kv := range strings.Split(strings.SplitN(line, ":", 2)[1], ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
			switch strings.TrimSpace(k) {
			case "start":
				fmt.Sscan(strings.TrimSpace(v), &st)
			case "size":
				fmt.Sscan(strings.TrimSpace(v), &sz)
			}
		}
		parts = append(parts, [2]int64{st * 512, sz * 512})
	}
	p1 := filepath.Join(dir, "p1.img")
	must(t, os.WriteFile(p1, nil, 0o600))
	must(t, os.Truncate(p1, parts[0][1]))
	run(t, "mkfs.ext4", "-q", "-F", "-d", tree, p1)
	run(t, "dd", "if="+p1, "of="+img, "bs=1M", "oflag=seek_bytes", fmt.Sprintf("seek=%d", parts[0][0]), "conv=notrunc,sparse", "status=none")
	raw, err := os.OpenFile(img, os.O_WRONLY, 0)
	must(t, err)
	_, err = raw.WriteAt(randBytes(9, 3<<20), parts[1][0]+1<<20)
	must(t, err)
	raw.Close()
	return img, parts
}

func TestImagePoint(t *testing.T) {
	needFUSE(t)
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	must(t, os.MkdirAll(filepath.Join(tree, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(tree, "etc", "hostname"), []byte("imaged\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(tree, "big.bin"), randBytes(4, 5<<20), 0o640))
	must(t, os.Symlink("etc/hostname", filepath.Join(tree, "link")))
	img, parts := makeDisk(t, dir, tree)
	r := newRepo(t)
	res, err := diskimg.Backup(ctx, r, img, diskimg.BackupOptions{Host: "vm", Logger: slog.New(slog.DiscardHandler)})
	must(t, err)

	_, mnt := mountPoint(t, r, res.Point, mount.Options{})
	var names []string
	ents, err := os.ReadDir(mnt)
	must(t, err)
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"disk.img", "part1.img", "part2.img"}) {
		t.Fatalf("root holds %v", names)
	}
	for i, want := range []int64{80 << 20, parts[0][1], parts[1][1]} {
		if st, err := os.Stat(filepath.Join(mnt, names[i])); err != nil || st.Size() != want || st.Mode() != 0o400 {
			t.Errorf("%s: %v %v, want size %d mode 0400", names[i], st, err, want)
		}
	}

	// the ext4 partition mounts through a loop device
	fsDir := t.TempDir()
	run(t, "mount", "-o", "loop,ro", filepath.Join(mnt, "part1.img"), fsDir)
	t.Cleanup(func() {
		if mounted(t, fsDir) {
			if out, err := exec.Command("umount", fsDir).CombinedOutput(); err != nil {
				t.Logf("umount %s: %v %s", fsDir, err, out)
				exec.Command("umount", "-l", fsDir).Run()
			}
		}
	})
	for _, name := range []string{"etc/hostname", "big.bin"} {
		w, _ := os.ReadFile(filepath.Join(tree, name))
		g, err := os.ReadFile(filepath.Join(fsDir, name))
		if err != nil || !bytes.Equal(w, g) {
			t.Errorf("%s in the loop-mounted partition: %d bytes, %v", name, len(g), err)
		}
	}
	if tgt, err := os.Readlink(filepath.Join(fsDir, "link")); tgt != "etc/hostname" || err != nil {
		t.Errorf("link: %q %v", tgt, err)
	}
	run(t, "umount", fsDir)

	// disk.img equals a restored image, part2.img its second partition
	restored := filepath.Join(dir, "restored.img")
	_, err = diskimg.Restore(ctx, r, res.Point, diskimg.RestoreOptions{Target: restored, Logger: slog.New(slog.DiscardHandler)})
	must(t, err)
	run(t, "cmp", restored, filepath.Join(mnt, "disk.img"))
	if hashFile(t, filepath.Join(mnt, "part2.img"), 0, -1) != hashFile(t, restored, parts[1][0], parts[1][1]) {
		t.Error("part2.img differs from the second partition of the restored image")
	}
}

// hashFile hashes n bytes of a file at off (n < 0: to the end).
func hashFile(t *testing.T, path string, off, n int64) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	if n < 0 {
		st, err := f.Stat()
		must(t, err)
		n = st.Size() - off
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, off, n)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}
