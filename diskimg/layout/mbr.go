package layout

import (
	"fmt"
	"slices"

	"github.com/diskfs/go-diskfs/partition/mbr"
)

// MBR layout: four 16-byte entries at 446, signature 0x55AA at 510.
const (
	mbrEntries    = 446
	mbrEntrySize  = 16
	mbrTypeGPT    = 0xee
	maxEBRs       = 256 // Linux numbers at most 256 partitions per disk
	firstLogical  = 5
	mbrEntryCount = 4
)

func hasMBRSignature(b []byte) bool {
	return len(b) >= 512 && b[510] == 0x55 && b[511] == 0xaa
}

func mbrEntry(b []byte, i int) []byte {
	off := mbrEntries + i*mbrEntrySize
	return b[off : off+mbrEntrySize]
}

// hasGPTEntry reports whether the MBR in b has a 0xEE (GPT protective)
// entry, as in a protective or a hybrid MBR.
func hasGPTEntry(b []byte) bool {
	for i := range mbrEntryCount {
		if mbrEntry(b, i)[4] == mbrTypeGPT {
			return true
		}
	}
	return false
}

// bootFlagsValid reports whether every entry's boot flag is 0x00 or 0x80,
// the test libblkid uses to tell a partition table from other boot code.
func bootFlagsValid(b []byte) bool {
	for i := range mbrEntryCount {
		if f := mbrEntry(b, i)[0]; f != 0 && f != 0x80 {
			return false
		}
	}
	return true
}

// isFSBootSector reports whether b is the boot sector of a FAT, exFAT or
// NTFS file system on the whole disk, which carries 0x55AA too.
func isFSBootSector(b []byte) bool {
	if string(b[3:11]) == "NTFS    " || string(b[3:11]) == "EXFAT   " {
		return true
	}
	jump := (b[0] == 0xeb && b[2] == 0x90) || b[0] == 0xe9
	bps := int(b[11]) | int(b[12])<<8
	spc, fats, media := b[13], b[16], b[21]
	reserved := int(b[14]) | int(b[15])<<8
	bpb := jump && bps >= 512 && bps <= 4096 && bps&(bps-1) == 0 &&
		spc != 0 && spc&(spc-1) == 0 && reserved >= 1 && (fats == 1 || fats == 2) &&
		(media == 0xf0 || media >= 0xf8)
	return bpb && (string(b[54:57]) == "FAT" || string(b[82:87]) == "FAT32")
}

func isExtendedType(t byte) bool { return Partition{MBRType: t}.IsContainer() }

// readMBR fills t from the MBR of d: the primary entries as go-diskfs
// decodes them, then the logical partitions of each extended partition,
// whose chain of extended boot records go-diskfs does not follow.
func readMBR(d *disk, t *Table) error {
	entries, err := readMBRSector(d, 0, "MBR")
	if err != nil {
		return err
	}
	for _, p := range entries {
		if p.Size == 0 { // Linux skips only empty-sized entries
			continue
		}
		t.Partitions = append(t.Partitions, Partition{
			Number:   p.Index,
			Start:    int64(p.Start) * d.ls,
			Size:     int64(p.Size) * d.ls,
			MBRType:  byte(p.Type),
			Bootable: p.Bootable,
		})
	}
	next := firstLogical
	for _, p := range slices.Clone(t.Partitions) { // the primaries; readLogicals appends
		if p.IsContainer() {
			if err := readLogicals(d, t, p, &next); err != nil {
				return fmt.Errorf("extended partition %d: %w", p.Number, err)
			}
		}
	}
	return nil
}

// readMBRSector has go-diskfs decode the MBR-format sector at byte off.
func readMBRSector(d *disk, off int64, what string) ([]*mbr.Partition, error) {
	v := &view{d: d, base: off, size: min(d.ls, d.size-off)}
	var mt *mbr.Table
	err := guard(what, func() (err error) {
		mt, err = mbr.Read(v, int(d.ls), int(d.ls))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%w: go-diskfs: %s at byte %d: %v", ErrMalformed, what, off, err)
	}
	return mt.Partitions, nil
}

// readLogicals follows the chain of extended boot records in the extended
// partition ext, appending its logical partitions (numbered from *next, in
// chain order, as Linux numbers them) and the EBR offsets to t. Data
// entries are relative to their EBR, links to the start of ext.
func readLogicals(d *disk, t *Table, ext Partition, next *int) error {
	extStart, extEnd := ext.Start/d.ls, ext.End()/d.ls
	seen := map[int64]bool{}
	for ebr := extStart; ; {
		switch {
		case ebr < extStart || ebr >= extEnd || ebr >= d.sectors():
			return fmt.Errorf("%w: EBR link to LBA %d leaves the extended partition (LBA %d-%d) or the disk", ErrMalformed, ebr, extStart, extEnd-1)
		case seen[ebr]:
			return fmt.Errorf("%w: EBR chain loops back to LBA %d", ErrMalformed, ebr)
		case len(t.EBRs) >= maxEBRs:
			return fmt.Errorf("%w: more than %d extended boot records", ErrMalformed, maxEBRs)
		}
		seen[ebr] = true
		b, err := d.read(ebr*d.ls, d.ls)
		if err != nil {
			return err
		}
		if !hasMBRSignature(b) {
			if ebr == extStart { // an extended partition with no logical partitions yet
				return nil
			}
			return fmt.Errorf("%w: EBR at LBA %d has no 0x55AA signature", ErrMalformed, ebr)
		}
		entries, err := readMBRSector(d, ebr*d.ls, "EBR")
		if err != nil {
			return err
		}
		t.EBRs = append(t.EBRs, ebr*d.ls)
		link := int64(-1)
		for _, p := range entries {
			switch {
			case p.Size == 0:
			case isExtendedType(byte(p.Type)):
				if link < 0 {
					link = extStart + int64(p.Start)
				}
			default:
				t.Partitions = append(t.Partitions, Partition{
					Number:   *next,
					Start:    (ebr + int64(p.Start)) * d.ls,
					Size:     int64(p.Size) * d.ls,
					MBRType:  byte(p.Type),
					Bootable: p.Bootable,
				})
				*next++
			}
		}
		if link < 0 {
			return nil
		}
		ebr = link
	}
}
