package usedmap

import (
	"errors"
	"fmt"
	"io"
)

// ErrUnrecognized means the partition does not carry the signature of the
// filesystem asked for.
var ErrUnrecognized = errors.New("filesystem not recognised")

// ErrUnsupported means the filesystem was recognised but uses a feature or
// is in a state whose allocation this package cannot reason about safely
// (for example an ext journal that needs recovery).
var ErrUnsupported = errors.New("filesystem feature or state not supported")

// ErrCorrupt means the filesystem was recognised but a field is out of
// range or inconsistent, so its allocation maps cannot be trusted.
var ErrCorrupt = errors.New("filesystem metadata inconsistent")

// Extent is a byte range inside the partition.
type Extent struct{ Off, Len int64 }

// End is the offset one past the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// Method names how a Result was derived.
type Method string

// The methods.
const (
	MethodExt      Method = "ext-bitmap"
	MethodFAT      Method = "fat-table"
	MethodZeroScan Method = "zero-scan"
)

// Result is the used map of one partition.
type Result struct {
	Method Method
	// FS is "ext2", "ext3", "ext4", "fat12", "fat16" or "fat32"; "" for a
	// zero-scan.
	FS string
	// BlockSize is the filesystem's allocation unit in bytes: the ext block
	// size (the cluster size with bigalloc) or the FAT cluster size; 0 for a
	// zero-scan. Data extents are whole units.
	BlockSize int64
	// Used holds the used byte ranges: sorted, non-overlapping, merged
	// (no two touch), inside [0, size).
	Used      []Extent
	UsedBytes int64
	// SuspectGroups counts ext block groups whose bitmap failed its
	// checksum and that were therefore taken as wholly used.
	SuspectGroups int
	// Refused is, for a zero-scan that Detect chose after recognising a
	// filesystem, why that filesystem's map was not used. Nil otherwise.
	Refused error
}

// Detect recognises ext2/3/4 and FAT12/16/32 and returns their used
// extents. For anything else, and for a recognised filesystem that Ext or
// FAT refuse, it returns a zero-scan Result whose Used covers the whole
// partition (the caller then drops all-zero chunks while reading), with FS
// "" and the refusal in Refused. Only read errors are returned as errors.
func Detect(r io.ReaderAt, size int64) (*Result, error) {
	if size < 0 {
		return nil, fmt.Errorf("usedmap: negative partition size %d", size)
	}
	ext, extErr := Ext(r, size)
	fat, fatErr := FAT(r, size)
	for _, err := range []error{extErr, fatErr} {
		if err != nil && !isFormatErr(err) {
			return nil, err
		}
	}
	switch {
	case extErr == nil && fatErr == nil:
		return zeroScan(size, fmt.Errorf("usedmap: both an ext superblock (%s) and a FAT boot sector (%s) found: %w", ext.FS, fat.FS, ErrUnsupported)), nil
	case extErr == nil:
		return ext, nil
	case fatErr == nil:
		return fat, nil
	}
	var refused error
	if !errors.Is(extErr, ErrUnrecognized) {
		refused = extErr
	} else if !errors.Is(fatErr, ErrUnrecognized) {
		refused = fatErr
	}
	return zeroScan(size, refused), nil
}

// isFormatErr reports whether err says something about the filesystem's
// contents rather than about reading them.
func isFormatErr(err error) bool {
	return errors.Is(err, ErrUnrecognized) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt)
}

func zeroScan(size int64, refused error) *Result {
	res := &Result{Method: MethodZeroScan, Refused: refused}
	if size > 0 {
		res.Used = []Extent{{0, size}}
		res.UsedBytes = size
	}
	return res
}

// readAt reads exactly len(p) bytes at off, which must lie inside
// [0, size); what is beyond is the caller's bounds error, not a read error.
func readAt(r io.ReaderAt, p []byte, off, size int64) error {
	if off < 0 || off > size || int64(len(p)) > size-off {
		return fmt.Errorf("read of %d bytes at %d beyond the partition end %d: %w", len(p), off, size, ErrCorrupt)
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at %d: %w", len(p), off, err)
}

func finish(res *Result, used []Extent) *Result {
	res.Used = used
	res.UsedBytes = 0
	for _, e := range used {
		res.UsedBytes += e.Len
	}
	return res
}
