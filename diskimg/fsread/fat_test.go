package fsread

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// mtoolsEnv makes mtools store UTC times and take UTF-8 names.
var mtoolsEnv = []string{"TZ=UTC", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "MTOOLS_SKIP_CHECK=1"}

// buildFATTree creates the tree copied into every FAT variant: long names
// (spaces, mixed case, non-ASCII), an all-lowercase 8.3 name (stored with
// the NT case bits), nested directories, 100 files in one directory, a
// 5 MiB file, an empty file and filler files to fragment a later file.
func buildFATTree(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	w := func(name string, data []byte, mode os.FileMode) { writeFile(t, filepath.Join(dir, name), data, mode) }
	w("A long file name with spaces.txt", []byte("long\n"), 0o644)
	w("lower.txt", []byte("lower\n"), 0o644)
	w("UPPER.TXT", []byte("upper\n"), 0o644)
	w("MixedCase.Txt", []byte("mixed\n"), 0o644)
	w("Ünïcödé Mixed ✓.txt", []byte("unicode\n"), 0o644)
	w("empty.txt", nil, 0o644)
	w("big.bin", randBytes(50, 5<<20), 0o644)
	w("Sub/deeper/even deeper/file.bin", randBytes(51, 10000), 0o644)
	w("readonly.txt", []byte("ro\n"), 0o444)
	for i := 1; i <= 100; i++ {
		w(fmt.Sprintf("hundred/file number %03d.txt", i), []byte(strings.Repeat("x", i)), 0o644)
	}
	for i := range 20 {
		w(fmt.Sprintf("filler/f%02d.bin", i), randBytes(uint64(60+i), 20000), 0o644)
	}
	setTimes(t, dir, time.Date(1980, 1, 2, 0, 0, 2, 0, time.UTC))
	return dir
}

type fatVariant struct {
	name     string
	wantType string
	size     int64
	mkfs     []string
}

func fatVariants() []fatVariant {
	return []fatVariant{
		{"fat12", "fat12", 16 << 20, []string{"-F", "12"}},
		{"fat16", "fat16", 64 << 20, []string{"-F", "16"}},
		{"fat32", "fat32", 64 << 20, []string{"-F", "32", "-s", "1"}},
		{"fat32-4k-sectors", "fat32", 300 << 20, []string{"-F", "32", "-S", "4096", "-s", "1"}},
	}
}

// makeFATImage formats an image, copies the tree with mcopy, marks
// readonly.txt read-only, deletes every other filler file and then copies
// frag.bin, which fills the holes and so gets a fragmented chain. The
// source tree is changed the same way.
func makeFATImage(t testing.TB, dir string, v fatVariant) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "fat.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, v.size))
	run(t, nil, nil, "mkfs.vfat", append(append([]string{}, v.mkfs...), "-n", "BESTEST", img)...)
	entries, err := os.ReadDir(dir)
	must(t, err)
	args := []string{"-s", "-m", "-i", img}
	for _, e := range entries {
		args = append(args, filepath.Join(dir, e.Name()))
	}
	run(t, mtoolsEnv, nil, "mcopy", append(args, "::/")...)
	run(t, mtoolsEnv, nil, "mattrib", "-i", img, "+r", "::/readonly.txt")
	for i := 1; i < 20; i += 2 {
		name := fmt.Sprintf("filler/f%02d.bin", i)
		run(t, mtoolsEnv, nil, "mdel", "-i", img, "::/"+name)
		must(t, os.Remove(filepath.Join(dir, name)))
	}
	if v.wantType == "fat32" {
		resetNextFree(t, img)
	}
	frag := filepath.Join(dir, "frag.bin")
	writeFile(t, frag, randBytes(70, 150000), 0o644)
	run(t, mtoolsEnv, nil, "mcopy", "-m", "-i", img, frag, "::/frag.bin")
	return img
}

func TestFATVariants(t *testing.T) {
	needTools(t, "mkfs.vfat", "mcopy", "mattrib", "mdel")
	for _, v := range fatVariants() {
		t.Run(v.name, func(t *testing.T) {
			dir := buildFATTree(t)
			img := makeFATImage(t, dir, v)
			r, size := openImage(t, img)
			fsys, err := Open(r, size)
			must(t, err)
			if fsys.Type() != v.wantType {
				t.Errorf("Type() = %q, want %q", fsys.Type(), v.wantType)
			}
			f := fsys.(*FATFS)
			if f.Label() != "BESTEST" {
				t.Errorf("Label() = %q", f.Label())
			}
			compareTree(t, fsys, dir, cmpOpts{noOwner: true, mtimeSlack: 2 * time.Second})
			if runs := fatRuns(t, f, "frag.bin"); runs < 2 {
				t.Errorf("frag.bin has %d contiguous runs, want a fragmented chain", runs)
			}
			// Lookups are case-insensitive and accept 8.3 aliases.
			for _, p := range []string{"SUB/DEEPER", "sub/Deeper/EVEN DEEPER/FILE.BIN", "ALONGF~1.TXT", "Lower.TXT"} {
				if _, err := fsys.Stat(p); err != nil {
					t.Errorf("Stat(%q): %v", p, err)
				}
			}
			if _, err := fsys.Readlink("lower.txt"); err == nil {
				t.Error("Readlink on FAT succeeded")
			}
		})
	}
}

// fatRuns counts the physically contiguous runs of a file's chain.
func fatRuns(t *testing.T, f *FATFS, name string) int {
	t.Helper()
	e, err := f.Stat(name)
	must(t, err)
	ch, err := f.newChain(uint32(e.Ino), name)
	must(t, err)
	runs := 1
	for {
		prev := ch.cur
		end, err := ch.step()
		must(t, err)
		if end {
			return runs
		}
		if ch.cur != prev+1 {
			runs++
		}
	}
}

// resetNextFree points the FAT32 FSInfo next-free hint at cluster 2, so
// mtools allocates from the start (into the holes) rather than after the
// last allocated cluster.
func resetNextFree(t testing.TB, img string) {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	must(t, err)
	defer f.Close()
	var bpb [512]byte
	_, err = f.ReadAt(bpb[:], 0)
	must(t, err)
	bps := int64(binary.LittleEndian.Uint16(bpb[11:]))
	fsinfo := int64(binary.LittleEndian.Uint16(bpb[48:]))
	_, err = f.WriteAt([]byte{2, 0, 0, 0}, fsinfo*bps+492)
	must(t, err)
}
