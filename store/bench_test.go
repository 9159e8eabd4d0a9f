package store

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"bes/store/crypt"
	"bes/store/pack"
)

// BenchmarkSave measures the per-chunk write path: keyed hash, dedup
// lookup, compression, encryption, pack append, erasure coding (4+2).
func BenchmarkSave(b *testing.B) {
	for _, kind := range []string{"random", "text"} {
		b.Run(kind, func(b *testing.B) {
			r, err := Init(context.Background(), InitOptions{Dir: b.TempDir() + "/repo",
				KEK: crypt.PassphraseWithCost([]byte("pw"), crypt.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}), Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			s, _ := r.NewSaver(SaverOptions{})
			data := randBytes(1, 1<<20)
			if kind == "text" {
				data = bytes.Repeat([]byte("the chunk store packs encrypted blobs\n"), 1<<20/38+1)[:1<<20]
			}
			b.SetBytes(int64(len(data)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16) // a new chunk each time
				if _, _, err := s.Save(context.Background(), pack.TypeData, data); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkLoad measures the read path: read, decrypt, decompress, verify.
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	r, err := Init(ctx, InitOptions{Dir: b.TempDir() + "/repo",
		KEK: crypt.PassphraseWithCost([]byte("pw"), crypt.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	s, _ := r.NewSaver(SaverOptions{})
	data := bytes.Repeat([]byte("the chunk store packs encrypted blobs\n"), 1<<20/38+1)[:1<<20]
	id, _, _ := s.Save(ctx, pack.TypeData, data)
	s.Flush(ctx)
	b.SetBytes(int64(len(data)))
	var buf []byte
	for i := 0; i < b.N; i++ {
		if buf, err = r.LoadBlob(ctx, id, buf); err != nil {
			b.Fatal(err)
		}
	}
}
