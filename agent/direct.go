package agent

import (
	"errors"
	"syscall"

	"bes/store"
	"bes/store/ec"
)

// Large files are restored with O_DIRECT: on the file systems appliances
// restore to, buffered writes into fresh page-cache pages cost more kernel
// CPU than everything else a restore does, while direct writes run at disk
// speed. Direct I/O needs block-aligned offsets, lengths and memory, and
// content-defined chunks are not aligned, so each chunk writes its fully
// covered blocks at once and parks its unaligned edges in per-file partial
// blocks that are written when the neighbouring chunk fills them.
const (
	blockSize = ec.DirectAlign
	directMin = 1 << 20 // files at least this big are written with O_DIRECT
)

type partialBlock struct {
	buf     []byte // blockSize, aligned
	covered int
}

func newDirectBufs() *store.FreeList[*[]byte] {
	return store.NewFreeList(4, func() *[]byte { b := ec.AlignedBuf(4<<20 + 2*blockSize); return &b })
}

// blockEnd is where block idx ends inside a file of the given size.
func blockEnd(idx, size int64) int64 { return min((idx+1)*blockSize, size) }

// writeDirect writes one chunk at off of an O_DIRECT file; caller holds
// fs.mu. Zero chunks write nothing (the file is pre-sized: holes).
func (r *restorer) writeDirect(fs *fileState, off int64, data []byte, zero bool) error {
	size := fs.meta.Size
	end := off + int64(len(data))
	first, last := off/blockSize, (end-1)/blockSize
	m0, m1 := first, last+1 // blocks fully covered by this chunk: [m0, m1)
	if off%blockSize != 0 {
		m0++
	}
	if end < blockEnd(last, size) {
		m1--
	}
	if m1 > m0 && !zero {
		start, stop := m0*blockSize, min(m1*blockSize, end)
		nb := int((m1 - m0) * blockSize) // the file's last block is padded, truncated at the end
		bp := r.dbufs.Get()
		if cap(*bp) < nb {
			*bp = ec.AlignedBuf(nb)
		}
		buf := (*bp)[:nb]
		n := copy(buf, data[start-off:stop-off])
		clear(buf[n:])
		r.writeAsync(fs, bp, buf, start)
	}
	if first < m0 || first >= m1 {
		if err := r.addPartial(fs, first, off, data, zero); err != nil {
			return err
		}
	}
	if last != first && (last < m0 || last >= m1) {
		return r.addPartial(fs, last, off, data, zero)
	}
	return nil
}

// asyncWrites bounds the direct writes in flight: the worker that decoded
// a chunk goes on decoding the next while the disk takes this one.
const asyncWrites = 4

// writeAsync writes buf at off of fs's file in the background and then
// returns bp to the free list. closeFile waits for a file's writes and
// reports their first error.
func (r *restorer) writeAsync(fs *fileState, bp *[]byte, buf []byte, off int64) {
	r.aw <- struct{}{}
	fs.inflight.Add(1)
	f := fs.f
	go func() {
		defer func() { <-r.aw }()
		defer fs.inflight.Done()
		_, err := f.WriteAt(buf, off)
		r.dbufs.Put(bp)
		if err != nil {
			fs.aerr.CompareAndSwap(nil, &err)
		}
	}()
}

// addPartial copies the part of a chunk that falls into block idx and
// writes the block once all of it is known.
func (r *restorer) addPartial(fs *fileState, idx, off int64, data []byte, zero bool) error {
	size := fs.meta.Size
	end := off + int64(len(data))
	lo, hi := max(off, idx*blockSize), min(end, blockEnd(idx, size))
	if lo >= hi {
		return nil
	}
	if fs.partial == nil {
		fs.partial = map[int64]*partialBlock{}
	}
	pb := fs.partial[idx]
	if pb == nil {
		pb = &partialBlock{buf: ec.AlignedBuf(blockSize)}
		fs.partial[idx] = pb
	}
	if !zero {
		copy(pb.buf[lo-idx*blockSize:], data[lo-off:hi-off])
	}
	pb.covered += int(hi - lo)
	if int64(pb.covered) < blockEnd(idx, size)-idx*blockSize {
		return nil
	}
	delete(fs.partial, idx)
	if allZero(pb.buf) {
		return nil
	}
	_, err := fs.f.WriteAt(pb.buf, idx*blockSize)
	return err
}

// finishDirect writes what is left of partial blocks (only after a damaged
// chunk) and cuts the padding of the last block.
func (r *restorer) finishDirect(fs *fileState) error {
	for idx, pb := range fs.partial {
		if _, err := fs.f.WriteAt(pb.buf, idx*blockSize); err != nil {
			return err
		}
	}
	fs.partial = nil
	if fs.meta.Size%blockSize != 0 {
		return fs.f.Truncate(fs.meta.Size)
	}
	return nil
}

// isDirectUnsupported tells whether opening with O_DIRECT failed because
// the file system does not do direct I/O (tmpfs, some FUSE file systems).
func isDirectUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP)
}
