package agent

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// benchTree writes ~64 MiB: many small text files, some random and some
// repetitive medium files, one large random file.
func benchTree(b *testing.B) (string, int64) {
	b.Helper()
	src := b.TempDir()
	var total int64
	words := strings.Repeat("func backup(ctx context.Context) error { return restore(chunk, pack) }\n", 200)
	for i := 0; i < 2000; i++ {
		data := []byte(words[:1000+i*7%12000])
		writeFile(b, filepath.Join(src, fmt.Sprintf("d%d/f%d.go", i%40, i)), data)
		total += int64(len(data))
	}
	for i := 0; i < 8; i++ {
		data := randData(uint64(i), 2<<20)
		if i%2 == 0 {
			data = []byte(strings.Repeat(words, 2<<20/len(words)+1)[:2<<20])
		}
		writeFile(b, filepath.Join(src, fmt.Sprintf("m/%d.bin", i)), data)
		total += int64(len(data))
	}
	big := randData(99, 32<<20)
	writeFile(b, filepath.Join(src, "big.bin"), big)
	return src, total + int64(len(big))
}

// BenchmarkBackup is the whole pipeline on a fresh repository: walk, read,
// chunk, hash, dedup, compress, encrypt, pack, erasure-code (4+2), fsync.
func BenchmarkBackup(b *testing.B) {
	src, total := benchTree(b)
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newTestRepo(b)
		b.StartTimer()
		if _, err := Backup(context.Background(), r, BackupOptions{Paths: []string{src}, Host: "h"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBackupUnchanged re-backs up an unchanged tree.
func BenchmarkBackupUnchanged(b *testing.B) {
	src, total := benchTree(b)
	r := newTestRepo(b)
	if _, err := Backup(context.Background(), r, BackupOptions{Paths: []string{src}, Host: "h"}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Backup(context.Background(), r, BackupOptions{Paths: []string{src}, Host: "h"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestore restores the whole tree into a fresh directory.
func BenchmarkRestore(b *testing.B) {
	src, total := benchTree(b)
	r := newTestRepo(b)
	p, err := Backup(context.Background(), r, BackupOptions{Paths: []string{src}, Host: "h"})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(total)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Restore(context.Background(), r, p, RestoreOptions{Target: b.TempDir()}); err != nil {
			b.Fatal(err)
		}
	}
}
