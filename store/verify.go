package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/manifest"
)

// VerifyOptions selects what Verify checks.
type VerifyOptions struct {
	Points   []string // IDs or prefixes; empty means every point
	Sample   int      // read back this many randomly chosen files per point (0: none)
	ReadData bool     // decrypt and hash every chunk of every pack
	Progress func(done, total int64)
}

// PointVerdict is the outcome for one point.
type PointVerdict struct {
	ID      string   `json:"id"`
	Host    string   `json:"host"`
	Status  string   `json:"status"` // passed | failed
	Files   int64    `json:"files_checked"`
	Chunks  int64    `json:"chunks_checked"`
	Damaged []string `json:"damaged_files,omitempty"`
	Errors  []string `json:"errors,omitempty"`
}

// VerifyReport is the outcome of Verify.
type VerifyReport struct {
	Points        []PointVerdict `json:"points"`
	PacksRead     int64          `json:"packs_read"`
	ChunksChecked int64          `json:"chunks_checked"`
	BytesChecked  int64          `json:"bytes_checked"`
	DamagedChunks []string       `json:"damaged_chunks,omitempty"`
}

// Damaged reports whether anything failed.
func (v *VerifyReport) Damaged() bool {
	for _, p := range v.Points {
		if p.Status != "passed" {
			return true
		}
	}
	return len(v.DamagedChunks) > 0
}

// Verify checks restore points: every manifest must load and every chunk
// it references must be indexed; sampled files are read back and checked;
// with ReadData every blob of every pack is decrypted and hashed. Each
// damaged point and file is named, and the points' verify status updated.
func (r *Repo) Verify(ctx context.Context, o VerifyOptions) (*VerifyReport, error) {
	pts, err := r.selectPoints(ctx, o.Points)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{}
	bad := map[crypt.ID]error{}
	if o.ReadData {
		if bad, err = r.readAllData(ctx, rep, o.Progress); err != nil {
			return rep, err
		}
		for id, e := range bad {
			rep.DamagedChunks = append(rep.DamagedChunks, fmt.Sprintf("%s: %v", id.String()[:16], e))
		}
	}
	for _, p := range pts {
		v := r.verifyPoint(ctx, p, bad, o.Sample)
		rep.Points = append(rep.Points, v)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		mode := "index"
		switch {
		case o.ReadData:
			mode = "read-data"
		case o.Sample > 0:
			mode = "sample"
		}
		res := catalog.VerifyResult{Status: v.Status, At: r.now(), Mode: mode, Chunks: v.Chunks,
			Damage: append(append([]string(nil), v.Damaged...), v.Errors...)}
		if err := r.cat.SetVerifyResult(ctx, p.ID, res); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func (r *Repo) selectPoints(ctx context.Context, ids []string) ([]*Point, error) {
	if len(ids) == 0 {
		infos, err := r.Points(ctx, catalog.PointFilter{})
		if err != nil {
			return nil, err
		}
		out := make([]*Point, len(infos))
		for i := range infos {
			out[i] = infos[i].Point
		}
		return out, nil
	}
	var out []*Point
	for _, id := range ids {
		p, err := r.FindPoint(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

type sampled struct {
	path   string
	chunks []manifest.ChunkRef
}

func (r *Repo) verifyPoint(ctx context.Context, p *Point, bad map[crypt.ID]error, sample int) PointVerdict {
	v := PointVerdict{ID: p.ID, Host: p.Host, Status: "passed"}
	var picks []sampled
	var nfiles int64
	err := r.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		if e.Kind != manifest.KindFile {
			return nil
		}
		nfiles++
		for _, c := range e.Chunks {
			if c.Hole() {
				continue
			}
			v.Chunks++
			if err, ok := bad[c.ID]; ok {
				v.Damaged = append(v.Damaged, fmt.Sprintf("%s: %v", e.Path, err))
				return nil
			}
			if _, err := r.Lookup(ctx, c.ID); err != nil {
				v.Damaged = append(v.Damaged, fmt.Sprintf("%s: %v", e.Path, err))
				return nil
			}
		}
		if sample > 0 { // reservoir sampling
			s := sampled{e.Path, append([]manifest.ChunkRef(nil), e.Chunks...)}
			if len(picks) < sample {
				picks = append(picks, s)
			} else if j := rand.Int64N(nfiles); j < int64(sample) {
				picks[j] = s
			}
		}
		return nil
	})
	v.Files = nfiles
	if err != nil {
		v.Errors = append(v.Errors, fmt.Sprintf("manifest: %v", err))
	}
	var buf []byte
	for _, s := range picks {
		for _, c := range s.chunks {
			if c.Hole() {
				continue
			}
			b, err := r.LoadBlob(ctx, c.ID, buf)
			if err != nil {
				v.Damaged = append(v.Damaged, fmt.Sprintf("%s: %v", s.path, err))
				break
			}
			buf = b
		}
	}
	if len(v.Damaged) > 0 || len(v.Errors) > 0 {
		v.Status = "failed"
	}
	return v
}

// readAllData reads every indexed blob of every pack once, with parallel
// workers, and returns the damaged ones.
func (r *Repo) readAllData(ctx context.Context, rep *VerifyReport, progress func(done, total int64)) (map[crypt.ID]error, error) {
	packs, err := r.cat.Packs(ctx)
	if err != nil {
		return nil, err
	}
	var total, done int64
	for _, p := range packs {
		total += p.Size
	}
	var mu sync.Mutex
	bad := map[crypt.ID]error{}
	ch := make(chan catalog.Pack)
	var wg sync.WaitGroup
	var firstErr error
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range ch {
				blobs, err := r.cat.PackBlobs(ctx, p.Name)
				if err == nil {
					locs := make([]catalog.Location, len(blobs))
					for i, b := range blobs {
						locs[i] = catalog.Location{Pack: p.Name, Blob: b}
					}
					err = r.ReadPackBlobs(ctx, p.Name, locs, func(l catalog.Location, data []byte) error {
						mu.Lock()
						rep.ChunksChecked++
						rep.BytesChecked += int64(len(data))
						mu.Unlock()
						return nil
					}, func(l catalog.Location, e error) error {
						mu.Lock()
						bad[crypt.ID(l.ID)] = e
						rep.ChunksChecked++
						mu.Unlock()
						return nil
					})
				}
				mu.Lock()
				if err != nil && firstErr == nil && !errors.Is(err, context.Canceled) {
					firstErr = err
				}
				rep.PacksRead++
				done += p.Size
				if progress != nil {
					progress(done, total)
				}
				mu.Unlock()
			}
		}()
	}
	for _, p := range packs {
		select {
		case ch <- p:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	if ctx.Err() != nil {
		return bad, ctx.Err()
	}
	return bad, firstErr
}

// VerifyResult returns a point's last recorded verification.
func (r *Repo) VerifyResult(ctx context.Context, id string) (catalog.VerifyResult, error) {
	return r.cat.VerifyResultOf(ctx, id)
}

// Stats summarises the repository's index: packs, chunks and their bytes.
func (r *Repo) Stats(ctx context.Context) (catalog.Stats, error) { return r.cat.Stats(ctx) }
