package store

import (
	"context"
	"encoding/binary"

	"bes/store/crypt"
)

// idFilter is a Bloom filter over chunk IDs. A "no" is certain, a "maybe"
// is settled by the catalog, so a backup of mostly new data does not pay an
// index lookup (and the catalog's lock) per chunk. Chunk IDs are keyed
// hashes, so their bytes serve as the filter's hash values directly.
//
// Memory: 16 bits per chunk the repository held when the filter was built,
// plus room for a million more (2 MiB at the least); beyond its design size
// it only lets more lookups through. It is not safe for concurrent use (the
// Saver guards it with its dedup lock).
type idFilter struct {
	bits []uint64
	mask uint64
}

// filterAfterMisses is how many new chunks a Saver sees before it builds a
// filter: a re-backup of unchanged data never pays for building one.
const filterAfterMisses = 64

func newIDFilter(expected int64) *idFilter {
	n := uint64(1 << 24) // bits
	for n < uint64(expected+1<<20)*16 {
		n <<= 1
	}
	return &idFilter{bits: make([]uint64, n/64), mask: n - 1}
}

// probes are four bit positions taken from four 64-bit words of the ID.
func (f *idFilter) probe(id *crypt.ID, i int) uint64 {
	return binary.LittleEndian.Uint64(id[i*8:]) & f.mask
}

func (f *idFilter) add(id *crypt.ID) {
	for i := range 4 {
		b := f.probe(id, i)
		f.bits[b/64] |= 1 << (b % 64)
	}
}

func (f *idFilter) mayHave(id *crypt.ID) bool {
	for i := range 4 {
		b := f.probe(id, i)
		if f.bits[b/64]&(1<<(b%64)) == 0 {
			return false
		}
	}
	return true
}

// buildFilter loads every indexed chunk ID into a new filter.
func (r *Repo) buildFilter(ctx context.Context) (*idFilter, error) {
	n, err := r.cat.Count(ctx)
	if err != nil {
		return nil, err
	}
	f := newIDFilter(n)
	err = r.cat.ForEachID(ctx, func(raw [32]byte) {
		id := crypt.ID(raw)
		f.add(&id)
	})
	return f, err
}
