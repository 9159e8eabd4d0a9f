// Package usedmap finds which byte ranges of a partition its filesystem
// uses, so a disk imager reads and stores only those (as partclone does).
//
// Detect looks at a partition (or a whole-disk filesystem) given as an
// io.ReaderAt of known size and returns a Result: the method used, the
// filesystem recognised, its allocation unit, and the used byte ranges as
// sorted, non-overlapping, merged Extents inside [0, size).
//
//   - Ext reads ext2/ext3/ext4 block (or bigalloc cluster) bitmaps.
//   - FAT reads the file allocation table of FAT12/FAT16/FAT32.
//   - Anything else, and any ext or FAT volume this package refuses to
//     reason about, becomes a zero-scan: the whole partition is "used" and
//     the caller drops all-zero chunks while reading.
//
// The invariant is conservative: a byte the filesystem needs to be restored
// intact (data, metadata, boot area, backups) is always inside Used. Marking
// a free block used only costs space; missing a used one loses data. So
// every number read from disk is bounds-checked before use, bitmaps that do
// not prove themselves (BLOCK_UNINIT groups, checksum mismatches) are
// replaced by the metadata layout or by the whole group, and states in which
// the on-disk bitmaps may be stale (ext journal needing recovery, an ext2
// volume not cleanly unmounted, an error state, features whose allocation
// rules are unknown) are refused with ErrUnsupported so the caller falls back
// to zero-scan. Malformed input yields an error wrapping ErrCorrupt, never a
// panic; memory use is bounded by the size of the partition's metadata.
//
// Errors: ErrUnrecognized (no signature of that filesystem), ErrUnsupported
// and ErrCorrupt (recognised but not trusted) make Detect fall back to a
// zero-scan and record why in Result.Refused; a read error is returned.
//
// The package imports nothing from this project and nothing outside the
// standard library. It keeps no state; all functions are safe for
// concurrent use if the io.ReaderAt is.
package usedmap
