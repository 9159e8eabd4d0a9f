package fsread

import (
	"fmt"
)

// blockRun maps a run of logical blocks: count blocks starting at the
// looked-up one are at physical blocks phys, phys+1, ..., or read as zeros
// when zero is set (a hole, or an unwritten extent).
type blockRun struct {
	phys  uint64
	count uint64
	zero  bool
}

// mapFunc maps logical block lblk of one inode.
type mapFunc func(lblk uint64) (blockRun, error)

// dataReader returns a function reading the data of inode in (file,
// directory or slow symlink): inline data, an extent tree or a block map.
// The function is safe for concurrent use and expects off+len(p) <= size.
func (x *ExtFS) dataReader(in *extInode) (func(p []byte, off int64) error, error) {
	if in.flags&inodeEncrypt != 0 {
		return nil, &UnsupportedError{Object: in.name(), Feature: "encrypt"}
	}
	if in.flags&inodeInlineData != 0 {
		data, err := x.inlineData(in)
		if err != nil {
			return nil, err
		}
		return func(p []byte, off int64) error {
			if off < 0 || off+int64(len(p)) > int64(len(data)) {
				return corruptf(in.name(), "read at %d beyond inline data of %d bytes", off, len(data))
			}
			copy(p, data[off:])
			return nil
		}, nil
	}
	m, err := x.mapper(in)
	if err != nil {
		return nil, err
	}
	return func(p []byte, off int64) error { return x.readMapped(in, m, p, off) }, nil
}

// mapper returns the block mapping function of a non-inline inode after
// checking that its size is addressable.
func (x *ExtFS) mapper(in *extInode) (mapFunc, error) {
	bs := uint64(x.sb.blockSize)
	nblocks := (in.size + bs - 1) / bs
	if in.flags&inodeExtents != 0 {
		if nblocks > 1<<32 {
			return nil, corruptf(in.name(), "size %d is beyond the 2^32 blocks an extent tree maps", in.size)
		}
		if _, err := parseExtentHeader(in.block(), 0, in); err != nil {
			return nil, err
		}
		return func(lblk uint64) (blockRun, error) { return x.extentLookup(in, lblk) }, nil
	}
	ppb := bs / 4
	if nblocks > 12+ppb+ppb*ppb+ppb*ppb*ppb {
		return nil, corruptf(in.name(), "size %d is beyond what a block map addresses", in.size)
	}
	return func(lblk uint64) (blockRun, error) { return x.blockMapLookup(in, lblk) }, nil
}

// readMapped fills p with the data at byte offset off, one mapped run at a
// time: runs on disk are read straight into p with one ReadAt each, holes
// and unwritten extents are zero-filled.
func (x *ExtFS) readMapped(in *extInode, m mapFunc, p []byte, off int64) error {
	bs := x.sb.blockSize
	for len(p) > 0 {
		lblk := uint64(off / bs)
		within := off % bs
		run, err := m(lblk)
		if err != nil {
			return err
		}
		if run.count == 0 {
			return corruptf(in.name(), "empty mapping of block %d", lblk)
		}
		avail := uint64(bs) * run.count // may be large, compare in uint64
		n := len(p)
		if uint64(n)+uint64(within) > avail {
			n = int(avail - uint64(within))
		}
		if run.zero {
			clear(p[:n])
		} else {
			if err := readFull(x.r, x.size, p[:n], int64(run.phys)*bs+within); err != nil {
				return fmt.Errorf("%s: data block %d: %w", in.name(), run.phys, err)
			}
		}
		p = p[n:]
		off += int64(n)
	}
	return nil
}

// checkRun validates a physical run against the filesystem size.
func (x *ExtFS) checkRun(in *extInode, phys, count uint64) error {
	if phys == 0 || phys >= x.sb.blocksCount || count > x.sb.blocksCount-phys {
		return corruptf(in.name(), "blocks %d+%d are outside the filesystem (%d blocks)", phys, count, x.sb.blocksCount)
	}
	return nil
}
