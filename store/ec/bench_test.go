package ec

import (
	"fmt"
	mrand "math/rand/v2"
	"os"
	"testing"

	"github.com/klauspost/reedsolomon"
)

const benchPack = 32 << 20

func BenchmarkWrite(b *testing.B) {
	s, _ := newTestSet(b, 4, 2, 0)
	data := randBytes(benchPack)
	b.SetBytes(benchPack)
	b.ResetTimer()
	for range b.N {
		name := randName()
		w, err := s.NewWriter(name)
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := w.Write(data[off : off+1<<20]); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		s.Remove(ctx, name)
		b.StartTimer()
	}
}

func benchRead(b *testing.B, missing []int) {
	s, _ := newTestSet(b, 4, 2, 0)
	name := randName()
	data := randBytes(benchPack)
	writePack(b, s, name, data)
	for _, i := range missing {
		os.Remove(s.shardPath(i, name))
	}
	for _, size := range []int{64 << 10, 1 << 20, 8 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ResetTimer()
			for range b.N {
				off := mrand.IntN(benchPack - size)
				if _, err := s.ReadAt(ctx, name, buf, int64(off)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReadAt reads a healthy 4+2 pack (512 KiB pieces).
func BenchmarkReadAt(b *testing.B) { benchRead(b, nil) }

// BenchmarkReadAtDegraded reads with data shards 0 and 1 missing, so every
// stripe is reconstructed.
func BenchmarkReadAtDegraded(b *testing.B) { benchRead(b, []int{0, 1}) }

// BenchmarkEncode is the raw RS encode of one 4+2 stripe of 512 KiB pieces.
func BenchmarkEncode(b *testing.B) {
	const k, m, p = 4, 2, DefaultPieceSize
	enc, err := reedsolomon.New(k, m)
	if err != nil {
		b.Fatal(err)
	}
	shards := make([][]byte, k+m)
	for i := range shards {
		shards[i] = randBytes(p)
	}
	b.SetBytes(k * p)
	b.ResetTimer()
	for range b.N {
		if err := enc.Encode(shards); err != nil {
			b.Fatal(err)
		}
	}
}
