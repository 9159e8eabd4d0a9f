package store

import (
	"context"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"bes/store/catalog"
	"bes/store/crypt"
)

// FetchOptions tunes Fetch. The zero value means the defaults.
type FetchOptions struct {
	Workers int // parallel readers; default GOMAXPROCS+1 (one waits for the disks)
	// Order, when set, gives each chunk a position in the output (a disk
	// offset, say); read units are then taken in the order of the first
	// position they serve, so the output is written roughly front to back
	// instead of in pack-name order.
	Order func(id crypt.ID) int64
}

// fetchSpan bounds the pack range one worker reads in one go: whole packs
// as work units leave one worker alone with the last pack at the end.
const fetchSpan = 4 << 20

// fetchAhead is how many rounds of units ahead of the workers the kernel
// is asked to read (fadvise WILLNEED), so that cold packs arrive before a
// worker needs them.
const fetchAhead = 4

// Fetch reads every chunk in want that the index knows, pack by pack in
// offset order with parallel workers and read-ahead, and hands each one
// (decrypted, decompressed and checked against its ID) to fn. fn and onErr
// are called concurrently from the workers; the data slice is valid only
// during the call. A chunk that cannot be read goes to onErr (which may
// return an error to stop everything). The IDs not in the index are
// returned without being passed to either function. This is the data road
// of every restore.
func Fetch[V any](ctx context.Context, r *Repo, want map[crypt.ID]V, o FetchOptions, fn BlobFunc, onErr func(catalog.Location, error) error) ([]crypt.ID, error) {
	byPack := map[string][]catalog.Location{}
	missing, err := LocateChunks(ctx, r, want, func(l catalog.Location) {
		byPack[l.Pack] = append(byPack[l.Pack], l)
	})
	if err != nil {
		return nil, err
	}
	units := readUnits(byPack, fetchSpan)
	if o.Order != nil {
		orderUnits(units, o.Order)
	}
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0) + 1 // one more than the CPUs: a reader waits for the disks
	}
	for k := 0; k < min(len(units), fetchAhead*workers); k++ { // the first rounds
		v := units[k]
		r.Prefetch(v[0].Pack, v[0].Offset, v[len(v)-1].Offset+v[len(v)-1].Length-v[0].Offset)
	}
	err = Parallel(ctx, workers, len(units), func(i int) error {
		if k := i + fetchAhead*workers; k < len(units) { // read ahead while this unit decodes
			v := units[k]
			r.Prefetch(v[0].Pack, v[0].Offset, v[len(v)-1].Offset+v[len(v)-1].Length-v[0].Offset)
		}
		u := units[i]
		if err := r.ReadPackBlobs(ctx, u[0].Pack, u, fn, onErr); err != nil {
			return err
		}
		// Decoded: free the unit's pages so the next units reuse them
		// rather than taking fresh memory (a restore reads each byte once).
		r.DropCache(u[0].Pack, u[0].Offset, u[len(u)-1].Offset+u[len(u)-1].Length-u[0].Offset)
		return nil
	})
	return missing, err
}

// readUnits cuts each pack's blobs (in offset order) into runs spanning at
// most span bytes; every blob is in exactly one unit, so every byte is
// still read once, and packs are taken in name order.
func readUnits(byPack map[string][]catalog.Location, span int64) [][]catalog.Location {
	packs := make([]string, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	sort.Strings(packs)
	var units [][]catalog.Location
	for _, p := range packs {
		locs := byPack[p]
		sort.Slice(locs, func(i, j int) bool { return locs[i].Offset < locs[j].Offset })
		start := 0
		for i := range locs {
			if i > start && locs[i].Offset+locs[i].Length-locs[start].Offset > span {
				units = append(units, locs[start:i])
				start = i
			}
		}
		units = append(units, locs[start:])
	}
	return units
}

// orderUnits sorts units by the smallest position of the chunks they hold.
func orderUnits(units [][]catalog.Location, pos func(crypt.ID) int64) {
	first := make(map[*catalog.Location]int64, len(units))
	for i := range units {
		m := int64(math.MaxInt64)
		for _, l := range units[i] {
			m = min(m, pos(crypt.ID(l.ID)))
		}
		first[&units[i][0]] = m
	}
	sort.SliceStable(units, func(a, b int) bool { return first[&units[a][0]] < first[&units[b][0]] })
}

// Parallel runs fn(0..n-1) on workers goroutines; the first error (or
// ctx ending) stops it.
func Parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
