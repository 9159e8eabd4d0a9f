package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"bes/store/catalog"
	"bes/store/chunker"
	"bes/store/crypt"
	"bes/store/pack"
)

// Point kinds, types and statuses.
const (
	KindFile  = "file"
	KindImage = "image"

	TypeFull          = "full"
	TypeIncremental   = "incremental"
	TypeSyntheticFull = "synthetic_full"

	StatusComplete = "complete"
)

// BlobRef names a stored blob and its plaintext size.
type BlobRef struct {
	ID   crypt.ID `json:"id"`
	Size int64    `json:"size"`
}

// PointStats are the figures of the backup that made a point.
type PointStats struct {
	Files       int64   `json:"files"`
	Dirs        int64   `json:"dirs"`
	Bytes       int64   `json:"bytes"`      // total size of the source
	BytesRead   int64   `json:"bytes_read"` // bytes actually read (changed files)
	NewBytes    int64   `json:"new_bytes"`  // plaintext bytes of new chunks (after dedup)
	Stored      int64   `json:"stored_bytes"`
	NewChunks   int64   `json:"new_chunks"`
	Seconds     float64 `json:"seconds"`
	Errors      int64   `json:"errors"`
	Unchanged   int64   `json:"unchanged_files"`
	ManifestLen int64   `json:"manifest_bytes"`
}

// Point is a restore point document. It is stored as a blob of its own in
// a pack (so the catalog can be rebuilt) and as the catalog row's doc.
type Point struct {
	ID       string     `json:"id"`
	Kind     string     `json:"kind"`
	Host     string     `json:"host"`
	Chain    string     `json:"chain"`
	Parent   string     `json:"parent,omitempty"`
	Type     string     `json:"type"`
	Status   string     `json:"status"`
	Started  time.Time  `json:"started"`
	Finished time.Time  `json:"finished"`
	Paths    []string   `json:"paths,omitempty"`
	Tags     []string   `json:"tags,omitempty"`
	Manifest []BlobRef  `json:"manifest"`
	Entries  int64      `json:"entries"`
	Stats    PointStats `json:"stats"`
	// Policy names the backup policy that made the point (optional).
	Policy string `json:"policy,omitempty"`
	// RetainUntil makes the point immutable until then: nobody can delete
	// it or anything it references before (see Repo.Lock).
	RetainUntil time.Time `json:"retain_until,omitzero"`
	// SynthOf names the point a synthetic full was made from.
	SynthOf string `json:"synth_of,omitempty"`
	// Forgotten marks a tombstone: the point with this ID was forgotten
	// then, and a catalog rebuild must not bring it back.
	Forgotten time.Time `json:"forgotten,omitzero"`
}

// NewPoint returns a point skeleton with a fresh time-ordered ID. For a
// host's first point of a kind it starts a new chain as a full; otherwise
// it is an incremental whose parent is the host's latest point.
func (r *Repo) NewPoint(ctx context.Context, kind, host string) (*Point, *Point, error) {
	now := r.now().UTC()
	p := &Point{ID: newPointID(), Kind: kind, Host: host, Started: now, Status: "running"}
	parent, err := r.LatestPoint(ctx, host, kind)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		p.Type, p.Chain = TypeFull, p.ID
		return p, nil, nil
	case err != nil:
		return nil, nil, err
	}
	p.Type, p.Chain, p.Parent = TypeIncremental, parent.Chain, parent.ID
	return p, parent, nil
}

// CommitPoint makes a point visible: everything saved through s is made
// durable and indexed first, then the point document is stored in a pack,
// and only then is the catalog row committed, with its references counted
// in the same transaction. It ends s's write session.
func (r *Repo) CommitPoint(ctx context.Context, s *Saver, p *Point) error {
	if err := s.Flush(ctx); err != nil {
		return fmt.Errorf("commit point %s: %w", p.ID, err)
	}
	p.Status = StatusComplete
	doc, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("commit point %s: %w", p.ID, err)
	}
	if _, _, err := s.Save(ctx, pack.TypePoint, doc); err != nil {
		return fmt.Errorf("commit point %s: %w", p.ID, err)
	}
	if err := s.Flush(ctx); err != nil {
		return fmt.Errorf("commit point %s: %w", p.ID, err)
	}
	refs, err := r.pointRefs(ctx, p, doc)
	if err != nil {
		return fmt.Errorf("commit point %s: %w", p.ID, err)
	}
	r.GuardedNow() // raise the clock mark (only the system clock does)
	if _, err := r.cat.CommitPoint(ctx, pointRow(p, doc), refs); err != nil {
		return fmt.Errorf("commit point %s: %w", p.ID, err)
	}
	s.end() // the point holds its chunks now: the write session is over
	return nil
}

func pointRow(p *Point, doc []byte) catalog.Point {
	return catalog.Point{
		ID: p.ID, Kind: p.Kind, Host: p.Host, Chain: p.Chain, Parent: p.Parent, Type: p.Type, Status: p.Status,
		Started: p.Started, Finished: p.Finished, Files: p.Stats.Files, Bytes: p.Stats.Bytes,
		NewBytes: p.Stats.NewBytes, StoredBytes: p.Stats.Stored, Doc: doc,
		RetainUntil: p.RetainUntil, Policy: p.Policy,
	}
}

// PointInfo is a point with its catalog-only state.
type PointInfo struct {
	*Point
	VerifyStatus string
	VerifiedAt   time.Time
}

func decodePoint(row catalog.Point) (*Point, error) {
	var p Point
	if err := json.Unmarshal(row.Doc, &p); err != nil {
		return nil, fmt.Errorf("point %s: decode document: %w", row.ID, err)
	}
	return &p, nil
}

// Points lists restore points oldest first.
func (r *Repo) Points(ctx context.Context, f catalog.PointFilter) ([]PointInfo, error) {
	rows, err := r.cat.Points(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]PointInfo, 0, len(rows))
	for _, row := range rows {
		p, err := decodePoint(row)
		if err != nil {
			return nil, err
		}
		out = append(out, PointInfo{Point: p, VerifyStatus: row.VerifyStatus, VerifiedAt: row.VerifiedAt})
	}
	return out, nil
}

// FindPoint resolves a point ID, unique prefix, or "latest".
func (r *Repo) FindPoint(ctx context.Context, id string) (*Point, error) {
	if id == "latest" {
		ps, err := r.cat.Points(ctx, catalog.PointFilter{})
		if err != nil {
			return nil, err
		}
		if len(ps) == 0 {
			return nil, fmt.Errorf("no restore points yet: %w", catalog.ErrNotFound)
		}
		return decodePoint(ps[len(ps)-1])
	}
	row, err := r.cat.Point(ctx, id)
	if err != nil {
		return nil, err
	}
	return decodePoint(row)
}

// LatestPoint returns a host's newest complete point of a kind.
func (r *Repo) LatestPoint(ctx context.Context, host, kind string) (*Point, error) {
	row, err := r.cat.LatestPoint(ctx, host, kind)
	if err != nil {
		return nil, err
	}
	return decodePoint(row)
}

// ManifestWriter cuts a manifest stream into content-defined chunks (so an
// unchanged part of a tree dedups against the previous point) and stores
// them as tree blobs. Write is not safe for concurrent use.
type ManifestWriter struct {
	pw   *io.PipeWriter
	done chan struct{}
	refs []BlobRef
	n    int64
	err  error
}

// NewManifestWriter starts storing a manifest through s.
func (r *Repo) NewManifestWriter(ctx context.Context, s *Saver) *ManifestWriter {
	pr, pw := io.Pipe()
	m := &ManifestWriter{pw: pw, done: make(chan struct{})}
	par := r.cpar
	par.Min, par.Avg, par.Max = 64<<10, 256<<10, 1<<20
	go func() {
		defer close(m.done)
		c := chunker.New(pr, par)
		var buf []byte
		for {
			b, err := c.Next(buf)
			if err == io.EOF {
				return
			}
			if err != nil {
				m.err = err
				pr.CloseWithError(err)
				return
			}
			buf = b
			id, _, err := s.Save(ctx, pack.TypeTree, b)
			if err != nil {
				m.err = err
				pr.CloseWithError(err)
				return
			}
			m.refs = append(m.refs, BlobRef{ID: id, Size: int64(len(b))})
		}
	}()
	return m
}

func (m *ManifestWriter) Write(p []byte) (int, error) {
	n, err := m.pw.Write(p)
	m.n += int64(n)
	return n, err
}

// Close finishes the manifest and returns its blob list.
func (m *ManifestWriter) Close() ([]BlobRef, error) {
	m.pw.Close()
	<-m.done
	return m.refs, m.err
}

// OpenManifest returns a reader over a point's manifest bytes; each tree
// blob is loaded and verified as the reader reaches it, the next one
// prefetched in the background.
func (r *Repo) OpenManifest(ctx context.Context, p *Point) io.ReadCloser {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		type res struct {
			b   []byte
			err error
		}
		ch := make(chan res, 1)
		go func() {
			defer close(ch)
			for _, ref := range p.Manifest {
				b, err := r.LoadBlob(ctx, ref.ID, nil)
				if err != nil {
					err = fmt.Errorf("point %s: manifest: %w", p.ID, err)
				}
				select {
				case ch <- res{b, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
		for x := range ch {
			if x.err != nil {
				pw.CloseWithError(x.err)
				return
			}
			if _, err := pw.Write(x.b); err != nil {
				return
			}
		}
		pw.Close()
	}()
	return &manifestReader{PipeReader: pr, cancel: cancel}
}

type manifestReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (m *manifestReader) Close() error {
	m.cancel()
	return m.PipeReader.Close()
}
