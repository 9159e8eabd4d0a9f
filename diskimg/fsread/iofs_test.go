package fsread

import (
	"io/fs"
	"testing"
	"testing/fstest"
)

// TestIOFS runs the standard library's file system conformance checks on
// the io/fs adapter of an ext and a FAT image.
func TestIOFS(t *testing.T) {
	t.Run("ext4", func(t *testing.T) {
		needTools(t, "mke2fs", "e2fsck")
		tree := buildExtTree(t)
		img := makeExtImage(t, tree.dir, []string{"-t", "ext4", "-b", "4096"})
		r, size := openImage(t, img)
		fsys, err := OpenExt(r, size)
		must(t, err)
		iofs := AsIOFS(fsys)
		if err := fstest.TestFS(iofs, "small.txt", "deep/a/b/c/d/e/f/g/leaf.txt", "link-long", "special/fifo"); err != nil {
			t.Fatal(err)
		}
		target, err := iofs.(fs.ReadLinkFS).ReadLink("link-short")
		if err != nil || target != "small.txt" {
			t.Errorf("ReadLink = %q, %v", target, err)
		}
		if _, err := fs.ReadFile(iofs, "link-short"); err == nil {
			t.Error("reading a symlink through io/fs succeeded")
		}
		if _, err := iofs.Open("/small.txt"); err == nil {
			t.Error("Open of an invalid path succeeded")
		}
	})
	t.Run("fat32", func(t *testing.T) {
		needTools(t, "mkfs.vfat", "mcopy", "mattrib", "mdel")
		dir := buildFATTree(t)
		img := makeFATImage(t, dir, fatVariants()[2])
		r, size := openImage(t, img)
		fsys, err := OpenFAT(r, size)
		must(t, err)
		if err := fstest.TestFS(AsIOFS(fsys), "big.bin", "Sub/deeper/even deeper/file.bin", "hundred/file number 100.txt"); err != nil {
			t.Fatal(err)
		}
	})
}
