package diskimg

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchDisk writes a 256 MiB table-less disk: half of it text-like and
// random data, the rest zeros (zero-scan path), and returns its path.
func benchDisk(b *testing.B, dir string) string {
	b.Helper()
	p := filepath.Join(dir, "bench.img")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(1, 1))
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog 0123456789\n"), 1<<14)
	buf := make([]byte, 1<<20)
	for i := int64(0); i < 256; i++ {
		switch i % 4 {
		case 0:
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
		case 1:
			copy(buf, text[i%64:])
		default:
			continue // zeros (a hole)
		}
		f.WriteAt(buf, i<<20)
	}
	f.Truncate(256 << 20)
	return p
}

// BenchmarkImageChunkSize backs up the bench disk at each chunk size, then
// changes 64 scattered 4 KiB blocks and backs up again: MB/s of the full
// backup and the bytes the incremental added (what a chunk size costs).
func BenchmarkImageChunkSize(b *testing.B) {
	dir := b.TempDir()
	img := benchDisk(b, dir)
	for _, cs := range []int64{64 << 10, 256 << 10, 1 << 20, 4 << 20} {
		b.Run(fmt.Sprintf("%dK", cs>>10), func(b *testing.B) {
			b.SetBytes(256 << 20)
			var added int64
			for b.Loop() {
				b.StopTimer()
				r := newRepo(b)
				b.StartTimer()
				backup(b, r, img, BackupOptions{ChunkSize: cs})
				b.StopTimer()
				cp := filepath.Join(dir, "changed.img")
				run(b, "", "cp", "--sparse=always", img, cp)
				f, _ := os.OpenFile(cp, os.O_RDWR, 0)
				rng := rand.New(rand.NewPCG(2, 2))
				for range 64 {
					off := rng.Int64N(64) * 4 << 20 // inside the data megabytes
					f.WriteAt(bytes.Repeat([]byte{byte(off)}, 4096), off+int64(rng.IntN(200))*4096)
				}
				f.Close()
				res := backup(b, r, cp, BackupOptions{ChunkSize: cs})
				added = res.Point.Stats.Stored
				b.StartTimer()
			}
			b.ReportMetric(float64(added)/(1<<20), "incr-MiB-stored")
		})
	}
}
