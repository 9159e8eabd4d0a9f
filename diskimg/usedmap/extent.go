package usedmap

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// appendRun appends [off, off+n) to a list sorted by offset, merging it
// into the last extent when they overlap or touch. off must not be below
// the last extent's offset.
func appendRun(list []Extent, off, n int64) []Extent {
	if n <= 0 {
		return list
	}
	if k := len(list) - 1; k >= 0 && off <= list[k].End() {
		if end := off + n; end > list[k].End() {
			list[k].Len = end - list[k].Off
		}
		return list
	}
	return append(list, Extent{off, n})
}

// normalize sorts and merges extents in place.
func normalize(list []Extent) []Extent {
	slices.SortFunc(list, func(a, b Extent) int {
		switch {
		case a.Off < b.Off:
			return -1
		case a.Off > b.Off:
			return 1
		}
		return 0
	})
	out := list[:0]
	for _, e := range list {
		out = appendRun(out, e.Off, e.Len)
	}
	return out
}

// union merges two normalized lists into a new normalized list.
func union(a, b []Extent) []Extent {
	out := make([]Extent, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var e Extent
		if len(b) == 0 || (len(a) > 0 && a[0].Off <= b[0].Off) {
			e, a = a[0], a[1:]
		} else {
			e, b = b[0], b[1:]
		}
		out = appendRun(out, e.Off, e.Len)
	}
	return out
}

// scale turns a normalized list in units of unit bytes into byte extents
// clamped to [0, size).
func scale(list []Extent, unit, size int64) []Extent {
	out := list[:0]
	for _, e := range list {
		off, end := e.Off*unit, e.End()*unit
		if end > size {
			end = size
		}
		if off >= end {
			continue
		}
		out = appendRun(out, off, end-off)
	}
	return out
}

// setRuns calls fn for each run of set bits among the first nbits bits of
// bm (bit i is bit i%8 of byte i/8, as ext bitmaps store them), in order.
// len(bm) must be at least (nbits+7)/8.
func setRuns(bm []byte, nbits int, fn func(start, n int)) {
	start := -1
	word := func(i int) uint64 { // 64 bits starting at bit i (i%64 == 0)
		if i/8+8 <= len(bm) {
			return binary.LittleEndian.Uint64(bm[i/8:])
		}
		var w [8]byte
		copy(w[:], bm[i/8:])
		return binary.LittleEndian.Uint64(w[:])
	}
	for i := 0; i < nbits; i += 64 {
		w := word(i)
		if rem := nbits - i; rem < 64 {
			w &= 1<<uint(rem) - 1
		}
		pos := 0
		for pos < 64 {
			if start < 0 { // looking for a set bit
				rest := w >> uint(pos)
				if rest == 0 {
					break
				}
				pos += bits.TrailingZeros64(rest)
				start = i + pos
			} else { // looking for a clear bit
				rest := ^w >> uint(pos)
				if rest == 0 {
					break
				}
				pos += bits.TrailingZeros64(rest)
				fn(start, i+pos-start)
				start = -1
			}
		}
	}
	if start >= 0 {
		fn(start, nbits-start)
	}
}
