package fsread

import (
	"encoding/binary"
	"io"
	"strings"
)

const (
	fatBootSize   = 512
	fatDirentSize = 32
	// FAT12 has fewer than 4085 clusters, FAT16 fewer than 65525 (the
	// Microsoft FAT specification's rule, by cluster count only).
	fat12MaxClusters = 4084
	fat16MaxClusters = 65524
	fat32MaxClusters = 0x0FFFFFF5 - 2
)

// fatGeom is the validated layout of a FAT volume, in bytes from the start
// of the image.
type fatGeom struct {
	kind        int // 12, 16 or 32
	clusterSize int64
	fatOffset   int64 // the FAT in use
	rootOffset  int64 // FAT12/16 fixed root directory
	rootSize    int64
	rootCluster uint32 // FAT32 root directory chain
	dataOffset  int64  // cluster 2
	clusters    uint32 // valid cluster numbers are 2..clusters+1
	label       string
}

// isFAT reports whether the boot sector looks like a FAT BIOS parameter
// block: a jump instruction and sane sector, cluster, reserved and FAT
// counts. Deeper checks are OpenFAT's.
func isFAT(r io.ReaderAt, size int64) bool {
	b := make([]byte, fatBootSize)
	if readFull(r, size, b, 0) != nil {
		return false
	}
	le := binary.LittleEndian
	bps := le.Uint16(b[11:])
	spc := b[13]
	return (b[0] == 0xEB || b[0] == 0xE9) &&
		(bps == 512 || bps == 1024 || bps == 2048 || bps == 4096) &&
		spc != 0 && spc&(spc-1) == 0 && le.Uint16(b[14:]) >= 1 && b[16] >= 1
}

// parseFATBoot validates the BPB b (512 bytes) for an image of size bytes.
func parseFATBoot(b []byte, size int64) (*fatGeom, error) {
	le := binary.LittleEndian
	bad := func(format string, args ...any) error { return corruptf("FAT boot sector", format, args...) }
	bps := int64(le.Uint16(b[11:]))
	spc := int64(b[13])
	reserved := int64(le.Uint16(b[14:]))
	numFATs := int64(b[16])
	rootEntries := int64(le.Uint16(b[17:]))
	totalSectors := int64(le.Uint16(b[19:]))
	if totalSectors == 0 {
		totalSectors = int64(le.Uint32(b[32:]))
	}
	fatSectors := int64(le.Uint16(b[22:]))
	if fatSectors == 0 {
		fatSectors = int64(le.Uint32(b[36:]))
	}
	if bps != 512 && bps != 1024 && bps != 2048 && bps != 4096 {
		return nil, bad("bytes per sector %d", bps)
	}
	if spc == 0 || spc&(spc-1) != 0 || reserved == 0 || numFATs == 0 || fatSectors == 0 {
		return nil, bad("sectors per cluster %d, reserved %d, FATs %d, FAT sectors %d", spc, reserved, numFATs, fatSectors)
	}
	if totalSectors > size/bps {
		return nil, bad("volume has %d sectors of %d bytes but the image is only %d bytes (truncated image?)", totalSectors, bps, size)
	}
	rootSectors := (rootEntries*fatDirentSize + bps - 1) / bps
	meta := reserved + numFATs*fatSectors + rootSectors
	if meta >= totalSectors {
		return nil, bad("%d metadata sectors leave no data area in %d sectors", meta, totalSectors)
	}
	g := &fatGeom{
		clusterSize: spc * bps,
		fatOffset:   reserved * bps,
		rootOffset:  (reserved + numFATs*fatSectors) * bps,
		rootSize:    rootEntries * fatDirentSize,
		dataOffset:  meta * bps,
	}
	n := (totalSectors - meta) / spc
	switch {
	case n < 1:
		return nil, bad("no data clusters")
	case n <= fat12MaxClusters:
		g.kind = 12
	case n <= fat16MaxClusters:
		g.kind = 16
	case n <= fat32MaxClusters:
		g.kind = 32
	default:
		return nil, bad("%d clusters", n)
	}
	g.clusters = uint32(n)
	if need := (int64(g.clusters) + 2) * int64(g.kind) / 8; fatSectors*bps < need {
		return nil, bad("FAT of %d bytes cannot hold %d clusters", fatSectors*bps, g.clusters)
	}
	if err := g.parseKind(b, rootEntries, fatSectors*bps, numFATs); err != nil {
		return nil, err
	}
	return g, nil
}

// parseKind reads the FAT12/16 or FAT32 specific fields.
func (g *fatGeom) parseKind(b []byte, rootEntries, fatBytes, numFATs int64) error {
	le := binary.LittleEndian
	labelOff := 43
	if g.kind == 32 {
		labelOff = 71
		if rootEntries != 0 {
			return corruptf("FAT boot sector", "FAT32 volume with %d fixed root entries", rootEntries)
		}
		g.rootCluster = le.Uint32(b[44:]) & 0x0FFFFFFF
		if !g.validCluster(g.rootCluster) {
			return corruptf("FAT boot sector", "root directory cluster %d out of range 2..%d", g.rootCluster, g.clusters+1)
		}
		if flags := le.Uint16(b[40:]); flags&0x80 != 0 { // mirroring off: one active FAT
			active := int64(flags & 0xF)
			if active >= numFATs {
				return corruptf("FAT boot sector", "active FAT %d of %d", active, numFATs)
			}
			g.fatOffset += active * fatBytes
		}
	} else if rootEntries == 0 {
		return corruptf("FAT boot sector", "FAT%d volume without root directory entries", g.kind)
	}
	if b[labelOff-5] == 0x29 { // extended boot signature: serial and label present
		label := strings.TrimRight(string(b[labelOff:labelOff+11]), " \x00")
		if label != "NO NAME" {
			g.label = decodeOEM([]byte(label))
		}
	}
	return nil
}

func (g *fatGeom) validCluster(c uint32) bool { return c >= 2 && c-2 < g.clusters }

// clusterOffset is the byte offset of cluster c (valid).
func (g *fatGeom) clusterOffset(c uint32) int64 {
	return g.dataOffset + int64(c-2)*g.clusterSize
}
