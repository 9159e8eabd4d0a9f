package usedmap

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

type extCase struct {
	name    string
	mkfs    string // mke2fs options; -F -q -E nodiscard and -d are added
	size    int64
	garbage bool // random bytes in free space
	files   int  // random files put in with -d (0: none)
	fs      string
}

var extCases = []extCase{
	{"ext4-default", "-t ext4 -b 4096", 128 << 20, true, 40, "ext4"},
	{"ext4-no-csum-no-64bit", "-t ext4 -b 4096 -O ^metadata_csum,^64bit", 96 << 20, true, 30, "ext4"},
	{"ext4-gdt-csum", "-t ext4 -b 4096 -O ^metadata_csum,uninit_bg", 96 << 20, true, 30, "ext4"},
	{"ext2", "-t ext2", 64 << 20, true, 30, "ext2"},
	{"ext2-no-sparse-super", "-t ext2 -b 1024 -O ^sparse_super,^resize_inode", 40 << 20, true, 20, "ext2"},
	{"ext3", "-t ext3", 64 << 20, true, 30, "ext3"},
	{"ext4-1k", "-t ext4 -b 1024", 64<<20 + 5<<10, true, 30, "ext4"},
	{"ext4-2k-no-flex", "-t ext4 -b 2048 -O ^flex_bg", 72<<20 + 6<<10, true, 30, "ext4"},
	{"ext4-meta-bg", "-t ext4 -b 1024 -O meta_bg,^resize_inode", 96 << 20, true, 30, "ext4"},
	{"ext4-sparse-super2", "-t ext4 -b 1024 -O sparse_super2", 64 << 20, true, 30, "ext4"},
	{"ext4-bigalloc", "-t ext4 -b 4096 -O bigalloc -C 65536", 256 << 20, true, 40, "ext4"},
	{"ext4-bigalloc-1k", "-t ext4 -b 1024 -O bigalloc,^resize_inode -C 16384", 64 << 20, true, 30, "ext4"},
	{"ext4-64k-blocks", "-t ext4 -b 65536", 256<<20 + 64<<10, false, 20, "ext4"},
	{"ext4-inline-data", "-t ext4 -b 4096 -I 256 -O inline_data", 64 << 20, true, 30, "ext4"},
	{"ext4-large-sparse", "-t ext4 -b 4096", 4 << 30, false, 60, "ext4"},
	{"ext4-many-groups-1k", "-t ext4 -b 1024", 1 << 30, false, 60, "ext4"},
}

func TestExtImages(t *testing.T) {
	need(t, "mke2fs", "dumpe2fs", "e2fsck", "debugfs")
	for _, tc := range extCases {
		t.Run(tc.name, func(t *testing.T) {
			if testing.Short() && tc.size > 256<<20 {
				t.Skip("large image")
			}
			dir := t.TempDir()
			img := filepath.Join(dir, "img")
			newImage(t, img, tc.size, tc.garbage)
			args := append(strings.Fields(tc.mkfs), "-F", "-q", "-E", "nodiscard")
			if tc.files > 0 {
				src := filepath.Join(dir, "src")
				populate(t, src, uint64(len(tc.name)), tc.files, 256<<10)
				args = append(args, "-d", src)
			}
			run(t, "mke2fs", append(args, img)...)
			res, uninit := checkExtImage(t, img, tc.fs)
			if res.SuspectGroups != 0 {
				t.Errorf("%d suspect groups on a fresh filesystem", res.SuspectGroups)
			}
			if tc.size >= 1<<30 && uninit == 0 {
				t.Errorf("no BLOCK_UNINIT group in a large image: that path went untested")
			}
		})
	}
}

// checkExtImage runs Ext on an image and proves the map with both oracles:
// every block dumpe2fs counts as used is in it, and a copy of only the
// used extents is e2fsck-clean and holds the same files.
func checkExtImage(t *testing.T, img, wantFS string) (res *Result, uninitGroups int) {
	t.Helper()
	f, size := openImage(t, img)
	res, err := Ext(f, size)
	if err != nil {
		t.Fatalf("Ext: %v", err)
	}
	if res.Method != MethodExt || res.FS != wantFS {
		t.Fatalf("method %s fs %s, want %s %s", res.Method, res.FS, MethodExt, wantFS)
	}
	checkShape(t, res, size)
	for _, e := range res.Used {
		if (e.Off%res.BlockSize != 0 || e.Len%res.BlockSize != 0) && e.End() != size {
			t.Fatalf("extent %+v not whole %d-byte units", e, res.BlockSize)
		}
	}
	extra, total, uninit := compareDumpe2fs(t, img, res)
	t.Logf("%s: %d of %d bytes used (%.1f%%); %d blocks beyond dumpe2fs's %d used (+%.2f%%); %d BLOCK_UNINIT groups",
		res.FS, res.UsedBytes, size, 100*float64(res.UsedBytes)/float64(size), extra, total, 100*float64(extra)/float64(total), uninit)

	dir := t.TempDir()
	cp := filepath.Join(dir, "copy")
	copyUsed(t, img, cp, size, res.Used)
	if out, code := runCode("e2fsck", "-fn", img); code != 0 {
		t.Fatalf("original not clean (test setup): e2fsck exit %d\n%s", code, out)
	}
	if out, code := runCode("e2fsck", "-fn", cp); code != 0 {
		t.Fatalf("copy of used extents: e2fsck -fn exit %d\n%s", code, out)
	}
	want, got := filepath.Join(dir, "want"), filepath.Join(dir, "got")
	for _, d := range []struct{ img, out string }{{img, want}, {cp, got}} {
		if err := os.Mkdir(d.out, 0o755); err != nil {
			t.Fatal(err)
		}
		if out := run(t, "debugfs", "-R", "rdump / "+d.out, d.img); strings.Contains(out, "rdump:") {
			t.Fatalf("debugfs rdump %s: %s", d.img, out)
		}
	}
	compareTrees(t, want, got)
	return res, uninit
}

var (
	reBlockCount = regexp.MustCompile(`(?m)^Block count:\s+(\d+)$`)
	reBlockSize  = regexp.MustCompile(`(?m)^Block size:\s+(\d+)$`)
	reCluster    = regexp.MustCompile(`(?m)^Cluster size:\s+(\d+)$`)
	reFree       = regexp.MustCompile(`(?m)^\s+Free blocks: ?(.*)$`)
)

// compareDumpe2fs fails if a block dumpe2fs does not list as free is
// missing from res, and returns how many blocks res has that dumpe2fs
// lists as free, and how many it counts as used.
func compareDumpe2fs(t *testing.T, img string, res *Result) (extra, used int64, uninit int) {
	t.Helper()
	out := run(t, "dumpe2fs", img)
	uninit = strings.Count(out, "BLOCK_UNINIT")
	num := func(re *regexp.Regexp) int64 {
		m := re.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("dumpe2fs: no %s", re)
		}
		n, _ := strconv.ParseInt(m[1], 10, 64)
		return n
	}
	blocks, bs := num(reBlockCount), num(reBlockSize)
	// With bigalloc dumpe2fs prints a free range's end as the first block
	// of its last cluster.
	ratio := int64(1)
	if reCluster.MatchString(out) {
		ratio = num(reCluster) / bs
	}
	free := make([]bool, blocks)
	for _, m := range reFree.FindAllStringSubmatch(out, -1) {
		for _, r := range strings.Split(m[1], ", ") {
			if r = strings.TrimSpace(r); r == "" {
				continue
			}
			a, b, _ := strings.Cut(r, "-")
			lo, err1 := strconv.ParseInt(a, 10, 64)
			hi := lo
			var err2 error
			if b != "" {
				hi, err2 = strconv.ParseInt(b, 10, 64)
			}
			hi = min(hi+ratio-1, blocks-1)
			if err1 != nil || err2 != nil || lo > hi {
				t.Fatalf("dumpe2fs free range %q", r)
			}
			for i := lo; i <= hi; i++ {
				free[i] = true
			}
		}
	}
	ours := make([]bool, blocks)
	for _, e := range res.Used {
		for b := e.Off / bs; b < min((e.End()+bs-1)/bs, blocks); b++ {
			ours[b] = true
		}
	}
	var missing []int64
	for b := range blocks {
		switch {
		case !free[b]:
			used++
			if !ours[b] {
				missing = append(missing, b)
			}
		case ours[b]:
			extra++
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%d blocks in use per dumpe2fs missing from the map, first %v", len(missing), missing[:min(10, len(missing))])
	}
	return extra, used, uninit
}

func TestExtRefusesNeedsRecovery(t *testing.T) {
	need(t, "mke2fs", "debugfs")
	img := filepath.Join(t.TempDir(), "img")
	newImage(t, img, 16<<20, false)
	run(t, "mke2fs", "-t", "ext4", "-F", "-q", img)
	run(t, "debugfs", "-w", "-R", "feature needs_recovery", img)
	f, size := openImage(t, img)
	if _, err := Ext(f, size); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "recovery") {
		t.Fatalf("Ext: %v, want ErrUnsupported naming the journal recovery", err)
	}
	res, err := Detect(f, size)
	if err != nil || res.Method != MethodZeroScan || res.FS != "" || !errors.Is(res.Refused, ErrUnsupported) {
		t.Fatalf("Detect: %+v, %v; want a zero-scan with the refusal", res, err)
	}
	if res.UsedBytes != size {
		t.Fatalf("zero-scan covers %d of %d bytes", res.UsedBytes, size)
	}
}
