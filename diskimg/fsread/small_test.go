package fsread

import (
	"os"
	"path/filepath"
	"testing"
)

// smallTree is a tiny tree for damage tests and fuzz seeds: a file with
// a few blocks, a nested file, an empty file and two symlinks.
func smallTree(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "small")
	writeFile(t, filepath.Join(dir, "a.txt"), randBytes(80, 5000), 0o644)
	writeFile(t, filepath.Join(dir, "d/b.txt"), []byte("bee\n"), 0o644)
	writeFile(t, filepath.Join(dir, "d/e/empty"), nil, 0o644)
	must(t, os.Symlink("a.txt", filepath.Join(dir, "l")))
	must(t, os.Symlink("../long-target-name-that-needs-more-than-sixty-bytes-to-store-it/x", filepath.Join(dir, "d/long")))
	return dir
}

// smallExtImage formats an image of size bytes from smallTree and returns
// its bytes.
func smallExtImage(t testing.TB, size int64, args ...string) []byte {
	t.Helper()
	needTools(t, "mke2fs")
	src := smallTree(t)
	img := filepath.Join(t.TempDir(), "small.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, size))
	a := append([]string{"-F", "-q", "-N", "32", "-E", "root_owner=0:0", "-d", src}, args...)
	run(t, nil, nil, "mke2fs", append(a, img)...)
	data, err := os.ReadFile(img)
	must(t, err)
	return data
}

// smallFATImage formats a FAT image with mkfs.vfat args and copies
// smallTree's regular files into it.
func smallFATImage(t testing.TB, size int64, args ...string) []byte {
	t.Helper()
	needTools(t, "mkfs.vfat", "mcopy", "mmd")
	src := smallTree(t)
	img := filepath.Join(t.TempDir(), "small.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, size))
	run(t, nil, nil, "mkfs.vfat", append(args, img)...)
	run(t, mtoolsEnv, nil, "mmd", "-i", img, "::/d", "::/d/e", "::/A Longer Directory Name")
	run(t, mtoolsEnv, nil, "mcopy", "-m", "-i", img, filepath.Join(src, "a.txt"), "::/A Longer Directory Name/a long name.txt")
	run(t, mtoolsEnv, nil, "mcopy", "-m", "-i", img, filepath.Join(src, "a.txt"), filepath.Join(src, "d/b.txt"), "::/d")
	run(t, mtoolsEnv, nil, "mcopy", "-m", "-i", img, filepath.Join(src, "d/e/empty"), "::/d/e")
	data, err := os.ReadFile(img)
	must(t, err)
	return data
}
