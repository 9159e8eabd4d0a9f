package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"time"

	"bes/store/catalog"
	"bes/store/pack"
)

// GCOptions configures a garbage collection.
type GCOptions struct {
	DryRun bool
	// RepackBelow: a pack whose live bytes are under this percentage of
	// its size is repacked (its live blobs copied into new packs, the old
	// pack deleted). Default 50; 0 repacks nothing (empty packs still go).
	RepackBelow int
	// MaxRepackPercent bounds the live bytes one run copies, as a
	// percentage of the bytes stored in packs. Default 10.
	MaxRepackPercent int
	Progress         func(GCProgress)
}

// GCProgress is a snapshot of a running collection.
type GCProgress struct {
	Phase       string // sweep | repack | delete
	Done, Total int64
}

// GCReport is what a collection did (or, dry, would do).
type GCReport struct {
	DryRun           bool      `json:"dry_run"`
	Cutoff           time.Time `json:"cutoff"`
	GarbageChunks    int64     `json:"garbage_chunks"`
	GarbageBytes     int64     `json:"garbage_bytes"` // stored bytes of the unindexed chunks
	PacksDeleted     int       `json:"packs_deleted"`
	PacksRepacked    int       `json:"packs_repacked"`
	BytesRepacked    int64     `json:"bytes_repacked"` // live bytes copied into new packs
	PacksWritten     int       `json:"packs_written"`
	BytesFreed       int64     `json:"bytes_freed"` // pack bytes deleted minus pack bytes written (before EC)
	TrashPending     int       `json:"trash_pending"`
	OrphanPacks      int       `json:"orphan_packs"` // written by a process that died before indexing them
	LockedSkipped    int       `json:"locked_packs_skipped"`
	ImmutableCleared int       `json:"immutable_cleared"`
	Damaged          []string  `json:"damaged,omitempty"`
	Seconds          float64   `json:"seconds"`
}

// GC removes what no live point references, while backups may be writing.
//
// Mark is done as points come and go: the catalog counts every blob's
// references (commit adds a point's, forget drops them), so a collection
// costs what was deleted, not the size of the store. The sweep removes
// the index rows of blobs unreferenced since before the cut-off: now, or
// the start of the running writer's session if earlier, so nothing a
// running backup wrote or reused is touched (see catalog.Reuse). Packs
// left mostly empty are repacked (live blobs copied, verified, into new
// packs; the index moves to the copies in one transaction) and packs left
// empty go to the trash, and so do packs a writer left pending (files
// written, index never updated: it died in between) before the cut-off.
// Trashed pack files are deleted only when no reader has the repository
// open; otherwise the next run deletes them.
// Packs holding chunks of locked points are never touched. Every step is
// a transaction or an idempotent file operation: a collection killed at
// any moment loses nothing live and the next run finishes the work.
//
// The repository must be opened with OpenOptions.GC.
func (r *Repo) GC(ctx context.Context, o GCOptions) (*GCReport, error) {
	if !r.gc {
		return nil, errors.New("store: gc: repository not opened for garbage collection")
	}
	start := time.Now()
	if v, err := r.cat.Meta(ctx, "refs"); err != nil {
		return nil, err
	} else if v == "stale" {
		return nil, errors.New("gc: the catalog's reference counts are stale (after an upgrade or an interrupted catalog rebuild): run any write command (a backup, or bes catalog rebuild) first")
	}
	if o.RepackBelow == 0 && o.MaxRepackPercent == 0 {
		o.RepackBelow = 50
	}
	if o.MaxRepackPercent == 0 {
		o.MaxRepackPercent = 10
	}
	if o.RepackBelow < 0 || o.RepackBelow > 100 || o.MaxRepackPercent < 0 || o.MaxRepackPercent > 100 {
		return nil, fmt.Errorf("gc: repack percentages must lie in 0..100 (got %d and %d)", o.RepackBelow, o.MaxRepackPercent)
	}
	progress := func(phase string, done, total int64) {
		if o.Progress != nil {
			o.Progress(GCProgress{Phase: phase, Done: done, Total: total})
		}
	}
	rep := &GCReport{DryRun: o.DryRun}
	cutoff := time.Now()
	if since, ok := activeWriter(filepath.Join(r.dir, LockFile)); ok && since.Before(cutoff) {
		cutoff = since
	}
	rep.Cutoff = cutoff.UTC()

	if o.DryRun {
		g, err := r.cat.Garbage(ctx, cutoff)
		if err != nil {
			return nil, err
		}
		rep.GarbageChunks, rep.GarbageBytes = g.Chunks, g.Bytes
		rep.Seconds = time.Since(start).Seconds()
		return rep, nil
	}

	// Locks that ended: the shard files may change again.
	n, err := r.clearExpiredImmutable(ctx)
	rep.ImmutableCleared = n
	if err != nil {
		return rep, err
	}

	var total int64 // for the progress bar only: counting costs a scan of the garbage
	if o.Progress != nil {
		g, err := r.cat.Garbage(ctx, cutoff)
		if err != nil {
			return rep, err
		}
		total = g.Chunks
	}
	sw, err := r.cat.Sweep(ctx, cutoff, 0, func(s catalog.SweepStats) { progress("sweep", s.Chunks, total) })
	rep.GarbageChunks, rep.GarbageBytes = sw.Chunks, sw.Bytes
	if err != nil {
		return rep, err
	}

	if err := r.repack(ctx, o, rep, progress); err != nil {
		return rep, err
	}
	// Packs whose writer died between their files and the index.
	if rep.OrphanPacks, err = r.cat.TrashOrphans(ctx, cutoff, r.GuardedNow()); err != nil {
		return rep, err
	}
	if err := r.emptyTrash(ctx, rep, progress); err != nil {
		return rep, err
	}
	rep.Seconds = time.Since(start).Seconds()
	return rep, nil
}

// repack deletes empty packs and copies the live blobs of sparse ones.
func (r *Repo) repack(ctx context.Context, o GCOptions, rep *GCReport, progress func(string, int64, int64)) error {
	below := o.RepackBelow
	if below < 1 {
		below = 1 // empty packs always go: live * 100 < size * 1
	}
	sparse, err := r.cat.SparsePacks(ctx, below)
	if err != nil {
		return err
	}
	st, err := r.cat.Stats(ctx)
	if err != nil {
		return err
	}
	budget := st.PackBytes * int64(o.MaxRepackPercent) / 100
	now := r.GuardedNow()
	var work []catalog.PackUse
	for _, u := range sparse {
		if u.LockedUntil.After(now) || u.Immutable {
			rep.LockedSkipped++
			continue
		}
		if u.Live == 0 {
			ok, err := r.cat.TrashPack(ctx, u.Name, now)
			if err != nil {
				return err
			}
			if ok {
				rep.PacksDeleted++
				rep.BytesFreed += u.Size
			}
			continue
		}
		if o.RepackBelow > 0 && u.Live <= budget {
			budget -= u.Live
			work = append(work, u)
		}
	}
	if len(work) == 0 {
		return nil
	}
	var total int64
	for _, u := range work {
		total += u.Live
	}
	rp := &repacker{r: r, rep: rep}
	defer rp.abort()
	for _, u := range work {
		if err := rp.copyPack(ctx, u); err != nil {
			return err
		}
		progress("repack", rep.BytesRepacked, total)
	}
	return rp.seal(ctx)
}

// repacker copies stored blobs, as they are, into new packs.
type repacker struct {
	r       *Repo
	rep     *GCReport
	name    string
	w       packWriter
	entries []pack.Entry
	moves   []catalog.Move
	sizes   map[string]int64 // old packs copied from, with their sizes
}

func (rp *repacker) copyPack(ctx context.Context, u catalog.PackUse) error {
	r := rp.r
	blobs, err := r.cat.PackBlobs(ctx, u.Name)
	if err != nil {
		return err
	}
	if len(blobs) == 0 {
		return nil
	}
	sort.Slice(blobs, func(i, j int) bool { return blobs[i].Offset < blobs[j].Offset })
	// One read per run of nearby blobs, as a restore does.
	const maxGap, maxSpan = 256 << 10, 4 << 20
	var buf, plain []byte
	for i := 0; i < len(blobs); {
		j, end := i+1, blobs[i].Offset+blobs[i].Length
		for j < len(blobs) && blobs[j].Offset-end <= maxGap && blobs[j].Offset+blobs[j].Length-blobs[i].Offset <= maxSpan {
			end = max(end, blobs[j].Offset+blobs[j].Length)
			j++
		}
		start := blobs[i].Offset
		if n := int(end - start); cap(buf) < n {
			buf = make([]byte, n)
		} else {
			buf = buf[:n]
		}
		if _, err := r.packs.ReadAt(ctx, u.Name, buf, start); err != nil {
			rp.rep.Damaged = append(rp.rep.Damaged, fmt.Sprintf("pack %s: %v (not repacked)", u.Name, err))
			return nil
		}
		for _, b := range blobs[i:j] {
			stored := buf[b.Offset-start : b.Offset-start+b.Length]
			l := catalog.Location{Pack: u.Name, Blob: b}
			// Verify before copying: a damaged blob must not be
			// carried over as if it were good.
			out, err := r.decode(l, stored, plain)
			if err != nil {
				rp.rep.Damaged = append(rp.rep.Damaged, fmt.Sprintf("pack %s: %v (left in place)", u.Name, err))
				continue
			}
			plain = out
			if err := rp.add(ctx, l, stored); err != nil {
				return err
			}
		}
		i = j
	}
	rp.rep.PacksRepacked++
	rp.rep.BytesRepacked += u.Live
	if rp.sizes == nil {
		rp.sizes = map[string]int64{}
	}
	rp.sizes[u.Name] = u.Size
	return nil
}

func (rp *repacker) add(ctx context.Context, l catalog.Location, stored []byte) error {
	if rp.w == nil {
		rp.name = newID()
		w, err := rp.r.packs.NewWriter(ctx, rp.name)
		if err != nil {
			return fmt.Errorf("gc: new pack: %w", err)
		}
		rp.w = w
	}
	off := rp.w.Len()
	if _, err := rp.w.Write(stored); err != nil {
		return fmt.Errorf("gc: write pack %s: %w", rp.name, err)
	}
	e := pack.Entry{Type: l.Type, Flags: l.Flags, ID: l.ID, Offset: off, Length: l.Length, RawLen: l.RawLen}
	rp.entries = append(rp.entries, e)
	rp.moves = append(rp.moves, catalog.Move{
		Blob:    catalog.Blob{ID: l.ID, Offset: off, Length: l.Length, RawLen: l.RawLen, Type: l.Type, Flags: l.Flags},
		OldPack: l.Pack,
	})
	if rp.w.Len() >= rp.r.cfg.PackSize {
		return rp.seal(ctx)
	}
	return nil
}

// seal makes the new pack durable, then moves the index to it (data, then
// index); old packs left without rows go to the trash.
func (rp *repacker) seal(ctx context.Context) error {
	if rp.w == nil {
		return nil
	}
	w := rp.w
	rp.w = nil
	trailer := pack.AppendTrailer(nil, rp.name, rp.entries, rp.r.keys)
	trailer = append(trailer, pack.Tail(len(trailer))...)
	if _, err := w.Write(trailer); err != nil {
		w.Abort()
		return fmt.Errorf("gc: seal pack %s: %w", rp.name, err)
	}
	size := w.Len()
	if err := rp.r.cat.AddPending(ctx, rp.name, rp.r.now()); err != nil {
		w.Abort()
		return fmt.Errorf("gc: seal pack %s: %w", rp.name, err)
	}
	if err := w.Commit(); err != nil {
		w.Abort()
		rp.r.cat.DropPending(ctx, rp.name)
		return fmt.Errorf("gc: seal pack %s: %w", rp.name, err)
	}
	trashed, err := rp.r.cat.MoveBlobs(ctx, catalog.Pack{Name: rp.name, Size: size, Blobs: len(rp.entries), Created: rp.r.now()}, rp.moves, rp.r.GuardedNow())
	if err != nil {
		return err
	}
	rp.rep.PacksWritten++
	rp.rep.BytesFreed -= size
	for _, t := range trashed {
		rp.rep.PacksDeleted++
		rp.rep.BytesFreed += rp.sizes[t]
	}
	rp.entries, rp.moves = nil, nil
	return nil
}

func (rp *repacker) abort() {
	if rp.w != nil {
		rp.w.Abort()
		rp.w = nil
	}
}

// emptyTrash deletes the files of trashed packs if no reader has the
// repository open (the readers' lock can be taken alone).
func (r *Repo) emptyTrash(ctx context.Context, rep *GCReport, progress func(string, int64, int64)) error {
	trash, err := r.cat.Trash(ctx)
	if err != nil || len(trash) == 0 {
		return err
	}
	f, err := tryExclusive(filepath.Join(r.dir, ReadLockFile))
	if err != nil {
		return err
	}
	if f == nil {
		rep.TrashPending = len(trash)
		r.log.Info("gc: readers have the repository open; trashed packs are deleted by the next run", "packs", len(trash))
		return nil
	}
	defer f.Close()
	for i, name := range trash {
		if err := r.packs.Remove(ctx, name); err != nil {
			return fmt.Errorf("gc: delete pack %s: %w", name, err)
		}
		if err := r.cat.Untrash(ctx, name); err != nil {
			return err
		}
		progress("delete", int64(i+1), int64(len(trash)))
	}
	return nil
}
