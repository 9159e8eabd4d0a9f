package fsread

import (
	"bytes"
	"io"
	"io/fs"
	"testing"
)

// padReader serves data followed by zeros up to size, so seeds can be
// images with their (zero) tail cut off.
type padReader struct {
	data []byte
	size int64
}

func (r *padReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, io.EOF
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), r.size-off))
	clear(p[:n])
	if off < int64(len(r.data)) {
		copy(p[:n], r.data[off:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// trimZeros cuts the zero tail of an image (padReader restores it).
func trimZeros(b []byte) []byte {
	return b[:len(bytes.TrimRight(b, "\x00"))]
}

// Work budgets per fuzz input: entries visited, of them looked up again
// by path (a lookup in a huge damaged directory is a linear scan), bytes
// read.
const (
	fuzzMaxEntries = 2000
	fuzzMaxStats   = 200
	fuzzMaxBytes   = 4 << 20
)

// exercise opens an image and touches everything: Walk, Stat of every
// path, Readlink of symlinks, ReadDir through io/fs, and reads of every
// regular file (sequential, ReadAt near the end) within a byte budget.
func exercise(t *testing.T, data []byte, size int64, open func(io.ReaderAt, int64) (FS, error)) {
	fsys, err := open(&padReader{data: data, size: max(size, int64(len(data)))}, max(size, int64(len(data))))
	if err != nil {
		return
	}
	_ = fsys.Type()
	budget := int64(fuzzMaxBytes)
	visited := 0
	_ = Walk(fsys, ".", func(p string, e *Entry, err error) error {
		if visited++; visited > fuzzMaxEntries || budget <= 0 {
			return fs.SkipAll
		}
		if err != nil || visited > fuzzMaxStats {
			return nil
		}
		_, _ = fsys.Stat(p)
		switch {
		case e.Mode.IsRegular():
			budget -= readSome(fsys, p, budget)
		case e.Mode&fs.ModeSymlink != 0:
			_, _ = fsys.Readlink(p)
		case e.IsDir():
			_, _ = fs.ReadDir(AsIOFS(fsys), dirName(p))
		}
		return nil
	})
}

func dirName(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// readSome reads up to budget bytes of a file and returns how many.
func readSome(fsys FS, p string, budget int64) int64 {
	f, err := fsys.Open(p)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, _ := io.CopyN(io.Discard, f, min(budget, 1<<20))
	buf := make([]byte, 4096)
	_, _ = f.ReadAt(buf, max(0, f.Size()-100))
	return n + int64(len(buf))
}

func FuzzExt(f *testing.F) {
	if hasTool("mke2fs") {
		f.Add(trimZeros(smallExtImage(f, 64<<10, "-t", "ext2", "-b", "1024")))
		f.Add(trimZeros(smallExtImage(f, 128<<10, "-t", "ext4", "-b", "1024")))
		f.Add(trimZeros(smallExtImage(f, 256<<10, "-t", "ext4", "-b", "1024", "-I", "256", "-O", "inline_data,^has_journal")))
		f.Add(trimZeros(smallExtImage(f, 512<<10, "-t", "ext3", "-b", "4096", "-I", "128")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, data, 512<<10, OpenExt)
	})
}

func FuzzFAT(f *testing.F) {
	if hasTool("mkfs.vfat") && hasTool("mcopy") {
		f.Add(trimZeros(smallFATImage(f, 200<<10, "-F", "12")))
		f.Add(trimZeros(smallFATImage(f, 3<<20, "-F", "16", "-s", "1", "-f", "1")))
		f.Add(trimZeros(smallFATImage(f, 33<<20, "-F", "32", "-s", "1", "-f", "1")))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		exercise(t, data, 40<<20, OpenFAT)
	})
}

// TestFuzzSeeds checks that the trimmed seed images open through
// padReader and list their whole tree, so fuzzing starts from valid input.
func TestFuzzSeeds(t *testing.T) {
	type seed struct {
		data []byte
		size int64
		open func(io.ReaderAt, int64) (FS, error)
		typ  string
	}
	var seeds []seed
	if hasTool("mke2fs") {
		seeds = append(seeds,
			seed{trimZeros(smallExtImage(t, 64<<10, "-t", "ext2", "-b", "1024")), 1 << 20, OpenExt, "ext2"},
			seed{trimZeros(smallExtImage(t, 256<<10, "-t", "ext4", "-b", "1024", "-I", "256", "-O", "inline_data,^has_journal")), 1 << 20, OpenExt, "ext4"})
	}
	if hasTool("mkfs.vfat") && hasTool("mcopy") {
		seeds = append(seeds,
			seed{trimZeros(smallFATImage(t, 200<<10, "-F", "12")), 40 << 20, OpenFAT, "fat12"},
			seed{trimZeros(smallFATImage(t, 33<<20, "-F", "32", "-s", "1", "-f", "1")), 40 << 20, OpenFAT, "fat32"})
	}
	for _, s := range seeds {
		fsys, err := s.open(&padReader{data: s.data, size: s.size}, s.size)
		if err != nil {
			t.Fatalf("%s seed (%d bytes): %v", s.typ, len(s.data), err)
		}
		if fsys.Type() != s.typ {
			t.Errorf("seed type %s, want %s", fsys.Type(), s.typ)
		}
		n := 0
		must(t, Walk(fsys, ".", func(p string, e *Entry, err error) error {
			n++
			if err == nil && e.Mode.IsRegular() {
				err = readAll(fsys, p)
			}
			return err
		}))
		t.Logf("%s seed: %d bytes, %d entries", s.typ, len(s.data), n)
		if n < 5 {
			t.Errorf("%s seed has only %d entries", s.typ, n)
		}
	}
}
