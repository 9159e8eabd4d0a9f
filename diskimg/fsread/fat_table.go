package fsread

import (
	"encoding/binary"
	"fmt"
)

// fatEntry returns the raw FAT entry of cluster c (12, 16 or 28 bits).
func (f *FATFS) fatEntry(c uint32) (uint32, error) {
	le := binary.LittleEndian
	switch f.g.kind {
	case 12:
		b, err := f.cache.slice(f.g.fatOffset+int64(c)+int64(c/2), 2)
		if err != nil {
			return 0, err
		}
		v := uint32(le.Uint16(b))
		if c&1 != 0 {
			return v >> 4, nil
		}
		return v & 0xFFF, nil
	case 16:
		b, err := f.cache.slice(f.g.fatOffset+2*int64(c), 2)
		if err != nil {
			return 0, err
		}
		return uint32(le.Uint16(b)), nil
	default:
		b, err := f.cache.slice(f.g.fatOffset+4*int64(c), 4)
		if err != nil {
			return 0, err
		}
		return le.Uint32(b) & 0x0FFFFFFF, nil
	}
}

// next returns the cluster after c in its chain, or end at the end-of-chain
// mark. Free, bad and out-of-range values are corruption.
func (f *FATFS) next(c uint32) (n uint32, end bool, err error) {
	v, err := f.fatEntry(c)
	if err != nil {
		return 0, false, fmt.Errorf("FAT entry of cluster %d: %w", c, err)
	}
	eoc := uint32(0x0FFFFFF8)
	switch f.g.kind {
	case 12:
		eoc = 0xFF8
	case 16:
		eoc = 0xFFF8
	}
	switch {
	case v >= eoc:
		return 0, true, nil
	case v == eoc-1:
		return 0, false, corruptf(fmt.Sprintf("FAT entry of cluster %d", c), "chain runs into a bad cluster")
	case !f.g.validCluster(v):
		return 0, false, corruptf(fmt.Sprintf("FAT entry of cluster %d", c), "next cluster %#x is out of range 2..%d", v, f.g.clusters+1)
	}
	return v, false, nil
}

// chainMarkEvery is the spacing of the positions a chain remembers, so a
// backward seek (random ReadAt) restarts at most that many steps back
// instead of at the first cluster. Memory: 4 bytes per chainMarkEvery
// clusters walked.
const chainMarkEvery = 1024

// chain is a cursor over a cluster chain. It detects loops with Brent's
// algorithm in constant memory, so walking a looping chain ends with an
// error after at most a few times the chain's distinct length.
type chain struct {
	f      *FATFS
	first  uint32
	object string

	idx   uint64 // position of cur in the chain
	cur   uint32
	marks []uint32 // marks[k] is the cluster at position k*chainMarkEvery

	mark  uint32 // Brent: saved cluster, and steps since it was saved
	power uint64
	lam   uint64
}

func (f *FATFS) newChain(first uint32, object string) (*chain, error) {
	if !f.g.validCluster(first) {
		return nil, corruptf(object, "first cluster %d out of range 2..%d", first, f.g.clusters+1)
	}
	c := &chain{f: f, first: first, object: object, marks: []uint32{first}}
	c.restart(0)
	return c, nil
}

// restart moves the cursor back to remembered position k*chainMarkEvery.
func (c *chain) restart(k uint64) {
	c.idx, c.cur = k*chainMarkEvery, c.marks[k]
	c.mark, c.power, c.lam = c.cur, 1, 0
}

// step moves to the next cluster; end reports the end of the chain.
func (c *chain) step() (end bool, err error) {
	n, end, err := c.f.next(c.cur)
	if err != nil {
		return false, fmt.Errorf("%s: %w", c.object, err)
	}
	if end {
		return true, nil
	}
	c.cur = n
	c.idx++
	c.lam++
	if c.cur == c.mark || c.idx > uint64(c.f.g.clusters) {
		return false, corruptf(c.object, "cluster chain loops (at cluster %d)", c.cur)
	}
	if c.lam == c.power {
		c.mark, c.power, c.lam = c.cur, c.power*2, 0
	}
	if c.idx%chainMarkEvery == 0 && c.idx/chainMarkEvery == uint64(len(c.marks)) {
		c.marks = append(c.marks, c.cur)
	}
	return false, nil
}

// seek positions the cursor on the idx'th cluster of the chain.
func (c *chain) seek(idx uint64) error {
	if idx < c.idx {
		c.restart(min(idx/chainMarkEvery, uint64(len(c.marks)-1)))
	}
	for c.idx < idx {
		end, err := c.step()
		if err != nil {
			return err
		}
		if end {
			return corruptf(c.object, "cluster chain ends after %d clusters, %d needed", c.idx+1, idx+1)
		}
	}
	return nil
}
