package usedmap

import (
	"encoding/binary"
	"fmt"
	"io"
)

// BPB offsets (Microsoft FAT specification, "BPB").
const (
	bpbBytsPerSec = 11
	bpbSecPerClus = 13
	bpbRsvdSecCnt = 14
	bpbNumFATs    = 16
	bpbRootEntCnt = 17
	bpbTotSec16   = 19
	bpbMedia      = 21
	bpbFATSz16    = 22
	bpbTotSec32   = 32
	bpbFATSz32    = 36
	bpbFSInfo     = 48
	bpbBkBootSec  = 50
	bpbSignature  = 510

	fat12MaxClusters = 4085  // fewer clusters than this: FAT12
	fat16MaxClusters = 65525 // fewer than this: FAT16, else FAT32
	fat32MaxClusters = 0x0FFFFFF5

	fatChunk = 64 << 10 // bytes of FAT read at a time
)

// fatGeom is a validated FAT boot sector, in sectors unless named bytes.
type fatGeom struct {
	fs          string
	bits        int // 12, 16 or 32
	sector      int64
	perCluster  int64
	reserved    int64
	numFATs     int64
	fatSize     int64 // sectors per FAT
	rootDirSecs int64
	total       int64
	clusters    int64 // count of data clusters (numbered 2..clusters+1)
	fsInfo      int64 // FAT32 FSInfo sector, 0 if none
	bkBoot      int64 // FAT32 backup boot sector, 0 if none
}

// firstData is the first sector of cluster 2.
func (g *fatGeom) firstData() int64 { return g.reserved + g.numFATs*g.fatSize + g.rootDirSecs }

// FAT returns the used map of a FAT12, FAT16 or FAT32 volume: the
// reserved region (boot sector, FSInfo, backup boot sector), every FAT
// copy, the fixed root directory of FAT12/16, and every cluster whose
// entry in any FAT copy is neither free nor marked bad. Data extents are
// whole clusters; the metadata regions are whole sectors.
func FAT(r io.ReaderAt, size int64) (*Result, error) {
	g, err := readFATBoot(r, size)
	if err != nil {
		return nil, fmt.Errorf("fat: %w", err)
	}
	meta := []Extent{{0, g.firstData() * g.sector}}
	for _, s := range []int64{g.fsInfo, g.bkBoot, g.bkBoot + 1, g.bkBoot + 2} {
		if s > 0 && s < g.total {
			meta = append(meta, Extent{s * g.sector, g.sector})
		}
	}
	// One bit per cluster number, set when any FAT copy marks it used:
	// a copy that disagrees with the others only adds clusters.
	inUse := make([]byte, (g.clusters+2+7)/8)
	for i := range g.numFATs {
		if err := markFATCopy(r, size, g, i, inUse); err != nil {
			return nil, fmt.Errorf("%s: FAT copy %d: %w", g.fs, i, err)
		}
	}
	used := normalize(meta)
	var data []Extent
	clusterBytes, dataOff := g.perCluster*g.sector, g.firstData()*g.sector
	setRuns(inUse, int(g.clusters+2), func(c, n int) {
		data = appendRun(data, dataOff+int64(c-2)*clusterBytes, int64(n)*clusterBytes)
	})
	used = union(used, data)
	res := &Result{Method: MethodFAT, FS: g.fs, BlockSize: g.perCluster * g.sector}
	return finish(res, scale(used, 1, size)), nil
}

func readFATBoot(r io.ReaderAt, size int64) (*fatGeom, error) {
	if size < 512 {
		return nil, fmt.Errorf("partition of %d bytes too small for a boot sector: %w", size, ErrUnrecognized)
	}
	b := make([]byte, 512)
	if err := readAt(r, b, 0, size); err != nil {
		return nil, fmt.Errorf("boot sector: %w", err)
	}
	le := binary.LittleEndian
	if b[bpbSignature] != 0x55 || b[bpbSignature+1] != 0xAA || (b[0] != 0xEB && b[0] != 0xE9) {
		return nil, fmt.Errorf("no boot sector signature: %w", ErrUnrecognized)
	}
	g := &fatGeom{
		sector:     int64(le.Uint16(b[bpbBytsPerSec:])),
		perCluster: int64(b[bpbSecPerClus]),
		reserved:   int64(le.Uint16(b[bpbRsvdSecCnt:])),
		numFATs:    int64(b[bpbNumFATs]),
		fatSize:    int64(le.Uint16(b[bpbFATSz16:])),
		total:      int64(le.Uint16(b[bpbTotSec16:])),
	}
	rootEnt := int64(le.Uint16(b[bpbRootEntCnt:]))
	media := b[bpbMedia]
	switch g.sector {
	case 512, 1024, 2048, 4096:
	default:
		return nil, fmt.Errorf("%d bytes per sector: %w", g.sector, ErrUnrecognized)
	}
	if g.perCluster == 0 || g.perCluster&(g.perCluster-1) != 0 || g.reserved == 0 || g.numFATs == 0 ||
		(media != 0xF0 && media < 0xF8) {
		return nil, fmt.Errorf("BPB not a FAT one (%d sectors per cluster, %d reserved, %d FATs, media %#x): %w",
			g.perCluster, g.reserved, g.numFATs, media, ErrUnrecognized)
	}
	fat32Layout := g.fatSize == 0
	if fat32Layout {
		g.fatSize = int64(le.Uint32(b[bpbFATSz32:]))
	}
	if g.total == 0 {
		g.total = int64(le.Uint32(b[bpbTotSec32:]))
	}
	g.rootDirSecs = (rootEnt*32 + g.sector - 1) / g.sector
	if err := g.classify(size, fat32Layout, rootEnt); err != nil {
		return nil, err
	}
	if g.bits == 32 {
		g.fsInfo = int64(le.Uint16(b[bpbFSInfo:]))
		g.bkBoot = int64(le.Uint16(b[bpbBkBootSec:]))
		if g.fsInfo == 0xFFFF {
			g.fsInfo = 0
		}
		if g.bkBoot == 0xFFFF {
			g.bkBoot = 0
		}
	}
	return g, nil
}

// classify checks the sizes and decides FAT12/16/32 by the count of
// clusters, as the specification says, refusing a BPB whose layout (FAT32
// has a zero 16-bit FAT size and no fixed root directory) disagrees.
func (g *fatGeom) classify(size int64, fat32Layout bool, rootEnt int64) error {
	if g.fatSize == 0 || g.total == 0 {
		return fmt.Errorf("FAT size %d sectors, %d total sectors: %w", g.fatSize, g.total, ErrCorrupt)
	}
	if g.total > size/g.sector {
		return fmt.Errorf("volume of %d sectors of %d bytes is larger than the partition (%d bytes): %w", g.total, g.sector, size, ErrCorrupt)
	}
	if g.firstData() >= g.total {
		return fmt.Errorf("data region starts at sector %d, volume has %d: %w", g.firstData(), g.total, ErrCorrupt)
	}
	g.clusters = (g.total - g.firstData()) / g.perCluster
	switch {
	case g.clusters < fat12MaxClusters:
		g.bits, g.fs = 12, "fat12"
	case g.clusters < fat16MaxClusters:
		g.bits, g.fs = 16, "fat16"
	default:
		g.bits, g.fs = 32, "fat32"
	}
	if (g.bits == 32) != fat32Layout || (g.bits == 32 && rootEnt != 0) {
		layout := "fat12/16"
		if fat32Layout {
			layout = "fat32"
		}
		return fmt.Errorf("%d clusters make it %s by the specification's count, but the BPB is laid out as %s (%d root entries): %w",
			g.clusters, g.fs, layout, rootEnt, ErrUnsupported)
	}
	if g.clusters == 0 || g.clusters > fat32MaxClusters {
		return fmt.Errorf("%d data clusters: %w", g.clusters, ErrCorrupt)
	}
	if need := ((g.clusters+2)*int64(g.bits) + 7) / 8; need > g.fatSize*g.sector {
		return fmt.Errorf("%s of %d sectors too small for %d clusters: %w", g.fs, g.fatSize, g.clusters, ErrCorrupt)
	}
	return nil
}

// markFATCopy sets in inUse the bit of every cluster (2 and up) that copy
// copyIdx of the FAT marks used: any entry but free and bad.
func markFATCopy(r io.ReaderAt, size int64, g *fatGeom, copyIdx int64, inUse []byte) error {
	fatOff := (g.reserved + copyIdx*g.fatSize) * g.sector
	last := g.clusters + 1 // highest cluster number
	// Entries per chunk: a multiple of 2 so FAT12 pairs never split.
	perChunk := int64(fatChunk * 8 / g.bits)
	buf := make([]byte, min(fatChunk, ((last+1)*int64(g.bits)+7)/8))
	for first := int64(0); first <= last; first += perChunk {
		n := min(perChunk, last+1-first)
		chunk := buf[:(n*int64(g.bits)+7)/8]
		if err := readAt(r, chunk, fatOff+first*int64(g.bits)/8, size); err != nil {
			return fmt.Errorf("entries %d-%d: %w", first, first+n-1, err)
		}
		for k := int64(0); k < n; k++ {
			// Skip free space 8 bytes at a time (FAT16/32 entries are
			// byte-aligned; FAT12 volumes are small).
			if per := int64(64 / g.bits); g.bits != 12 && k%per == 0 && k+per <= n &&
				binary.LittleEndian.Uint64(chunk[k*int64(g.bits)/8:]) == 0 {
				k += per - 1
				continue
			}
			if c := first + k; c >= 2 && fatEntryUsed(chunk, k, g.bits) {
				inUse[c/8] |= 1 << (c % 8)
			}
		}
	}
	return nil
}

// fatEntryUsed decodes entry k of a chunk that starts at an even entry.
func fatEntryUsed(chunk []byte, k int64, bits int) bool {
	var v uint32
	switch bits {
	case 12:
		w := uint32(binary.LittleEndian.Uint16(chunk[k+k/2:]))
		if k%2 == 1 {
			v = w >> 4
		} else {
			v = w & 0xFFF
		}
		return v != 0 && v != 0xFF7
	case 16:
		v = uint32(binary.LittleEndian.Uint16(chunk[2*k:]))
		return v != 0 && v != 0xFFF7
	}
	v = binary.LittleEndian.Uint32(chunk[4*k:]) & 0x0FFFFFFF
	return v != 0 && v != 0x0FFFFFF7
}
