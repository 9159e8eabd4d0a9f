package layout

import (
	"fmt"
	"slices"
)

// FitError says why a target disk cannot hold a layout. It wraps ErrTooSmall.
type FitError struct {
	Partition int    // number of the partition that does not fit; 0 if it is not a partition
	What      string // what does not fit, for people: `partition 2 "root"`, "the backup GPT"
	End       int64  // byte offset the thing that does not fit would end at on the target
	Need      int64  // smallest target size in bytes that holds the whole layout
	Have      int64  // the target's size in bytes
}

func (e *FitError) Error() string {
	return fmt.Sprintf("%s would end at %s, beyond the end of the %s target disk; the layout needs a disk of at least %s",
		e.What, humanBytes(e.End), humanBytes(e.Have), humanBytes(e.Need))
}

// Unwrap returns ErrTooSmall.
func (e *FitError) Unwrap() error { return ErrTooSmall }

// MinSize returns the smallest target disk (same logical sector size) that
// CheckFits accepts: the end of the last partition, plus, for GPT, room for
// the backup entry array and header after it; for a disk without a table,
// the whole source disk.
func (t *Table) MinSize() int64 {
	ls := int64(t.LogicalSector)
	switch t.Kind {
	case KindNone:
		return t.DiskSize
	case KindGPT:
		g := t.gptInfo()
		end := g.FirstUsableLBA
		for _, p := range t.Partitions {
			end = max(end, (p.End()+ls-1)/ls)
		}
		return (end + g.entrySectors(ls) + 1) * ls
	}
	end := ls
	for _, p := range t.Partitions {
		end = max(end, p.End())
	}
	return end
}

// CheckFits returns nil if a target disk of targetSize bytes, with the same
// logical sector size, can hold every partition at its recorded offset and,
// for GPT, the backup table after the last partition. Otherwise it returns
// a *FitError (wrapping ErrTooSmall) naming the first partition, in table
// order, that does not fit (data partitions before MBR extended containers,
// since the data is what a person recognises), or the backup GPT, with the
// sizes in human terms.
func (t *Table) CheckFits(targetSize int64) error {
	ls := int64(t.LogicalSector)
	if ls <= 0 {
		return fmt.Errorf("%w: table has logical sector size %d", ErrMalformed, ls)
	}
	need := t.MinSize()
	usable := targetSize / ls * ls
	fe := &FitError{Need: need, Have: targetSize}
	if t.Kind == KindNone {
		if targetSize >= t.DiskSize {
			return nil
		}
		fe.What = fmt.Sprintf("the disk has no partition table, so all of its %s is one data area that", humanSize(t.DiskSize))
		fe.End = t.DiskSize
		return fe
	}
	parts := slices.Clone(t.Partitions)
	slices.SortStableFunc(parts, func(a, b Partition) int { return cmpBool(a.IsContainer(), b.IsContainer()) })
	for _, p := range parts {
		if p.End() > usable {
			fe.Partition, fe.End = p.Number, p.End()
			fe.What = fmt.Sprintf("partition %d (%s at %s)", p.Number, humanSize(p.Size), humanSize(p.Start))
			if p.Name != "" {
				fe.What = fmt.Sprintf("partition %d %q (%s at %s)", p.Number, p.Name, humanSize(p.Size), humanSize(p.Start))
			}
			return fe
		}
	}
	if usable >= need {
		return nil
	}
	fe.End = need
	fe.What = "the partition table"
	if t.Kind == KindGPT {
		fe.What = fmt.Sprintf("the backup GPT (%s after the last partition)", humanSize(need-t.lastDataEnd()))
	}
	return fe
}

// lastDataEnd returns the end of the last partition, or for GPT at least
// the first usable byte.
func (t *Table) lastDataEnd() int64 {
	end := int64(0)
	if t.Kind == KindGPT {
		end = t.gptInfo().FirstUsableLBA * int64(t.LogicalSector)
	}
	for _, p := range t.Partitions {
		end = max(end, p.End())
	}
	return end
}

// humanSize formats n bytes with a binary unit: "512 B", "1.5 GiB".
func humanSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 && n > -1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n)/1024, 0
	for (f >= 1024 || f <= -1024) && i < len(units)-1 {
		f /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, units[i])
}

// humanBytes is humanSize with the exact count: "1.0 GiB (1073741824 bytes)".
func humanBytes(n int64) string {
	if n < 1024 && n > -1024 {
		return humanSize(n)
	}
	return fmt.Sprintf("%s (%d bytes)", humanSize(n), n)
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case b:
		return -1
	}
	return 1
}
