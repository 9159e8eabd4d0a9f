package layout

import (
	"cmp"
	"slices"
)

// MetadataExtents returns the byte ranges of the disk that hold the table
// itself, sorted and merged, so that an imager stores them as used data:
//
//   - MBR: sector 0 and every extended boot record;
//   - GPT: sector 0 (the protective MBR), the primary header and entry
//     array, and the backup entry array and header where the primary says
//     they are (at the end of the disk unless the disk was grown without
//     moving them); if the primary was damaged, everything before the first
//     usable LBA instead of the primary's two ranges;
//   - none: nothing.
//
// The ranges never overlap a data partition of a Table that Read returned.
// Boot code outside them (for example GRUB in the gap after the MBR) is not
// part of the table: see Unpartitioned.
func (t *Table) MetadataExtents() []Extent {
	ls := int64(t.LogicalSector)
	var es []Extent
	switch t.Kind {
	case KindMBR:
		es = append(es, Extent{0, ls})
		for _, off := range t.EBRs {
			es = append(es, Extent{off, ls})
		}
	case KindGPT:
		g := t.gptInfo()
		n := g.entrySectors(ls) * ls
		if g.PrimaryValid {
			es = append(es, Extent{0, 2 * ls}, Extent{g.EntriesLBA * ls, n})
		} else {
			es = append(es, Extent{0, g.FirstUsableLBA * ls})
		}
		es = append(es, Extent{g.BackupEntriesLBA * ls, n}, Extent{g.BackupLBA * ls, ls})
	}
	return mergeExtents(clip(es, t.DiskSize))
}

// Unpartitioned returns the byte ranges of the disk that belong neither to
// a data partition nor to MetadataExtents: gaps between partitions, the
// free space inside an extended partition, and the space before the first
// partition where boot loaders often live (GRUB's core image after an MBR,
// for instance). For a disk without a table it is the whole disk. An imager
// that must reproduce a bootable disk stores the non-zero parts of these.
func (t *Table) Unpartitioned() []Extent {
	used := t.MetadataExtents()
	for _, p := range t.Partitions {
		if !p.IsContainer() {
			used = append(used, Extent{p.Start, p.Size})
		}
	}
	used = mergeExtents(clip(used, t.DiskSize))
	var free []Extent
	pos := int64(0)
	for _, u := range used {
		if u.Off > pos {
			free = append(free, Extent{pos, u.Off - pos})
		}
		pos = max(pos, u.End())
	}
	if pos < t.DiskSize {
		free = append(free, Extent{pos, t.DiskSize - pos})
	}
	return free
}

// gptInfo returns t.GPT, or, for a Table whose GPT geometry was not
// recorded, the geometry of a standard GPT (128 entries of 128 bytes, the
// backup at the end of the disk).
func (t *Table) gptInfo() *GPTInfo {
	if t.GPT != nil {
		return t.GPT
	}
	ls := int64(t.LogicalSector)
	g := &GPTInfo{EntriesLBA: 2, EntryCount: 128, EntrySize: gptEntrySize, PrimaryValid: true, BackupValid: true}
	es := g.entrySectors(ls)
	g.FirstUsableLBA = 2 + es
	g.BackupLBA = t.DiskSize/ls - 1
	g.BackupEntriesLBA = g.BackupLBA - es
	g.LastUsableLBA = g.BackupEntriesLBA - 1
	return g
}

// entrySectors returns the sectors one entry array fills.
func (g *GPTInfo) entrySectors(ls int64) int64 {
	return (int64(g.EntryCount)*int64(g.EntrySize) + ls - 1) / ls
}

// clip drops the parts of es outside [0, size) and empty extents.
func clip(es []Extent, size int64) []Extent {
	out := es[:0:0]
	for _, e := range es {
		lo, hi := max(e.Off, 0), min(e.End(), size)
		if lo < hi {
			out = append(out, Extent{lo, hi - lo})
		}
	}
	return out
}

// mergeExtents sorts es and joins overlapping or touching extents.
func mergeExtents(es []Extent) []Extent {
	slices.SortFunc(es, func(a, b Extent) int { return cmp.Compare(a.Off, b.Off) })
	var out []Extent
	for _, e := range es {
		if n := len(out); n > 0 && e.Off <= out[n-1].End() {
			out[n-1].Len = max(out[n-1].End(), e.End()) - out[n-1].Off
			continue
		}
		out = append(out, e)
	}
	return out
}
