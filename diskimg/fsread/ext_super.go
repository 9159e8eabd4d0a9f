package fsread

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strings"
)

const (
	extSuperOffset = 1024
	extSuperSize   = 1024
	extMagic       = 0xEF53
	extRootIno     = 2
	extMaxLogBlock = 6 // 64 KiB blocks
)

// Feature flags (s_feature_compat, _incompat, _ro_compat).
const (
	compatHasJournal  = 0x4
	compatSparseSuper = 0x200 // sparse_super2

	incompatCompression = 0x1
	incompatFiletype    = 0x2
	incompatRecover     = 0x4
	incompatJournalDev  = 0x8
	incompatMetaBG      = 0x10
	incompatExtents     = 0x40
	incompat64bit       = 0x80
	incompatMMP         = 0x100
	incompatFlexBG      = 0x200
	incompatEAInode     = 0x400
	incompatDirData     = 0x1000
	incompatCsumSeed    = 0x2000
	incompatLargedir    = 0x4000
	incompatInlineData  = 0x8000
	incompatEncrypt     = 0x10000
	incompatCasefold    = 0x20000

	roSparseSuper = 0x1
	roLargeFile   = 0x2
	roBtreeDir    = 0x4
	roHugeFile    = 0x8
	roBigalloc    = 0x200
)

// incompatRead lists the INCOMPAT features this package reads. Anything
// else set in s_feature_incompat is refused, named.
const incompatRead = incompatFiletype | incompatRecover | incompatMetaBG | incompatExtents |
	incompat64bit | incompatMMP | incompatFlexBG | incompatEAInode | incompatCsumSeed |
	incompatLargedir | incompatInlineData | incompatEncrypt | incompatCasefold

var incompatNames = map[uint32]string{
	incompatCompression: "compression", incompatFiletype: "filetype", incompatRecover: "needs_recovery",
	incompatJournalDev: "journal_dev", incompatMetaBG: "meta_bg", incompatExtents: "extent",
	incompat64bit: "64bit", incompatMMP: "mmp", incompatFlexBG: "flex_bg", incompatEAInode: "ea_inode",
	incompatDirData: "dirdata", incompatCsumSeed: "metadata_csum_seed", incompatLargedir: "large_dir",
	incompatInlineData: "inline_data", incompatEncrypt: "encrypt", incompatCasefold: "casefold",
}

var compatNames = map[uint32]string{
	0x1: "dir_prealloc", 0x2: "imagic_inodes", 0x4: "has_journal", 0x8: "ext_attr",
	0x10: "resize_inode", 0x20: "dir_index", 0x40: "lazy_bg", 0x100: "exclude_bitmap",
	0x200: "sparse_super2", 0x400: "fast_commit", 0x800: "stable_inodes", 0x1000: "orphan_file",
}

var roCompatNames = map[uint32]string{
	0x1: "sparse_super", 0x2: "large_file", 0x4: "btree_dir", 0x8: "huge_file", 0x10: "uninit_bg",
	0x20: "dir_nlink", 0x40: "extra_isize", 0x80: "has_snapshot", 0x100: "quota", 0x200: "bigalloc",
	0x400: "metadata_csum", 0x800: "replica", 0x1000: "read-only", 0x2000: "project",
	0x4000: "shared_blocks", 0x8000: "verity", 0x10000: "orphan_present",
}

// featureNames lists the names of the bits set in v, unknown bits as hex.
func featureNames(v uint32, names map[uint32]string) []string {
	var out []string
	for bit := uint32(1); bit != 0; bit <<= 1 {
		if v&bit == 0 {
			continue
		}
		if n, ok := names[bit]; ok {
			out = append(out, n)
		} else {
			out = append(out, fmt.Sprintf("unknown(%#x)", bit))
		}
	}
	return out
}

// extSuper holds the superblock fields the reader needs, validated.
type extSuper struct {
	blockSize      int64
	clusterSize    int64
	blocksCount    uint64
	firstDataBlock uint64
	blocksPerGroup uint64
	inodesPerGroup uint64
	inodesCount    uint64
	inodeSize      int64
	descSize       int64
	groupCount     uint64
	firstMetaBG    uint64
	backupBGs      [2]uint64
	compat         uint32
	incompat       uint32
	roCompat       uint32
	label          string
}

func (s *extSuper) has(incompat uint32) bool { return s.incompat&incompat != 0 }

// isExt reports whether r carries the ext superblock magic.
func isExt(r io.ReaderAt, size int64) bool {
	var m [2]byte
	return readFull(r, size, m[:], extSuperOffset+0x38) == nil && binary.LittleEndian.Uint16(m[:]) == extMagic
}

// parseExtSuper validates the superblock b (1024 bytes) of an image of
// imageSize bytes.
func parseExtSuper(b []byte, imageSize int64) (*extSuper, error) {
	le := binary.LittleEndian
	bad := func(format string, args ...any) error { return corruptf("superblock", format, args...) }
	if le.Uint16(b[0x38:]) != extMagic {
		return nil, fmt.Errorf("%w: no ext superblock magic", ErrUnknownFS)
	}
	s := &extSuper{
		compat:   le.Uint32(b[0x5C:]),
		incompat: le.Uint32(b[0x60:]),
		roCompat: le.Uint32(b[0x64:]),
		label:    strings.TrimRight(string(b[0x78:0x88]), "\x00"),
	}
	if s.incompat&incompatJournalDev != 0 {
		return nil, &UnsupportedError{Object: "filesystem", Feature: "journal_dev (an external journal, not a filesystem)"}
	}
	if extra := s.incompat &^ incompatRead; extra != 0 {
		return nil, &UnsupportedError{Object: "filesystem", Feature: strings.Join(featureNames(extra, incompatNames), ",")}
	}
	logBlock := le.Uint32(b[0x18:])
	if logBlock > extMaxLogBlock {
		return nil, bad("block size 1024<<%d is larger than 64 KiB", logBlock)
	}
	s.blockSize = 1024 << logBlock
	s.clusterSize = s.blockSize
	if s.roCompat&roBigalloc != 0 {
		logCluster := le.Uint32(b[0x1C:])
		if logCluster < logBlock || logCluster > logBlock+16 {
			return nil, bad("cluster size 1024<<%d does not fit block size 1024<<%d", logCluster, logBlock)
		}
		s.clusterSize = 1024 << logCluster
	}
	s.blocksCount = uint64(le.Uint32(b[0x4:]))
	if s.has(incompat64bit) {
		s.blocksCount |= uint64(le.Uint32(b[0x150:])) << 32
	}
	s.firstDataBlock = uint64(le.Uint32(b[0x14:]))
	s.blocksPerGroup = uint64(le.Uint32(b[0x20:]))
	s.inodesPerGroup = uint64(le.Uint32(b[0x28:]))
	s.inodesCount = uint64(le.Uint32(b[0x0:]))
	if s.blocksCount <= s.firstDataBlock || s.firstDataBlock > 1 {
		return nil, bad("blocks count %d, first data block %d", s.blocksCount, s.firstDataBlock)
	}
	if s.blocksCount > uint64(imageSize)/uint64(s.blockSize) {
		return nil, bad("filesystem has %d blocks of %d bytes but the image is only %d bytes (truncated image?)",
			s.blocksCount, s.blockSize, imageSize)
	}
	if s.blocksPerGroup == 0 || s.blocksPerGroup > uint64(8*s.blockSize)*uint64(s.clusterSize/s.blockSize) {
		return nil, bad("blocks per group %d", s.blocksPerGroup)
	}
	if s.inodesPerGroup == 0 || s.inodesPerGroup > uint64(8*s.blockSize) {
		return nil, bad("inodes per group %d", s.inodesPerGroup)
	}
	s.groupCount = (s.blocksCount - s.firstDataBlock + s.blocksPerGroup - 1) / s.blocksPerGroup
	if s.inodesCount < extRootIno || s.inodesCount > s.groupCount*s.inodesPerGroup {
		return nil, bad("inodes count %d for %d groups of %d", s.inodesCount, s.groupCount, s.inodesPerGroup)
	}
	if err := s.parseSizes(b); err != nil {
		return nil, err
	}
	s.firstMetaBG = uint64(le.Uint32(b[0x104:]))
	s.backupBGs = [2]uint64{uint64(le.Uint32(b[0x24C:])), uint64(le.Uint32(b[0x250:]))}
	return s, nil
}

// parseSizes reads and checks the inode and group descriptor sizes.
func (s *extSuper) parseSizes(b []byte) error {
	le := binary.LittleEndian
	s.inodeSize = 128
	if le.Uint32(b[0x4C:]) >= 1 { // dynamic revision
		s.inodeSize = int64(le.Uint16(b[0x58:]))
	}
	if s.inodeSize < 128 || s.inodeSize > s.blockSize || s.inodeSize&(s.inodeSize-1) != 0 {
		return corruptf("superblock", "inode size %d", s.inodeSize)
	}
	s.descSize = 32
	if s.has(incompat64bit) {
		s.descSize = int64(le.Uint16(b[0xFE:]))
		if s.descSize < 64 || s.descSize > 1024 || s.descSize&(s.descSize-1) != 0 {
			return corruptf("superblock", "group descriptor size %d", s.descSize)
		}
	}
	return nil
}

// typeName follows blkid: ext4 when a feature beyond ext3's is used, ext3
// when there is a journal, else ext2.
func (s *extSuper) typeName() string {
	const ext3Incompat = incompatFiletype | incompatRecover | incompatMetaBG
	const ext3RO = roSparseSuper | roLargeFile | roBtreeDir
	switch {
	case s.incompat&^ext3Incompat != 0 || s.roCompat&^ext3RO != 0:
		return "ext4"
	case s.compat&compatHasJournal != 0:
		return "ext3"
	default:
		return "ext2"
	}
}

// features names every feature flag that is set, sorted.
func (s *extSuper) features() []string {
	out := featureNames(s.compat, compatNames)
	out = append(out, featureNames(s.incompat, incompatNames)...)
	out = append(out, featureNames(s.roCompat, roCompatNames)...)
	sort.Strings(out)
	return out
}

// groupHasSuper reports whether block group g holds a superblock backup
// (and, without meta_bg, a copy of the group descriptor table).
func (s *extSuper) groupHasSuper(g uint64) bool {
	if g == 0 {
		return true
	}
	if s.compat&compatSparseSuper != 0 {
		return g == s.backupBGs[0] || g == s.backupBGs[1]
	}
	if g <= 1 || s.roCompat&roSparseSuper == 0 {
		return true
	}
	if g&1 == 0 {
		return false
	}
	return isPowerOf(g, 3) || isPowerOf(g, 5) || isPowerOf(g, 7)
}

func isPowerOf(n, base uint64) bool {
	p := base
	for p < n {
		p *= base
	}
	return p == n
}

// descLocation returns the block holding the descriptor of group g and the
// byte offset inside it.
func (s *extSuper) descLocation(g uint64) (block uint64, off int64) {
	perBlock := uint64(s.blockSize / s.descSize)
	metaGroup := g / perBlock
	off = int64(g%perBlock) * s.descSize
	sbBlock := uint64(extSuperOffset / s.blockSize) // 1 for 1 KiB blocks, else 0
	if !s.has(incompatMetaBG) || metaGroup < s.firstMetaBG {
		return sbBlock + 1 + metaGroup, off
	}
	first := metaGroup * perBlock
	block = s.firstDataBlock + first*s.blocksPerGroup
	if s.groupHasSuper(first) {
		block++
	}
	if s.blockSize == 1024 && metaGroup == 0 && s.firstDataBlock == 0 {
		block++
	}
	return block, off
}
