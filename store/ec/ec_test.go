package ec

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const testPiece = 4 << 10

var ctx = context.Background()

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestSet(t testing.TB, k, m, piece int) (*Set, []string) {
	t.Helper()
	root := t.TempDir()
	dirs := make([]string, k+m)
	for i := range dirs {
		dirs[i] = filepath.Join(root, fmt.Sprintf("disk%d", i))
	}
	s, err := Open(dirs, k, m, Options{PieceSize: piece, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return s, s.Dirs()
}

func randName() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// writePack writes data in randomly sized chunks and commits.
func writePack(t testing.TB, s *Set, name string, data []byte) {
	t.Helper()
	w, err := s.NewWriter(name)
	if err != nil {
		t.Fatal(err)
	}
	rest := data
	for len(rest) > 0 {
		c := min(len(rest), 1+mrand.IntN(3*testPiece))
		n, err := w.Write(rest[:c])
		if err != nil || n != c {
			t.Fatalf("write: %d, %v", n, err)
		}
		rest = rest[c:]
	}
	if w.Len() != int64(len(data)) {
		t.Fatalf("Len = %d, want %d", w.Len(), len(data))
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil { // no-op after commit
		t.Fatal(err)
	}
}

func mustReadAll(t testing.TB, s *Set, name string, want []byte) {
	t.Helper()
	got := make([]byte, len(want)+10)
	n, err := s.ReadAt(ctx, name, got, 0)
	if n != len(want) || (err != io.EOF) {
		t.Fatalf("ReadAt(%s) full = %d, %v; want %d, EOF", name[:8], n, err, len(want))
	}
	if !bytes.Equal(got[:n], want) {
		t.Fatalf("ReadAt(%s) full: data mismatch", name[:8])
	}
	if sz, err := s.Size(ctx, name); err != nil || sz != int64(len(want)) {
		t.Fatalf("Size = %d, %v; want %d", sz, err, len(want))
	}
}

func randomReads(t testing.TB, s *Set, name string, want []byte, count int) {
	t.Helper()
	for range count {
		if len(want) == 0 {
			break
		}
		off := mrand.IntN(len(want))
		l := mrand.IntN(min(len(want)-off, 3*testPiece*4) + 1)
		got := make([]byte, l)
		n, err := s.ReadAt(ctx, name, got, int64(off))
		if err != nil || n != l {
			t.Fatalf("ReadAt(off=%d len=%d) = %d, %v", off, l, n, err)
		}
		if !bytes.Equal(got, want[off:off+l]) {
			t.Fatalf("ReadAt(off=%d len=%d): data mismatch", off, l)
		}
	}
}

func mustCheckClean(t testing.TB, s *Set, name string, size int) {
	t.Helper()
	rep, err := s.Check(ctx, name, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.BadShards) != 0 || rep.Unrecoverable || len(rep.Detail) != 0 || rep.Size != int64(size) {
		t.Fatalf("Check not clean: %+v", rep)
	}
}

func tmpFiles(t testing.TB, dirs []string) []string {
	t.Helper()
	var out []string
	for _, d := range dirs {
		ents, _ := os.ReadDir(filepath.Join(d, "tmp"))
		for _, e := range ents {
			out = append(out, filepath.Join(d, "tmp", e.Name()))
		}
	}
	return out
}

var layouts = []struct{ k, m int }{{4, 2}, {1, 0}, {3, 1}, {8, 3}}

func packSizes(k, p int) []int {
	return []int{0, 1, 63, p - 1, p, k * p, k*p + 1, 3*k*p + 12345, 20<<20 + 17}
}

func TestRoundTrip(t *testing.T) {
	for _, l := range layouts {
		t.Run(fmt.Sprintf("%d+%d", l.k, l.m), func(t *testing.T) {
			s, dirs := newTestSet(t, l.k, l.m, testPiece)
			for _, size := range packSizes(l.k, testPiece) {
				name := randName()
				data := randBytes(size)
				writePack(t, s, name, data)
				mustReadAll(t, s, name, data)
				randomReads(t, s, name, data, 40)
				// At and past the end.
				var b [4]byte
				if n, err := s.ReadAt(ctx, name, b[:], int64(size)); n != 0 || err != io.EOF {
					t.Fatalf("read at end = %d, %v", n, err)
				}
				if n, err := s.ReadAt(ctx, name, b[:0], int64(size)); n != 0 || err != nil {
					t.Fatalf("empty read at end = %d, %v", n, err)
				}
				if size < 1<<20 { // the scrub of the big pack is covered elsewhere
					mustCheckClean(t, s, name, size)
				}
				// Shard files have the expected length on every disk.
				g := newGeometry(l.k, testPiece, int64(size))
				for i := range dirs {
					fi, err := os.Stat(s.shardPath(i, name))
					if err != nil || fi.Size() != g.fileSize() {
						t.Fatalf("shard %d: %v size %d want %d", i, err, fi.Size(), g.fileSize())
					}
				}
			}
			if f := tmpFiles(t, dirs); len(f) != 0 {
				t.Fatalf("temp files left: %v", f)
			}
		})
	}
}

func TestSmallPackIsSmall(t *testing.T) {
	s, dirs := newTestSet(t, 4, 2, 0) // default 512 KiB pieces
	name := randName()
	writePack(t, s, name, []byte("0123456789"))
	for i := range dirs {
		fi, err := os.Stat(s.shardPath(i, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > headerLen+256 {
			t.Fatalf("shard %d of a 10-byte pack is %d bytes", i, fi.Size())
		}
	}
	mustReadAll(t, s, name, []byte("0123456789"))
}

type testPack struct {
	name string
	data []byte
}

func writeSome(t *testing.T, s *Set, k int) []testPack {
	var packs []testPack
	for _, size := range []int{0, 100, 3*k*testPiece + 12345, 300 << 10} {
		p := testPack{randName(), randBytes(size)}
		writePack(t, s, p.name, p.data)
		packs = append(packs, p)
	}
	return packs
}

func TestLoseDisks(t *testing.T) {
	for _, l := range []struct{ k, m int }{{4, 2}, {3, 1}, {8, 3}} {
		for _, recreate := range []bool{true, false} {
			t.Run(fmt.Sprintf("%d+%d/recreate=%v", l.k, l.m, recreate), func(t *testing.T) {
				s, dirs := newTestSet(t, l.k, l.m, testPiece)
				packs := writeSome(t, s, l.k)
				n := l.k + l.m
				lost := mrand.Perm(n)[:l.m]
				for _, i := range lost {
					if err := os.RemoveAll(dirs[i]); err != nil {
						t.Fatal(err)
					}
					if recreate {
						os.Mkdir(dirs[i], 0o700)
					}
				}
				for _, p := range packs {
					mustReadAll(t, s, p.name, p.data)
					randomReads(t, s, p.name, p.data, 10)
				}
				// List still sees every pack.
				var listed []string
				if err := s.List(ctx, func(n string) error { listed = append(listed, n); return nil }); err != nil {
					t.Fatal(err)
				}
				if len(listed) != len(packs) || !slices.IsSorted(listed) {
					t.Fatalf("List = %v", listed)
				}
				slices.Sort(lost)
				for _, p := range packs {
					rep, err := s.Check(ctx, p.name, true)
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(rep.BadShards, lost) || !slices.Equal(rep.Repaired, lost) || rep.Unrecoverable {
						t.Fatalf("Check(repair) = %+v, lost %v", rep, lost)
					}
					mustCheckClean(t, s, p.name, len(p.data))
				}
				// Now lose m other disks.
				var others []int
				for i := range n {
					if !slices.Contains(lost, i) {
						others = append(others, i)
					}
				}
				mrand.Shuffle(len(others), func(a, b int) { others[a], others[b] = others[b], others[a] })
				for _, i := range others[:l.m] {
					os.RemoveAll(dirs[i])
				}
				for _, p := range packs {
					mustReadAll(t, s, p.name, p.data)
				}
				if f := tmpFiles(t, dirs); len(f) != 0 {
					t.Fatalf("temp files left: %v", f)
				}
			})
		}
	}
}

// flip xors one byte of a file at off (negative: from the end).
func flip(t testing.TB, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCorruption(t *testing.T) {
	const k, m = 4, 2
	g := newGeometry(k, testPiece, 3*k*testPiece+12345)
	cases := []struct {
		name  string
		shard int
		off   int64
	}{
		{"data piece stripe0", 1, g.pieceOff(0) + 17},
		{"data piece last stripe", 0, g.pieceOff(g.N-1) + 3},
		{"header magic", 2, 1},
		{"header field", 3, 20},
		{"header crc", 0, 125},
		{"footer crc list", 1, -int64(footerLenFor(g.N)) + 17},
		{"footer size", 2, -int64(footerLenFor(g.N))},
		{"footer magic", 3, -1},
		{"footer length", 0, -16},
		{"parity piece", 4, g.pieceOff(1) + 100},
		{"parity piece last", 5, g.pieceOff(g.N - 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, dirs := newTestSet(t, k, m, testPiece)
			name := randName()
			data := randBytes(int(g.Size))
			writePack(t, s, name, data)
			mustReadAll(t, s, name, data) // warm the metadata cache
			flip(t, s.shardPath(c.shard, name), c.off)
			mustReadAll(t, s, name, data)
			randomReads(t, s, name, data, 20)
			for _, repair := range []bool{false, true} {
				rep, err := s.Check(ctx, name, repair)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(rep.BadShards, []int{c.shard}) || rep.Unrecoverable {
					t.Fatalf("Check = %+v", rep)
				}
				want := fmt.Sprintf("disk%d (%s)", c.shard, dirs[c.shard])
				if !strings.Contains(strings.Join(rep.Detail, "\n"), want) {
					t.Fatalf("Detail %q does not name %s", rep.Detail, want)
				}
				if repair && !slices.Equal(rep.Repaired, []int{c.shard}) {
					t.Fatalf("Repaired = %v", rep.Repaired)
				}
				t.Logf("detail: %q", rep.Detail)
			}
			mustCheckClean(t, s, name, len(data))
			mustReadAll(t, s, name, data)
		})
	}
}

// TestSilentCorruption rewrites a piece and its footer checksum so that only
// the parity check can notice it.
func TestSilentCorruption(t *testing.T) {
	for _, m := range []int{1, 2} {
		t.Run(fmt.Sprintf("m=%d", m), func(t *testing.T) {
			k := 3
			s, _ := newTestSet(t, k, m, testPiece)
			name := randName()
			data := randBytes(2 * k * testPiece)
			writePack(t, s, name, data)
			path := s.shardPath(1, name)
			b, _ := os.ReadFile(path)
			g := newGeometry(k, testPiece, int64(len(data)))
			b[g.pieceOff(0)+5] ^= 1
			f, err := decodeFooter(b[len(b)-footerLenFor(g.N):])
			if err != nil {
				t.Fatal(err)
			}
			f.CRCs[0] = crc(b[g.pieceOff(0) : g.pieceOff(0)+int64(testPiece)])
			copy(b[len(b)-footerLenFor(g.N):], f.encode())
			os.WriteFile(path, b, 0o600)
			rep, err := s.Check(ctx, name, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", rep)
			if m >= 2 {
				if !slices.Equal(rep.BadShards, []int{1}) {
					t.Fatalf("BadShards = %v, want [1]", rep.BadShards)
				}
				mustCheckClean(t, s, name, len(data))
				mustReadAll(t, s, name, data)
			} else if len(rep.BadShards) == 0 {
				t.Fatal("inconsistency not detected")
			}
		})
	}
}

func TestUnrecoverable(t *testing.T) {
	for _, l := range []struct{ k, m int }{{4, 2}, {3, 1}, {1, 0}} {
		t.Run(fmt.Sprintf("%d+%d", l.k, l.m), func(t *testing.T) {
			s, _ := newTestSet(t, l.k, l.m, testPiece)
			name := randName()
			data := randBytes(3*l.k*testPiece + 999)
			writePack(t, s, name, data)
			g := newGeometry(l.k, testPiece, int64(len(data)))
			// Corrupt stripe 1 in m+1 shards, including data shard 0.
			for i := 0; i <= l.m; i++ {
				flip(t, s.shardPath(i, name), g.pieceOff(1)+int64(i))
			}
			buf := make([]byte, len(data))
			n, err := s.ReadAt(ctx, name, buf, 0)
			if !errors.Is(err, ErrUnrecoverable) {
				t.Fatalf("ReadAt = %d, %v; want ErrUnrecoverable", n, err)
			}
			if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "stripe 1") {
				t.Fatalf("error does not name pack and stripe: %v", err)
			}
			if !bytes.Equal(buf[:n], data[:n]) {
				t.Fatal("partial data wrong")
			}
			// Stripes 0 and 2 are still fine.
			sw := l.k * testPiece
			if _, err := s.ReadAt(ctx, name, buf[:sw], 0); err != nil {
				t.Fatal(err)
			}
			if _, err := s.ReadAt(ctx, name, buf[:sw], int64(2*sw)); err != nil || !bytes.Equal(buf[:sw], data[2*sw:3*sw]) {
				t.Fatal(err)
			}
			rep, err := s.Check(ctx, name, true)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Unrecoverable || len(rep.Repaired) != 0 {
				t.Fatalf("Check = %+v", rep)
			}
			t.Logf("%q", rep.Detail)
		})
	}
}

func TestHostileShards(t *testing.T) {
	const k, m = 3, 2
	size := 2*k*testPiece + 5
	g := newGeometry(k, testPiece, int64(size))
	trailer := func(fl uint32) []byte {
		b := make([]byte, 16)
		b[0], b[1], b[2], b[3] = byte(fl), byte(fl>>8), byte(fl>>16), byte(fl>>24)
		copy(b[8:], footerMagic)
		return b
	}
	cases := map[string]func(orig []byte) []byte{
		"empty":          func([]byte) []byte { return nil },
		"garbage":        func([]byte) []byte { return randBytes(5000) },
		"header only":    func(o []byte) []byte { return o[:headerLen] },
		"truncated":      func(o []byte) []byte { return o[:len(o)-1] },
		"cut mid piece":  func(o []byte) []byte { return o[:g.pieceOff(1)+10] },
		"extended":       func(o []byte) []byte { return append(slices.Clone(o), 0) },
		"huge footer":    func(o []byte) []byte { return append(slices.Clone(o[:headerLen+64]), trailer(0xfffffff0)...) },
		"footer > file":  func(o []byte) []byte { return append(slices.Clone(o[:headerLen+64]), trailer(1<<20)...) },
		"odd footer len": func(o []byte) []byte { return append(slices.Clone(o), trailer(35)...) },
	}
	for cname, mod := range cases {
		t.Run(cname, func(t *testing.T) {
			s, _ := newTestSet(t, k, m, testPiece)
			name := randName()
			data := randBytes(size)
			writePack(t, s, name, data)
			path := s.shardPath(0, name)
			orig, _ := os.ReadFile(path)
			os.WriteFile(path, mod(orig), 0o600)
			mustReadAll(t, s, name, data)
			rep, err := s.Check(ctx, name, true)
			if err != nil || !slices.Equal(rep.BadShards, []int{0}) || !slices.Equal(rep.Repaired, []int{0}) {
				t.Fatalf("Check = %+v, %v", rep, err)
			}
			t.Logf("%q", rep.Detail)
			mustCheckClean(t, s, name, size)
		})
	}
	t.Run("shard of another pack", func(t *testing.T) {
		s, _ := newTestSet(t, k, m, testPiece)
		a, b := randName(), randName()
		da, db := randBytes(size), randBytes(size)
		writePack(t, s, a, da)
		writePack(t, s, b, db)
		os.Rename(s.shardPath(1, b), s.shardPath(1, a)) // wrong name in header
		sh2, _ := os.ReadFile(s.shardPath(2, a))
		os.WriteFile(s.shardPath(3, a), sh2, 0o600) // wrong index in header
		mustReadAll(t, s, a, da)
		rep, _ := s.Check(ctx, a, false)
		if !slices.Equal(rep.BadShards, []int{1, 3}) {
			t.Fatalf("BadShards = %v", rep.BadShards)
		}
		t.Logf("%q", rep.Detail)
	})
}

// faultyFile fails writes (after `after` bytes) or Sync with err.
type faultyFile struct {
	*os.File
	after     int
	written   int
	failWrite bool
	failSync  bool
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if f.failWrite && f.written+len(p) > f.after {
		n := max(0, f.after-f.written)
		n, _ = f.File.Write(p[:n])
		f.written += n
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	n, err := f.File.Write(p)
	f.written += n
	return n, err
}

func (f *faultyFile) Sync() error {
	if f.failSync {
		return &os.PathError{Op: "sync", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Sync()
}

func TestENOSPC(t *testing.T) {
	cases := []struct {
		name      string
		after     int
		failWrite bool
		failSync  bool
		size      int
	}{
		{"header", 0, true, false, 1000},
		{"mid stream", 3 * testPiece, true, false, 40 * testPiece},
		{"final stripe", 5 * testPiece, true, false, 4*5*testPiece + 100},
		{"footer", headerLen + 2*testPiece, true, false, 4 * 2 * testPiece},
		{"fsync", 0, false, true, 12345},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, dirs := newTestSet(t, 4, 2, testPiece)
			old := randName()
			oldData := randBytes(50000)
			writePack(t, s, old, oldData)
			orig := s.openFile
			s.openFile = func(path string) (shardFile, error) {
				f, err := orig(path)
				if err != nil || !strings.Contains(filepath.Base(path), ".2.") {
					return f, err
				}
				return &faultyFile{File: f.(*os.File), after: c.after, failWrite: c.failWrite, failSync: c.failSync}, nil
			}
			name := randName()
			var werr error
			w, err := s.NewWriter(name)
			if err != nil {
				werr = err
			} else {
				_, werr = w.Write(randBytes(c.size))
				if werr == nil {
					werr = w.Commit()
				}
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
			}
			if !errors.Is(werr, syscall.ENOSPC) {
				t.Fatalf("err = %v, want ENOSPC", werr)
			}
			if !strings.Contains(werr.Error(), dirs[2]) || !strings.Contains(werr.Error(), name) {
				t.Fatalf("error lacks context: %v", werr)
			}
			t.Log(werr)
			if f := tmpFiles(t, dirs); len(f) != 0 {
				t.Fatalf("temp files left: %v", f)
			}
			if _, err := s.Size(ctx, name); !errors.Is(err, ErrNotFound) {
				t.Fatalf("failed pack visible: %v", err)
			}
			mustReadAll(t, s, old, oldData)
			mustCheckClean(t, s, old, len(oldData))
		})
	}
}

func TestConcurrentReads(t *testing.T) {
	s, dirs := newTestSet(t, 4, 2, testPiece)
	var packs []testPack
	for _, size := range []int{1, 5000, 100 << 10, 1 << 20} {
		p := testPack{randName(), randBytes(size)}
		writePack(t, s, p.name, p.data)
		packs = append(packs, p)
	}
	os.RemoveAll(filepath.Join(dirs[1], "packs")) // some reads reconstruct
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range 50 {
				p := packs[(g+it)%len(packs)]
				off := mrand.IntN(len(p.data))
				l := mrand.IntN(len(p.data)-off) + 1
				buf := make([]byte, l)
				if _, err := s.ReadAt(ctx, p.name, buf, int64(off)); err != nil {
					errc <- err
					return
				}
				if !bytes.Equal(buf, p.data[off:off+l]) {
					errc <- fmt.Errorf("mismatch pack %s off %d", p.name[:8], off)
					return
				}
				if it == 25 && g == 0 {
					if _, err := s.Check(ctx, p.name, true); err != nil {
						errc <- err
						return
					}
				}
			}
		}()
	}
	for range 3 { // concurrent writers share the encoder
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				name, data := randName(), randBytes(5*4*testPiece+77)
				w, err := s.NewWriter(name)
				if err == nil {
					_, err = w.Write(data)
				}
				if err == nil {
					err = w.Commit()
				}
				if err == nil {
					buf := make([]byte, len(data))
					_, err = s.ReadAt(ctx, name, buf, 0)
					if err == nil && !bytes.Equal(buf, data) {
						err = fmt.Errorf("written pack %s mismatch", name[:8])
					}
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func TestMisc(t *testing.T) {
	s, dirs := newTestSet(t, 3, 1, testPiece)
	if s.K() != 3 || s.M() != 1 || len(s.Dirs()) != 4 {
		t.Fatal("K/M/Dirs")
	}
	if _, err := s.Size(ctx, randName()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Size of missing = %v", err)
	}
	if _, err := s.ReadAt(ctx, randName(), make([]byte, 1), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadAt of missing = %v", err)
	}
	if _, err := s.Check(ctx, randName(), true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Check of missing = %v", err)
	}
	for _, bad := range []string{"", "abc", "0123456789ABCDEF", "0123456789abcdeg", strings.Repeat("a", 65), "../../etc/passwd00"} {
		if _, err := s.NewWriter(bad); err == nil {
			t.Fatalf("NewWriter(%q) accepted", bad)
		}
		if _, err := s.ReadAt(ctx, bad, nil, 0); err == nil {
			t.Fatalf("ReadAt(%q) accepted", bad)
		}
	}
	name := randName()
	data := randBytes(1000)
	writePack(t, s, name, data)
	if _, err := s.ReadAt(ctx, name, make([]byte, 1), -1); err == nil {
		t.Fatal("negative offset accepted")
	}
	// A pack present on a single disk is listed.
	name2 := strings.Repeat("ab", 8)
	writePack(t, s, name2, []byte("x"))
	for i := 1; i < 4; i++ {
		os.Remove(s.shardPath(i, name2))
	}
	var listed []string
	s.List(ctx, func(n string) error { listed = append(listed, n); return nil })
	want := []string{name, name2}
	slices.Sort(want)
	if !slices.Equal(listed, want) {
		t.Fatalf("List = %v want %v", listed, want)
	}
	if sz, err := s.Size(ctx, name2); err != nil || sz != 1 {
		t.Fatalf("Size from single shard = %d, %v", sz, err)
	}
	if _, err := s.ReadAt(ctx, name2, make([]byte, 1), 0); !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("ReadAt with 1 of 4 shards = %v", err)
	}
	stop := errors.New("stop")
	if err := s.List(ctx, func(string) error { return stop }); err != stop {
		t.Fatalf("List error = %v", err)
	}
	// Remove.
	if err := s.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, name); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAt(ctx, name, make([]byte, 1), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadAt after Remove = %v", err)
	}
	// Abort without commit leaves nothing.
	w, err := s.NewWriter(randName())
	if err != nil {
		t.Fatal(err)
	}
	w.Write(randBytes(100000))
	w.Abort()
	if f := tmpFiles(t, dirs); len(f) != 0 {
		t.Fatalf("temp files after Abort: %v", f)
	}
	// Open never sweeps (a reader must not delete a running writer's temp
	// files); SweepTemp removes stale temp files and leaves others alone.
	stale := filepath.Join(dirs[0], "tmp", name+".0.1234"+tmpSuffix)
	other := filepath.Join(dirs[0], "tmp", "keep")
	os.WriteFile(stale, []byte("x"), 0o600)
	os.WriteFile(other, []byte("x"), 0o600)
	s1, err := Open(dirs, 3, 1, Options{PieceSize: testPiece, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("Open swept a temp file")
	}
	s1.SweepTemp()
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("stale temp file not swept")
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatal("unrelated file removed")
	}
	// Reopening with a different layout: shards count as bad, never misread.
	s2, err := Open(dirs, 2, 2, Options{PieceSize: testPiece, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.ReadAt(ctx, name2, make([]byte, 1), 0); !errors.Is(err, ErrUnrecoverable) {
		t.Fatalf("layout mismatch read = %v", err)
	}
}

func TestOpenValidation(t *testing.T) {
	root := t.TempDir()
	d := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = filepath.Join(root, fmt.Sprint("d", i))
		}
		return out
	}
	cases := []struct {
		name string
		dirs []string
		k, m int
		opt  Options
	}{
		{"k=0", d(2), 0, 2, Options{}},
		{"k>64", d(65), 65, 0, Options{}},
		{"m<0", d(2), 3, -1, Options{}},
		{"m>64", d(66), 1, 65, Options{}},
		{"count", d(5), 4, 2, Options{}},
		{"dup", append(d(2), d(1)...), 2, 1, Options{}},
		{"dup unclean", []string{root + "/d0", root + "/x/../d0"}, 1, 1, Options{}},
		{"empty dir", []string{"", root + "/d1"}, 1, 1, Options{}},
		{"piece not aligned", d(2), 1, 1, Options{PieceSize: 1000}},
		{"piece negative", d(2), 1, 1, Options{PieceSize: -64}},
	}
	for _, c := range cases {
		if _, err := Open(c.dirs, c.k, c.m, c.opt); err == nil {
			t.Errorf("%s: Open succeeded", c.name)
		}
	}
	// Symlinked alias of the same directory.
	os.MkdirAll(filepath.Join(root, "real"), 0o700)
	os.Symlink(filepath.Join(root, "real"), filepath.Join(root, "alias"))
	if _, err := Open([]string{filepath.Join(root, "real"), filepath.Join(root, "alias")}, 1, 1, Options{}); err == nil {
		t.Error("aliased dirs accepted")
	}
	if _, err := Open(d(1), 1, 0, Options{}); err != nil {
		t.Errorf("1+0: %v", err)
	}
}

// Every one of the 15 ways to lose 2 of 6 disks (4+2) reads back every
// pack; repair into the emptied directories restores full health.
func TestLoseEveryPairOfDisks(t *testing.T) {
	s, dirs := newTestSet(t, 4, 2, testPiece)
	packs := writeSome(t, s, 4)
	for a := 0; a < 6; a++ {
		for b := a + 1; b < 6; b++ {
			for _, i := range []int{a, b} {
				os.RemoveAll(dirs[i])
				os.Mkdir(dirs[i], 0o700)
			}
			for _, p := range packs {
				mustReadAll(t, s, p.name, p.data)
				rep, err := s.Check(ctx, p.name, true)
				if err != nil || rep.Unrecoverable || len(rep.Repaired) != 2 {
					t.Fatalf("disks %d,%d lost: repair %+v, %v", a, b, rep, err)
				}
				if rep, err := s.Check(ctx, p.name, false); err != nil || len(rep.BadShards) != 0 {
					t.Fatalf("disks %d,%d: not healthy after repair: %+v, %v", a, b, rep, err)
				}
			}
		}
	}
}
