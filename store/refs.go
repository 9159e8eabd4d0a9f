package store

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/manifest"
)

// pointRefs lists the blobs a committed point references, each once: its
// document blob, its manifest's tree blobs and every data chunk of every
// entry (holes reference nothing). The same list is counted in when the
// point is committed and out when it is forgotten.
func (r *Repo) pointRefs(ctx context.Context, p *Point, doc []byte) ([]catalog.Ref, error) {
	ids := make([]crypt.ID, 0, 1+len(p.Manifest)+int(p.Entries))
	ids = append(ids, r.keys.ChunkID(doc))
	for _, m := range p.Manifest {
		ids = append(ids, m.ID)
	}
	err := r.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		for _, c := range e.Chunks {
			if !c.Hole() {
				ids = append(ids, c.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("point %s: references: %w", p.ID, err)
	}
	slices.SortFunc(ids, func(a, b crypt.ID) int { return bytes.Compare(a[:], b[:]) })
	ids = slices.Compact(ids)
	refs := make([]catalog.Ref, len(ids))
	for i, id := range ids {
		refs[i] = catalog.Ref{ID: catalog.ChunkID(id), N: 1}
	}
	return refs, nil
}

func negate(refs []catalog.Ref) []catalog.Ref {
	out := make([]catalog.Ref, len(refs))
	for i, r := range refs {
		out[i] = catalog.Ref{ID: r.ID, N: -r.N}
	}
	return out
}

// recountIfStale counts every point's references again when the catalog
// says the counts are missing (a catalog from before reference counting).
func (r *Repo) recountIfStale(ctx context.Context) error {
	v, err := r.cat.Meta(ctx, "refs")
	if err != nil || v != "stale" {
		return err
	}
	r.log.Info("counting chunk references of every point (first open after an upgrade)")
	if err := recountRefs(ctx, r, r.cat); err != nil {
		return err
	}
	return r.cat.SetMeta(ctx, "refs", "")
}

// recountRefs sets every blob's reference count from the points in cat
// (and the tombstones, which stay referenced for good).
func recountRefs(ctx context.Context, r *Repo, cat *catalog.Catalog) error {
	now := r.GuardedNow()
	if err := cat.ResetRefs(ctx, now); err != nil {
		return err
	}
	rows, err := cat.Points(ctx, catalog.PointFilter{})
	if err != nil {
		return err
	}
	for _, row := range rows {
		p, err := decodePoint(row)
		if err != nil {
			return err
		}
		refs, err := r.pointRefs(ctx, p, row.Doc)
		if err != nil {
			return err
		}
		if err := cat.AddRefs(ctx, refs); err != nil {
			return fmt.Errorf("point %s: %w", p.ID, err)
		}
	}
	return nil
}
