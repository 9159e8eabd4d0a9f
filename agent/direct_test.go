package agent

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"bes/store/manifest"
)

// Chunks of odd sizes, in random order, some all-zero, written through the
// O_DIRECT path, give back the file exactly (and the buffered fallback too).
func TestDirectWriterRandomChunks(t *testing.T) {
	for _, tc := range []struct {
		size     int
		buffered bool
	}{{1 << 20, false}, {3<<20 + 1, false}, {5<<20 + 4095, false}, {4 << 20, false}, {2<<20 + 17, true}} {
		rng := rand.New(rand.NewPCG(uint64(tc.size), 3))
		want := make([]byte, tc.size)
		type piece struct{ off, n int }
		var pieces []piece
		for off := 0; off < tc.size; {
			n := min(1+rng.IntN(300000), tc.size-off)
			if rng.IntN(4) != 0 { // else: a zero chunk
				fillRandom(rng, want[off:off+n])
			}
			pieces = append(pieces, piece{off, n})
			off += n
		}
		rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
		dir := t.TempDir()
		dc, err := newDirCache(dir, 16)
		if err != nil {
			t.Fatal(err)
		}
		r := &restorer{dc: dc, o: RestoreOptions{Buffered: tc.buffered}, dbufs: newDirectBufs(), aw: make(chan struct{}, asyncWrites)}
		fs := &fileState{fileRec: fileRec{"f", manifest.Entry{Kind: manifest.KindFile, Size: int64(tc.size), Mode: 0o644}},
			remaining: len(pieces), direct: !tc.buffered && tc.size >= directMin}
		r.files = []*fileState{fs}
		fs.mu.Lock()
		if !r.openFile(fs) {
			t.Fatalf("open: %v", r.sum.Errors)
		}
		for _, p := range pieces {
			data := want[p.off : p.off+p.n]
			var err error
			if fs.direct {
				err = r.writeDirect(fs, int64(p.off), data, allZero(data))
			} else {
				_, err = fs.f.WriteAt(data, int64(p.off))
			}
			if err != nil {
				t.Fatal(err)
			}
			fs.remaining--
		}
		if len(fs.partial) != 0 {
			t.Fatalf("size %d: %d partial blocks left", tc.size, len(fs.partial))
		}
		r.closeFile(fs)
		fs.mu.Unlock()
		dc.close()
		got, _ := os.ReadFile(filepath.Join(dir, "f"))
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d (buffered %v): content differs (len %d)", tc.size, tc.buffered, len(got))
		}
		if len(r.sum.Errors) > 0 {
			t.Fatal(r.sum.Errors)
		}
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

// The directory cache evicts idle descriptors and never follows symlinks.
func TestDirCache(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	dc, err := newDirCache(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.close()
	for i := 0; i < 20; i++ {
		p := filepath.Join("a", "b", string(rune('c'+i)))
		os.MkdirAll(filepath.Join(dir, p), 0o755)
		f, err := dc.openFile(p+"/f", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if n := len(dc.fds); n > 4 {
		t.Fatalf("%d descriptors cached, max 4", n)
	}
	os.Symlink(outside, filepath.Join(dir, "a", "link"))
	if _, err := dc.openFile("a/link/x", os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		t.Fatal("created a file through a symlink")
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatal("wrote outside the target")
	}
}

func TestProcessUmask(t *testing.T) {
	old := syscall.Umask(0o027)
	defer syscall.Umask(old)
	if got := processUmask(); got != 0o027 {
		t.Fatalf("umask %o, want 027", got)
	}
}
