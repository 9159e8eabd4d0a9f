package layout

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

// GPT header fields (UEFI 2.10, 5.3.2), byte offsets in the header sector.
const (
	gptSignature    = "EFI PART"
	gptRevision     = 0x00010000
	gptHeaderSize   = 92
	gptEntrySize    = 128
	gptMaxEntryArea = 1 << 20 // bytes of entries we accept (8192 entries of 128 bytes)

	offRevision   = 8
	offHeaderSize = 12
	offHeaderCRC  = 16
	offReserved   = 20
	offMyLBA      = 24
	offAltLBA     = 32
	offFirstLBA   = 40
	offLastLBA    = 48
	offDiskGUID   = 56
	offEntriesLBA = 72
	offNumEntries = 80
	offEntrySize  = 84
	offEntriesCRC = 88
)

// gptHeader is one decoded GPT header (primary or backup).
type gptHeader struct {
	raw                     []byte // the first gptHeaderSize bytes of the header sector
	myLBA, altLBA           uint64
	firstUsable, lastUsable uint64
	diskGUID                string
	entriesLBA              uint64
	count, entrySize        uint32
	entriesCRC              uint32
}

// parseGPTHeader decodes and checksums the header in sector b.
func parseGPTHeader(b []byte) (*gptHeader, error) {
	if len(b) < gptHeaderSize {
		return nil, fmt.Errorf("%w: GPT header sector of %d bytes", ErrMalformed, len(b))
	}
	le := binary.LittleEndian
	if string(b[:8]) != gptSignature {
		return nil, fmt.Errorf("%w: no GPT signature", ErrMalformed)
	}
	if rev := le.Uint32(b[offRevision:]); rev != gptRevision {
		return nil, fmt.Errorf("%w: GPT revision %#08x (want 1.0)", ErrUnsupported, rev)
	}
	if hs := le.Uint32(b[offHeaderSize:]); hs != gptHeaderSize {
		return nil, fmt.Errorf("%w: GPT header size %d (want %d)", ErrUnsupported, hs, gptHeaderSize)
	}
	raw := bytes.Clone(b[:gptHeaderSize])
	stored := le.Uint32(raw[offHeaderCRC:])
	le.PutUint32(raw[offHeaderCRC:], 0)
	if sum := crc32.ChecksumIEEE(raw); sum != stored {
		return nil, fmt.Errorf("%w: GPT header CRC32 %#08x, computed %#08x", ErrMalformed, stored, sum)
	}
	if le.Uint32(raw[offReserved:]) != 0 {
		return nil, fmt.Errorf("%w: GPT header reserved field not zero", ErrMalformed)
	}
	return &gptHeader{
		raw:         raw,
		myLBA:       le.Uint64(raw[offMyLBA:]),
		altLBA:      le.Uint64(raw[offAltLBA:]),
		firstUsable: le.Uint64(raw[offFirstLBA:]),
		lastUsable:  le.Uint64(raw[offLastLBA:]),
		diskGUID:    guidString(raw[offDiskGUID : offDiskGUID+16]),
		entriesLBA:  le.Uint64(raw[offEntriesLBA:]),
		count:       le.Uint32(raw[offNumEntries:]),
		entrySize:   le.Uint32(raw[offEntrySize:]),
		entriesCRC:  le.Uint32(raw[offEntriesCRC:]),
	}, nil
}

// entryBytes is the length of the entry array; entrySectors the sectors it fills.
func (h *gptHeader) entryBytes() int64 { return int64(h.count) * int64(h.entrySize) }
func (h *gptHeader) entrySectors(ls int64) int64 {
	return (h.entryBytes() + ls - 1) / ls
}

// checkGeometry checks that a header read at LBA at of a disk of sectors
// logical sectors describes structures that fit together on that disk.
// After it passes, every LBA in h is below sectors, so no product with the
// sector size overflows.
func (h *gptHeader) checkGeometry(at, sectors, ls int64, primary bool) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: GPT header at LBA %d: %s", ErrMalformed, at, fmt.Sprintf(format, args...))
	}
	if h.myLBA != uint64(at) {
		return bad("claims to be at LBA %d", h.myLBA)
	}
	if h.entrySize != gptEntrySize {
		return fmt.Errorf("%w: GPT entries of %d bytes (want %d)", ErrUnsupported, h.entrySize, gptEntrySize)
	}
	if h.count == 0 || h.entryBytes() > gptMaxEntryArea {
		return bad("%d partition entries", h.count)
	}
	es, n := h.entrySectors(ls), uint64(sectors)
	if primary && (h.altLBA >= n || h.lastUsable >= n) {
		return bad("the table was made for a disk of at least %d sectors, this one has %d (image truncated, or the wrong size given?)", max(h.altLBA, h.lastUsable)+1, sectors)
	}
	if h.firstUsable > h.lastUsable || h.lastUsable >= n || h.firstUsable < 2 {
		return bad("usable LBAs %d-%d on a disk of %d sectors", h.firstUsable, h.lastUsable, sectors)
	}
	if h.entriesLBA >= n || h.entriesLBA+uint64(es) > n {
		return bad("entry array at LBA %d beyond the disk end", h.entriesLBA)
	}
	entriesEnd := h.entriesLBA + uint64(es)
	if primary {
		if h.entriesLBA < 2 || entriesEnd > h.firstUsable {
			return bad("entry array at LBA %d-%d overlaps the header or the usable area from LBA %d", h.entriesLBA, entriesEnd-1, h.firstUsable)
		}
		if h.altLBA <= h.lastUsable+uint64(es) {
			return bad("no room for the backup entry array between the usable area's end at LBA %d and the backup header at LBA %d", h.lastUsable, h.altLBA)
		}
		return nil
	}
	if h.entriesLBA <= h.lastUsable || entriesEnd > h.myLBA {
		return bad("backup entry array at LBA %d-%d overlaps the usable area or the header", h.entriesLBA, entriesEnd-1)
	}
	if h.altLBA != 1 {
		return bad("backup header names LBA %d as the primary (want 1)", h.altLBA)
	}
	return nil
}

// loadGPTCopy reads and fully checks one copy of the GPT: the header at
// LBA at and its entry array, which it returns too.
func loadGPTCopy(d *disk, at int64, primary bool) (*gptHeader, []byte, error) {
	if at < 1 || at >= d.sectors() {
		return nil, nil, fmt.Errorf("%w: GPT header LBA %d is outside the %d-sector disk", ErrMalformed, at, d.sectors())
	}
	b, err := d.read(at*d.ls, d.ls)
	if err != nil {
		return nil, nil, err
	}
	h, err := parseGPTHeader(b)
	if err != nil {
		return nil, nil, err
	}
	if err := h.checkGeometry(at, d.sectors(), d.ls, primary); err != nil {
		return nil, nil, err
	}
	entries, err := d.read(int64(h.entriesLBA)*d.ls, h.entryBytes())
	if err != nil {
		return nil, nil, err
	}
	if sum := crc32.ChecksumIEEE(entries); sum != h.entriesCRC {
		return nil, nil, fmt.Errorf("%w: GPT entry array CRC32 %#08x, computed %#08x", ErrMalformed, h.entriesCRC, sum)
	}
	return h, entries, nil
}

// sameTable reports whether two headers describe the same table.
func sameTable(a, b *gptHeader) bool {
	return a.diskGUID == b.diskGUID && a.count == b.count && a.entrySize == b.entrySize &&
		a.entriesCRC == b.entriesCRC && a.firstUsable == b.firstUsable && a.lastUsable == b.lastUsable
}

// readGPT fills t from the GPT of d. It checks both copies itself and only
// then lets go-diskfs decode the entries of the copy it chose; if it chose
// the backup, the primary header sector is hidden from go-diskfs so that
// its own fallback to the backup at the disk's end is taken.
func readGPT(d *disk, t *Table) error {
	sectors := d.sectors()
	if sectors < 4 {
		return fmt.Errorf("%w: a disk of %d sectors cannot hold a GPT", ErrMalformed, sectors)
	}
	use, _, perr := loadGPTCopy(d, 1, true)
	info := &GPTInfo{PrimaryValid: perr == nil}
	if perr == nil {
		back, _, berr := loadGPTCopy(d, int64(use.altLBA), false)
		info.BackupValid = berr == nil && sameTable(use, back)
		info.EntriesLBA = int64(use.entriesLBA)
		info.BackupLBA = int64(use.altLBA)
		info.BackupEntriesLBA = int64(use.altLBA) - use.entrySectors(d.ls)
		if info.BackupValid {
			info.BackupEntriesLBA = int64(back.entriesLBA)
		}
	} else {
		back, _, berr := loadGPTCopy(d, sectors-1, false)
		if berr != nil {
			err := fmt.Errorf("primary GPT: %v; backup GPT: %w", perr, berr)
			return sectorSizeHint(d, err)
		}
		if uint64(2+back.entrySectors(d.ls)) > back.firstUsable {
			return fmt.Errorf("%w: primary GPT: %v; backup GPT leaves no room for a primary entry array before LBA %d", ErrMalformed, perr, back.firstUsable)
		}
		use = back
		info.BackupValid = true
		info.EntriesLBA = 2
		info.BackupLBA = sectors - 1
		info.BackupEntriesLBA = int64(back.entriesLBA)
	}
	info.EntryCount, info.EntrySize = int(use.count), int(use.entrySize)
	info.FirstUsableLBA, info.LastUsableLBA = int64(use.firstUsable), int64(use.lastUsable)
	t.GPT, t.DiskGUID = info, use.diskGUID
	return decodeGPTEntries(d, t, perr != nil)
}

// decodeGPTEntries has go-diskfs decode the partition entries.
func decodeGPTEntries(d *disk, t *Table, fromBackup bool) error {
	v := &view{d: d, size: d.size}
	if fromBackup {
		v.hide = Extent{Off: d.ls, Len: d.ls}
	}
	var gt *gpt.Table
	err := guard("GPT", func() (err error) {
		gt, err = gpt.Read(v, t.LogicalSector, t.PhysicalSector)
		return err
	})
	if err != nil {
		return fmt.Errorf("go-diskfs: %w", err)
	}
	if gt.RecoveredFromBackup != fromBackup || !strings.EqualFold(gt.GUID, t.DiskGUID) {
		return fmt.Errorf("%w: go-diskfs read a different GPT copy than the one checked (disk GUID %s, from backup %v)", ErrMalformed, gt.GUID, gt.RecoveredFromBackup)
	}
	info := t.GPT
	for _, p := range gt.Partitions {
		if p.Start > p.End || p.Start < uint64(info.FirstUsableLBA) || p.End > uint64(info.LastUsableLBA) {
			return fmt.Errorf("%w: GPT partition %d at LBA %d-%d lies outside the usable LBAs %d-%d",
				ErrMalformed, p.Index, p.Start, p.End, info.FirstUsableLBA, info.LastUsableLBA)
		}
		t.Partitions = append(t.Partitions, Partition{
			Number:     p.Index,
			Start:      int64(p.Start) * d.ls,
			Size:       int64(p.End-p.Start+1) * d.ls,
			TypeGUID:   strings.ToLower(string(p.Type)),
			Name:       p.Name,
			Attributes: p.Attributes,
			UniqueGUID: strings.ToLower(p.GUID),
		})
	}
	return nil
}

// sectorSizeHint adds to err that a GPT header sits where the other common
// logical sector size would put it: the caller likely passed the wrong one.
func sectorSizeHint(d *disk, err error) error {
	other := int64(4096)
	if d.ls == 4096 {
		other = 512
	}
	if b, rerr := d.read(other, int64(len(gptSignature))); rerr == nil && string(b) == gptSignature {
		return fmt.Errorf("%w (a GPT header is at byte %d: the disk seems to use %d-byte logical sectors, not %d)", err, other, other, d.ls)
	}
	return err
}

// guidString formats a GUID stored in the mixed-endian GPT layout.
func guidString(b []byte) string {
	le := binary.LittleEndian
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x", le.Uint32(b[0:4]), le.Uint16(b[4:6]), le.Uint16(b[6:8]), b[8:10], b[10:16])
}
