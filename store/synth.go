package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"bes/store/catalog"
	"bes/store/crypt"
)

// SynthOptions selects the chain a synthetic full is made from.
type SynthOptions struct {
	Host     string // required
	Kind     string // file (default) or image
	Policy   string // only points of this policy
	ReadData bool   // read, decrypt and hash every referenced chunk first
}

// SynthReport is what Synth did.
type SynthReport struct {
	Point   string `json:"point_id"`
	From    string `json:"from"`
	Chunks  int    `json:"chunks_checked"`
	Read    bool   `json:"read_data"`
	Damaged int    `json:"damaged"`
}

// ErrSynthDamaged is returned when a chunk the synthetic full would
// reference is missing or damaged: no point is recorded.
var ErrSynthDamaged = errors.New("chunks missing or damaged: no synthetic full recorded")

// Synth makes a synthetic full from the latest point of a host's chain
// without touching the source: every chunk that point references must be
// indexed (and with ReadData must read back and verify), then a new point
// of type synthetic_full with the same contents is recorded; it starts a
// new chain, so later incrementals no longer depend on the old one. The
// repository must be open for writing.
func (r *Repo) Synth(ctx context.Context, o SynthOptions) (*SynthReport, error) {
	if o.Host == "" {
		return nil, errors.New("synth: a host is required")
	}
	if o.Kind == "" {
		o.Kind = KindFile
	}
	rows, err := r.cat.Points(ctx, catalog.PointFilter{Host: o.Host, Kind: o.Kind})
	if err != nil {
		return nil, err
	}
	var src *Point
	var srcRow catalog.Point
	for i := len(rows) - 1; i >= 0; i-- {
		p, err := decodePoint(rows[i])
		if err != nil {
			return nil, err
		}
		if p.Status == StatusComplete && (o.Policy == "" || p.Policy == o.Policy) {
			src, srcRow = p, rows[i]
			break
		}
	}
	if src == nil {
		return nil, fmt.Errorf("synth: no %s point of host %q: %w", o.Kind, o.Host, catalog.ErrNotFound)
	}
	refs, err := r.pointRefs(ctx, src, srcRow.Doc)
	if err != nil {
		return nil, fmt.Errorf("synth from %s: %w", src.ID, err)
	}
	rep := &SynthReport{From: src.ID, Chunks: len(refs), Read: o.ReadData}
	want := make(map[crypt.ID]struct{}, len(refs))
	for _, ref := range refs {
		want[crypt.ID(ref.ID)] = struct{}{}
	}
	missing, err := LocateChunks(ctx, r, want, func(catalog.Location) {})
	if err != nil {
		return nil, err
	}
	rep.Damaged = len(missing)
	if o.ReadData && len(missing) == 0 {
		var bad int
		_, err := Fetch(ctx, r, want, FetchOptions{}, func(catalog.Location, []byte) error { return nil },
			func(l catalog.Location, err error) error {
				r.log.Warn("synth: damaged chunk", "chunk", crypt.ID(l.ID).String()[:16], "err", err)
				bad++
				return nil
			})
		if err != nil {
			return nil, err
		}
		rep.Damaged += bad
	}
	if rep.Damaged > 0 {
		return rep, fmt.Errorf("synth from %s: %d %w", src.ID, rep.Damaged, ErrSynthDamaged)
	}
	now := r.now().UTC()
	p := *src
	p.ID = newPointID()
	p.Type, p.Chain, p.Parent, p.SynthOf = TypeSyntheticFull, p.ID, "", src.ID
	p.Started, p.Finished = now, now
	p.RetainUntil = time.Time{} // a lock is not inherited
	p.Stats.NewBytes, p.Stats.Stored, p.Stats.NewChunks, p.Stats.BytesRead, p.Stats.Seconds = 0, 0, 0, 0, 0
	s, err := r.NewSaver(SaverOptions{})
	if err != nil {
		return nil, err
	}
	defer s.Abort()
	// The manifest's blobs are shared; only the new document is stored.
	if err := r.CommitPoint(ctx, s, &p); err != nil {
		return nil, err
	}
	rep.Point = p.ID
	return rep, nil
}
