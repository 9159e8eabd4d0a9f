package fsread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// extTree describes what buildExtTree put where, for targeted checks.
type extTree struct {
	dir      string
	longLink string
}

// buildExtTree creates the source tree every ext variant is built from:
// empty, small, inline-sized and multi-MiB files, a 100 MiB sparse file
// whose data reaches the triple indirect block on 1 KiB blocks, short,
// long (slow) and absolute symlinks, a hard link, a directory with 5000
// entries, odd names, special permissions, owners with high 16 bits, a
// fifo and device nodes, and set mtimes.
func buildExtTree(t testing.TB) extTree {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	tr := extTree{dir: dir, longLink: "../" + strings.Repeat("long-target-component/", 5) + "file-that-does-not-exist.txt"}
	w := func(name string, data []byte, mode os.FileMode) { writeFile(t, filepath.Join(dir, name), data, mode) }
	w("empty", nil, 0o644)
	w("small.txt", []byte("hello, world\n"), 0o644)
	w("inline59.bin", randBytes(1, 59), 0o644)
	w("inline100.bin", randBytes(2, 100), 0o644)
	w("big3m.bin", randBytes(3, 3<<20), 0o644)
	w("big7m.bin", randBytes(4, 7<<20+123), 0o600)
	writeSparse(t, filepath.Join(dir, "sparse.img"))
	w("hard-a", []byte("linked content\n"), 0o644)
	must(t, os.Link(filepath.Join(dir, "hard-a"), filepath.Join(dir, "hard-b")))
	must(t, os.Symlink("small.txt", filepath.Join(dir, "link-short")))
	must(t, os.Symlink(tr.longLink, filepath.Join(dir, "link-long")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "link-abs")))
	must(t, os.Symlink(strings.Repeat("m", 90), filepath.Join(dir, "link-mid")))
	w("tinydir/x", []byte("x"), 0o644)
	for i := range 5000 {
		var data []byte
		if i%1000 == 0 {
			data = []byte(fmt.Sprintf("entry %d\n", i))
		}
		w(fmt.Sprintf("many/entry-%05d", i), data, 0o644)
	}
	for _, n := range []string{"with space.txt", "ünïcödé-名前.txt", "new\nline", "quote'\"&$.txt"} {
		w("names/"+n, []byte(n), 0o644)
	}
	for _, n := range []string{"first-file-name", "second-file-name", "third-file-name"} {
		w("smalldir/"+n, []byte(n), 0o644)
	}
	w("deep/a/b/c/d/e/f/g/leaf.txt", []byte("deep\n"), 0o644)
	w("perms/p0700", []byte("x"), 0o700)
	w("perms/p0755", []byte("x"), 0o755)
	w("perms/setuid", []byte("x"), 0o4755)
	w("perms/setgid", []byte("x"), 0o2755)
	w("perms/owned", []byte("x"), 0o640)
	w("perms/bigid", []byte("x"), 0o640)
	must(t, os.Mkdir(filepath.Join(dir, "perms/private"), 0o700))
	must(t, os.Mkdir(filepath.Join(dir, "perms/sticky"), 0o755))
	must(t, os.Chmod(filepath.Join(dir, "perms/sticky"), 0o1777|os.ModeSticky))
	must(t, os.Mkdir(filepath.Join(dir, "special"), 0o755))
	must(t, syscall.Mkfifo(filepath.Join(dir, "special/fifo"), 0o644))
	if os.Geteuid() == 0 {
		must(t, os.Lchown(filepath.Join(dir, "perms/owned"), 1000, 1000))
		must(t, os.Lchown(filepath.Join(dir, "perms/bigid"), 70000, 131073))
		must(t, syscall.Mknod(filepath.Join(dir, "special/null"), syscall.S_IFCHR|0o666, int(mkdev(1, 3))))
		must(t, syscall.Mknod(filepath.Join(dir, "special/loop"), syscall.S_IFBLK|0o660, int(mkdev(7, 300))))
		must(t, syscall.Mknod(filepath.Join(dir, "special/bigdev"), syscall.S_IFCHR|0o600, int(mkdev(4000, 70000))))
	}
	setTimes(t, dir, time.Date(1971, 1, 1, 0, 0, 1, 0, time.UTC))
	return tr
}

func mkdev(major, minor uint64) uint64 {
	return (major&0xfffff000)<<32 | (major&0xfff)<<8 | (minor&0xffffff00)<<12 | minor&0xff
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeSparse writes a 100 MiB+17 file with data at 0, 5 MiB, 70 MiB and
// the end; everything else is a hole.
func writeSparse(t testing.TB, path string) {
	must(t, os.MkdirAll(filepath.Dir(path), 0o755))
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	must(t, f.Truncate(100<<20+17))
	for i, off := range []int64{0, 5 << 20, 70 << 20, 100<<20 + 17 - 10000} {
		_, err := f.WriteAt(randBytes(uint64(10+i), 10000), off)
		must(t, err)
	}
}

// setTimes gives every entry a distinct mtime and atime between 2001 and
// 2037 (mkfs -d stores seconds only and wraps after 2038), one entry
// oldest, directories last.
func setTimes(t testing.TB, dir string, oldest time.Time) {
	t.Helper()
	var paths []string
	must(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for i := len(paths) - 1; i >= 0; i-- { // children before parents
		p := paths[i]
		mt := base.Add(time.Duration(i) * 7919 * time.Second)
		at := mt.Add(time.Hour)
		if i == 3 {
			mt = oldest
		}
		must(t, lutimes(p, at, mt))
	}
}

// lutimes sets the times of p without following a symlink (touch -h for
// symlinks, which os.Chtimes would follow).
func lutimes(p string, atime, mtime time.Time) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return os.Chtimes(p, atime, mtime)
	}
	for _, a := range []struct {
		flag string
		t    time.Time
	}{{"-a", atime}, {"-m", mtime}} {
		stamp := fmt.Sprintf("@%d.%09d", a.t.Unix(), a.t.Nanosecond())
		if out, err := exec.Command("touch", "-h", a.flag, "-d", stamp, p).CombinedOutput(); err != nil {
			return fmt.Errorf("touch %s: %v: %s", p, err, out)
		}
	}
	return nil
}

// extVariant is one way of formatting the tree.
type extVariant struct {
	name     string
	wantType string
	mkfs     []string
	mount    bool // the kernel can mount it (not 64 KiB blocks)
}

func extVariants() []extVariant {
	return []extVariant{
		{"ext4", "ext4", []string{"-t", "ext4", "-b", "4096"}, true},
		{"ext4-nocsum-no64bit", "ext4", []string{"-t", "ext4", "-b", "4096", "-O", "^metadata_csum,^64bit"}, true},
		{"ext4-inline", "ext4", []string{"-t", "ext4", "-b", "4096", "-O", "inline_data"}, true},
		{"ext2", "ext2", []string{"-t", "ext2"}, true},
		{"ext2-128-inodes", "ext2", []string{"-t", "ext2", "-b", "4096", "-I", "128"}, true},
		{"ext3", "ext3", []string{"-t", "ext3", "-b", "4096"}, true},
		{"ext4-1k", "ext4", []string{"-t", "ext4", "-b", "1024"}, true},
		{"ext4-64k", "ext4", []string{"-t", "ext4", "-b", "65536"}, false},
		{"ext4-meta_bg", "ext4", []string{"-t", "ext4", "-b", "1024", "-g", "1024", "-O", "meta_bg,^resize_inode"}, true},
		{"ext4-bigalloc", "ext4", []string{"-t", "ext4", "-O", "bigalloc", "-C", "16384"}, true},
	}
}

// makeExtImage formats a 64 MiB image from dir and rebuilds directory
// indexes (mkfs -d does not create htrees; e2fsck -D does).
func makeExtImage(t testing.TB, dir string, args []string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fs.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 64<<20))
	a := append([]string{"-F", "-q", "-N", "8192", "-E", "root_owner=0:0", "-d", dir}, args...)
	run(t, nil, nil, "mke2fs", append(a, img)...)
	run(t, nil, []int{1}, "e2fsck", "-fyD", img)
	run(t, nil, nil, "e2fsck", "-fn", img)
	return img
}

func skipLostFound(rel string) bool { return rel == "lost+found" }

func TestExtVariants(t *testing.T) {
	needTools(t, "mke2fs", "e2fsck")
	tree := buildExtTree(t)
	for _, v := range extVariants() {
		t.Run(v.name, func(t *testing.T) {
			img := makeExtImage(t, tree.dir, v.mkfs)
			r, size := openImage(t, img)
			fsys, err := Open(r, size)
			if err != nil {
				t.Fatal(err)
			}
			if fsys.Type() != v.wantType {
				t.Errorf("Type() = %q, want %q", fsys.Type(), v.wantType)
			}
			if fsys.(*ExtFS).NeedsRecovery() {
				t.Error("NeedsRecovery on a fresh image")
			}
			compareTree(t, fsys, tree.dir, cmpOpts{skip: skipLostFound})
			checkExtStructure(t, fsys.(*ExtFS), v)
			if v.mount && os.Geteuid() == 0 {
				mnt := loopMount(t, img, "ro")
				compareTree(t, fsys, mnt, cmpOpts{nanos: true, atime: true})
			}
		})
	}
}

// checkExtStructure proves the variant exercised what it is meant to:
// an htree directory, hard links, inline data, block maps.
func checkExtStructure(t *testing.T, x *ExtFS, v extVariant) {
	t.Helper()
	many, err := x.lookup([]string{"many"})
	must(t, err)
	if many.flags&inodeIndex == 0 {
		t.Errorf("many/ is not an htree directory (flags %#x)", many.flags)
	}
	a, err1 := x.Stat("hard-a")
	b, err2 := x.Stat("hard-b")
	if err1 != nil || err2 != nil || a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hard links: %+v %+v %v %v", a, b, err1, err2)
	}
	if strings.Contains(v.name, "inline") {
		for _, p := range []string{"inline59.bin", "inline100.bin", "tinydir", "link-mid"} {
			in, err := x.lookup(strings.Split(p, "/"))
			must(t, err)
			if in.flags&inodeInlineData == 0 {
				t.Errorf("%s is not inline (flags %#x)", p, in.flags)
			}
		}
	}
	sparse, err := x.lookup([]string{"sparse.img"})
	must(t, err)
	if v.wantType != "ext4" && sparse.flags&inodeExtents != 0 {
		t.Errorf("%s: sparse.img uses extents", v.name)
	}
	// With 1 KiB blocks, the data at 70 MiB is beyond the double indirect
	// block's reach (12+256+65536 blocks): the triple indirect one is used.
	if sparse.flags&inodeExtents == 0 && x.sb.blockSize == 1024 {
		if binary.LittleEndian.Uint32(sparse.block()[14*4:]) == 0 {
			t.Errorf("%s: sparse.img has no triple indirect block", v.name)
		}
	}
}

func TestExtWalkAndIOFS(t *testing.T) {
	needTools(t, "mke2fs", "e2fsck")
	tree := buildExtTree(t)
	img := makeExtImage(t, tree.dir, []string{"-t", "ext4", "-b", "4096"})
	r, size := openImage(t, img)
	fsys, err := OpenExt(r, size)
	must(t, err)
	var paths []string
	must(t, Walk(fsys, ".", func(p string, e *Entry, err error) error {
		if err != nil {
			return err
		}
		if p == "many" {
			return fs.SkipDir
		}
		paths = append(paths, p)
		return nil
	}))
	var want []string
	must(t, fs.WalkDir(os.DirFS(tree.dir), ".", func(p string, d fs.DirEntry, err error) error {
		if p == "many" {
			return fs.SkipDir
		}
		want = append(want, p)
		return err
	}))
	want = append(want[:1], append([]string{"lost+found"}, want[1:]...)...)
	want = sortedLikeWalk(want)
	if strings.Join(paths, "|") != strings.Join(want, "|") {
		t.Errorf("Walk order:\n got %q\nwant %q", paths, want)
	}
	// Walk a subtree; SkipAll stops.
	n := 0
	must(t, Walk(fsys, "deep/a", func(p string, e *Entry, err error) error {
		n++
		if p == "deep/a/b/c" {
			return fs.SkipAll
		}
		return err
	}))
	if n != 3 {
		t.Errorf("Walk with SkipAll visited %d, want 3", n)
	}
}

// sortedLikeWalk reorders fs.WalkDir output (which already is depth-first
// by name) after inserting lost+found: a stable byte-wise sort of each
// directory's children is what both walks produce, so sorting the path
// elements gives the same order.
func sortedLikeWalk(paths []string) []string {
	out := append([]string(nil), paths...)
	less := func(a, b string) bool {
		ea, eb := strings.Split(a, "/"), strings.Split(b, "/")
		if a == "." {
			return b != "."
		}
		if b == "." {
			return false
		}
		for i := 0; i < len(ea) && i < len(eb); i++ {
			if ea[i] != eb[i] {
				return ea[i] < eb[i]
			}
		}
		return len(ea) < len(eb)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && less(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestExtCasefold marks a directory casefold (the kernel here lacks
// Unicode support, so debugfs sets the flag): names list as stored and
// lookups there ignore case; elsewhere they do not.
func TestExtCasefold(t *testing.T) {
	needTools(t, "mke2fs", "debugfs")
	src := filepath.Join(t.TempDir(), "src")
	writeFile(t, filepath.Join(src, "cf/MixedName.txt"), []byte("m"), 0o644)
	writeFile(t, filepath.Join(src, "plain/MixedName.txt"), []byte("p"), 0o644)
	img := filepath.Join(t.TempDir(), "cf.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 8<<20))
	run(t, nil, nil, "mke2fs", "-F", "-q", "-t", "ext4", "-O", "casefold", "-d", src, img)
	run(t, nil, nil, "debugfs", "-w", "-R", "set_inode_field /cf flags 0x40080000", img)
	r, size := openImage(t, img)
	fsys, err := OpenExt(r, size)
	must(t, err)
	if !slices.Contains(fsys.(*ExtFS).Features(), "casefold") {
		t.Errorf("features %v lack casefold", fsys.(*ExtFS).Features())
	}
	entries, err := fsys.ReadDir("cf")
	if err != nil || len(entries) != 1 || entries[0].Name != "MixedName.txt" {
		t.Errorf("ReadDir(cf) = %v, %v", entries, err)
	}
	if _, err := fsys.Stat("cf/MIXEDNAME.txt"); err != nil {
		t.Errorf("case-insensitive lookup in a casefold directory: %v", err)
	}
	if _, err := fsys.Stat("plain/MIXEDNAME.txt"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("case-insensitive lookup in a plain directory: %v", err)
	}
}
