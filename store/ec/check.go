package ec

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// CheckReport is the result of scrubbing one pack.
type CheckReport struct {
	Name          string
	Size          int64
	BadShards     []int    // shard indexes missing, unreadable, or with any bad piece/header/footer
	Repaired      []int    // shard indexes rewritten (repair=true only)
	Unrecoverable bool     // some stripe has fewer than k good pieces
	Detail        []string // human-readable findings
}

const maxPieceDetails = 5 // per shard, before summarising

// Check scrubs pack name: it reads and verifies every piece of every shard
// and, where a stripe is complete, verifies parity consistency. With repair
// it rebuilds every bad shard from the good ones and installs it atomically
// (recreating wiped or deleted disk directories). The returned error is
// ErrNotFound (wrapped), a context error, or a repair/I/O failure; findings
// about the pack itself are in the report.
func (s *Set) Check(ctx context.Context, name string, repair bool) (CheckReport, error) {
	rep := CheckReport{Name: name}
	if err := checkNameErr(name); err != nil {
		return rep, err
	}
	pm, err := s.loadMeta(name)
	if err != nil {
		return rep, err
	}
	n := s.k + s.m
	bad := make([]bool, n)
	for i, sh := range pm.shards {
		if sh.err != nil {
			bad[i] = true
			rep.Detail = append(rep.Detail, fmt.Sprintf("%s: shard %d: %v", s.diskName(i), i, sh.err))
		}
	}
	if pm.good == 0 {
		rep.Unrecoverable = true
		rep.Detail = append(rep.Detail, "no readable shard: pack length unknown")
		rep.BadShards = indexes(bad)
		return rep, nil
	}
	g := pm.g
	rep.Size = g.Size
	if pm.good < s.k {
		rep.Unrecoverable = true
		rep.Detail = append(rep.Detail, fmt.Sprintf("only %d of %d shards readable, need %d", pm.good, n, s.k))
	} else if err := s.scan(ctx, pm, bad, &rep); err != nil {
		return rep, err
	}
	rep.BadShards = indexes(bad)
	if !repair || len(rep.BadShards) == 0 {
		return rep, nil
	}
	if rep.Unrecoverable {
		rep.Detail = append(rep.Detail, "repair skipped: pack is unrecoverable")
		return rep, nil
	}
	repaired, err := s.rebuild(ctx, pm, bad)
	rep.Repaired = repaired
	for _, i := range repaired {
		rep.Detail = append(rep.Detail, fmt.Sprintf("%s: shard %d rebuilt", s.diskName(i), i))
	}
	s.dropMeta(name)
	return rep, err
}

func indexes(b []bool) []int {
	var out []int
	for i, v := range b {
		if v {
			out = append(out, i)
		}
	}
	return out
}

// scan reads every piece of every usable shard, marking bad shards and
// unrecoverable stripes in rep.
func (s *Set) scan(ctx context.Context, pm *packMeta, bad []bool, rep *CheckReport) error {
	n := s.k + s.m
	r := s.newReader(pm)
	defer r.close()
	g := pm.g
	pieceErrs := make([]int, n)
	all := make([]int, 0, n)
	ok := make([]bool, n)
	for j := 0; j < g.N; j++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		all = all[:0]
		clear(ok)
		for i := range n {
			if r.dead[i] == nil {
				all = append(all, i)
			}
		}
		if len(all) > 0 {
			r.readPieces(j, all, ok, func(i int, err error) {
				bad[i] = true
				pieceErrs[i]++
				if pieceErrs[i] <= maxPieceDetails {
					rep.Detail = append(rep.Detail, fmt.Sprintf("%s: shard %d stripe %d %v", s.diskName(i), i, j, err))
				}
			})
		}
		good := 0
		for _, v := range ok {
			if v {
				good++
			}
		}
		if good < s.k {
			rep.Unrecoverable = true
			rep.Detail = append(rep.Detail, fmt.Sprintf("stripe %d: only %d good pieces, need %d", j, good, s.k))
			continue
		}
		if good < n || s.m == 0 {
			continue
		}
		plen := g.pieceLen(j)
		shards := make([][]byte, n)
		for i := range n {
			shards[i] = r.bufs[i][:plen]
		}
		consistent, err := s.enc.Verify(shards)
		if err != nil {
			return fmt.Errorf("ec: verify pack %s stripe %d: %w", pm.name, j, err)
		}
		if consistent {
			continue
		}
		if culprit := s.locate(shards); culprit >= 0 {
			bad[culprit] = true
			rep.Detail = append(rep.Detail, fmt.Sprintf("%s: shard %d stripe %d inconsistent with the other shards (checksum valid)",
				s.diskName(culprit), culprit, j))
		} else {
			// Cannot tell which piece is wrong: trust the data, rebuild parity.
			for i := s.k; i < n; i++ {
				bad[i] = true
			}
			rep.Detail = append(rep.Detail, fmt.Sprintf("stripe %d: parity inconsistent with data, culprit unknown; parity shards marked bad", j))
		}
	}
	for i, c := range pieceErrs {
		if c > maxPieceDetails {
			rep.Detail = append(rep.Detail, fmt.Sprintf("%s: shard %d: %d bad pieces in total", s.diskName(i), i, c))
		}
	}
	return nil
}

// locate finds the single piece of an inconsistent complete stripe whose
// removal makes the rest consistent (needs m >= 2); -1 if none is unique.
func (s *Set) locate(shards [][]byte) int {
	if s.m < 2 {
		return -1
	}
	found := -1
	for c := range shards {
		trial := make([][]byte, len(shards))
		for i := range shards {
			if i != c {
				trial[i] = append([]byte(nil), shards[i]...)
			}
		}
		if err := s.enc.Reconstruct(trial); err != nil {
			continue
		}
		if ok, err := s.enc.Verify(trial); err == nil && ok {
			if found >= 0 {
				return -1
			}
			found = c
		}
	}
	return found
}

// rebuild regenerates every shard with bad[i] from the others and installs
// it. It returns the shards successfully rewritten.
func (s *Set) rebuild(ctx context.Context, pm *packMeta, bad []bool) ([]int, error) {
	n := s.k + s.m
	g := pm.g
	targets := indexes(bad)
	files := make([]shardFile, n)
	paths := make([]string, n)
	crcs := make([][]uint32, n)
	var errs []error
	failed := make([]bool, n)
	fail := func(i int, op string, err error) {
		failed[i] = true
		errs = append(errs, fmt.Errorf("ec: repair: %s shard %d of pack %s on %s: %w", op, i, pm.name, s.dirs[i], err))
		if files[i] != nil {
			files[i].Close()
			files[i] = nil
		}
	}
	defer func() {
		for i := range n {
			if files[i] != nil {
				files[i].Close()
			}
			if paths[i] != "" {
				removeQuiet(paths[i])
			}
		}
	}()
	for _, i := range targets {
		f, p, err := s.createTemp(i, pm.name)
		if err != nil {
			fail(i, "create temp for", err)
			continue
		}
		files[i], paths[i] = f, p
		h := header{K: s.k, M: s.m, Index: i, PieceSize: g.P, Name: pm.name}
		if err := writeFull(f, h.encode()); err != nil {
			fail(i, "write", err)
		}
	}
	r := s.newReader(pm)
	defer r.close()
	want := make([]bool, n)
	copy(want, bad)
	for j := 0; j < g.N; j++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := r.stripe(j, want, bad); err != nil {
			return nil, fmt.Errorf("ec: repair: %w", err)
		}
		for _, i := range targets {
			if failed[i] {
				continue
			}
			piece := r.bufs[i][:g.pieceLen(j)]
			crcs[i] = append(crcs[i], crc(piece))
			if err := writeFull(files[i], piece); err != nil {
				fail(i, "write", err)
			}
		}
	}
	var done []int
	for _, i := range targets {
		if failed[i] {
			continue
		}
		f := footer{Size: g.Size, Stripes: g.N, LastPiece: g.LastP, CRCs: crcs[i]}
		if err := writeFull(files[i], f.encode()); err != nil {
			fail(i, "write footer of", err)
			continue
		}
		if err := files[i].Sync(); err != nil {
			fail(i, "fsync", err)
			continue
		}
		err := files[i].Close()
		files[i] = nil
		if err != nil {
			fail(i, "close", err)
			continue
		}
		if err := s.install(i, pm.name, paths[i]); err != nil {
			fail(i, "install", err)
			continue
		}
		paths[i] = ""
		done = append(done, i)
	}
	sort.Ints(done)
	return done, errors.Join(errs...)
}
