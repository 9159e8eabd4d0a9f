package fsread

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const benchFileSize = 64 << 20

// benchImage builds an image holding one 64 MiB file and returns it in
// memory, so the benchmark measures the reader, not the disk.
func benchImage(b *testing.B, format func(src, img string)) []byte {
	b.Helper()
	src := filepath.Join(b.TempDir(), "src")
	writeFile(b, filepath.Join(src, "big.bin"), randBytes(9, benchFileSize), 0o644)
	img := filepath.Join(b.TempDir(), "bench.img")
	must(b, os.WriteFile(img, nil, 0o644))
	must(b, os.Truncate(img, benchFileSize+benchFileSize/2))
	format(src, img)
	data, err := os.ReadFile(img)
	must(b, err)
	return data
}

// benchRead reads big.bin whole with WriteTo (io.Copy), 32 KiB Reads and
// 1 MiB ReadAts.
func benchRead(b *testing.B, fsys FS) {
	b.Run("WriteTo", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		for b.Loop() {
			f, err := fsys.Open("big.bin")
			must(b, err)
			if n, err := io.Copy(io.Discard, f); err != nil || n != benchFileSize {
				b.Fatal(n, err)
			}
			f.Close()
		}
	})
	b.Run("Read32K", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		buf := make([]byte, 32<<10)
		for b.Loop() {
			f, err := fsys.Open("big.bin")
			must(b, err)
			if n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, struct{ io.Reader }{f}, buf); err != nil || n != benchFileSize {
				b.Fatal(n, err)
			}
			f.Close()
		}
	})
	b.Run("ReadAt1M", func(b *testing.B) {
		b.SetBytes(benchFileSize)
		buf := make([]byte, 1<<20)
		for b.Loop() {
			f, err := fsys.Open("big.bin")
			must(b, err)
			for off := int64(0); off < benchFileSize; off += int64(len(buf)) {
				if _, err := f.ReadAt(buf, off); err != nil {
					b.Fatal(err)
				}
			}
			f.Close()
		}
	})
}

// BenchmarkExtReadFile reads a 64 MiB file of an ext4 image held in memory.
func BenchmarkExtReadFile(b *testing.B) {
	needTools(b, "mke2fs")
	data := benchImage(b, func(src, img string) {
		run(b, nil, nil, "mke2fs", "-F", "-q", "-t", "ext4", "-b", "4096", "-d", src, img)
	})
	fsys, err := OpenExt(bytes.NewReader(data), int64(len(data)))
	must(b, err)
	benchRead(b, fsys)
}

// BenchmarkFATReadFile reads a 64 MiB file of a FAT32 image held in memory.
func BenchmarkFATReadFile(b *testing.B) {
	needTools(b, "mkfs.vfat", "mcopy")
	data := benchImage(b, func(src, img string) {
		run(b, nil, nil, "mkfs.vfat", "-F", "32", img)
		run(b, mtoolsEnv, nil, "mcopy", "-i", img, filepath.Join(src, "big.bin"), "::/big.bin")
	})
	fsys, err := OpenFAT(bytes.NewReader(data), int64(len(data)))
	must(b, err)
	benchRead(b, fsys)
}
