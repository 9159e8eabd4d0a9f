package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"bes/store/catalog"
	"bes/store/compress"
	"bes/store/crypt"
	"bes/store/pack"
)

// SaveStats counts what a Saver stored.
type SaveStats struct {
	NewChunks   int64 // blobs written
	DupChunks   int64 // blobs already stored
	NewBytes    int64 // plaintext bytes of new blobs
	StoredBytes int64 // bytes written into packs for new blobs (after compression and encryption)
}

// Saver writes blobs into packs. Save is safe for concurrent use; Flush
// makes everything saved so far durable and indexed.
type Saver struct {
	r       *Repo
	algo    compress.Algo
	level   int
	encrypt bool

	dmu     sync.Mutex // dedup: pending + catalog check are atomic together
	pending map[crypt.ID]struct{}
	filter  *idFilter // nil until filterAfterMisses new chunks were seen
	misses  int

	open *packSlots // open packs, one per concurrent writer

	sealSem chan struct{}
	sealWG  sync.WaitGroup
	ended   atomic.Bool
	errMu   sync.Mutex
	err     error

	newChunks, dupChunks, newBytes, storedBytes atomic.Int64
	bufs                                        *FreeList[*saveBufs]
}

// packSlots hands each concurrent writer an open pack of its own. A slot
// holds nil until its first blob. Open packs are handed out before empty
// slots, most recent first, so one writer alone keeps filling one pack.
type packSlots struct {
	mu   sync.Mutex
	free []*openPack // empty slots at the bottom, open packs on top
	sem  chan struct{}
}

func openSlots(n int) *packSlots {
	s := &packSlots{free: make([]*openPack, n), sem: make(chan struct{}, n)}
	for range n {
		s.sem <- struct{}{}
	}
	return s
}

func (s *packSlots) take() *openPack {
	<-s.sem
	s.mu.Lock()
	p := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.mu.Unlock()
	return p
}

func (s *packSlots) give(p *openPack) {
	s.mu.Lock()
	if p == nil {
		s.free = append([]*openPack{nil}, s.free...)
	} else {
		s.free = append(s.free, p)
	}
	s.mu.Unlock()
	s.sem <- struct{}{}
}

type openPack struct {
	name    string
	w       packWriter
	entries []pack.Entry
}

// SaverOptions configures a Saver. Zero values mean the repository default.
type SaverOptions struct {
	Compression string // zstd | lz4 | none
	ZstdLevel   int    // 0: the codec's default (compress.DefaultZstdLevel)
	NoEncrypt   bool   // store plaintext (integrity still checked by ID)
}

// NewSaver starts a write session. The repository must be open for writing.
func (r *Repo) NewSaver(o SaverOptions) (*Saver, error) {
	if r.lock == nil {
		return nil, errors.New("store: repository not opened for writing")
	}
	algo, err := compress.ParseAlgo(orDefault(o.Compression, r.cfg.Compression))
	if err != nil {
		return nil, err
	}
	if err := r.checkDisks(); err != nil {
		return nil, err
	}
	r.beginSession()
	return &Saver{
		r: r, algo: algo, level: o.ZstdLevel, encrypt: !o.NoEncrypt && r.cfg.Encryption != "none",
		pending: make(map[crypt.ID]struct{}), sealSem: make(chan struct{}, 2),
		bufs: NewFreeList(2*runtime.GOMAXPROCS(0), func() *saveBufs { return &saveBufs{} }),
		open: openSlots(runtime.GOMAXPROCS(0)),
	}, nil
}

// Stats returns counters so far.
func (s *Saver) Stats() SaveStats {
	return SaveStats{NewChunks: s.newChunks.Load(), DupChunks: s.dupChunks.Load(), NewBytes: s.newBytes.Load(), StoredBytes: s.storedBytes.Load()}
}

func (s *Saver) setErr(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

func (s *Saver) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// claim reports whether id must be stored (true) or is already stored or
// being stored (false). A claimed ID is pending until its pack is indexed.
func (s *Saver) claim(ctx context.Context, id crypt.ID) (bool, error) {
	s.dmu.Lock()
	defer s.dmu.Unlock()
	if _, ok := s.pending[id]; ok {
		return false, nil
	}
	if s.filter == nil || s.filter.mayHave(&id) {
		// An unreferenced row is touched before it is reused, so that a
		// collector running beside this backup spares it (see Reuse).
		has, err := s.r.cat.Reuse(ctx, id, s.r.now().UnixNano())
		if err != nil || has {
			return false, err
		}
		if s.misses++; s.filter == nil && s.misses == filterAfterMisses {
			// Built under the dedup lock: the pending IDs are not indexed
			// yet, so add them too.
			f, err := s.r.buildFilter(ctx)
			if err != nil {
				return false, err
			}
			for p := range s.pending {
				f.add(&p)
			}
			s.filter = f
		}
	}
	if s.filter != nil {
		s.filter.add(&id)
	}
	s.pending[id] = struct{}{}
	return true, nil
}

type saveBufs struct{ comp, sealed []byte }

// Save stores data as a blob of type typ unless a blob with its ID is
// already stored, and returns the ID and whether it was new.
func (s *Saver) Save(ctx context.Context, typ uint8, data []byte) (crypt.ID, bool, error) {
	if err := s.failed(); err != nil {
		return crypt.ID{}, false, err
	}
	return s.SaveID(ctx, typ, s.r.keys.ChunkID(data), data)
}

// Known counts a chunk the caller knows to be stored already (it is
// referenced by a committed point) without looking it up.
func (s *Saver) Known() { s.dupChunks.Add(1) }

// SaveID is Save for a caller that has hashed data already: id must be
// Keys().ChunkID(data) (a wrong ID would store data under another chunk's
// name; restores would then reject it as damaged).
func (s *Saver) SaveID(ctx context.Context, typ uint8, id crypt.ID, data []byte) (crypt.ID, bool, error) {
	if err := s.failed(); err != nil {
		return crypt.ID{}, false, err
	}
	isNew, err := s.claim(ctx, id)
	if err != nil {
		return id, false, err
	}
	if !isNew {
		s.dupChunks.Add(1)
		return id, false, nil
	}
	b := s.bufs.Get()
	defer s.bufs.Put(b)
	var algo compress.Algo
	b.comp, algo = s.r.codec.CompressLevel(b.comp, data, s.algo, s.level)
	stored := b.comp
	flags := uint8(algo)
	if s.encrypt {
		b.sealed = s.r.keys.Seal(b.sealed, b.comp, id[:])
		stored = b.sealed
		flags |= pack.FlagEncrypted
	}
	if err := s.append(ctx, pack.Entry{Type: typ, Flags: flags, ID: id, Length: int64(len(stored)), RawLen: int64(len(data))}, stored); err != nil {
		s.setErr(err)
		return id, false, err
	}
	s.newChunks.Add(1)
	s.newBytes.Add(int64(len(data)))
	s.storedBytes.Add(int64(len(stored)))
	return id, true, nil
}

// append adds a stored blob to one of the open packs. Each concurrent
// caller takes a pack of its own from s.open (a slot is nil until its first
// blob), so chunk workers never wait for each other's pack writes.
func (s *Saver) append(ctx context.Context, e pack.Entry, stored []byte) error {
	p := s.open.take()
	defer func() { s.open.give(p) }()
	if p == nil {
		name := newID()
		w, err := s.r.packs.NewWriter(ctx, name)
		if err != nil {
			return fmt.Errorf("store: new pack: %w", err)
		}
		p = &openPack{name: name, w: w}
	}
	e.Offset = p.w.Len()
	if _, err := p.w.Write(stored); err != nil {
		p.w.Abort()
		p = nil
		return fmt.Errorf("store: write pack: %w", err)
	}
	p.entries = append(p.entries, e)
	if p.w.Len() >= s.r.cfg.PackSize {
		s.startSeal(ctx, p)
		p = nil
	}
	return nil
}

// takeAll empties every open-pack slot and hands each open pack to fn; the
// slots are given back empty. No append runs meanwhile.
func (s *Saver) takeAll(fn func(*openPack)) {
	ps := make([]*openPack, 0, cap(s.open.sem))
	for range cap(s.open.sem) {
		ps = append(ps, s.open.take())
	}
	for _, p := range ps {
		if p != nil {
			fn(p)
		}
		s.open.give(nil)
	}
}

// startSeal hands the open pack to a sealing goroutine. Caller holds pmu.
func (s *Saver) startSeal(ctx context.Context, p *openPack) {
	s.sealSem <- struct{}{}
	s.sealWG.Add(1)
	go func() {
		defer func() { <-s.sealSem; s.sealWG.Done() }()
		if err := s.seal(ctx, p); err != nil {
			s.setErr(err)
		}
	}()
}

// seal writes the trailer, commits the shards durably, then indexes the
// pack's blobs and releases them from the pending set (data, then index).
func (s *Saver) seal(ctx context.Context, p *openPack) error {
	trailer := pack.AppendTrailer(nil, p.name, p.entries, s.r.keys)
	trailer = append(trailer, pack.Tail(len(trailer))...)
	if _, err := p.w.Write(trailer); err != nil {
		p.w.Abort()
		return fmt.Errorf("store: seal pack %s: %w", p.name, err)
	}
	size := p.w.Len()
	// Pending first: if this process dies between the files and the
	// index, the collector finds the pack and removes it.
	if err := s.r.cat.AddPending(ctx, p.name, s.r.now()); err != nil {
		p.w.Abort()
		return fmt.Errorf("store: seal pack %s: %w", p.name, err)
	}
	if err := p.w.Commit(); err != nil {
		p.w.Abort()
		s.r.cat.DropPending(ctx, p.name)
		return fmt.Errorf("store: seal pack %s: %w", p.name, err)
	}
	blobs := make([]catalog.Blob, len(p.entries))
	for i, e := range p.entries {
		blobs[i] = catalog.Blob{ID: e.ID, Offset: e.Offset, Length: e.Length, RawLen: e.RawLen, Type: e.Type, Flags: e.Flags}
	}
	if err := s.r.cat.AddPack(ctx, catalog.Pack{Name: p.name, Size: size, Blobs: len(blobs), Created: s.r.now()}, blobs); err != nil {
		return err
	}
	s.dmu.Lock()
	for _, e := range p.entries {
		delete(s.pending, e.ID)
	}
	s.dmu.Unlock()
	return nil
}

// Flush seals the open pack and waits until every blob saved so far is
// durable on the disks and indexed in the catalog.
func (s *Saver) Flush(ctx context.Context) error {
	s.takeAll(func(p *openPack) { s.startSeal(ctx, p) })
	s.sealWG.Wait()
	return s.failed()
}

// Abort drops the open pack (its temp shards are removed), waits for
// seals in flight and ends the write session. Sealed packs stay: their
// blobs are indexed and reused. Abort after CommitPoint does nothing.
func (s *Saver) Abort() {
	if s.ended.Load() {
		return
	}
	s.takeAll(func(p *openPack) { p.w.Abort() })
	s.sealWG.Wait()
	s.end()
}

// end ends the Saver's part of the write session (once).
func (s *Saver) end() {
	if s.ended.CompareAndSwap(false, true) {
		s.r.endSession()
	}
}

// beginSession counts a new Saver in; the first one starts a write
// session: the lock file names its start before anything is written, so
// a collector spares all the session writes or reuses.
func (r *Repo) beginSession() {
	r.smu.Lock()
	defer r.smu.Unlock()
	if r.savers == 0 && !r.gc {
		r.lock.begin(r.now)
		r.since = r.lock.since
	}
	r.savers++
}

func (r *Repo) endSession() {
	r.smu.Lock()
	defer r.smu.Unlock()
	if r.savers--; r.savers == 0 && !r.gc {
		r.lock.idle()
		r.since = time.Time{}
	}
}
