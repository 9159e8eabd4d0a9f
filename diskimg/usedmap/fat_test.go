package usedmap

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fatCase struct {
	name    string
	mkfs    string
	size    int64
	garbage bool
	files   int
	maxFile int
	fs      string
}

var fatCases = []fatCase{
	{"fat12", "-F 12", 8 << 20, true, 20, 256 << 10, "fat12"},
	{"fat12-small-clusters", "-F 12 -s 1", 2 << 20, true, 12, 64 << 10, "fat12"},
	{"fat16", "-F 16", 64 << 20, true, 30, 512 << 10, "fat16"},
	{"fat16-4k-sectors", "-F 16 -S 4096", 64 << 20, true, 30, 512 << 10, "fat16"},
	{"fat32", "-F 32", 128 << 20, true, 40, 512 << 10, "fat32"},
	{"fat32-one-fat", "-F 32 -f 1", 64 << 20, true, 30, 256 << 10, "fat32"},
	{"fat32-4k-clusters-sparse", "-F 32 -s 8", 600 << 20, false, 40, 1 << 20, "fat32"},
}

func TestFATImages(t *testing.T) {
	need(t, "mkfs.vfat", "fsck.vfat", "mcopy", "mdel")
	for _, tc := range fatCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, "img")
			newImage(t, img, tc.size, tc.garbage)
			run(t, "mkfs.vfat", append(strings.Fields(tc.mkfs), img)...)

			// Fill, then delete every other file to make holes, then
			// write more so new files are fragmented into those holes.
			src := filepath.Join(dir, "src")
			populate(t, src, uint64(len(tc.name)), tc.files, tc.maxFile)
			mcopyIn(t, img, src, "::/")
			f, size := openImage(t, img)
			before, err := FAT(f, size)
			if err != nil {
				t.Fatalf("FAT: %v", err)
			}
			var del []string
			for i := 0; i < tc.files; i += 2 {
				del = append(del, fmt.Sprintf("::/d%d/e%d/f%03d", i%4, i%3, i))
			}
			run(t, "mdel", append([]string{"-i", img}, del...)...)
			afterDel, err := FAT(f, size)
			if err != nil {
				t.Fatalf("FAT after mdel: %v", err)
			}
			if afterDel.UsedBytes >= before.UsedBytes {
				t.Fatalf("deleting files did not shrink the map: %d then %d bytes", before.UsedBytes, afterDel.UsedBytes)
			}
			more := filepath.Join(dir, "more")
			populate(t, filepath.Join(more, "more"), 99, tc.files/2, tc.maxFile*2)
			mcopyIn(t, img, more, "::/")
			checkFATImage(t, img, tc.fs)
		})
	}
}

// mcopyIn copies the directories of dir (not symlinks: FAT has none)
// into the image.
func mcopyIn(t *testing.T, img, dir, to string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-s", "-i", img}
	for _, e := range ents {
		if e.IsDir() {
			args = append(args, filepath.Join(dir, e.Name()))
		}
	}
	run(t, "mcopy", append(args, to)...)
}

// checkFATImage runs FAT on an image and proves the map: a copy of only
// the used extents is fsck.vfat-clean and holds the same files.
func checkFATImage(t *testing.T, img, wantFS string) *Result {
	t.Helper()
	f, size := openImage(t, img)
	res, err := FAT(f, size)
	if err != nil {
		t.Fatalf("FAT: %v", err)
	}
	if res.Method != MethodFAT || res.FS != wantFS {
		t.Fatalf("method %s fs %s, want %s %s", res.Method, res.FS, MethodFAT, wantFS)
	}
	checkShape(t, res, size)
	out := run(t, "fsck.vfat", "-nv", img)
	var files, usedClusters, clusters int64
	if _, err := fmt.Sscanf(out[strings.LastIndex(out, img+": ")+len(img)+2:], "%d files, %d/%d clusters", &files, &usedClusters, &clusters); err != nil {
		t.Fatalf("fsck.vfat summary: %v\n%s", err, out)
	}
	g, err := readFATBoot(f, size)
	if err != nil {
		t.Fatal(err)
	}
	metaBytes := g.firstData() * g.sector
	if want := metaBytes + usedClusters*res.BlockSize; res.UsedBytes != want {
		t.Fatalf("used %d bytes; fsck.vfat counts %d clusters of %d + %d metadata bytes = %d",
			res.UsedBytes, usedClusters, res.BlockSize, metaBytes, want)
	}
	t.Logf("%s: %d of %d bytes used (%.1f%%): %d metadata bytes + %d of %d clusters of %d bytes, as fsck.vfat counts",
		res.FS, res.UsedBytes, size, 100*float64(res.UsedBytes)/float64(size), metaBytes, usedClusters, clusters, res.BlockSize)

	dir := t.TempDir()
	cp := filepath.Join(dir, "copy")
	copyUsed(t, img, cp, size, res.Used)
	if out, code := runCode("fsck.vfat", "-n", cp); code != 0 {
		t.Fatalf("copy of used extents: fsck.vfat -n exit %d\n%s", code, out)
	}
	want, got := filepath.Join(dir, "want"), filepath.Join(dir, "got")
	for _, d := range []struct{ img, out string }{{img, want}, {cp, got}} {
		if err := os.Mkdir(d.out, 0o755); err != nil {
			t.Fatal(err)
		}
		run(t, "mcopy", "-s", "-n", "-i", d.img, "::/*", d.out+"/")
	}
	compareTrees(t, want, got)
	return res
}

// A FAT32 layout with too few clusters for FAT32 is FAT16 by the
// specification's count: the two readings disagree, so FAT refuses it.
func TestFATLayoutDisagreesWithCount(t *testing.T) {
	need(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "img")
	newImage(t, img, 64<<20, false)
	run(t, "mkfs.vfat", "-F", "32", "-s", "8", img)
	f, size := openImage(t, img)
	if _, err := FAT(f, size); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "make it fat16 by the specification's count, but the BPB is laid out as fat32") {
		t.Fatalf("FAT: %v, want ErrUnsupported about the layout", err)
	}
	res, err := Detect(f, size)
	if err != nil || res.Method != MethodZeroScan || !errors.Is(res.Refused, ErrUnsupported) {
		t.Fatalf("Detect: %+v, %v", res, err)
	}
}

// Bad clusters are not data; any other non-zero entry, in any FAT copy,
// is used.
func TestFATEntries(t *testing.T) {
	need(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "img")
	newImage(t, img, 8<<20, false)
	run(t, "mkfs.vfat", "-F", "16", "-s", "1", img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	g, err := readFATBoot(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	fat1 := g.reserved * g.sector
	fat2 := fat1 + g.fatSize*g.sector
	put := func(off int64, c int, v uint16) { b[off+int64(2*c)], b[off+int64(2*c)+1] = byte(v), byte(v>>8) }
	put(fat1, 10, 0xFFF7) // bad: not data
	put(fat1, 11, 0xFFFF) // end of chain
	put(fat2, 12, 0x0005) // only in the second copy
	put(fat1, 13, 0xFFF0) // reserved value: kept
	res, err := FAT(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	cluster := func(c int64) Extent {
		return Extent{(g.firstData() + (c-2)*g.perCluster) * g.sector, g.perCluster * g.sector}
	}
	for c, want := range map[int64]bool{10: false, 11: true, 12: true, 13: true, 14: false} {
		if got := covers(res.Used, cluster(c)); got != want {
			t.Errorf("cluster %d used = %v, want %v", c, got, want)
		}
	}
}
