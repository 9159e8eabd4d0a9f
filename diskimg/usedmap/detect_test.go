package usedmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDetectZeroScan(t *testing.T) {
	random := make([]byte, 1<<20)
	rng := mrand.NewChaCha8([32]byte{1})
	rng.Read(random)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"random", random},
		{"zeros", make([]byte, 1<<20)},
		{"tiny", []byte{1, 2, 3}},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := int64(len(tc.data))
			res, err := Detect(bytes.NewReader(tc.data), size)
			if err != nil {
				t.Fatal(err)
			}
			if res.Method != MethodZeroScan || res.FS != "" || res.BlockSize != 0 || res.Refused != nil {
				t.Fatalf("%+v, want a plain zero-scan", res)
			}
			checkShape(t, res, size)
			if res.UsedBytes != size {
				t.Fatalf("zero-scan covers %d of %d bytes", res.UsedBytes, size)
			}
		})
	}
}

func TestDetectFilesystems(t *testing.T) {
	need(t, "mke2fs", "mkfs.vfat")
	dir := t.TempDir()
	for _, tc := range []struct {
		tool   string
		args   []string
		method Method
		fs     string
	}{
		{"mke2fs", []string{"-t", "ext4", "-q", "-F"}, MethodExt, "ext4"},
		{"mke2fs", []string{"-t", "ext2", "-q", "-F"}, MethodExt, "ext2"},
		{"mkfs.vfat", []string{"-F", "12"}, MethodFAT, "fat12"},
		{"mkfs.vfat", []string{"-F", "16"}, MethodFAT, "fat16"},
		{"mkfs.vfat", []string{"-F", "32"}, MethodFAT, "fat32"},
	} {
		img := filepath.Join(dir, tc.fs)
		newImage(t, img, 48<<20, false)
		run(t, tc.tool, append(tc.args, img)...)
		f, size := openImage(t, img)
		res, err := Detect(f, size)
		if err != nil {
			t.Fatal(err)
		}
		if res.Method != tc.method || res.FS != tc.fs || res.Refused != nil {
			t.Errorf("%s: %s %s (refused: %v), want %s %s", tc.fs, res.Method, res.FS, res.Refused, tc.method, tc.fs)
		}
		checkShape(t, res, size)
	}
}

// An ext filesystem that also carries a FAT boot sector is ambiguous:
// neither map can be trusted, so Detect zero-scans.
func TestDetectAmbiguous(t *testing.T) {
	need(t, "mke2fs", "mkfs.vfat")
	dir := t.TempDir()
	ext, fat := filepath.Join(dir, "ext"), filepath.Join(dir, "fat")
	for _, p := range []string{ext, fat} {
		newImage(t, p, 16<<20, false)
	}
	run(t, "mke2fs", "-t", "ext4", "-b", "4096", "-q", "-F", ext)
	run(t, "mkfs.vfat", "-F", "16", fat)
	img, err := os.ReadFile(ext)
	if err != nil {
		t.Fatal(err)
	}
	boot, err := os.ReadFile(fat)
	if err != nil {
		t.Fatal(err)
	}
	copy(img[:512], boot[:512])
	res, err := Detect(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if res.Method != MethodZeroScan || !errors.Is(res.Refused, ErrUnsupported) || !strings.Contains(res.Refused.Error(), "both") {
		t.Fatalf("%+v, want a zero-scan refusing both", res)
	}
}

func TestFATDamage(t *testing.T) {
	need(t, "mkfs.vfat")
	img := filepath.Join(t.TempDir(), "img")
	newImage(t, img, 8<<20, false)
	run(t, "mkfs.vfat", "-F", "16", "-s", "1", img)
	base, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, tc := range []struct {
		name   string
		damage func(b []byte)
		size   int64
		want   error
		says   string
	}{
		{"no signature", func(b []byte) { b[510] = 0 }, 0, ErrUnrecognized, "signature"},
		{"no jump", func(b []byte) { b[0] = 0 }, 0, ErrUnrecognized, "signature"},
		{"sector size", func(b []byte) { le.PutUint16(b[bpbBytsPerSec:], 513) }, 0, ErrUnrecognized, "513 bytes per sector"},
		{"cluster size", func(b []byte) { b[bpbSecPerClus] = 3 }, 0, ErrUnrecognized, "3 sectors per cluster"},
		{"no FATs", func(b []byte) { b[bpbNumFATs] = 0 }, 0, ErrUnrecognized, "0 FATs"},
		{"volume larger than partition", func([]byte) {}, 8<<20 - 512, ErrCorrupt, "larger than the partition"},
		{"FAT too small", func(b []byte) { le.PutUint16(b[bpbFATSz16:], 2) }, 0, ErrCorrupt, "too small"},
		{"data beyond volume", func(b []byte) { le.PutUint16(b[bpbRsvdSecCnt:], 60000) }, 0, ErrCorrupt, "data region"},
		{"16-bit FAT size zero on FAT16", func(b []byte) { le.PutUint16(b[bpbFATSz16:], 0) }, 0, ErrCorrupt, "data region"},
		{"no FAT size", func(b []byte) { le.PutUint16(b[bpbFATSz16:], 0); clear(b[bpbFATSz32 : bpbFATSz32+4]) }, 0, ErrCorrupt, "FAT size 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bytes.Clone(base)
			tc.damage(b)
			size := tc.size
			if size == 0 {
				size = int64(len(b))
			}
			_, err := FAT(bytes.NewReader(b), size)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("FAT: %v; want %v saying %q", err, tc.want, tc.says)
			}
		})
	}
}
