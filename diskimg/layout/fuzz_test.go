package layout

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"flag"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rebuild testdata/seeds with sfdisk and mkfs")

// seeds are tiny real disk images, made with sfdisk and mkfs.vfat and
// stored gzipped in testdata/seeds (a few hundred bytes each). The name's
// prefix is the kind Read must find; "-4k" means 4096-byte sectors.
var seeds = []struct {
	name  string
	size  int64
	build func(t testing.TB, path string)
}{
	{"gpt-64k", 64 << 10, func(t testing.TB, p string) {
		sfdisk(t, p, "label: gpt\nsize=8KiB, type=uefi, name=\"esp\"\ntype=linux, name=\"root\", attrs=\"GUID:63\"\n")
	}},
	{"gpt-16k-4entries", 16 << 10, func(t testing.TB, p string) {
		sfdisk(t, p, "label: gpt\ntable-length: 4\nsize=2KiB, type=uefi, name=\"e\"\ntype=linux, name=\"r\"\n")
	}},
	{"gpt-16k-backup-only", 16 << 10, func(t testing.TB, p string) {
		sfdisk(t, p, "label: gpt\ntable-length: 4\nsize=2KiB, type=uefi, name=\"e\"\ntype=linux, name=\"r\"\n")
		patch(t, p, 512+40, []byte{0xff})
	}},
	{"gpt-64k-4k", 64 << 10, func(t testing.TB, p string) {
		sfdisk(t, loopDevice(t, p, 4096), "label: gpt\ntable-length: 4\nsize=8KiB, type=uefi, name=\"e\"\ntype=linux, name=\"r\"\n")
	}},
	{"mbr-32k-logical", 32 << 10, func(t testing.TB, p string) {
		sfdisk(t, p, "label: dos\nsize=4KiB, type=83, bootable\ntype=5\nsize=4KiB, type=83\ntype=82\n")
	}},
	{"mbr-8k-primary", 8 << 10, func(t testing.TB, p string) {
		sfdisk(t, p, "label: dos\nsize=2KiB, type=c, bootable\ntype=83\n")
	}},
	{"none-64k-vfat", 64 << 10, func(t testing.TB, p string) {
		needTool(t, "mkfs.vfat")
		run(t, "", "mkfs.vfat", p)
	}},
}

func seedPath(name string) string { return filepath.Join("testdata", "seeds", name+".img.gz") }

func loadSeed(t testing.TB, name string) []byte {
	t.Helper()
	f, err := os.Open(seedPath(name))
	if err != nil {
		t.Fatalf("%v (run go test -run TestSeeds -update)", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seedSector(name string) int {
	if strings.HasSuffix(name, "-4k") {
		return 4096
	}
	return 512
}

// TestSeeds checks that every fuzz seed is still read as its name says,
// and with -update rebuilds them first.
func TestSeeds(t *testing.T) {
	for _, s := range seeds {
		t.Run(s.name, func(t *testing.T) {
			if *update {
				p := sparseFile(t, s.name+".img", s.size)
				s.build(t, p)
				var buf bytes.Buffer
				zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
				zw.Write(readAt(t, p, 0, s.size))
				if err := zw.Close(); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(seedPath(s.name), buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data := loadSeed(t, s.name)
			ls := seedSector(s.name)
			tab, err := Read(bytes.NewReader(data), int64(len(data)), ls, ls)
			if err != nil {
				t.Fatal(err)
			}
			if kind := strings.SplitN(s.name, "-", 2)[0]; tab.Kind != kind || (kind != KindNone && len(tab.Partitions) < 2) {
				t.Fatalf("kind %q with %d partitions, want %q", tab.Kind, len(tab.Partitions), kind)
			}
			checkInvariants(t, tab)
		})
	}
}

// FuzzRead feeds arbitrary bytes to Read as a whole disk. Read must never
// panic, must classify every error as ErrMalformed or ErrUnsupported, and
// whatever it accepts must hold the documented invariants; an accepted GPT
// must survive Relocate to a larger disk and read back the same. With
// fixCRC the GPT checksums are made valid before Read, so that mutated
// header fields and entries get past the CRC checks to the geometry checks
// and to go-diskfs.
func FuzzRead(f *testing.F) {
	for _, s := range seeds {
		f.Add(loadSeed(f, s.name), seedSector(s.name) == 4096, false)
		f.Add(loadSeed(f, s.name), seedSector(s.name) == 4096, true)
	}
	f.Add([]byte{}, false, false)
	f.Add(make([]byte, 4096), false, false)
	f.Fuzz(func(t *testing.T, data []byte, sector4k, fixCRC bool) {
		ls := 512
		if sector4k {
			ls = 4096
		}
		if fixCRC {
			fixGPTChecksums(data, ls)
		}
		tab, err := Read(bytes.NewReader(data), int64(len(data)), ls, ls)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		checkInvariants(t, tab)
		if tab.Kind != KindGPT {
			return
		}
		newSize := (int64(len(data))/int64(ls) + 40) * int64(ls)
		grown := make(memDisk, newSize)
		copy(grown, data)
		if err := Relocate(grown, tab, newSize); err != nil {
			t.Fatalf("Relocate of an accepted table: %v", err)
		}
		got, err := Read(grown, newSize, ls, ls)
		if err != nil {
			t.Fatalf("Read after Relocate: %v", err)
		}
		if !got.GPT.PrimaryValid || !got.GPT.BackupValid || got.DiskGUID != tab.DiskGUID || !slices.Equal(got.Partitions, tab.Partitions) {
			t.Fatalf("after Relocate:\n got  %+v %+v\n want %+v", got.GPT, got.Partitions, tab.Partitions)
		}
	})
}

// fixGPTChecksums recomputes the entry array and header CRC32s of the GPT
// headers at LBA 1 and at the last LBA of data, where they have the GPT
// signature and their entry array lies inside data.
func fixGPTChecksums(data []byte, ls int) {
	le := binary.LittleEndian
	for _, at := range []int{ls, (len(data)/ls - 1) * ls} {
		if at < ls || at+gptHeaderSize > len(data) || string(data[at:at+8]) != gptSignature {
			continue
		}
		h := data[at : at+gptHeaderSize]
		n := uint64(le.Uint32(h[offNumEntries:])) * uint64(le.Uint32(h[offEntrySize:]))
		lba := le.Uint64(h[offEntriesLBA:])
		if n <= gptMaxEntryArea && lba < uint64(len(data)/ls) && lba*uint64(ls)+n <= uint64(len(data)) {
			off := lba * uint64(ls)
			le.PutUint32(h[offEntriesCRC:], crc32.ChecksumIEEE(data[off:off+n]))
		}
		le.PutUint32(h[offHeaderCRC:], 0)
		le.PutUint32(h[offHeaderCRC:], crc32.ChecksumIEEE(h))
	}
}
