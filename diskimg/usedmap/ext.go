package usedmap

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Superblock layout (offsets inside the 1024-byte superblock at byte 1024).
const (
	extSuperOff  = 1024
	extSuperSize = 1024

	sbInodesCount    = 0x00
	sbBlocksCountLo  = 0x04
	sbFirstDataBlock = 0x14
	sbLogBlockSize   = 0x18
	sbLogClusterSize = 0x1C
	sbBlocksPerGroup = 0x20
	sbClusPerGroup   = 0x24
	sbInodesPerGroup = 0x28
	sbMagic          = 0x38
	sbState          = 0x3A
	sbRevLevel       = 0x4C
	sbInodeSize      = 0x58
	sbFeatureCompat  = 0x5C
	sbFeatureIncompt = 0x60
	sbFeatureROCompt = 0x64
	sbUUID           = 0x68
	sbReservedGDT    = 0xCE
	sbJournalInum    = 0xE0
	sbDescSize       = 0xFE
	sbFirstMetaBG    = 0x104
	sbBlocksCountHi  = 0x150
	sbBackupBGs      = 0x24C
	sbChecksumSeed   = 0x270
	sbChecksum       = 0x3FC

	extMagic = 0xEF53

	stateValid  = 0x1
	stateErrors = 0x2
)

// Feature bits this package knows. Compat features never change where
// blocks are, so unknown ones are ignored; unknown incompat and ro_compat
// features are refused.
const (
	compatHasJournal   = 0x4
	compatSparseSuper2 = 0x200

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64Bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargeDir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	// incompatOK are the incompat features that leave the block bitmaps
	// authoritative (or whose layout rules this package implements).
	incompatOK = incompatFiletype | incompatMetaBG | incompatExtents | incompat64Bit |
		incompatMMP | incompatFlexBG | incompatEAInode | incompatDirData | incompatCsumSeed |
		incompatLargeDir | incompatInlineData | incompatEncrypt | incompatCasefold
	// incompatExt4 are the ones that make a filesystem "ext4" rather than ext2/3.
	incompatExt4 = incompatMetaBG | incompatExtents | incompat64Bit | incompatFlexBG |
		incompatEAInode | incompatCsumSeed | incompatLargeDir | incompatInlineData |
		incompatEncrypt | incompatCasefold | incompatMMP

	roSparseSuper   = 0x1
	roLargeFile     = 0x2
	roBtreeDir      = 0x4
	roHugeFile      = 0x8
	roGDTCsum       = 0x10
	roDirNlink      = 0x20
	roExtraIsize    = 0x40
	roQuota         = 0x100
	roBigalloc      = 0x200
	roMetadataCsum  = 0x400
	roReadonly      = 0x1000
	roProject       = 0x2000
	roSharedBlocks  = 0x4000
	roVerity        = 0x8000
	roOrphanPresent = 0x10000

	roOK = roSparseSuper | roLargeFile | roBtreeDir | roHugeFile | roGDTCsum | roDirNlink |
		roExtraIsize | roQuota | roBigalloc | roMetadataCsum | roReadonly | roProject |
		roSharedBlocks | roVerity | roOrphanPresent
	roExt4 = roHugeFile | roGDTCsum | roDirNlink | roExtraIsize | roBigalloc | roMetadataCsum |
		roQuota | roProject | roVerity | roOrphanPresent
)

// extGeom is a validated ext superblock: every field is in range and every
// derived quantity fits the partition.
type extGeom struct {
	fs          string
	blockSize   int64  // bytes
	ratio       int64  // blocks per cluster (1 without bigalloc)
	blocks      uint64 // s_blocks_count
	firstData   uint64 // s_first_data_block
	perGroup    uint64 // blocks per group
	clusPerGrp  uint64 // clusters per group = bits in a block bitmap
	groups      uint64
	descSize    int64
	descPerBlk  uint64
	descBlocks  uint64 // blocks of group descriptors
	itableBlks  uint64 // inode table blocks per group
	reservedGDT uint64
	firstMetaBG uint64 // in descriptor blocks; only with meta_bg
	metaBG      bool
	sparse      bool
	sparse2     bool
	backupBGs   [2]uint64
	csum        bool   // group descriptor checksums (gdt_csum or metadata_csum): uninit flags valid
	metaCsum    bool   // metadata_csum: bitmaps carry crc32c
	csumSeed    uint32 // crc32c seed for metadata_csum
	uuid        [16]byte
}

// crc32c is the kernel's crc32c_le: no pre- or post-inversion. (The
// standard library builds the Castagnoli table once and caches it.)
func crc32c(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, crc32.MakeTable(crc32.Castagnoli), p)
}

// Ext returns the used map of an ext2, ext3 or ext4 filesystem.
func Ext(r io.ReaderAt, size int64) (*Result, error) {
	g, err := readExtSuper(r, size)
	if err != nil {
		return nil, fmt.Errorf("ext: %w", err)
	}
	descs, err := readGroupDescs(r, size, g)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.fs, err)
	}
	res := &Result{Method: MethodExt, FS: g.fs, BlockSize: g.blockSize * g.ratio}
	used, err := extUsedBlocks(r, size, g, descs, res)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", g.fs, err)
	}
	// Round to clusters: bitmap runs are already whole clusters; metadata
	// extents are widened so every extent covers whole allocation units.
	used = toUnits(used, uint64(g.ratio))
	return finish(res, scale(used, res.BlockSize, size)), nil
}

// toUnits turns a normalized list of block extents into cluster extents.
func toUnits(list []Extent, ratio uint64) []Extent {
	if ratio == 1 {
		return list
	}
	r := int64(ratio)
	out := list[:0]
	for _, e := range list {
		off := e.Off / r
		end := (e.End() + r - 1) / r
		out = appendRun(out, off, end-off)
	}
	return out
}

func readExtSuper(r io.ReaderAt, size int64) (*extGeom, error) {
	if size < extSuperOff+extSuperSize {
		return nil, fmt.Errorf("partition of %d bytes too small for a superblock: %w", size, ErrUnrecognized)
	}
	sb := make([]byte, extSuperSize)
	if err := readAt(r, sb, extSuperOff, size); err != nil {
		return nil, fmt.Errorf("superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(sb[sbMagic:]) != extMagic {
		return nil, fmt.Errorf("no superblock magic at byte 1024: %w", ErrUnrecognized)
	}
	g := &extGeom{}
	if err := g.parseFeatures(sb); err != nil {
		return nil, err
	}
	if err := g.parseSizes(sb, size); err != nil {
		return nil, err
	}
	if err := g.parseGroups(sb); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *extGeom) parseFeatures(sb []byte) error {
	le := binary.LittleEndian
	rev := le.Uint32(sb[sbRevLevel:])
	compat, incompat, ro := le.Uint32(sb[sbFeatureCompat:]), le.Uint32(sb[sbFeatureIncompt:]), le.Uint32(sb[sbFeatureROCompt:])
	switch {
	case rev > 1:
		return fmt.Errorf("revision %d: %w", rev, ErrUnsupported)
	case rev == 0 && (compat|incompat|ro) != 0:
		return fmt.Errorf("revision 0 with feature flags %#x/%#x/%#x: %w", compat, incompat, ro, ErrCorrupt)
	}
	if ro&roMetadataCsum != 0 {
		if want, got := crc32c(^uint32(0), sb[:sbChecksum]), le.Uint32(sb[sbChecksum:]); want != got {
			return fmt.Errorf("superblock checksum %#08x, computed %#08x: %w", got, want, ErrCorrupt)
		}
	}
	switch {
	case incompat&incompatRecover != 0:
		return fmt.Errorf("journal needs recovery (filesystem mounted or not cleanly unmounted; bitmaps may be stale): %w", ErrUnsupported)
	case incompat&incompatJournalDev != 0:
		return fmt.Errorf("this is an external journal device, not a filesystem: %w", ErrUnsupported)
	case incompat&incompatCompression != 0:
		return fmt.Errorf("compression feature: %w", ErrUnsupported)
	case incompat&^incompatOK != 0:
		return fmt.Errorf("unknown incompat features %#x: %w", incompat&^incompatOK, ErrUnsupported)
	case ro&^roOK != 0:
		return fmt.Errorf("unknown ro_compat features %#x: %w", ro&^roOK, ErrUnsupported)
	case ro&roMetadataCsum != 0 && ro&roGDTCsum != 0:
		return fmt.Errorf("both metadata_csum and gdt_csum set: %w", ErrCorrupt)
	}
	state := le.Uint16(sb[sbState:])
	switch {
	case state&stateErrors != 0:
		return fmt.Errorf("filesystem marked as having errors (run e2fsck): %w", ErrUnsupported)
	case state&stateValid == 0:
		return fmt.Errorf("filesystem not cleanly unmounted (mounted, or needs e2fsck): %w", ErrUnsupported)
	}
	g.fs = "ext2"
	if compat&compatHasJournal != 0 {
		g.fs = "ext3"
	}
	if incompat&incompatExt4 != 0 || ro&roExt4 != 0 {
		g.fs = "ext4"
	}
	g.metaBG = incompat&incompatMetaBG != 0
	g.sparse = ro&roSparseSuper != 0
	g.sparse2 = compat&compatSparseSuper2 != 0
	g.csum = ro&(roGDTCsum|roMetadataCsum) != 0
	g.metaCsum = ro&roMetadataCsum != 0
	if ro&roBigalloc != 0 {
		g.ratio = 0 // set from the cluster size in parseSizes
	} else {
		g.ratio = 1
	}
	g.descSize = 32
	if incompat&incompat64Bit != 0 {
		g.descSize = int64(le.Uint16(sb[sbDescSize:]))
		if g.descSize < 64 || g.descSize > 1024 || g.descSize&(g.descSize-1) != 0 {
			return fmt.Errorf("group descriptor size %d: %w", g.descSize, ErrCorrupt)
		}
	}
	copy(g.uuid[:], sb[sbUUID:sbUUID+16])
	if g.metaCsum {
		if incompat&incompatCsumSeed != 0 {
			g.csumSeed = le.Uint32(sb[sbChecksumSeed:])
		} else {
			g.csumSeed = crc32c(^uint32(0), sb[sbUUID:sbUUID+16])
		}
	}
	return nil
}

func (g *extGeom) parseSizes(sb []byte, size int64) error {
	le := binary.LittleEndian
	logBS := le.Uint32(sb[sbLogBlockSize:])
	if logBS > 6 {
		return fmt.Errorf("block size 2^(10+%d): %w", logBS, ErrCorrupt)
	}
	g.blockSize = 1024 << logBS
	if g.ratio == 0 {
		logCS := le.Uint32(sb[sbLogClusterSize:])
		if logCS < logBS || logCS-logBS > 16 {
			return fmt.Errorf("bigalloc cluster size 2^(10+%d) with block size %d: %w", logCS, g.blockSize, ErrCorrupt)
		}
		g.ratio = 1 << (logCS - logBS)
	}
	g.blocks = uint64(le.Uint32(sb[sbBlocksCountLo:]))
	if g.descSize >= 64 {
		g.blocks |= uint64(le.Uint32(sb[sbBlocksCountHi:])) << 32
	}
	if g.blocks > uint64(size)/uint64(g.blockSize) {
		return fmt.Errorf("filesystem of %d blocks of %d bytes is larger than the partition (%d bytes): %w",
			g.blocks, g.blockSize, size, ErrCorrupt)
	}
	g.firstData = uint64(le.Uint32(sb[sbFirstDataBlock:]))
	wantFirst := uint64(0)
	if g.blockSize == 1024 && g.ratio == 1 {
		wantFirst = 1
	}
	if g.firstData != wantFirst {
		return fmt.Errorf("first data block %d with block size %d (want %d): %w", g.firstData, g.blockSize, wantFirst, ErrCorrupt)
	}
	if g.blocks <= g.firstData+1 {
		return fmt.Errorf("filesystem of %d blocks: %w", g.blocks, ErrCorrupt)
	}
	return nil
}

func (g *extGeom) parseGroups(sb []byte) error {
	le := binary.LittleEndian
	bitsPerBlock := uint64(g.blockSize) * 8
	g.perGroup = uint64(le.Uint32(sb[sbBlocksPerGroup:]))
	g.clusPerGrp = g.perGroup
	if g.ratio > 1 {
		g.clusPerGrp = uint64(le.Uint32(sb[sbClusPerGroup:]))
		if g.clusPerGrp == 0 || g.clusPerGrp > bitsPerBlock || g.perGroup != g.clusPerGrp*uint64(g.ratio) {
			return fmt.Errorf("%d clusters and %d blocks per group, %d blocks per cluster: %w",
				g.clusPerGrp, g.perGroup, g.ratio, ErrCorrupt)
		}
	} else if g.perGroup == 0 || g.perGroup > bitsPerBlock {
		return fmt.Errorf("%d blocks per group with block size %d: %w", g.perGroup, g.blockSize, ErrCorrupt)
	}
	if g.clusPerGrp%8 != 0 {
		return fmt.Errorf("%d clusters per group, not a multiple of 8: %w", g.clusPerGrp, ErrCorrupt)
	}
	g.groups = (g.blocks - g.firstData + g.perGroup - 1) / g.perGroup
	inodes, perGroup := uint64(le.Uint32(sb[sbInodesCount:])), uint64(le.Uint32(sb[sbInodesPerGroup:]))
	if perGroup == 0 || perGroup > bitsPerBlock || g.groups > inodes || g.groups*perGroup != inodes {
		return fmt.Errorf("%d inodes, %d per group in %d groups: %w", inodes, perGroup, g.groups, ErrCorrupt)
	}
	inodeSize := uint64(128)
	if le.Uint32(sb[sbRevLevel:]) >= 1 {
		inodeSize = uint64(le.Uint16(sb[sbInodeSize:]))
		if inodeSize < 128 || inodeSize > uint64(g.blockSize) || inodeSize&(inodeSize-1) != 0 {
			return fmt.Errorf("inode size %d: %w", inodeSize, ErrCorrupt)
		}
	}
	g.itableBlks = (perGroup*inodeSize + uint64(g.blockSize) - 1) / uint64(g.blockSize)
	g.descPerBlk = uint64(g.blockSize / g.descSize)
	g.descBlocks = (g.groups + g.descPerBlk - 1) / g.descPerBlk
	g.reservedGDT = uint64(le.Uint16(sb[sbReservedGDT:]))
	if g.metaBG {
		g.firstMetaBG = uint64(le.Uint32(sb[sbFirstMetaBG:]))
		if g.firstMetaBG > g.descBlocks {
			return fmt.Errorf("first meta_bg %d beyond %d descriptor blocks: %w", g.firstMetaBG, g.descBlocks, ErrCorrupt)
		}
	}
	if g.sparse2 {
		g.backupBGs = [2]uint64{uint64(le.Uint32(sb[sbBackupBGs:])), uint64(le.Uint32(sb[sbBackupBGs+4:]))}
	}
	// The primary superblock, descriptors and reserved descriptors must
	// fit in group 0.
	if g.superBlock()+1+g.oldDescBlocks() > g.firstData+g.perGroup || g.superBlock()+1+g.oldDescBlocks() > g.blocks {
		return fmt.Errorf("%d descriptor and %d reserved blocks do not fit in group 0: %w", g.descBlocks, g.reservedGDT, ErrCorrupt)
	}
	return nil
}

// superBlock is the block holding the primary superblock.
func (g *extGeom) superBlock() uint64 { return extSuperOff / uint64(g.blockSize) }

// oldDescBlocks is the number of descriptor blocks (plus reserved ones)
// that follow each superblock copy outside the meta_bg layout.
func (g *extGeom) oldDescBlocks() uint64 {
	if g.metaBG {
		return g.firstMetaBG + g.reservedGDT
	}
	return g.descBlocks + g.reservedGDT
}

// groupStart is the first block of group i.
func (g *extGeom) groupStart(i uint64) uint64 { return g.firstData + i*g.perGroup }

// hasSuper reports whether group i holds a superblock copy.
func (g *extGeom) hasSuper(i uint64) bool {
	switch {
	case i == 0:
		return true
	case g.sparse2:
		return i == g.backupBGs[0] || i == g.backupBGs[1]
	case i == 1 || !g.sparse:
		return true
	case i%2 == 0:
		return false
	}
	return isPowerOf(i, 3) || isPowerOf(i, 5) || isPowerOf(i, 7)
}

func isPowerOf(n, base uint64) bool {
	for n > 1 && n%base == 0 {
		n /= base
	}
	return n == 1
}
