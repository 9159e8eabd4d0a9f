package fsread

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// recorder is a ReaderAt that logs every read.
type recorder struct {
	r     io.ReaderAt
	mu    sync.Mutex
	reads [][2]int64 // offset, length
}

func (r *recorder) ReadAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	r.reads = append(r.reads, [2]int64{off, int64(len(p))})
	r.mu.Unlock()
	return r.r.ReadAt(p, off)
}

// TestReadPattern checks how the image is read: every read is aligned to
// 4 KiB, metadata comes in whole pages, a 7 MiB contiguous file takes a
// handful of large reads, and the page cache stays within its budget.
func TestReadPattern(t *testing.T) {
	needTools(t, "mke2fs")
	src := filepath.Join(t.TempDir(), "src")
	want := randBytes(11, 7<<20)
	writeFile(t, filepath.Join(src, "dir/big.bin"), want, 0o644)
	for i := range 300 {
		writeFile(t, filepath.Join(src, "dir", "f"+itoa(uint64(i))), []byte("x"), 0o644)
	}
	img := filepath.Join(t.TempDir(), "p.img")
	must(t, os.WriteFile(img, nil, 0o644))
	must(t, os.Truncate(img, 32<<20))
	run(t, nil, nil, "mke2fs", "-F", "-q", "-t", "ext4", "-b", "4096", "-d", src, img)
	data, err := os.ReadFile(img)
	must(t, err)
	rec := &recorder{r: bytes.NewReader(data)}
	fsys, err := OpenExt(rec, int64(len(data)))
	must(t, err)
	if _, err := fsys.ReadDir("dir"); err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open("dir/big.bin")
	must(t, err)
	var got bytes.Buffer
	if _, err := io.Copy(&got, f); err != nil || !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("content differs (%v)", err)
	}
	dataReads := 0
	for _, r := range rec.reads {
		off, n := r[0], r[1]
		if off == extSuperOffset && n == extSuperSize {
			continue // the superblock itself
		}
		if off%4096 != 0 {
			t.Errorf("read of %d bytes at unaligned offset %d", n, off)
		}
		if n >= 64<<10 {
			dataReads++
		} else if n != 4096 {
			t.Errorf("metadata read of %d bytes at %d, want whole 4 KiB pages", n, off)
		}
	}
	if dataReads > 8 {
		t.Errorf("%d large reads for a 7 MiB contiguous file, want at most 8", dataReads)
	}
	x := fsys.(*ExtFS)
	if n := x.cache.lru.Len(); n > x.cache.max {
		t.Errorf("page cache holds %d pages, max %d", n, x.cache.max)
	}
	t.Logf("%d reads in all, %d of them large", len(rec.reads), dataReads)
}

// TestPageCacheBound reads more pages than the cache holds and across page
// boundaries.
func TestPageCacheBound(t *testing.T) {
	img := randBytes(12, 64<<20)
	c := newPageCache(bytes.NewReader(img), int64(len(img)), minPage)
	for off := int64(0); off+10 < int64(len(img)); off += 4096*3 + 5 {
		b, err := c.slice(off, 10)
		if err != nil || !bytes.Equal(b, img[off:off+10]) {
			t.Fatalf("slice(%d): %v", off, err)
		}
		if c.lru.Len() > c.max || len(c.pages) != c.lru.Len() {
			t.Fatalf("cache holds %d pages (map %d), max %d", c.lru.Len(), len(c.pages), c.max)
		}
	}
	if _, err := c.slice(int64(len(img))-5, 10); err == nil {
		t.Error("slice past the end succeeded")
	}
	b, err := c.slice(4090, 10) // spans two pages
	if err != nil || !bytes.Equal(b, img[4090:4100]) {
		t.Errorf("spanning slice: %v", err)
	}
}

// TestConcurrentUse walks and reads both filesystem types from several
// goroutines at once sharing one FS and one File (run with -race).
func TestConcurrentUse(t *testing.T) {
	images := map[string][]byte{}
	if hasTool("mke2fs") {
		images["ext"] = smallExtImage(t, 1<<20, "-t", "ext4", "-b", "1024")
	}
	if hasTool("mkfs.vfat") && hasTool("mcopy") {
		images["fat"] = smallFATImage(t, 4<<20, "-F", "16", "-s", "1")
	}
	for name, img := range images {
		fsys, err := openBytes(img)
		must(t, err)
		shared, err := fsys.Open(map[string]string{"ext": "a.txt", "fat": "d/a.txt"}[name])
		must(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				buf := make([]byte, 700)
				for i := range 50 {
					if _, err := shared.ReadAt(buf, int64((g*50+i)*37%4000)); err != nil {
						errs <- err
						return
					}
				}
				errs <- Walk(fsys, ".", func(p string, e *Entry, err error) error {
					if err == nil && e.Mode.IsRegular() {
						err = readAll(fsys, p)
					}
					return err
				})
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}
