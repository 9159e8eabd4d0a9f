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
	err = r.set.List(ctx, func(name string) error {
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
	for _, l := range points {
		if err := r.restorePointRow(ctx, nc, l); err != nil {
			rep.Skipped = append(rep.Skipped, err.Error())
			continue
		}
		rep.Points++
	}
	if err := nc.IntegrityCheck(ctx); err != nil {
		return rep, err
	}
	return rep, r.swapCatalog(ctx, nc, tmpPath)
}

func (r *Repo) restorePointRow(ctx context.Context, nc *catalog.Catalog, l catalog.Location) error {
	buf := make([]byte, l.Length)
	if _, err := r.set.ReadAt(ctx, l.Pack, buf, l.Offset); err != nil {
		return fmt.Errorf("point blob in pack %s: %w", l.Pack, err)
	}
	doc, err := r.decode(l, buf, nil)
	if err != nil {
		return err
	}
	var p Point
	if err := json.Unmarshal(doc, &p); err != nil {
		return fmt.Errorf("point blob in pack %s: %w", l.Pack, err)
	}
	for _, m := range p.Manifest {
		if ok, err := nc.Has(ctx, m.ID); err != nil || !ok {
			return fmt.Errorf("point %s: manifest chunk %s missing: skipped", p.ID, m.ID.String()[:16])
		}
	}
	return nc.AddPoint(ctx, pointRow(&p, doc))
}

// readTrailer reads and opens the trailer of one pack.
func (r *Repo) readTrailer(ctx context.Context, name string) ([]pack.Entry, int64, error) {
	size, err := r.set.Size(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	tail := make([]byte, pack.TailSize)
	if size < int64(pack.TailSize) {
		return nil, size, fmt.Errorf("%w: pack of %d bytes", pack.ErrCorrupt, size)
	}
	if _, err := r.set.ReadAt(ctx, name, tail, size-int64(pack.TailSize)); err != nil {
		return nil, size, err
	}
	n, err := pack.ParseTail(tail, size)
	if err != nil {
		return nil, size, err
	}
	sealed := make([]byte, n)
	blobsEnd := size - int64(pack.TailSize) - int64(n)
	if _, err := r.set.ReadAt(ctx, name, sealed, blobsEnd); err != nil {
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
