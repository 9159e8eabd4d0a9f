package layout

import (
	"cmp"
	"fmt"
	"slices"
)

// validate checks the invariants every Table that Read returns holds:
// partitions are non-empty, sector aligned, inside the addressable disk and
// off sector 0; data areas do not overlap each other or the table's own
// sectors; MBR logical partitions lie inside an extended partition.
func (t *Table) validate() error {
	if t.Kind == KindNone {
		if len(t.Partitions) > 0 {
			return fmt.Errorf("%w: a disk without a table has %d partitions", ErrMalformed, len(t.Partitions))
		}
		return nil
	}
	ls := int64(t.LogicalSector)
	diskEnd := t.DiskSize / ls * ls
	for _, p := range t.Partitions {
		switch {
		case p.Size <= 0:
			return fmt.Errorf("%w: partition %d is empty", ErrMalformed, p.Number)
		case p.Start%ls != 0 || p.Size%ls != 0:
			return fmt.Errorf("%w: partition %d is not aligned to %d-byte sectors", ErrMalformed, p.Number, ls)
		case p.Start < ls:
			return fmt.Errorf("%w: partition %d starts in sector 0, over the partition table", ErrMalformed, p.Number)
		case p.Start > diskEnd || p.Size > diskEnd-p.Start:
			return fmt.Errorf("%w: partition %d (bytes %d-%d) ends beyond the end of the %d-byte disk", ErrMalformed, p.Number, p.Start, p.End()-1, t.DiskSize)
		}
	}
	if t.Kind == KindGPT {
		return noOverlap(t.dataAreas(), "")
	}
	return t.validateMBR()
}

// validateMBR checks the MBR-specific nesting: primary entries (containers
// included) are disjoint, logical partitions lie in a container, and no
// data area overlaps an EBR.
func (t *Table) validateMBR() error {
	var primaries []area
	for _, p := range t.Partitions {
		if p.Number < firstLogical {
			primaries = append(primaries, partArea(p))
		}
	}
	if err := noOverlap(primaries, "primary "); err != nil {
		return err
	}
	for _, p := range t.Partitions {
		if p.Number >= firstLogical && !t.inContainer(p) {
			return fmt.Errorf("%w: logical partition %d (bytes %d-%d) lies outside every extended partition", ErrMalformed, p.Number, p.Start, p.End()-1)
		}
	}
	areas := t.dataAreas()
	for _, off := range t.EBRs {
		areas = append(areas, area{fmt.Sprintf("the EBR at byte %d", off), Extent{off, ls64(t)}})
	}
	return noOverlap(areas, "")
}

func ls64(t *Table) int64 { return int64(t.LogicalSector) }

func (t *Table) inContainer(p Partition) bool {
	for _, c := range t.Partitions {
		if c.IsContainer() && c.Number < firstLogical && p.Start >= c.Start && p.End() <= c.End() {
			return true
		}
	}
	return false
}

// area is a named extent, for overlap messages.
type area struct {
	what string
	Extent
}

func partArea(p Partition) area {
	return area{fmt.Sprintf("partition %d", p.Number), Extent{p.Start, p.Size}}
}

// dataAreas returns the partitions that hold data (not containers).
func (t *Table) dataAreas() []area {
	var as []area
	for _, p := range t.Partitions {
		if !p.IsContainer() {
			as = append(as, partArea(p))
		}
	}
	return as
}

// noOverlap reports the first pair of areas that share a byte.
func noOverlap(as []area, kind string) error {
	as = slices.Clone(as)
	slices.SortFunc(as, func(a, b area) int { return cmp.Compare(a.Off, b.Off) })
	for i := 1; i < len(as); i++ {
		a, b := as[i-1], as[i]
		if b.Off < a.End() {
			return fmt.Errorf("%w: %s%s (bytes %d-%d) overlaps %s%s (bytes %d-%d)",
				ErrMalformed, kind, a.what, a.Off, a.End()-1, kind, b.what, b.Off, b.End()-1)
		}
	}
	return nil
}
