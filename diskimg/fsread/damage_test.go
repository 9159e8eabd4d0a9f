package fsread

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

func openBytes(b []byte) (FS, error) { return Open(bytes.NewReader(b), int64(len(b))) }

// wantCorrupt checks that err is a *CorruptError whose object and reason
// contain the given strings.
func wantCorrupt(t *testing.T, err error, object, reason string) {
	t.Helper()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v, want a CorruptError", err)
	}
	if !strings.Contains(ce.Object, object) || !strings.Contains(ce.Reason, reason) {
		t.Fatalf("CorruptError{%q, %q}, want object %q, reason %q", ce.Object, ce.Reason, object, reason)
	}
}

func wantUnsupported(t *testing.T, err error, object, feature string) {
	t.Helper()
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("error %v, want an UnsupportedError", err)
	}
	if ue.Object != object || !strings.Contains(ue.Feature, feature) {
		t.Fatalf("UnsupportedError{%q, %q}, want %q, %q", ue.Object, ue.Feature, object, feature)
	}
}

// extInodeOffset is the byte offset of inode ino in the image.
func extInodeOffset(t *testing.T, x *ExtFS, ino uint64) int64 {
	t.Helper()
	table, err := x.inodeTable((ino - 1) / x.sb.inodesPerGroup)
	must(t, err)
	return int64(table)*x.sb.blockSize + int64((ino-1)%x.sb.inodesPerGroup)*x.sb.inodeSize
}

// readAll reads a whole file and returns the first error.
func readAll(f FS, p string) error {
	fl, err := f.Open(p)
	if err != nil {
		return err
	}
	defer fl.Close()
	_, err = io.Copy(io.Discard, fl)
	return err
}

func TestExtDamage(t *testing.T) {
	base := smallExtImage(t, 1<<20, "-t", "ext4", "-b", "1024")
	fsys, err := openBytes(base)
	must(t, err)
	x := fsys.(*ExtFS)
	ino := func(p string) uint64 {
		e, err := x.Stat(p)
		must(t, err)
		return e.Ino
	}
	aIno, dIno, lIno := ino("a.txt"), ino("d"), ino("l")
	aOff, lOff := extInodeOffset(t, x, aIno), extInodeOffset(t, x, lIno)
	dIn, err := x.readInode(dIno)
	must(t, err)
	m, err := x.mapper(dIn)
	must(t, err)
	run0, err := m(0)
	must(t, err)
	dBlock := int64(run0.phys) * x.sb.blockSize
	le := binary.LittleEndian
	sb := int64(extSuperOffset)
	aName := "inode " + itoa(aIno)

	cases := []struct {
		name  string
		patch func(b []byte) []byte
		check func(t *testing.T, f FS, err error)
	}{
		{"truncated image", func(b []byte) []byte { return b[:len(b)/2] }, func(t *testing.T, _ FS, err error) {
			wantCorrupt(t, err, "superblock", "truncated")
		}},
		{"unknown incompat feature", func(b []byte) []byte { le.PutUint32(b[sb+0x60:], le.Uint32(b[sb+0x60:])|0x800); return b }, func(t *testing.T, _ FS, err error) {
			wantUnsupported(t, err, "filesystem", "unknown(0x800)")
		}},
		{"compression", func(b []byte) []byte { le.PutUint32(b[sb+0x60:], le.Uint32(b[sb+0x60:])|0x1); return b }, func(t *testing.T, _ FS, err error) {
			wantUnsupported(t, err, "filesystem", "compression")
		}},
		{"journal device", func(b []byte) []byte { le.PutUint32(b[sb+0x60:], le.Uint32(b[sb+0x60:])|0x8); return b }, func(t *testing.T, _ FS, err error) {
			wantUnsupported(t, err, "filesystem", "journal_dev")
		}},
		{"block size", func(b []byte) []byte { le.PutUint32(b[sb+0x18:], 7); return b }, func(t *testing.T, _ FS, err error) {
			wantCorrupt(t, err, "superblock", "block size")
		}},
		{"inode table", func(b []byte) []byte {
			desc, off := x.sb.descLocation(0)
			le.PutUint32(b[int64(desc)*x.sb.blockSize+off+8:], 0x7FFFFFFF)
			return b
		}, func(t *testing.T, _ FS, err error) { wantCorrupt(t, err, "group descriptor 0", "inode table") }},
		{"root not a directory", func(b []byte) []byte {
			le.PutUint16(b[extInodeOffset(t, x, 2):], 0x81A4)
			return b
		}, func(t *testing.T, _ FS, err error) { wantCorrupt(t, err, "inode 2", "not a directory") }},
		{"encrypted inode", func(b []byte) []byte { b[aOff+0x21] |= 0x08; return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			if _, err := f.Stat("a.txt"); err != nil {
				t.Errorf("Stat of an encrypted inode: %v", err)
			}
			_, err = f.Open("a.txt")
			wantUnsupported(t, err, aName, "encrypt")
		}},
		{"extent magic", func(b []byte) []byte { b[aOff+0x28] = 0; return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			_, err = f.Open("a.txt")
			wantCorrupt(t, err, "extent tree of "+aName, "magic")
		}},
		{"extent depth", func(b []byte) []byte { le.PutUint16(b[aOff+0x28+6:], 6); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			_, err = f.Open("a.txt")
			wantCorrupt(t, err, "extent tree of "+aName, "depth")
		}},
		{"extent beyond filesystem", func(b []byte) []byte { le.PutUint32(b[aOff+0x28+12+8:], 0xFFFFFFF0); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			wantCorrupt(t, readAll(f, "a.txt"), aName, "outside the filesystem")
		}},
		{"dirent rec_len", func(b []byte) []byte { le.PutUint16(b[dBlock+4:], 5); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			_, err = f.ReadDir("d")
			wantCorrupt(t, err, "inode "+itoa(dIno), "rec_len")
		}},
		{"dirent inode number", func(b []byte) []byte { le.PutUint32(b[dBlock+24:], 0x7FFFFFFF); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			_, err = f.ReadDir("d")
			wantCorrupt(t, err, "inode "+itoa(dIno), "inode 2147483647")
		}},
		{"directory cycle", func(b []byte) []byte {
			for off := dBlock; off < dBlock+x.sb.blockSize; off += int64(le.Uint16(b[off+4:])) {
				if b[off+6] == 1 && b[off+8] == 'e' {
					le.PutUint32(b[off:], uint32(dIno)) // d/e is d again
				}
			}
			return b
		}, func(t *testing.T, f FS, err error) {
			must(t, err)
			var cycles []string
			must(t, Walk(f, ".", func(p string, e *Entry, err error) error {
				if errors.Is(err, ErrDirCycle) {
					cycles = append(cycles, p)
				}
				return nil
			}))
			if strings.Join(cycles, ",") != "d/e" {
				t.Errorf("cycles reported at %q, want d/e", cycles)
			}
		}},
		{"fast symlink size", func(b []byte) []byte { le.PutUint32(b[lOff+4:], 2000); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			_, err = f.Readlink("l")
			wantCorrupt(t, err, "inode "+itoa(lIno), "symlink target")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.patch(append([]byte(nil), base...))
			f, err := OpenExt(bytes.NewReader(b), int64(len(b)))
			c.check(t, f, err)
		})
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

func TestFATDamage(t *testing.T) {
	base := smallFATImage(t, 4<<20, "-F", "16", "-s", "1")
	fsys, err := openBytes(base)
	must(t, err)
	f := fsys.(*FATFS)
	if f.Type() != "fat16" {
		t.Fatalf("type %s", f.Type())
	}
	a, err := f.Stat("d/a.txt")
	must(t, err)
	dir, err := f.Stat("A Longer Directory Name")
	must(t, err)
	d, err := f.Stat("d")
	must(t, err)
	var aPos int64
	must(t, f.iterDir(d.Ino, func(de fatDirent) (bool, error) {
		if de.name == "a.txt" {
			aPos = de.pos
		}
		return false, nil
	}))
	c0 := uint32(a.Ino)
	ch, err := f.newChain(c0, "a")
	must(t, err)
	_, err = ch.step()
	must(t, err)
	c1 := ch.cur
	_, err = ch.step()
	must(t, err)
	c2 := ch.cur
	le := binary.LittleEndian
	fat := func(b []byte, c uint32, v uint16) { le.PutUint16(b[f.g.fatOffset+2*int64(c):], v) }
	cluster := func(c uint32) string { return "FAT entry of cluster " + itoa(uint64(c)) }

	cases := []struct {
		name  string
		patch func(b []byte) []byte
		check func(t *testing.T, f FS, err error)
	}{
		{"truncated image", func(b []byte) []byte { return b[:len(b)/2] }, func(t *testing.T, _ FS, err error) {
			wantCorrupt(t, err, "FAT boot sector", "truncated")
		}},
		{"FAT too small", func(b []byte) []byte { le.PutUint16(b[22:], 1); return b }, func(t *testing.T, _ FS, err error) {
			wantCorrupt(t, err, "FAT boot sector", "cannot hold")
		}},
		{"file chain loop", func(b []byte) []byte { fat(b, c2, uint16(c1)); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			wantCorrupt(t, readAll(f, "d/a.txt"), `file "d/a.txt"`, "loops")
		}},
		{"directory chain loop", func(b []byte) []byte {
			start := f.g.clusterOffset(uint32(dir.Ino))
			for off := start + 2*fatDirentSize; off < start+f.g.clusterSize; off += fatDirentSize {
				b[off] = 0xE5 // no end marker: the chain must be followed
			}
			fat(b, uint32(dir.Ino), uint16(dir.Ino))
			return b
		}, func(t *testing.T, f FS, err error) {
			must(t, err)
			_, err = f.ReadDir("A Longer Directory Name")
			wantCorrupt(t, err, "directory at cluster", "loops")
		}},
		{"next cluster out of range", func(b []byte) []byte { fat(b, c0, 0xFFF0); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			wantCorrupt(t, readAll(f, "d/a.txt"), cluster(c0), "out of range")
		}},
		{"free cluster in chain", func(b []byte) []byte { fat(b, c1, 0); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			wantCorrupt(t, readAll(f, "d/a.txt"), cluster(c1), "out of range")
		}},
		{"bad cluster in chain", func(b []byte) []byte { fat(b, c1, 0xFFF7); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			wantCorrupt(t, readAll(f, "d/a.txt"), cluster(c1), "bad cluster")
		}},
		{"chain shorter than size", func(b []byte) []byte { le.PutUint32(b[aPos+28:], 20000); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			wantCorrupt(t, readAll(f, "d/a.txt"), `file "d/a.txt"`, "ends")
		}},
		{"entry cluster out of range", func(b []byte) []byte { le.PutUint16(b[aPos+26:], 0xFFFF); return b }, func(t *testing.T, f FS, err error) {
			must(t, err)
			entries, err := f.ReadDir("d")
			wantCorrupt(t, err, `"a.txt"`, "out of range")
			if len(entries) != 2 { // b.txt and e are still listed
				t.Errorf("ReadDir returned %d entries with the error, want 2", len(entries))
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.patch(append([]byte(nil), base...))
			f, err := OpenFAT(bytes.NewReader(b), int64(len(b)))
			c.check(t, f, err)
		})
	}
}

func TestUnknownFS(t *testing.T) {
	zeros := make([]byte, 1<<20)
	if _, err := openBytes(zeros); !errors.Is(err, ErrUnknownFS) {
		t.Errorf("zeros: %v", err)
	}
	if _, err := openBytes(make([]byte, 100)); !errors.Is(err, ErrUnknownFS) {
		t.Errorf("tiny image: %v", err)
	}
	ntfs := make([]byte, 1<<20)
	copy(ntfs, "\xebR\x90NTFS    ")
	if _, err := openBytes(ntfs); !errors.Is(err, ErrUnknownFS) || !strings.Contains(err.Error(), "NTFS") {
		t.Errorf("NTFS: %v", err)
	}
	if _, err := OpenExt(bytes.NewReader(zeros), int64(len(zeros))); !errors.Is(err, ErrUnknownFS) {
		t.Errorf("OpenExt(zeros): %v", err)
	}
	if _, err := OpenFAT(bytes.NewReader(zeros), int64(len(zeros))); !errors.Is(err, ErrUnknownFS) {
		t.Errorf("OpenFAT(zeros): %v", err)
	}
}
