package ec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// shardMeta is what is known about one shard file of a pack.
type shardMeta struct {
	present bool  // some file exists at the shard path
	err     error // why the shard is unusable; nil if usable
	crcs    []uint32
}

// packMeta is the validated metadata of a pack: its geometry (agreed by the
// majority of self-consistent shards) and per-shard piece checksums.
type packMeta struct {
	name   string
	g      geometry
	shards []shardMeta
	good   int // shards with err == nil
	loaded time.Time
}

func (pm *packMeta) degraded() bool { return pm.good < len(pm.shards) }

// getMeta returns cached metadata or loads it. cached reports whether it
// came from the cache. Errors: ErrNotFound (wrapped), or an error wrapping
// ErrUnrecoverable when no shard is readable.
func (s *Set) getMeta(name string, reload bool) (pm *packMeta, cached bool, err error) {
	if !reload {
		s.mu.Lock()
		pm = s.cache[name]
		s.mu.Unlock()
		if pm != nil && (!pm.degraded() || time.Since(pm.loaded) < metaDegradedTTL) {
			return pm, true, nil
		}
	}
	pm, err = s.loadMeta(name)
	if err != nil {
		s.dropMeta(name)
		return nil, false, err
	}
	if pm.good == 0 {
		s.dropMeta(name)
		return nil, false, pm.unreadableErr(s)
	}
	s.mu.Lock()
	if len(s.cache) >= metaCacheMax {
		for k := range s.cache { // evict an arbitrary entry
			delete(s.cache, k)
			break
		}
	}
	s.cache[name] = pm
	s.mu.Unlock()
	return pm, false, nil
}

func (s *Set) dropMeta(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
}

func (pm *packMeta) unreadableErr(s *Set) error {
	var errs []error
	for i, sh := range pm.shards {
		if sh.err != nil {
			errs = append(errs, fmt.Errorf("%s: shard %d: %w", s.diskName(i), i, sh.err))
		}
	}
	return fmt.Errorf("ec: pack %s: only %d of %d shards readable, need %d: %w (%v)",
		pm.name, pm.good, len(pm.shards), s.k, ErrUnrecoverable, errors.Join(errs...))
}

// loadMeta reads and validates the header and footer of every shard of the
// pack. It returns ErrNotFound (wrapped) if no shard file exists at all.
func (s *Set) loadMeta(name string) (*packMeta, error) {
	n := s.k + s.m
	type res struct {
		h    header
		f    footer
		pres bool
		err  error
	}
	rs := make([]res, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &rs[i]
			r.h, r.f, r.pres, r.err = inspectShard(s.shardPath(i, name))
			if r.err == nil {
				switch {
				case r.h.K != s.k || r.h.M != s.m:
					r.err = fmt.Errorf("layout %d+%d in header, set is %d+%d", r.h.K, r.h.M, s.k, s.m)
				case r.h.Index != i:
					r.err = fmt.Errorf("header says shard index %d", r.h.Index)
				case r.h.Name != name:
					r.err = fmt.Errorf("header names pack %s", r.h.Name)
				}
			}
		}()
	}
	wg.Wait()

	pm := &packMeta{name: name, shards: make([]shardMeta, n), loaded: time.Now()}
	any := false
	type key struct {
		p    int
		size int64
	}
	votes := map[key]int{}
	var best key
	bestVotes := 0
	for i, r := range rs {
		any = any || r.pres
		pm.shards[i].present = r.pres
		if r.err != nil {
			pm.shards[i].err = r.err
			continue
		}
		kk := key{r.h.PieceSize, r.f.Size}
		votes[kk]++
		if votes[kk] > bestVotes {
			best, bestVotes = kk, votes[kk]
		}
	}
	if !any {
		return nil, fmt.Errorf("ec: pack %s: %w", name, ErrNotFound)
	}
	pm.g = newGeometry(s.k, best.p, best.size)
	for i, r := range rs {
		if r.err != nil {
			continue
		}
		if (key{r.h.PieceSize, r.f.Size}) != best {
			pm.shards[i].err = fmt.Errorf("piece size %d / pack length %d disagree with the other shards (%d / %d)",
				r.h.PieceSize, r.f.Size, best.p, best.size)
			continue
		}
		pm.shards[i].crcs = r.f.CRCs
		pm.good++
	}
	return pm, nil
}

// inspectShard opens a shard file and validates its header, footer and
// length. present is false only when no file exists at path.
func inspectShard(path string) (h header, f footer, present bool, err error) {
	fh, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return h, f, false, errors.New("missing")
		}
		return h, f, true, err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return h, f, true, err
	}
	if !fi.Mode().IsRegular() {
		return h, f, true, errors.New("not a regular file")
	}
	size := fi.Size()
	if size < headerLen+minFooterLen {
		return h, f, true, fmt.Errorf("truncated (%d bytes)", size)
	}
	var hb [headerLen]byte
	if _, err := fh.ReadAt(hb[:], 0); err != nil {
		return h, f, true, fmt.Errorf("read header: %w", err)
	}
	if h, err = decodeHeader(hb[:]); err != nil {
		return h, f, true, err
	}
	var tb [trailerLen]byte
	if _, err := fh.ReadAt(tb[:], size-trailerLen); err != nil {
		return h, f, true, fmt.Errorf("read footer: %w", err)
	}
	fl, err := footerLenFromTrailer(tb[:], size-headerLen)
	if err != nil {
		return h, f, true, err
	}
	fb := make([]byte, fl)
	if _, err := fh.ReadAt(fb, size-int64(fl)); err != nil && !(err == io.EOF) {
		return h, f, true, fmt.Errorf("read footer: %w", err)
	}
	if f, err = decodeFooter(fb); err != nil {
		return h, f, true, err
	}
	g := newGeometry(h.K, h.PieceSize, f.Size)
	if g.N != f.Stripes || g.LastP != f.LastPiece {
		return h, f, true, fmt.Errorf("footer geometry (%d stripes, last piece %d) inconsistent with pack length %d and piece size %d",
			f.Stripes, f.LastPiece, f.Size, h.PieceSize)
	}
	if want := g.fileSize(); want != size {
		return h, f, true, fmt.Errorf("file is %d bytes, expected %d", size, want)
	}
	return h, f, true, nil
}
