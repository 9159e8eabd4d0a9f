package usedmap

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// zeroTail is a partition whose first bytes are data and the rest, up to
// size, zeros: a small fuzz input can so stand for a large sparse image.
type zeroTail struct {
	data []byte
	size int64
}

func (z zeroTail) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("negative offset %d", off)
	}
	if off >= z.size {
		return 0, io.EOF
	}
	n := len(p)
	if rest := z.size - off; int64(n) > rest {
		n = int(rest)
	}
	clear(p[:n])
	if off < int64(len(z.data)) {
		copy(p[:n], z.data[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// fuzzSize is the partition size a fuzz input stands for: its bytes and
// extraKiB KiB of zeros after them (at most 64 MiB more).
func fuzzSize(data []byte, extraKiB uint16) int64 { return int64(len(data)) + int64(extraKiB)*1024 }

// allocBound is the most a call may allocate for a partition of size
// bytes: the metadata it keeps is a small fraction of what it maps.
func allocBound(size int64) uint64 { return 512<<10 + uint64(size)/2 }

func fuzzOne(t *testing.T, parse func(io.ReaderAt, int64) (*Result, error), data []byte, extraKiB uint16) {
	size := fuzzSize(data, extraKiB)
	r := zeroTail{data, size}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := parse(r, size)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > allocBound(size) {
		t.Fatalf("allocated %d bytes for a %d-byte partition (bound %d)", got, size, allocBound(size))
	}
	if err != nil {
		if !isFormatErr(err) {
			t.Fatalf("error that is neither a format nor a read error: %v", err)
		}
		return
	}
	if res.BlockSize <= 0 || res.FS == "" {
		t.Fatalf("result without a block size or filesystem: %+v", res)
	}
	checkShape(t, res, size)
}

func FuzzExt(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, extraKiB uint16) { fuzzOne(t, Ext, data, extraKiB) })
}

func FuzzFAT(f *testing.F) {
	f.Add([]byte{}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, extraKiB uint16) { fuzzOne(t, FAT, data, extraKiB) })
}

// fuzzSeed is the metadata prefix of a small real image: its first bytes
// up to the end of the allocation maps, trailing zeros cut, and the size
// of the rest in KiB of zeros.
type fuzzSeed struct {
	target, name string
	data         []byte
	extraKiB     uint16
}

// realSeeds builds small real images and cuts their seeds.
func realSeeds(t *testing.T) []fuzzSeed {
	need(t, "mke2fs", "mkfs.vfat", "mcopy")
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	populate(t, src, 5, 6, 20<<10)
	var seeds []fuzzSeed
	for _, c := range []struct {
		name string
		size int64
		args string
	}{
		{"ext2-1k", 1 << 20, "-t ext2 -b 1024 -O ^resize_inode"},
		{"ext3-4k", 8 << 20, "-t ext3 -b 4096 -O ^resize_inode"},
		{"ext4-1k-csum", 2 << 20, "-t ext4 -b 1024 -O ^resize_inode,^has_journal"},
		{"ext4-meta-bg-2groups", 16 << 20, "-t ext4 -b 1024 -O meta_bg,^resize_inode,^has_journal"},
		{"ext4-bigalloc", 4 << 20, "-t ext4 -b 1024 -O bigalloc,^resize_inode,^has_journal -C 16384"},
		{"ext4-gdt-csum-3groups", 24 << 20, "-t ext4 -b 1024 -O ^metadata_csum,^64bit,uninit_bg,^resize_inode,^has_journal"},
	} {
		img := filepath.Join(dir, c.name)
		newImage(t, img, c.size, false)
		run(t, "mke2fs", append(strings.Fields(c.args), "-F", "-q", "-N", "64", "-d", src, img)...)
		seeds = append(seeds, cutSeed(t, "FuzzExt", c.name, img, func(r io.ReaderAt, size int64) int64 {
			g, err := readExtSuper(r, size)
			if err != nil {
				t.Fatal(err)
			}
			descs, err := readGroupDescs(r, size, g)
			if err != nil {
				t.Fatal(err)
			}
			end := uint64(0)
			for _, d := range descs {
				end = max(end, d.blockBitmap+1)
			}
			return int64(end) * g.blockSize
		}))
	}
	for _, c := range []struct {
		name string
		size int64
		args string
	}{
		{"fat12", 1 << 20, "-F 12 -s 4 -r 16"},
		{"fat16", 4 << 20, "-F 16 -s 1 -f 1 -r 16"},
		{"fat32", 40 << 20, "-F 32 -s 1 -f 1 -R 4 -b 2"},
	} {
		img := filepath.Join(dir, c.name)
		newImage(t, img, c.size, false)
		run(t, "mkfs.vfat", append(strings.Fields(c.args), img)...)
		mcopyIn(t, img, src, "::/")
		seeds = append(seeds, cutSeed(t, "FuzzFAT", c.name, img, func(r io.ReaderAt, size int64) int64 {
			g, err := readFATBoot(r, size)
			if err != nil {
				t.Fatal(err)
			}
			return (g.reserved + g.numFATs*g.fatSize) * g.sector // the FATs' end
		}))
	}
	return seeds
}

func cutSeed(t *testing.T, target, name, img string, mapsEnd func(io.ReaderAt, int64) int64) fuzzSeed {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	end := mapsEnd(bytes.NewReader(b), int64(len(b)))
	data := bytes.TrimRight(b[:end], "\x00")
	extra := (int64(len(b)) - int64(len(data)) + 1023) / 1024
	return fuzzSeed{target, name, bytes.Clone(data), uint16(extra)}
}

func seedPath(s fuzzSeed) string { return filepath.Join("testdata", "fuzz", s.target, s.name) }

// TestWriteFuzzSeeds regenerates testdata/fuzz with BES_UPDATE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("BES_UPDATE_SEEDS") == "" {
		t.Skip("set BES_UPDATE_SEEDS=1 to regenerate testdata/fuzz")
	}
	for _, s := range realSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", s.data, s.extraKiB)
		if err := os.MkdirAll(filepath.Dir(seedPath(s)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(seedPath(s), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The committed seeds must still be filesystems the parsers accept, or the
// fuzzers start from nothing.
func TestFuzzSeedsParse(t *testing.T) {
	var total int64
	filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if st, err := d.Info(); err == nil {
				total += st.Size()
			}
		}
		return nil
	})
	if total > 200<<10 {
		t.Errorf("testdata holds %d bytes; keep it under 200 KiB", total)
	}
	for target, parse := range map[string]func(io.ReaderAt, int64) (*Result, error){"FuzzExt": Ext, "FuzzFAT": FAT} {
		paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", target, "*"))
		if err != nil || len(paths) < 3 {
			t.Fatalf("%s: %d seeds (%v)", target, len(paths), err)
		}
		for _, p := range paths {
			data, extra := readSeed(t, p)
			size := fuzzSize(data, extra)
			res, err := parse(zeroTail{data, size}, size)
			if err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			checkShape(t, res, size)
		}
	}
}

func readSeed(t *testing.T, path string) ([]byte, uint16) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasPrefix(lines[2], "uint16(") {
		t.Fatalf("%s: not a (data, uint16) seed", path)
	}
	data, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	extra, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(lines[2], "uint16("), ")"), 10, 16)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(data), uint16(extra)
}
