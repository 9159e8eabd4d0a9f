package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/pack"
)

// ReplicateOptions selects what Replicate copies.
type ReplicateOptions struct {
	Points []string // IDs or prefixes; empty: every point (after the filters)
	Host   string
	Policy string
	// Rule, if set, selects points by type (after full, after
	// incremental) and records in this repository what its replica holds,
	// for the replication lag.
	Rule     *catalog.ReplicaRule
	Progress func(ReplicateProgress)
}

// ReplicateProgress is a snapshot of a running replication.
type ReplicateProgress struct {
	Points, PointsTotal int
	Bytes               int64 // stored bytes copied so far
}

// ReplicateReport is what Replicate did.
type ReplicateReport struct {
	Copied      []string `json:"copied"`         // points recorded in the replica by this run
	Present     int      `json:"already_there"`  // selected points the replica had
	Chunks      int64    `json:"chunks_copied"`  // blobs that travelled
	Bytes       int64    `json:"bytes_copied"`   // their stored (encrypted) bytes
	Reused      int64    `json:"chunks_present"` // blobs the replica had already
	Seconds     float64  `json:"seconds"`
	LagSeconds  float64  `json:"lag_seconds"` // age of the oldest selected point still missing (0: none)
	Unavailable []string `json:"unavailable,omitempty"`
}

// ErrNotReplica is returned when the destination is not a replica of the
// source.
var ErrNotReplica = errors.New("not a replica of this repository")

// Replicate copies points into dst, a replica of r (same data keys): for
// each selected point the replica lacks, oldest first, the blobs it
// references that the replica does not hold travel as they are stored
// (encrypted, compressed; verified on the way), then the point is
// committed in the replica. Each point is committed only after all it
// references is durable there, so a run killed at any moment leaves no
// broken point, and the next run copies only what is still missing. dst
// must be open for writing.
func (r *Repo) Replicate(ctx context.Context, dst *Repo, o ReplicateOptions) (*ReplicateReport, error) {
	start := time.Now()
	if dst.cfg.ReplicaOf != r.cfg.ID && dst.cfg.ID != r.cfg.ReplicaOf {
		return nil, fmt.Errorf("replicate to %s: %w %s (made with bes init --replica-of)", dst.dir, ErrNotReplica, r.dir)
	}
	if dst.keys.ChunkID([]byte("bes replica check")) != r.keys.ChunkID([]byte("bes replica check")) {
		return nil, fmt.Errorf("replicate to %s: data keys differ: %w", dst.dir, ErrNotReplica)
	}
	pts, err := r.selectPoints(ctx, o.Points)
	if err != nil {
		return nil, err
	}
	var sel []*Point
	for _, p := range pts {
		if (o.Host == "" || p.Host == o.Host) && (o.Policy == "" || p.Policy == o.Policy) && RuleSelects(o.Rule, p) {
			sel = append(sel, p)
		}
	}
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].Finished.Before(sel[j].Finished) })
	rep := &ReplicateReport{Copied: []string{}}
	s, err := dst.NewSaver(SaverOptions{})
	if err != nil {
		return nil, err
	}
	defer s.Abort()
	for i, p := range sel {
		if _, err := dst.cat.Point(ctx, p.ID); err == nil {
			rep.Present++
			if err := r.markReplicated(ctx, o.Rule, p.ID); err != nil {
				return rep, err
			}
			continue
		} else if !errors.Is(err, catalog.ErrNotFound) {
			return rep, err
		}
		if err := r.replicatePoint(ctx, dst, s, p, rep); err != nil {
			rep.Unavailable = append(rep.Unavailable, fmt.Sprintf("%s: %v", p.ID, err))
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			continue
		}
		if err := r.markReplicated(ctx, o.Rule, p.ID); err != nil {
			return rep, err
		}
		rep.Copied = append(rep.Copied, p.ID)
		if o.Progress != nil {
			o.Progress(ReplicateProgress{Points: i + 1, PointsTotal: len(sel), Bytes: rep.Bytes})
		}
	}
	for _, p := range sel {
		if _, err := dst.cat.Point(ctx, p.ID); err != nil {
			rep.LagSeconds = time.Since(p.Finished).Seconds()
			break
		}
	}
	rep.Seconds = time.Since(start).Seconds()
	if len(rep.Unavailable) > 0 {
		return rep, fmt.Errorf("replicate: %d points could not be copied (first: %s)", len(rep.Unavailable), rep.Unavailable[0])
	}
	return rep, nil
}

func (r *Repo) replicatePoint(ctx context.Context, dst *Repo, s *Saver, p *Point, rep *ReplicateReport) error {
	row, err := r.cat.Point(ctx, p.ID)
	if err != nil {
		return err
	}
	refs, err := r.pointRefs(ctx, p, row.Doc)
	if err != nil {
		return err
	}
	// What the replica lacks, by source pack, read in pack order.
	byPack := map[string][]catalog.Location{}
	for _, ref := range refs {
		ok, err := dst.cat.Reuse(ctx, ref.ID, dst.now().UnixNano())
		if err != nil {
			return err
		}
		if ok {
			rep.Reused++
			continue
		}
		l, err := r.cat.Lookup(ctx, ref.ID)
		if err != nil {
			return fmt.Errorf("chunk %x: %w", ref.ID[:8], err)
		}
		byPack[l.Pack] = append(byPack[l.Pack], l)
	}
	units := readUnits(byPack, fetchSpan)
	workers := max(2, runtime.GOMAXPROCS(0))
	prefetch := func(k int) {
		if k < len(units) {
			v := units[k]
			r.Prefetch(v[0].Pack, v[0].Offset, v[len(v)-1].Offset+v[len(v)-1].Length-v[0].Offset)
		}
	}
	for k := 0; k < fetchAhead*workers; k++ {
		prefetch(k)
	}
	var mu sync.Mutex
	err = Parallel(ctx, workers, len(units), func(i int) error {
		prefetch(i + fetchAhead*workers)
		var part ReplicateReport
		err := r.copyUnit(ctx, s, units[i], &part)
		mu.Lock()
		rep.Chunks += part.Chunks
		rep.Bytes += part.Bytes
		rep.Reused += part.Reused
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	return dst.commitCopied(ctx, s, p, row)
}

// copyUnit reads a run of blobs of one source pack and saves them, as
// stored, through s after checking each against its ID.
func (r *Repo) copyUnit(ctx context.Context, s *Saver, u []catalog.Location, rep *ReplicateReport) error {
	pk := u[0].Pack
	start := u[0].Offset
	end := u[len(u)-1].Offset + u[len(u)-1].Length
	buf := r.bufs.get(int(end - start))
	defer r.bufs.put(buf)
	buf = buf[:end-start]
	if _, err := r.packs.ReadAt(ctx, pk, buf, start); err != nil {
		return &DamageError{Pack: pk, Err: err}
	}
	plain := r.bufs.get(0)
	defer r.bufs.put(plain)
	for _, l := range u {
		stored := buf[l.Offset-start : l.Offset-start+l.Length]
		out, err := r.decode(l, stored, plain)
		if err != nil {
			return err
		}
		plain = out
		isNew, err := s.SaveStored(ctx, pack.Entry{Type: l.Type, Flags: l.Flags, ID: l.ID, Length: l.Length, RawLen: l.RawLen}, stored)
		if err != nil {
			return err
		}
		if isNew {
			rep.Chunks++
			rep.Bytes += l.Length
		} else {
			rep.Reused++
		}
	}
	r.DropCache(pk, start, end-start)
	return nil
}

// commitCopied commits, in a replica, a point whose blobs (its document
// included) were saved through s.
func (r *Repo) commitCopied(ctx context.Context, s *Saver, p *Point, row catalog.Point) error {
	if err := s.Flush(ctx); err != nil {
		return err
	}
	refs, err := r.pointRefs(ctx, p, row.Doc)
	if err != nil {
		return err
	}
	row.VerifyStatus, row.VerifiedAt = "", time.Time{}
	_, err = r.cat.CommitPoint(ctx, row, refs)
	return err
}

// SaveStored stores a blob exactly as another repository with the same
// data keys stored it (e.Type, e.Flags, e.ID, e.Length, e.RawLen; the
// caller has checked stored against e.ID) unless this repository holds it.
func (s *Saver) SaveStored(ctx context.Context, e pack.Entry, stored []byte) (bool, error) {
	if err := s.failed(); err != nil {
		return false, err
	}
	isNew, err := s.claim(ctx, crypt.ID(e.ID))
	if err != nil || !isNew {
		if err == nil {
			s.dupChunks.Add(1)
		}
		return false, err
	}
	if err := s.append(ctx, e, stored); err != nil {
		s.setErr(err)
		return false, err
	}
	s.newChunks.Add(1)
	s.newBytes.Add(e.RawLen)
	s.storedBytes.Add(int64(len(stored)))
	return true, nil
}

// RuleSelects reports whether a replica rule takes a point (nil: every
// point).
func RuleSelects(rule *catalog.ReplicaRule, p *Point) bool {
	if rule == nil {
		return true
	}
	if p.Type == TypeIncremental {
		return rule.AfterIncremental
	}
	return rule.AfterFull // full and synthetic_full
}

func (r *Repo) markReplicated(ctx context.Context, rule *catalog.ReplicaRule, id string) error {
	if rule == nil {
		return nil
	}
	return r.cat.MarkReplicated(ctx, rule.ID, id, time.Now())
}

// ReplicaStatus is a replica rule with its lag.
type ReplicaStatus struct {
	Rule    catalog.ReplicaRule
	Pending int       // points the rule takes that its replica does not hold yet
	Oldest  time.Time // the oldest of them (zero: none)
}

// AddReplicaRule records a replica rule in this (the source) repository.
func (r *Repo) AddReplicaRule(ctx context.Context, rule catalog.ReplicaRule) (int64, error) {
	if rule.Created.IsZero() {
		rule.Created = time.Now()
	}
	return r.cat.AddReplicaRule(ctx, rule)
}

// RemoveReplicaRule deletes the rule for a target.
func (r *Repo) RemoveReplicaRule(ctx context.Context, target string) error {
	return r.cat.RemoveReplicaRule(ctx, target)
}

// ReplicaRules lists the rules with their replication lag: the age of the
// oldest point a rule takes that its replica does not hold yet, as far as
// this repository has recorded (bes replicate records what it copied or
// found there).
func (r *Repo) ReplicaRules(ctx context.Context) ([]ReplicaStatus, error) {
	rules, err := r.cat.ReplicaRules(ctx)
	if err != nil {
		return nil, err
	}
	pts, err := r.Points(ctx, catalog.PointFilter{})
	if err != nil {
		return nil, err
	}
	out := make([]ReplicaStatus, 0, len(rules))
	for _, rule := range rules {
		st := ReplicaStatus{Rule: rule}
		for _, p := range pts {
			if !RuleSelects(&rule, p.Point) {
				continue
			}
			ok, err := r.cat.Replicated(ctx, rule.ID, p.ID)
			if err != nil {
				return nil, err
			}
			if !ok {
				st.Pending++
				if st.Oldest.IsZero() || p.Finished.Before(st.Oldest) {
					st.Oldest = p.Finished
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}
