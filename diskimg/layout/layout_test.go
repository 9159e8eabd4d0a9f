package layout

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

const (
	gpt3Script = `label: gpt
size=256KiB, type=uefi, name="EFI System"
size=512KiB, type=linux, name="root fs Grüße", attrs="RequiredPartition LegacyBIOSBootable GUID:60"
type=swap
`
	mbrPrimaryScript = `label: dos
size=256KiB, type=83, bootable
size=512KiB, type=c
type=7
`
	mbrLogicalScript = `label: dos
size=256KiB, type=83, bootable
type=5
size=256KiB, type=83
size=256KiB, type=82
type=b
`
)

// fixture is a disk image built with real tools.
type fixture struct {
	name string
	size int64
	ls   int
	kind string
	// build creates the layout on path and returns the device sfdisk
	// should query ("" for a disk without a table).
	build func(t testing.TB, path string) string
}

var fixtures = []fixture{
	{"gpt-sfdisk", 2 << 20, 512, KindGPT, func(t testing.TB, p string) string { sfdisk(t, p, gpt3Script); return p }},
	{"gpt-sgdisk", 4 << 20, 512, KindGPT, func(t testing.TB, p string) string {
		needTool(t, "sgdisk")
		run(t, "", "sgdisk", "-n1:2048:+256K", "-t1:ef02", "-c1:BIOS boot", "-n2:0:+1M", "-t2:8300", "-c2:data", "-n4:0:0", "-t4:8200", p)
		return p
	}},
	{"gpt-4k", 8 << 20, 4096, KindGPT, func(t testing.TB, p string) string {
		dev := loopDevice(t, p, 4096)
		sfdisk(t, dev, "label: gpt\nsize=1MiB, type=uefi, name=\"esp\"\ntype=linux, name=\"root\"\n")
		return dev
	}},
	{"mbr-primary", 2 << 20, 512, KindMBR, func(t testing.TB, p string) string { sfdisk(t, p, mbrPrimaryScript); return p }},
	{"mbr-logical", 2 << 20, 512, KindMBR, func(t testing.TB, p string) string { sfdisk(t, p, mbrLogicalScript); return p }},
	{"mbr-empty-extended", 2 << 20, 512, KindMBR, func(t testing.TB, p string) string {
		sfdisk(t, p, "label: dos\nsize=256KiB, type=83\ntype=5\n")
		return p
	}},
	{"none-ext4", 2 << 20, 512, KindNone, func(t testing.TB, p string) string {
		needTool(t, "mkfs.ext4")
		run(t, "", "mkfs.ext4", "-q", "-F", p)
		return ""
	}},
	{"none-vfat", 2 << 20, 512, KindNone, func(t testing.TB, p string) string {
		needTool(t, "mkfs.vfat")
		run(t, "", "mkfs.vfat", p)
		return ""
	}},
	{"none-zero", 1 << 20, 512, KindNone, func(t testing.TB, p string) string { return "" }},
}

func buildFixture(t testing.TB, name string) (fixture, string, string) {
	t.Helper()
	for _, fx := range fixtures {
		if fx.name == name {
			p := sparseFile(t, name+".img", fx.size)
			return fx, p, fx.build(t, p)
		}
	}
	t.Fatalf("no fixture %q", name)
	return fixture{}, "", ""
}

func TestReadMatchesSfdisk(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			_, p, dev := buildFixture(t, fx.name)
			tab := mustRead(t, p, fx.ls)
			if tab.Kind != fx.kind || tab.DiskSize != fx.size || tab.LogicalSector != fx.ls {
				t.Fatalf("kind %q size %d sector %d, want %q %d %d", tab.Kind, tab.DiskSize, tab.LogicalSector, fx.kind, fx.size, fx.ls)
			}
			if dev == "" {
				if len(tab.Partitions) != 0 || tab.MetadataExtents() != nil {
					t.Fatalf("a disk without a table has partitions or metadata: %+v", tab)
				}
				return
			}
			compareSfdisk(t, tab, sfdiskJSON(t, dev))
			if tab.Kind == KindGPT {
				g := tab.GPT
				if !g.PrimaryValid || !g.BackupValid || g.BackupLBA != fx.size/int64(fx.ls)-1 {
					t.Errorf("GPT info %+v", g)
				}
			}
			checkInvariants(t, tab)
		})
	}
}

func TestReadDetails(t *testing.T) {
	_, p, _ := buildFixture(t, "gpt-sfdisk")
	tab := mustRead(t, p, 512)
	if got := tab.Partitions[1]; got.Name != "root fs Grüße" || got.Attributes != 1|4|1<<60 {
		t.Errorf("partition 2: %+v", got)
	}
	want := &GPTInfo{EntriesLBA: 2, EntryCount: 128, EntrySize: 128, FirstUsableLBA: 34, LastUsableLBA: 4062,
		BackupLBA: 4095, BackupEntriesLBA: 4063, PrimaryValid: true, BackupValid: true}
	if *tab.GPT != *want {
		t.Errorf("GPT info\n got  %+v\n want %+v", tab.GPT, want)
	}

	_, p, _ = buildFixture(t, "mbr-logical")
	tab = mustRead(t, p, 512)
	var nums []int
	for _, q := range tab.Partitions {
		nums = append(nums, q.Number)
	}
	if !slices.Equal(nums, []int{1, 2, 5, 6, 7}) || !tab.Partitions[0].Bootable || !tab.Partitions[1].IsContainer() {
		t.Errorf("partitions %+v", tab.Partitions)
	}
	if len(tab.EBRs) != 3 || tab.EBRs[0] != tab.Partitions[1].Start {
		t.Errorf("EBRs %v, extended partition at %d", tab.EBRs, tab.Partitions[1].Start)
	}
}

func TestMetadataExtents(t *testing.T) {
	tests := []struct {
		fixture string
		want    func(tab *Table) []Extent
	}{
		{"gpt-sfdisk", func(*Table) []Extent { return []Extent{{0, 34 * 512}, {4063 * 512, 33 * 512}} }},
		{"gpt-4k", func(*Table) []Extent { return []Extent{{0, 6 * 4096}, {2043 * 4096, 5 * 4096}} }},
		{"mbr-primary", func(*Table) []Extent { return []Extent{{0, 512}} }},
		{"mbr-logical", func(tab *Table) []Extent {
			return []Extent{{0, 512}, {tab.EBRs[0], 512}, {tab.EBRs[1], 512}, {tab.EBRs[2], 512}}
		}},
		{"none-ext4", func(*Table) []Extent { return nil }},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			fx, p, _ := buildFixture(t, tc.fixture)
			tab := mustRead(t, p, fx.ls)
			if got, want := tab.MetadataExtents(), tc.want(tab); !slices.Equal(got, want) {
				t.Errorf("MetadataExtents %v, want %v", got, want)
			}
		})
	}
}

func TestUnpartitioned(t *testing.T) {
	_, p, _ := buildFixture(t, "gpt-sgdisk")
	tab := mustRead(t, p, 512)
	got := tab.Unpartitioned()
	// sgdisk starts at 2048, leaves a gap for partition 3's number and fills to the end.
	if len(got) == 0 || got[0] != (Extent{34 * 512, (2048 - 34) * 512}) {
		t.Errorf("Unpartitioned %v", got)
	}
	var total int64
	for _, e := range append(got, tab.MetadataExtents()...) {
		total += e.Len
	}
	for _, q := range tab.Partitions {
		total += q.Size
	}
	if total != tab.DiskSize {
		t.Errorf("partitions, metadata and gaps add up to %d, disk is %d", total, tab.DiskSize)
	}
}

func TestGPTBackupFallback(t *testing.T) {
	_, clean, _ := buildFixture(t, "gpt-sfdisk")
	want := mustRead(t, clean, 512).Partitions
	tests := []struct {
		name   string
		off    int64 // byte to damage
		backup bool  // expect the table from the backup
	}{
		{"primary header CRC", 512 + 40, true},
		{"primary signature", 512, true},
		{"primary entries", 2*512 + 5, true},
		{"backup header", 4095*512 + 40, false},
		{"backup entries", 4063*512 + 5, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := copyExtents(t, clean, []Extent{{0, 2 << 20}}, 2<<20)
			b := readAt(t, p, tc.off, 1)
			patch(t, p, tc.off, []byte{b[0] ^ 0xff})
			tab := mustRead(t, p, 512)
			if !slices.Equal(tab.Partitions, want) {
				t.Errorf("partitions %+v, want %+v", tab.Partitions, want)
			}
			if tab.GPT.PrimaryValid == tc.backup || tab.GPT.BackupValid != tc.backup {
				t.Errorf("primary valid %v, backup valid %v", tab.GPT.PrimaryValid, tab.GPT.BackupValid)
			}
			checkInvariants(t, tab)
		})
	}
}

func TestReadRejectsDamage(t *testing.T) {
	tests := []struct {
		name    string
		fixture string
		damage  func(t *testing.T, p string) int64 // returns the size to read
		ls      int
		errSub  string
		wantErr error
	}{
		{"both GPT copies", "gpt-sfdisk", func(t *testing.T, p string) int64 {
			patch(t, p, 512+40, []byte{0xff})
			patch(t, p, 4095*512+40, []byte{0xff})
			return 2 << 20
		}, 512, "backup GPT", ErrMalformed},
		{"truncated GPT image", "gpt-sfdisk", func(t *testing.T, p string) int64 { return 1 << 20 }, 512, "truncated", ErrMalformed},
		{"wrong sector size", "gpt-4k", func(t *testing.T, p string) int64 { return 8 << 20 }, 512, "4096-byte logical sectors", ErrMalformed},
		{"MBR partition beyond end", "mbr-primary", func(t *testing.T, p string) int64 { return 1 << 20 }, 512, "beyond the end", ErrMalformed},
		{"MBR overlap", "mbr-primary", func(t *testing.T, p string) int64 {
			patch(t, p, mbrEntries+16+8, []byte{0x10, 0, 0, 0}) // partition 2 starts at LBA 16
			return 2 << 20
		}, 512, "overlaps", ErrMalformed},
		{"MBR boot flag in EBR", "mbr-logical", func(t *testing.T, p string) int64 {
			tab := mustRead(t, p, 512)
			patch(t, p, tab.EBRs[1]+mbrEntries, []byte{0x33})
			return 2 << 20
		}, 512, "EBR", ErrMalformed},
		{"EBR loop", "mbr-logical", func(t *testing.T, p string) int64 {
			tab := mustRead(t, p, 512)
			// the second EBR's link points back at the first EBR (offset 0 from the extended start)
			patch(t, p, tab.EBRs[1]+mbrEntries+16+8, []byte{0, 0, 0, 0})
			return 2 << 20
		}, 512, "loops", ErrMalformed},
		{"EBR link outside", "mbr-logical", func(t *testing.T, p string) int64 {
			tab := mustRead(t, p, 512)
			patch(t, p, tab.EBRs[0]+mbrEntries+16+8, []byte{0xff, 0xff, 0, 0})
			return 2 << 20
		}, 512, "leaves the extended partition", ErrMalformed},
		{"disk smaller than a sector", "none-zero", func(t *testing.T, p string) int64 { return 100 }, 512, "smaller than one", ErrMalformed},
		{"odd sector size", "none-zero", func(t *testing.T, p string) int64 { return 1 << 20 }, 520, "sector size", ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, p, _ := buildFixture(t, tc.fixture)
			size := tc.damage(t, p)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = Read(f, size, tc.ls, tc.ls)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errSub) {
				t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.errSub)
			}
		})
	}
}

// failingReader fails every read.
type failingReader struct{}

func (failingReader) ReadAt([]byte, int64) (int, error) { return 0, syscall.EIO }

func TestReadIOError(t *testing.T) {
	_, err := Read(failingReader{}, 1<<20, 512, 512)
	if !errors.Is(err, syscall.EIO) || errors.Is(err, ErrMalformed) {
		t.Fatalf("error %v, want EIO and not ErrMalformed", err)
	}
}

func TestGuardRecoversPanic(t *testing.T) {
	err := guard("test", func() error { panic("boom") })
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("error %v", err)
	}
}

func TestCheckFits(t *testing.T) {
	const MiB = 1 << 20
	last := func(tab *Table) Partition { return tab.Partitions[len(tab.Partitions)-1] }
	tests := []struct {
		fixture string
		target  func(tab *Table) int64
		part    int    // 0: fits; >0: that partition does not fit; -1: the table does not fit
		errSub  string // in the message
	}{
		{"gpt-sfdisk", func(tab *Table) int64 { return tab.DiskSize }, 0, ""},
		{"gpt-sfdisk", func(tab *Table) int64 { return 64 * MiB }, 0, ""},
		{"gpt-sfdisk", func(tab *Table) int64 { return tab.MinSize() }, 0, ""},
		{"gpt-sfdisk", func(tab *Table) int64 { return tab.MinSize() + 511 }, 0, ""},
		{"gpt-sfdisk", func(tab *Table) int64 { return tab.MinSize() - 1 }, -1, "the backup GPT (16.5 KiB after the last partition)"},
		{"gpt-sfdisk", func(tab *Table) int64 { return last(tab).End() - 512 }, 3, "partition 3 (1.2 MiB at 785.0 KiB) would end at 2.0 MiB"},
		{"gpt-sgdisk", func(tab *Table) int64 { return last(tab).Start + 512 }, 4, "partition 4 (1007.5 KiB at 3.0 MiB) would end at 4.0 MiB (4177408 bytes), beyond the end of the 3.0 MiB (3146240 bytes) target disk; the layout needs a disk of at least 4.0 MiB (4194304 bytes)"},
		{"gpt-sgdisk", func(tab *Table) int64 { return 2 * MiB }, 2, `partition 2 "data"`},
		{"gpt-4k", func(tab *Table) int64 { return tab.MinSize() - 4096 }, -1, "backup GPT (20.0 KiB after"},
		{"mbr-logical", func(tab *Table) int64 { return tab.DiskSize }, 0, ""},
		{"mbr-logical", func(tab *Table) int64 { return MiB }, 7, "partition 7"},
		{"mbr-empty-extended", func(tab *Table) int64 { return MiB }, 2, "partition 2"},
		{"mbr-logical", func(tab *Table) int64 { return tab.MinSize() - 512 }, 7, "partition 7"},
		{"none-ext4", func(tab *Table) int64 { return 2 * MiB }, 0, ""},
		{"none-ext4", func(tab *Table) int64 { return 2*MiB - 1 }, -1, "no partition table"},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			fx, p, _ := buildFixture(t, tc.fixture)
			tab := mustRead(t, p, fx.ls)
			target := tc.target(tab)
			err := tab.CheckFits(target)
			if tc.part == 0 {
				if err != nil {
					t.Fatalf("CheckFits(%d): %v", target, err)
				}
				if tab.MinSize() > target {
					t.Fatalf("MinSize %d > %d, which fits", tab.MinSize(), target)
				}
				return
			}
			var fe *FitError
			if !errors.As(err, &fe) || !errors.Is(err, ErrTooSmall) || !strings.Contains(err.Error(), tc.errSub) {
				t.Fatalf("CheckFits(%d) = %v, want a FitError containing %q", target, err, tc.errSub)
			}
			if (tc.part > 0 && fe.Partition != tc.part) || (tc.part < 0 && fe.Partition != 0) || fe.Need != tab.MinSize() {
				t.Fatalf("FitError %+v, MinSize %d", fe, tab.MinSize())
			}
			if err := tab.CheckFits(fe.Need); err != nil {
				t.Fatalf("CheckFits(Need=%d): %v", fe.Need, err)
			}
			t.Log(err)
		})
	}
}

func TestRelocate(t *testing.T) {
	needTool(t, "sgdisk")
	const MiB = 1 << 20
	script := "label: gpt\nsize=8MiB, type=uefi, name=\"EFI\"\nsize=24MiB, type=linux, name=\"root\"\nsize=20MiB, type=linux, name=\"data\", attrs=\"GUID:63\"\n"
	tests := []struct {
		name     string
		src, dst int64
		damage   int64 // byte of the source to damage before reading, 0 for none
	}{
		{"grow 64 to 128 MiB", 64 * MiB, 128 * MiB, 0},
		{"grow by one sector", 64 * MiB, 64*MiB + 512, 0},
		{"shrink 64 to 56 MiB", 64 * MiB, 56 * MiB, 0},
		{"grow with damaged primary", 64 * MiB, 128 * MiB, 512 + 40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := sparseFile(t, "source.img", tc.src)
			sfdisk(t, src, script)
			if tc.damage != 0 {
				patch(t, src, tc.damage, []byte{0xff})
			}
			tab := mustRead(t, src, 512)
			dst := copyExtents(t, src, tab.MetadataExtents(), tc.dst)
			f, err := os.OpenFile(dst, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			if err := Relocate(f, tab, tc.dst); err != nil {
				t.Fatalf("Relocate: %v", err)
			}
			f.Close()
			if out := run(t, "", "sgdisk", "-v", dst); !strings.Contains(out, "No problems found") {
				t.Fatalf("sgdisk -v:\n%s", out)
			}
			got := mustRead(t, dst, 512)
			if !got.GPT.PrimaryValid || !got.GPT.BackupValid || got.GPT.BackupLBA != tc.dst/512-1 {
				t.Errorf("relocated GPT info %+v", got.GPT)
			}
			if !slices.Equal(got.Partitions, tab.Partitions) || got.DiskGUID != tab.DiskGUID {
				t.Errorf("relocated partitions %+v, want %+v", got.Partitions, tab.Partitions)
			}
			compareSfdisk(t, got, sfdiskJSON(t, dst))
			if tc.dst > tc.src+33*512 {
				if old := readAt(t, dst, tc.src-512, 512); !bytes.Equal(old, make([]byte, 512)) {
					t.Errorf("stale backup header left at the old end")
				}
			}
		})
	}
}

func TestRelocate4K(t *testing.T) {
	needTool(t, "sgdisk")
	_, src, _ := buildFixture(t, "gpt-4k")
	tab := mustRead(t, src, 4096)
	const newSize = 16 << 20
	dst := copyExtents(t, src, tab.MetadataExtents(), newSize)
	f, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := Relocate(f, tab, newSize); err != nil {
		t.Fatalf("Relocate: %v", err)
	}
	f.Close()
	dev := loopDevice(t, dst, 4096)
	if out := run(t, "", "sgdisk", "-v", dev); !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk -v:\n%s", out)
	}
	compareSfdisk(t, mustRead(t, dst, 4096), sfdiskJSON(t, dev))
}

func TestRelocateRefuses(t *testing.T) {
	_, p, _ := buildFixture(t, "gpt-sfdisk")
	tab := mustRead(t, p, 512)
	target := make(memDisk, 4<<20)
	err := Relocate(target, tab, int64(len(target)))
	if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "MetadataExtents") {
		t.Errorf("Relocate onto an empty disk: %v", err)
	}
	if err := Relocate(target, tab, 1<<20); !errors.Is(err, ErrTooSmall) {
		t.Errorf("Relocate onto a too small disk: %v", err)
	}
	if err := Relocate(target, tab, 3<<20+1); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Relocate to a size that is not whole sectors: %v", err)
	}
	// MBR: a no-op, nothing written.
	_, p, _ = buildFixture(t, "mbr-logical")
	tab = mustRead(t, p, 512)
	if err := Relocate(make(memDisk, 0), tab, 8<<20); err != nil {
		t.Errorf("Relocate MBR: %v", err)
	}
	if err := Relocate(make(memDisk, 0), nil, 8<<20); err == nil {
		t.Errorf("Relocate of a nil table succeeded")
	}
}

// checkInvariants checks what doc.go promises of a Table from Read.
func checkInvariants(t testing.TB, tab *Table) {
	t.Helper()
	if err := tab.validate(); err != nil {
		t.Fatalf("table fails its own validation: %v", err)
	}
	meta := tab.MetadataExtents()
	for _, e := range meta {
		if e.Off < 0 || e.Len <= 0 || e.End() > tab.DiskSize {
			t.Fatalf("metadata extent %+v outside the %d-byte disk", e, tab.DiskSize)
		}
		for _, p := range tab.Partitions {
			if !p.IsContainer() && e.Off < p.End() && p.Start < e.End() {
				t.Fatalf("metadata extent %+v overlaps partition %+v", e, p)
			}
		}
	}
	if err := tab.CheckFits(tab.DiskSize); err != nil {
		t.Fatalf("layout does not fit its own disk: %v", err)
	}
	if err := tab.CheckFits(tab.MinSize()); err != nil {
		t.Fatalf("layout does not fit MinSize: %v", err)
	}
	for _, p := range tab.Partitions {
		if p.TypeGUID != strings.ToLower(p.TypeGUID) || p.UniqueGUID != strings.ToLower(p.UniqueGUID) {
			t.Fatalf("GUIDs not lowercase: %+v", p)
		}
	}
}

var _ io.ReaderAt = memDisk(nil)
