package fsread

import (
	"encoding/binary"
	"fmt"
)

const (
	extentMagic       = 0xF30A
	extentMaxDepth    = 5 // as Linux
	extentEntrySize   = 12
	extentInitMaxLen  = 1 << 15
	extentLogicalSpan = 1 << 32
)

// extentHeader is the 12-byte header of an extent tree node.
type extentHeader struct {
	entries int
	depth   int
}

// parseExtentHeader checks the node b (i_block or a whole tree block):
// magic, entry counts within the node's capacity, depth limit. wantDepth
// is the depth the parent implies, or 0 for the root (any depth up to 5).
func parseExtentHeader(b []byte, wantDepth int, in *extInode) (extentHeader, error) {
	le := binary.LittleEndian
	object := func() string { return "extent tree of " + in.name() }
	if le.Uint16(b[0:]) != extentMagic {
		return extentHeader{}, corruptf(object(), "extent header magic %#04x", le.Uint16(b[0:]))
	}
	h := extentHeader{entries: int(le.Uint16(b[2:])), depth: int(le.Uint16(b[6:]))}
	capacity := (len(b) - extentEntrySize) / extentEntrySize
	if maxEntries := int(le.Uint16(b[4:])); maxEntries > capacity || h.entries > maxEntries {
		return extentHeader{}, corruptf(object(), "extent node with %d of max %d entries (room for %d)", h.entries, maxEntries, capacity)
	}
	if h.depth > extentMaxDepth || (wantDepth > 0 && h.depth != wantDepth) {
		return extentHeader{}, corruptf(object(), "extent node depth %d (want %d, max %d)", h.depth, wantDepth, extentMaxDepth)
	}
	return h, nil
}

// extentLookup maps logical block lblk through the extent tree of in. The
// tree is walked from the root for every call; each call maps a whole run
// (up to 32768 blocks), and the nodes come from the metadata cache.
func (x *ExtFS) extentLookup(in *extInode, lblk uint64) (blockRun, error) {
	if lblk >= extentLogicalSpan {
		return blockRun{}, corruptf(extentObject(in), "logical block %d beyond 2^32", lblk)
	}
	node := in.block()
	bound := uint64(extentLogicalSpan) // first logical block not covered by node
	want := 0
	for {
		h, err := parseExtentHeader(node, want, in)
		if err != nil {
			return blockRun{}, err
		}
		if h.depth == 0 {
			return x.extentLeaf(in, node, h.entries, lblk, bound)
		}
		child, next, err := extentIndex(node, h.entries, lblk, bound, in)
		if err != nil {
			return blockRun{}, err
		}
		if child == 0 {
			return blockRun{zero: true, count: next - lblk}, nil
		}
		if child >= x.sb.blocksCount {
			return blockRun{}, corruptf(extentObject(in), "index points to block %d beyond the filesystem", child)
		}
		if node, err = x.block(child); err != nil {
			return blockRun{}, fmt.Errorf("%s: %w", extentObject(in), err)
		}
		bound, want = next, h.depth-1
	}
}

// extentIndex picks the index entry of node covering lblk. It returns the
// child block and the first logical block after the child's range. A zero
// child means lblk lies before the first entry: a hole up to next.
func extentIndex(node []byte, entries int, lblk, bound uint64, in *extInode) (child, next uint64, err error) {
	le := binary.LittleEndian
	if entries == 0 {
		return 0, bound, nil
	}
	pick := -1
	prev := int64(-1)
	for i := 0; i < entries; i++ {
		e := node[extentEntrySize*(i+1):]
		start := uint64(le.Uint32(e[0:]))
		if int64(start) <= prev || start >= bound {
			return 0, 0, corruptf(extentObject(in), "index entries out of order at %d", start)
		}
		prev = int64(start)
		if start > lblk {
			if pick < 0 {
				return 0, start, nil
			}
			next = start
			break
		}
		pick = i
		next = bound
	}
	e := node[extentEntrySize*(pick+1):]
	child = uint64(le.Uint32(e[4:])) | uint64(le.Uint16(e[8:]))<<32
	if child == 0 {
		return 0, 0, corruptf(extentObject(in), "index entry points to block 0")
	}
	return child, next, nil
}

// extentLeaf maps lblk in a leaf node: inside an extent, or a hole up to
// the next extent (or bound).
func (x *ExtFS) extentLeaf(in *extInode, node []byte, entries int, lblk, bound uint64) (blockRun, error) {
	le := binary.LittleEndian
	end := uint64(0) // end of the previous extent
	for i := 0; i < entries; i++ {
		e := node[extentEntrySize*(i+1):]
		start := uint64(le.Uint32(e[0:]))
		length := uint64(le.Uint16(e[4:]))
		unwritten := length > extentInitMaxLen
		if unwritten {
			length -= extentInitMaxLen
		}
		phys := uint64(le.Uint32(e[8:])) | uint64(le.Uint16(e[6:]))<<32
		if length == 0 || start < end || start+length > bound {
			return blockRun{}, corruptf(extentObject(in), "extent %d+%d overlaps or leaves its node's range", start, length)
		}
		end = start + length
		if lblk < start {
			return blockRun{zero: true, count: start - lblk}, nil
		}
		if lblk < end {
			if err := x.checkRun(in, phys, length); err != nil {
				return blockRun{}, err
			}
			return blockRun{phys: phys + (lblk - start), count: end - lblk, zero: unwritten}, nil
		}
	}
	return blockRun{zero: true, count: bound - lblk}, nil
}

// extentDepth returns the depth of the extent tree of in (0 when the
// extents fit in the inode); tests use it to prove index nodes were read.
func (x *ExtFS) extentDepth(in *extInode) (int, error) {
	h, err := parseExtentHeader(in.block(), 0, in)
	return h.depth, err
}

// extentObject names the extent tree of in in errors (built only then).
func extentObject(in *extInode) string { return "extent tree of " + in.name() }
