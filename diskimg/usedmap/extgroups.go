package usedmap

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Group descriptor fields and flags.
const (
	gdBlockBitmapLo = 0x00
	gdInodeBitmapLo = 0x04
	gdInodeTableLo  = 0x08
	gdFlags         = 0x12
	gdBlockCsumLo   = 0x18
	gdBlockBitmapHi = 0x20
	gdInodeBitmapHi = 0x24
	gdInodeTableHi  = 0x28
	gdBlockCsumHi   = 0x38
	gdChecksum      = 0x1E

	bgBlockUninit = 0x2
)

// groupDesc is the part of a group descriptor this package uses, with
// locations already checked to lie inside the filesystem.
type groupDesc struct {
	blockBitmap, inodeBitmap, inodeTable uint64
	flags                                uint16
	bitmapCsum                           uint32
}

// descBlockLoc is where descriptor block i lives.
func (g *extGeom) descBlockLoc(i uint64) uint64 {
	if !g.metaBG || i < g.firstMetaBG {
		return g.superBlock() + 1 + i
	}
	return g.metaDescLoc(i * g.descPerBlk)
}

// metaDescLoc is the meta_bg descriptor block copy in group bg.
func (g *extGeom) metaDescLoc(bg uint64) uint64 {
	if bg == 0 {
		return g.superBlock() + 1
	}
	loc := g.groupStart(bg)
	if g.hasSuper(bg) {
		loc++
	}
	return loc
}

func readGroupDescs(r io.ReaderAt, size int64, g *extGeom) ([]groupDesc, error) {
	descs := make([]groupDesc, 0, g.groups)
	buf := make([]byte, g.blockSize)
	for i := uint64(0); i < g.descBlocks; i++ {
		loc := g.descBlockLoc(i)
		if loc >= g.blocks {
			return nil, fmt.Errorf("descriptor block %d at block %d beyond the filesystem end %d: %w", i, loc, g.blocks, ErrCorrupt)
		}
		if err := readAt(r, buf, int64(loc)*g.blockSize, size); err != nil {
			return nil, fmt.Errorf("descriptor block %d: %w", i, err)
		}
		for j := uint64(0); j < g.descPerBlk && uint64(len(descs)) < g.groups; j++ {
			d, err := g.parseDesc(buf[j*uint64(g.descSize):][:g.descSize], uint64(len(descs)))
			if err != nil {
				return nil, err
			}
			descs = append(descs, d)
		}
	}
	return descs, nil
}

func (g *extGeom) parseDesc(b []byte, group uint64) (groupDesc, error) {
	le := binary.LittleEndian
	if g.csum {
		// The kernel trusts a group's flags (BLOCK_UNINIT) only when its
		// descriptor checksum holds, and mounts nothing else.
		if want, got := g.descCsum(b, group), le.Uint16(b[gdChecksum:]); want != got {
			return groupDesc{}, fmt.Errorf("group %d: descriptor checksum %#04x, computed %#04x: %w", group, got, want, ErrCorrupt)
		}
	}
	d := groupDesc{
		blockBitmap: uint64(le.Uint32(b[gdBlockBitmapLo:])),
		inodeBitmap: uint64(le.Uint32(b[gdInodeBitmapLo:])),
		inodeTable:  uint64(le.Uint32(b[gdInodeTableLo:])),
		flags:       le.Uint16(b[gdFlags:]),
		bitmapCsum:  uint32(le.Uint16(b[gdBlockCsumLo:])),
	}
	if g.descSize >= 64 {
		d.blockBitmap |= uint64(le.Uint32(b[gdBlockBitmapHi:])) << 32
		d.inodeBitmap |= uint64(le.Uint32(b[gdInodeBitmapHi:])) << 32
		d.inodeTable |= uint64(le.Uint32(b[gdInodeTableHi:])) << 32
		d.bitmapCsum |= uint32(le.Uint16(b[gdBlockCsumHi:])) << 16
	}
	for _, loc := range []struct {
		what  string
		block uint64
		n     uint64
	}{{"block bitmap", d.blockBitmap, 1}, {"inode bitmap", d.inodeBitmap, 1}, {"inode table", d.inodeTable, g.itableBlks}} {
		if loc.block < g.firstData || loc.block >= g.blocks || g.blocks-loc.block < loc.n {
			return d, fmt.Errorf("group %d: %s at block %d (+%d) outside the filesystem [%d, %d): %w",
				group, loc.what, loc.block, loc.n, g.firstData, g.blocks, ErrCorrupt)
		}
	}
	return d, nil
}

// metadataBlocks lists, in blocks and normalized, what is used whatever
// the bitmaps say: the boot block and primary superblock, every
// superblock and descriptor copy (with the reserved descriptor blocks),
// and every group's bitmaps and inode table. They are all the blocks a
// BLOCK_UNINIT group can hold, wherever flex_bg put them.
func metadataBlocks(g *extGeom, descs []groupDesc) []Extent {
	list := make([]Extent, 0, 4*len(descs)+2)
	add := func(start, n uint64) {
		if start >= g.blocks {
			return
		}
		n = min(n, g.blocks-start)
		list = append(list, Extent{int64(start), int64(n)})
	}
	add(0, g.superBlock()+1)
	for i := range g.groups {
		if g.hasSuper(i) {
			start := g.groupStart(i)
			if i == 0 {
				start = g.superBlock()
			}
			end := min(start+1+g.oldDescBlocks(), g.groupStart(i)+g.perGroup)
			add(start, end-start)
		}
		if g.metaBG && i/g.descPerBlk >= g.firstMetaBG {
			if k := i % g.descPerBlk; k == 0 || k == 1 || k == g.descPerBlk-1 {
				add(g.metaDescLoc(i), 1)
			}
		}
		d := descs[i]
		add(d.blockBitmap, 1)
		add(d.inodeBitmap, 1)
		add(d.inodeTable, g.itableBlks)
	}
	return normalize(list)
}

// extUsedBlocks returns the used blocks (normalized, in blocks): the
// metadata layout plus every set bit of each initialised group's bitmap.
func extUsedBlocks(r io.ReaderAt, size int64, g *extGeom, descs []groupDesc, res *Result) ([]Extent, error) {
	var fromBitmaps []Extent
	buf := make([]byte, g.blockSize)
	ratio := uint64(g.ratio)
	for i := range g.groups {
		d := descs[i]
		if g.csum && d.flags&bgBlockUninit != 0 {
			continue // no block but metadata in use; metadataBlocks has those
		}
		start := g.groupStart(i)
		blocks := min(g.perGroup, g.blocks-start)
		nbits := int((blocks + ratio - 1) / ratio)
		if err := readAt(r, buf, int64(d.blockBitmap)*g.blockSize, size); err != nil {
			return nil, fmt.Errorf("group %d block bitmap at block %d: %w", i, d.blockBitmap, err)
		}
		if g.metaCsum && !g.bitmapCsumOK(buf, d.bitmapCsum) {
			res.SuspectGroups++
			fromBitmaps = appendRun(fromBitmaps, int64(start), int64(blocks))
			continue
		}
		setRuns(buf, nbits, func(s, n int) {
			off := start + uint64(s)*ratio
			end := min(off+uint64(n)*ratio, g.blocks)
			fromBitmaps = appendRun(fromBitmaps, int64(off), int64(end-off))
		})
	}
	return union(fromBitmaps, metadataBlocks(g, descs)), nil
}

// bitmapCsumOK checks a block bitmap against its metadata_csum checksum
// (32 bits with 64-byte descriptors, else the low 16).
func (g *extGeom) bitmapCsumOK(bitmap []byte, stored uint32) bool {
	sum := crc32c(g.csumSeed, bitmap[:g.clusPerGrp/8])
	if g.descSize < 64 {
		sum &= 0xFFFF
	}
	return sum == stored
}

// descCsum is a group descriptor's checksum as the kernel computes it:
// crc32c (low 16 bits) with metadata_csum, else crc16 over the UUID; the
// group number and the descriptor less its checksum field follow.
func (g *extGeom) descCsum(b []byte, group uint64) uint16 {
	var num [4]byte
	binary.LittleEndian.PutUint32(num[:], uint32(group))
	if g.metaCsum {
		c := crc32c(g.csumSeed, num[:])
		c = crc32c(c, b[:gdChecksum])
		c = crc32c(c, []byte{0, 0})
		return uint16(crc32c(c, b[gdChecksum+2:]))
	}
	c := crc16(0xFFFF, g.uuid[:])
	c = crc16(c, num[:])
	c = crc16(c, b[:gdChecksum])
	return crc16(c, b[gdChecksum+2:])
}

// crc16 is the kernel's crc16 (polynomial 0x8005, reflected; no final
// inversion).
func crc16(crc uint16, p []byte) uint16 {
	for _, v := range p {
		crc ^= uint16(v)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}
