package usedmap

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkExt maps a 1 GiB sparse ext4 image with some files; the
// throughput is of the partition mapped, not of bytes read. With 1 KiB
// blocks there are 128 groups and eight times the bitmap bytes.
func BenchmarkExt(b *testing.B) {
	need(b, "mke2fs")
	for _, bs := range []int{4096, 1024} {
		b.Run(fmt.Sprintf("block%d", bs), func(b *testing.B) {
			dir := b.TempDir()
			img, src := filepath.Join(dir, "img"), filepath.Join(dir, "src")
			newImage(b, img, 1<<30, false)
			populate(b, src, 9, 40, 1<<20)
			run(b, "mke2fs", "-t", "ext4", "-b", fmt.Sprint(bs), "-F", "-q", "-d", src, img)
			f, size := openImage(b, img)
			b.SetBytes(size)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := Ext(f, size); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFAT maps a 1 GiB sparse FAT32 volume (4 KiB clusters).
func BenchmarkFAT(b *testing.B) {
	need(b, "mkfs.vfat")
	img := filepath.Join(b.TempDir(), "img")
	newImage(b, img, 1<<30, false)
	run(b, "mkfs.vfat", "-F", "32", "-s", "8", img)
	f, size := openImage(b, img)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := FAT(f, size); err != nil {
			b.Fatal(err)
		}
	}
}
