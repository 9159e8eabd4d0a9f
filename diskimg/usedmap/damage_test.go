package usedmap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// smallExt4 returns an ext4 image (1 KiB blocks, 2 groups, metadata_csum,
// 64bit) with some files, in memory.
func smallExt4(t *testing.T) []byte {
	t.Helper()
	need(t, "mke2fs")
	dir := t.TempDir()
	img, src := filepath.Join(dir, "img"), filepath.Join(dir, "src")
	newImage(t, img, 16<<20, false)
	populate(t, src, 3, 10, 64<<10)
	run(t, "mke2fs", "-t", "ext4", "-b", "1024", "-F", "-q", "-d", src, img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// resealSuper recomputes the metadata_csum superblock checksum after a
// deliberate change, so the change itself is what is tested.
func resealSuper(img []byte) {
	sb := img[extSuperOff : extSuperOff+extSuperSize]
	binary.LittleEndian.PutUint32(sb[sbChecksum:], crc32c(^uint32(0), sb[:sbChecksum]))
}

// resealDesc recomputes group i's descriptor checksum (1 KiB blocks, 64
// bytes per descriptor) after a deliberate change.
func resealDesc(t *testing.T, img []byte, i int) {
	g, err := readExtSuper(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	d := img[2048+64*i:][:64]
	binary.LittleEndian.PutUint16(d[gdChecksum:], g.descCsum(d, uint64(i)))
}

func TestExtDamage(t *testing.T) {
	base := smallExt4(t)
	le := binary.LittleEndian
	sb := func(img []byte) []byte { return img[extSuperOff : extSuperOff+extSuperSize] }
	const gdt = 2048 // 1 KiB blocks: descriptors in block 2, 64 bytes each
	for _, tc := range []struct {
		name   string
		damage func(img []byte)
		group  int   // descriptor to reseal after the damage; -1 none
		size   int64 // partition size to pass; 0 means len(img)
		want   error
		says   string
	}{
		{"bad magic", func(img []byte) { le.PutUint16(sb(img)[sbMagic:], 0x1234) }, -1, 0, ErrUnrecognized, "magic"},
		{"partition shorter than the filesystem", func([]byte) {}, -1, 16<<20 - 1024, ErrCorrupt, "larger than the partition"},
		{"block bitmap outside", func(img []byte) { le.PutUint32(img[gdt+64+gdBlockBitmapLo:], 99999) }, 1, 0, ErrCorrupt, "group 1: block bitmap at block 99999"},
		{"inode table runs past the end", func(img []byte) { le.PutUint32(img[gdt+gdInodeTableLo:], 16383) }, 0, 0, ErrCorrupt, "group 0: inode table"},
		{"block bitmap high half", func(img []byte) { le.PutUint32(img[gdt+64+gdBlockBitmapHi:], 1) }, 1, 0, ErrCorrupt, "group 1: block bitmap"},
		{"unknown incompat feature", func(img []byte) {
			le.PutUint32(sb(img)[sbFeatureIncompt:], le.Uint32(sb(img)[sbFeatureIncompt:])|0x800000)
			resealSuper(img)
		}, -1, 0, ErrUnsupported, "unknown incompat features 0x800000"},
		{"unknown ro_compat feature", func(img []byte) {
			le.PutUint32(sb(img)[sbFeatureROCompt:], le.Uint32(sb(img)[sbFeatureROCompt:])|0x80)
			resealSuper(img)
		}, -1, 0, ErrUnsupported, "unknown ro_compat"},
		{"compression", func(img []byte) {
			le.PutUint32(sb(img)[sbFeatureIncompt:], le.Uint32(sb(img)[sbFeatureIncompt:])|incompatCompression)
			resealSuper(img)
		}, -1, 0, ErrUnsupported, "compression"},
		{"journal device", func(img []byte) {
			le.PutUint32(sb(img)[sbFeatureIncompt:], le.Uint32(sb(img)[sbFeatureIncompt:])|incompatJournalDev)
			resealSuper(img)
		}, -1, 0, ErrUnsupported, "journal device"},
		{"error state", func(img []byte) { le.PutUint16(sb(img)[sbState:], 3); resealSuper(img) }, -1, 0, ErrUnsupported, "errors"},
		{"not cleanly unmounted", func(img []byte) { le.PutUint16(sb(img)[sbState:], 0); resealSuper(img) }, -1, 0, ErrUnsupported, "cleanly"},
		{"superblock checksum", func(img []byte) { sb(img)[0x78] ^= 1 }, -1, 0, ErrCorrupt, "superblock checksum"},
		{"block size", func(img []byte) { le.PutUint32(sb(img)[sbLogBlockSize:], 7); resealSuper(img) }, -1, 0, ErrCorrupt, "block size"},
		{"blocks per group", func(img []byte) { le.PutUint32(sb(img)[sbBlocksPerGroup:], 1<<20); resealSuper(img) }, -1, 0, ErrCorrupt, "blocks per group"},
		{"inode count", func(img []byte) { le.PutUint32(sb(img)[sbInodesCount:], 5); resealSuper(img) }, -1, 0, ErrCorrupt, "inodes"},
		{"descriptor size", func(img []byte) { le.PutUint16(sb(img)[sbDescSize:], 48); resealSuper(img) }, -1, 0, ErrCorrupt, "descriptor size 48"},
		{"first data block", func(img []byte) { le.PutUint32(sb(img)[sbFirstDataBlock:], 0); resealSuper(img) }, -1, 0, ErrCorrupt, "first data block"},
		{"descriptor checksum", func(img []byte) { img[gdt+64+gdFlags] ^= bgBlockUninit }, -1, 0, ErrCorrupt, "group 1: descriptor checksum"},
		{"revision", func(img []byte) { le.PutUint32(sb(img)[sbRevLevel:], 2); resealSuper(img) }, -1, 0, ErrUnsupported, "revision 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := bytes.Clone(base)
			tc.damage(img)
			if tc.group >= 0 {
				resealDesc(t, img, tc.group)
			}
			size := tc.size
			if size == 0 {
				size = int64(len(img))
			}
			_, err := Ext(bytes.NewReader(img), size)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Ext: %v; want %v saying %q", err, tc.want, tc.says)
			}
			res, err := Detect(bytes.NewReader(img), size)
			if err != nil || res.Method != MethodZeroScan || res.UsedBytes != size {
				t.Fatalf("Detect: %+v, %v; want a zero-scan of everything", res, err)
			}
			if !errors.Is(tc.want, ErrUnrecognized) && !errors.Is(res.Refused, tc.want) {
				t.Fatalf("Detect.Refused = %v, want %v", res.Refused, tc.want)
			}
		})
	}
}

// A block bitmap that fails its checksum is not trusted: its whole group
// becomes used.
func TestExtBitmapChecksum(t *testing.T) {
	img := smallExt4(t)
	r, err := Ext(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	bitmap := binary.LittleEndian.Uint32(img[2048+64+gdBlockBitmapLo:]) // group 1
	img[int(bitmap)*1024+500] ^= 0x10
	res, err := Ext(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if res.SuspectGroups != 1 {
		t.Fatalf("SuspectGroups = %d, want 1", res.SuspectGroups)
	}
	group1 := Extent{(1 + 8192) * 1024, 8191 * 1024} // blocks 8193..16383
	if !covers(res.Used, group1) {
		t.Fatalf("group 1 %+v not wholly used in %v", group1, res.Used)
	}
	if res.UsedBytes <= r.UsedBytes {
		t.Fatalf("used %d after damage, %d before", res.UsedBytes, r.UsedBytes)
	}
}

func covers(list []Extent, x Extent) bool {
	for _, e := range list {
		if e.Off <= x.Off && e.End() >= x.End() {
			return true
		}
	}
	return false
}

var errInjected = errors.New("injected I/O error")

// failingReader fails its n-th ReadAt (counting from 0).
type failingReader struct {
	r     io.ReaderAt
	n     int
	calls int
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	f.calls++
	if f.calls-1 == f.n {
		return 0, fmt.Errorf("at %d: %w", off, errInjected)
	}
	return f.r.ReadAt(p, off)
}

// A read error is the caller's to see: Detect never turns it into a
// zero-scan (which would then read the same failing disk) or a map.
func TestDetectReadErrors(t *testing.T) {
	img := smallExt4(t)
	for n := 0; ; n++ {
		fr := &failingReader{r: bytes.NewReader(img), n: n}
		res, err := Detect(fr, int64(len(img)))
		if fr.calls <= n { // no read failed: done
			if err != nil || res.Method != MethodExt {
				t.Fatalf("no fault: %+v, %v", res, err)
			}
			if n < 3 {
				t.Fatalf("only %d reads", n)
			}
			return
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("read %d failed: Detect returned %+v, %v; want the injected error", n, res, err)
		}
	}
}
