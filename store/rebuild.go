package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"bes/store/catalog"
	"bes/store/pack"
)

// RebuildReport is the outcome of RebuildCatalog.
type RebuildReport struct {
	Packs   int      `json:"packs"`
	Chunks  int      `json:"chunks"`
	Points  int      `json:"points"`
	Skipped []string `json:"skipped,omitempty"` // unreadable packs or incomplete points
}

// RebuildCatalog recreates the catalog from the packs on the disks: every
// pack's trailer is read back into the chunk index, and every point
// document found in a pack whose manifest is fully indexed becomes a point
// row again. The new catalog is built beside the old one and swapped in.
func (r *Repo) RebuildCatalog(ctx context.Context, progress func(done int, name string)) (*RebuildReport, error) {
	// No collection may run while the catalog is replaced.
	gl, err := tryExclusive(filepath.Join(r.dir, GCLockFile))
	if err != nil {
		return nil, err
	}
	if gl == nil {
		return nil, fmt.Errorf("catalog rebuild: %w", ErrGCRunning)
	}
	defer gl.Close()
	tmpPath := filepath.Join(r.dir, catalog.FileName+".rebuild")
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(tmpPath + sfx)
	}
	nc, err := catalog.Open(ctx, tmpPath)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	rep := &RebuildReport{}
	var points []catalog.Location
	err = r.packs.List(ctx, func(name string) error {
		entries, size, err := r.readTrailer(ctx, name)
		if progress != nil {
			progress(rep.Packs+1, name)
		}
		if err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("pack %s: %v", name, err))
			return nil
		}
		blobs := make([]catalog.Blob, len(entries))
		for i, e := range entries {
			blobs[i] = catalog.Blob{ID: e.ID, Offset: e.Offset, Length: e.Length, RawLen: e.RawLen, Type: e.Type, Flags: e.Flags}
			if e.Type == pack.TypePoint {
				points = append(points, catalog.Location{Pack: name, Blob: blobs[i]})
			}
		}
		rep.Packs++
		rep.Chunks += len(blobs)
		return nc.AddPack(ctx, catalog.Pack{Name: name, Size: size, Blobs: len(blobs), Created: r.now()}, blobs)
	})
	if err != nil {
		return rep, err
	}
	sort.Slice(points, func(i, j int) bool { return points[i].Pack < points[j].Pack })
	docs, err := r.pointDocs(ctx, points, rep)
	if err != nil {
		return rep, err
	}
	var tombs []catalog.Ref
	var locked []*Point
	for _, d := range docs {
		r.clock.observe(d.p.Finished)
		r.clock.observe(d.p.Forgotten)
		if !d.p.Forgotten.IsZero() {
			tombs = append(tombs, catalog.Ref{ID: catalog.ChunkID(r.keys.ChunkID(d.doc)), N: 1})
			continue
		}
		if d.forgotten {
			continue
		}
		if err := r.restorePointRow(ctx, nc, d.p, d.doc); err != nil {
			rep.Skipped = append(rep.Skipped, err.Error())
			continue
		}
		rep.Points++
		if !d.p.RetainUntil.IsZero() {
			locked = append(locked, d.p)
		}
	}
	// References are counted once the new catalog is live (manifests are
	// read through it); until then it says they are stale, and gc refuses
	// to run on stale counts.
	if err := nc.SetMeta(ctx, "refs", "stale"); err != nil {
		return rep, err
	}
	if err := nc.IntegrityCheck(ctx); err != nil {
		return rep, err
	}
	if err := r.swapCatalog(ctx, nc, tmpPath); err != nil {
		return rep, err
	}
	if err := recountRefs(ctx, r, r.cat); err != nil {
		return rep, err
	}
	if err := r.cat.AddRefs(ctx, tombs); err != nil {
		return rep, err
	}
	for _, p := range locked {
		if err := r.relock(ctx, r.cat, p); err != nil {
			rep.Skipped = append(rep.Skipped, err.Error())
		}
	}
	r.clock.save()
	return rep, r.cat.SetMeta(ctx, "refs", "")
}

type pointDoc struct {
	p         *Point
	doc       []byte
	forgotten bool // a tombstone names this point
}

// pointDocs reads every point document and keeps, per point ID, the
// tombstone if there is one, else the version with the longest lock (a
// lock stores the document again; locks only grow).
func (r *Repo) pointDocs(ctx context.Context, locs []catalog.Location, rep *RebuildReport) ([]pointDoc, error) {
	byID := map[string]*pointDoc{}
	var order []string
	var tombs []pointDoc
	for _, l := range locs {
		buf := make([]byte, l.Length)
		if _, err := r.packs.ReadAt(ctx, l.Pack, buf, l.Offset); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("point blob in pack %s: %v", l.Pack, err))
			continue
		}
		doc, err := r.decode(l, buf, nil)
		if err != nil {
			rep.Skipped = append(rep.Skipped, err.Error())
			continue
		}
		var p Point
		if err := json.Unmarshal(doc, &p); err != nil {
			rep.Skipped = append(rep.Skipped, fmt.Sprintf("point blob in pack %s: %v", l.Pack, err))
			continue
		}
		if !p.Forgotten.IsZero() {
			tombs = append(tombs, pointDoc{p: &p, doc: doc})
			continue
		}
		cur, ok := byID[p.ID]
		if !ok {
			byID[p.ID] = &pointDoc{p: &p, doc: doc}
			order = append(order, p.ID)
			continue
		}
		if p.RetainUntil.After(cur.p.RetainUntil) {
			cur.p, cur.doc = &p, doc
		}
	}
	for _, t := range tombs {
		if d, ok := byID[t.p.ID]; ok {
			d.forgotten = true
		}
	}
	out := make([]pointDoc, 0, len(order)+len(tombs))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return append(out, tombs...), nil
}

func (r *Repo) restorePointRow(ctx context.Context, nc *catalog.Catalog, p *Point, doc []byte) error {
	for _, m := range p.Manifest {
		if ok, err := nc.Has(ctx, m.ID); err != nil || !ok {
			return fmt.Errorf("point %s: manifest chunk %s missing: skipped", p.ID, m.ID.String()[:16])
		}
	}
	return nc.AddPoint(ctx, pointRow(p, doc))
}

// relock marks the packs of a locked point locked again in a rebuilt
// catalog, and notes which of them still carry the immutable attribute.
func (r *Repo) relock(ctx context.Context, nc *catalog.Catalog, p *Point) error {
	row, err := nc.Point(ctx, p.ID)
	if err != nil {
		return err
	}
	refs, err := r.pointRefs(ctx, p, row.Doc)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, ref := range refs {
		l, err := nc.Lookup(ctx, ref.ID)
		if err != nil || seen[l.Pack] {
			continue
		}
		seen[l.Pack] = true
		if err := nc.LockPack(ctx, l.Pack, p.RetainUntil); err != nil {
			return err
		}
		if r.packs.Retained(ctx, l.Pack) {
			if err := nc.SetImmutable(ctx, l.Pack, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// readTrailer reads and opens the trailer of one pack.
func (r *Repo) readTrailer(ctx context.Context, name string) ([]pack.Entry, int64, error) {
	size, err := r.packs.Size(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	tail := make([]byte, pack.TailSize)
	if size < int64(pack.TailSize) {
		return nil, size, fmt.Errorf("%w: pack of %d bytes", pack.ErrCorrupt, size)
	}
	if _, err := r.packs.ReadAt(ctx, name, tail, size-int64(pack.TailSize)); err != nil {
		return nil, size, err
	}
	n, err := pack.ParseTail(tail, size)
	if err != nil {
		return nil, size, err
	}
	sealed := make([]byte, n)
	blobsEnd := size - int64(pack.TailSize) - int64(n)
	if _, err := r.packs.ReadAt(ctx, name, sealed, blobsEnd); err != nil {
		return nil, size, err
	}
	es, err := pack.DecodeTrailer(sealed, name, blobsEnd, r.keys)
	return es, size, err
}

// swapCatalog replaces the live catalog with the rebuilt one.
func (r *Repo) swapCatalog(ctx context.Context, nc *catalog.Catalog, tmpPath string) error {
	if err := nc.Close(); err != nil {
		return err
	}
	live := filepath.Join(r.dir, catalog.FileName)
	r.cat.Close()
	for _, sfx := range []string{"-wal", "-shm", ""} {
		os.Remove(live + sfx)
	}
	if err := os.Rename(tmpPath, live); err != nil {
		return fmt.Errorf("catalog rebuild: %w", err)
	}
	for _, sfx := range []string{"-wal", "-shm"} {
		os.Remove(tmpPath + sfx)
	}
	if err := syncDir(r.dir); err != nil {
		return err
	}
	c, err := catalog.Open(ctx, live)
	if err != nil {
		return err
	}
	r.cat = c
	return nil
}
