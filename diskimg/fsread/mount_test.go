package fsread

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// loopMount mounts img on a fresh directory with -o loop,<opts>; the
// returned function unmounts it early (it also runs at cleanup).
func loopMount(t *testing.T, img, opts string) string {
	mnt, _ := loopMountUnmount(t, img, opts)
	return mnt
}

func loopMountUnmount(t *testing.T, img, opts string) (string, func()) {
	t.Helper()
	mnt := t.TempDir()
	run(t, nil, nil, "mount", "-o", "loop,"+opts, img, mnt)
	mounted := true
	unmount := func() {
		if mounted {
			mounted = false
			if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
				t.Errorf("umount %s: %v: %s", mnt, err, out)
			}
		}
	}
	t.Cleanup(unmount)
	return mnt, unmount
}

// TestExtKernelWritten formats an image, writes files through the kernel
// (interleaved fsynced writes, punched holes and preallocation make deep
// extent trees and unwritten extents; nanosecond and post-2038 times; an
// htree directory), then compares our reading of the image file with the
// kernel's view of it mounted read-only.
func TestExtKernelWritten(t *testing.T) {
	needRoot(t)
	needTools(t, "mke2fs", "mount", "umount")
	img := filepath.Join(t.TempDir(), "kernel.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 256<<20))
	run(t, nil, nil, "mke2fs", "-F", "-q", "-t", "ext4", "-b", "4096", img)

	mnt, unmount := loopMountUnmount(t, img, "rw")
	writeKernelTree(t, mnt)
	unmount()

	mnt = loopMount(t, img, "ro")
	r, size := openImage(t, img)
	fsys, err := Open(r, size)
	must(t, err)
	x := fsys.(*ExtFS)
	for name, minDepth := range map[string]int{"frag-a.bin": 0, "holes.bin": 2} {
		in, err := x.lookup([]string{name})
		must(t, err)
		d, err := x.extentDepth(in)
		if err != nil || d < minDepth {
			t.Errorf("%s: extent depth %d (%v), want >= %d", name, d, err, minDepth)
		}
		t.Logf("%s: extent depth %d", name, d)
	}
	in, err := x.lookup([]string{"bigdir"})
	must(t, err)
	if in.flags&inodeIndex == 0 {
		t.Error("bigdir is not an htree directory")
	}
	compareTree(t, fsys, mnt, cmpOpts{nanos: true, atime: true})
}

func writeKernelTree(t *testing.T, mnt string) {
	t.Helper()
	p := func(n string) string { return filepath.Join(mnt, n) }
	// Two files written in alternating fsynced pieces: fragmented.
	a, err := os.Create(p("frag-a.bin"))
	must(t, err)
	b, err := os.Create(p("frag-b.bin"))
	must(t, err)
	for i := range 512 {
		_, err := a.Write(randBytes(uint64(100+i), 128<<10))
		must(t, err)
		must(t, a.Sync())
		if i%4 == 0 {
			_, err := b.Write(randBytes(uint64(5000+i), 64<<10))
			must(t, err)
			must(t, b.Sync())
		}
	}
	must(t, a.Close())
	must(t, b.Close())
	// A 64 MiB file with a hole punched in every other 4 KiB block of its
	// first 32 MiB: 4096 extents, an extent tree two index levels deep.
	h, err := os.Create(p("holes.bin"))
	must(t, err)
	_, err = h.Write(randBytes(7, 64<<20))
	must(t, err)
	must(t, h.Sync())
	const punchHole, keepSize = 0x2, 0x1
	for off := int64(4096); off < 32<<20; off += 8192 {
		must(t, syscall.Fallocate(int(h.Fd()), punchHole|keepSize, off, 4096))
	}
	must(t, h.Close())
	// Preallocated (unwritten) extents, inside and beyond the size.
	pre, err := os.Create(p("prealloc.bin"))
	must(t, err)
	must(t, syscall.Fallocate(int(pre.Fd()), 0, 0, 4<<20))
	_, err = pre.WriteAt([]byte("hello"), 1<<20)
	must(t, err)
	must(t, syscall.Fallocate(int(pre.Fd()), keepSize, 4<<20, 4<<20))
	must(t, pre.Close())
	writeKernelSmallFiles(t, mnt)
}

func writeKernelSmallFiles(t *testing.T, mnt string) {
	t.Helper()
	p := func(n string) string { return filepath.Join(mnt, n) }
	writeFile(t, p("empty"), nil, 0o644)
	writeFile(t, p("small.txt"), []byte("small\n"), 0o644)
	writeFile(t, p("times.bin"), []byte("t"), 0o644)
	must(t, os.Chtimes(p("times.bin"),
		time.Date(1950, 6, 7, 8, 9, 10, 500000000, time.UTC),
		time.Date(2100, 1, 2, 3, 4, 5, 123456789, time.UTC)))
	writeFile(t, p("setuid"), []byte("x"), 0o4750)
	must(t, os.Lchown(p("setuid"), 100000, 200000))
	must(t, os.Symlink("small.txt", p("link-short")))
	long := "target/" + fmt.Sprintf("%0100d", 42)
	must(t, os.Symlink(long, p("link-long")))
	must(t, os.Lchown(p("link-long"), 1234, 5678))
	must(t, syscall.Mkfifo(p("fifo"), 0o600))
	must(t, syscall.Mknod(p("tty"), syscall.S_IFCHR|0o620, int(mkdev(136, 5))))
	for i := range 3000 {
		writeFile(t, p(fmt.Sprintf("bigdir/a-rather-long-file-name-to-fill-blocks-%05d", i)), nil, 0o644)
	}
	must(t, os.Link(p("small.txt"), p("bigdir/hardlink")))
}

// TestExtKernelInline lets the kernel write inline_data files, directories
// and symlinks, including ones that spill from i_block into the system.data
// attribute, and compares with the kernel's read-only view.
func TestExtKernelInline(t *testing.T) {
	needRoot(t)
	needTools(t, "mke2fs", "mount", "umount")
	img := filepath.Join(t.TempDir(), "inline.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 32<<20))
	run(t, nil, nil, "mke2fs", "-F", "-q", "-t", "ext4", "-b", "4096", "-I", "512", "-O", "inline_data", img)

	mnt, unmount := loopMountUnmount(t, img, "rw")
	p := func(n string) string { return filepath.Join(mnt, n) }
	writeFile(t, p("f30"), randBytes(30, 30), 0o644)
	writeFile(t, p("f200"), randBytes(200, 200), 0o644)
	writeFile(t, p("one/only"), []byte("o"), 0o644)
	for i := range 6 {
		writeFile(t, p(fmt.Sprintf("spill/entry-with-a-longer-name-%d", i)), []byte{byte(i)}, 0o644)
	}
	must(t, os.Symlink(fmt.Sprintf("%0150d", 7), p("link150")))
	unmount()

	mnt = loopMount(t, img, "ro")
	r, size := openImage(t, img)
	fsys, err := OpenExt(r, size)
	must(t, err)
	x := fsys.(*ExtFS)
	for name, spills := range map[string]bool{"f30": false, "f200": true, "one": false, "spill": true} {
		in, err := x.lookup([]string{name})
		must(t, err)
		if in.flags&inodeInlineData == 0 {
			t.Errorf("%s: not inline (flags %#x)", name, in.flags)
			continue
		}
		rest, err := x.inlineXattr(in)
		if err != nil || (len(rest) > 0) != spills {
			t.Errorf("%s: system.data of %d bytes (%v), want spill=%v", name, len(rest), err, spills)
		}
	}
	compareTree(t, fsys, mnt, cmpOpts{nanos: true, atime: true})
}

// TestExtNeedsRecovery copies an image while it is mounted read-write, as
// a crash-consistent image backup does: the journal needs recovery, the
// reader says so and still reads what was written before the mount.
func TestExtNeedsRecovery(t *testing.T) {
	needRoot(t)
	needTools(t, "mke2fs", "mount", "umount")
	src := smallTree(t)
	img := filepath.Join(t.TempDir(), "live.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 32<<20))
	run(t, nil, nil, "mke2fs", "-F", "-q", "-t", "ext4", "-d", src, img)
	mnt, unmount := loopMountUnmount(t, img, "rw")
	writeFile(t, filepath.Join(mnt, "new.txt"), []byte("written while mounted"), 0o644)
	snapshot, err := os.ReadFile(img)
	must(t, err)
	unmount()

	fsys, err := openBytes(snapshot)
	must(t, err)
	if !fsys.(*ExtFS).NeedsRecovery() {
		t.Error("NeedsRecovery is false for an image copied while mounted")
	}
	compareTree(t, fsys, src, cmpOpts{skip: func(rel string) bool { return rel == "lost+found" || rel == "new.txt" }})
}
