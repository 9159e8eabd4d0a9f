package fsread

import (
	"encoding/binary"
	"fmt"
)

// extDirectBlocks is the number of direct block pointers in i_block; words
// 12, 13 and 14 point to the single, double and triple indirect blocks.
const extDirectBlocks = 12

// blockMapLookup maps logical block lblk through the ext2/ext3 block map of
// in. A zero pointer at any level is a hole covering everything below it.
// The returned run extends over consecutive pointers of the same pointer
// block that are physically contiguous (or all zero).
func (x *ExtFS) blockMapLookup(in *extInode, lblk uint64) (blockRun, error) {
	ib := in.block()
	if lblk < extDirectBlocks {
		return x.ptrRun(in, ib[:extDirectBlocks*4], lblk)
	}
	lblk -= extDirectBlocks
	ppb := uint64(x.sb.blockSize / 4)
	span := ppb // blocks covered by the tree of this level
	for level := 1; level <= 3; level++ {
		if lblk < span {
			root := uint64(binary.LittleEndian.Uint32(ib[(extDirectBlocks-1+level)*4:]))
			return x.indirect(in, root, level, lblk, span)
		}
		lblk -= span
		span *= ppb
	}
	return blockRun{}, corruptf(blockMapObject(in), "logical block beyond the triple indirect block")
}

// indirect descends level pointer blocks starting at blk, whose tree
// covers span logical blocks; lblk is relative to that tree.
func (x *ExtFS) indirect(in *extInode, blk uint64, level int, lblk, span uint64) (blockRun, error) {
	ppb := uint64(x.sb.blockSize / 4)
	for ; level > 0; level-- {
		if blk == 0 {
			return blockRun{zero: true, count: span - lblk}, nil
		}
		b, err := x.block(blk)
		if err != nil {
			return blockRun{}, fmt.Errorf("%s: %w", blockMapObject(in), err)
		}
		span /= ppb
		idx := lblk / span
		lblk %= span
		if level == 1 {
			return x.ptrRun(in, b, idx)
		}
		blk = uint64(binary.LittleEndian.Uint32(b[idx*4:]))
	}
	return blockRun{}, corruptf(blockMapObject(in), "block map level %d", level)
}

// blockMapObject names the block map of in in errors (built only then).
func blockMapObject(in *extInode) string { return "block map of " + in.name() }

// ptrRun returns the run starting at pointer idx of ptrs (little-endian
// 32-bit block numbers).
func (x *ExtFS) ptrRun(in *extInode, ptrs []byte, idx uint64) (blockRun, error) {
	le := binary.LittleEndian
	n := uint64(len(ptrs) / 4)
	first := uint64(le.Uint32(ptrs[idx*4:]))
	count := uint64(1)
	if first == 0 {
		for idx+count < n && le.Uint32(ptrs[(idx+count)*4:]) == 0 {
			count++
		}
		return blockRun{zero: true, count: count}, nil
	}
	for idx+count < n && uint64(le.Uint32(ptrs[(idx+count)*4:])) == first+count {
		count++
	}
	if err := x.checkRun(in, first, count); err != nil {
		return blockRun{}, err
	}
	return blockRun{phys: first, count: count}, nil
}
