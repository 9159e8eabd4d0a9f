package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"bes/store/catalog"
	"bes/store/pack"
)

// ErrPointLocked is returned when a locked (immutable) point would be
// removed; it is catalog.ErrPointLocked.
var ErrPointLocked = catalog.ErrPointLocked

// Forget removes restore points. Each is first recorded as forgotten by a
// tombstone blob in a pack (so a catalog rebuild does not bring it back),
// then its catalog row goes and its references are dropped in one
// transaction; the chunks only it referenced become garbage for gc. A
// locked point is refused (ErrPointLocked) before anything is written.
// The repository must be open for writing.
func (r *Repo) Forget(ctx context.Context, ids []string) ([]string, error) {
	if r.lock == nil || r.gc {
		return nil, errors.New("store: forget: repository not opened for writing")
	}
	var pts []*catalog.Point
	now := r.GuardedNow()
	for _, id := range ids {
		row, err := r.cat.Point(ctx, id)
		if err != nil {
			return nil, err
		}
		if row.RetainUntil.After(now) {
			return nil, fmt.Errorf("forget %s: locked until %s: %w", row.ID, row.RetainUntil.UTC().Format(time.RFC3339), ErrPointLocked)
		}
		pts = append(pts, &row)
	}
	s, err := r.NewSaver(SaverOptions{})
	if err != nil {
		return nil, err
	}
	defer s.Abort()
	var done []string
	for _, row := range pts {
		p, err := decodePoint(*row)
		if err != nil {
			return done, err
		}
		refs, err := r.pointRefs(ctx, p, row.Doc)
		if err != nil {
			return done, err
		}
		tomb, err := json.Marshal(&Point{ID: p.ID, Kind: p.Kind, Host: p.Host, Chain: p.Chain, Type: p.Type,
			Status: "forgotten", Started: p.Started, Finished: p.Finished, Forgotten: r.GuardedNow().UTC()})
		if err != nil {
			return done, err
		}
		tid, _, err := s.Save(ctx, pack.TypePoint, tomb)
		if err != nil {
			return done, fmt.Errorf("forget %s: tombstone: %w", p.ID, err)
		}
		if err := s.Flush(ctx); err != nil {
			return done, fmt.Errorf("forget %s: tombstone: %w", p.ID, err)
		}
		// Tombstones stay referenced for good (a few hundred bytes each).
		changes := append(negate(refs), catalog.Ref{ID: catalog.ChunkID(tid), N: 1})
		if err := r.cat.RemovePoint(ctx, p.ID, changes, r.GuardedNow()); err != nil {
			return done, fmt.Errorf("forget %s: %w", p.ID, err)
		}
		done = append(done, p.ID)
	}
	return done, nil
}

// LockResult is what Lock did.
type LockResult struct {
	Point     string    `json:"point"`
	Until     time.Time `json:"until"`
	Packs     int       `json:"packs"`
	Immutable int       `json:"immutable_packs"` // packs whose shard files got the immutable attribute
	Note      string    `json:"note,omitempty"`
}

// Lock makes a point immutable until the given time: forget, gc and any
// other deletion refuse it and every chunk it references before then. A
// lock is only ever extended. The point's document is stored again with
// the lock in it (a catalog rebuild keeps the lock), the packs holding its
// chunks are marked locked, and the medium keeps them too where it can:
// on a disk set, as root on a file system that has it, their shard files
// get the immutable attribute (chattr +i) until every lock on them has
// expired (gc clears it); in an S3 bucket with Object Lock, the pack
// objects get a retention until then.
func (r *Repo) Lock(ctx context.Context, id string, until time.Time) (*LockResult, error) {
	if r.lock == nil || r.gc {
		return nil, errors.New("store: lock: repository not opened for writing")
	}
	now := r.GuardedNow()
	if !until.After(now) {
		return nil, fmt.Errorf("lock %s: %s is not in the future (repository clock %s)", id, until.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	row, err := r.cat.Point(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := decodePoint(row)
	if err != nil {
		return nil, err
	}
	res := &LockResult{Point: p.ID, Until: until.UTC()}
	if p.RetainUntil.After(until) {
		res.Until = p.RetainUntil.UTC()
		res.Note = "already locked longer; a lock is never shortened"
	} else if !p.RetainUntil.Equal(until) {
		p.RetainUntil = until.UTC()
		doc, err := json.Marshal(p)
		if err != nil {
			return nil, err
		}
		s, err := r.NewSaver(SaverOptions{})
		if err != nil {
			return nil, err
		}
		defer s.Abort()
		nid, _, err := s.Save(ctx, pack.TypePoint, doc)
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", p.ID, err)
		}
		if err := s.Flush(ctx); err != nil {
			return nil, fmt.Errorf("lock %s: %w", p.ID, err)
		}
		oid := r.keys.ChunkID(row.Doc)
		changes := []catalog.Ref{{ID: catalog.ChunkID(nid), N: 1}, {ID: catalog.ChunkID(oid), N: -1}}
		if err := r.cat.UpdatePointDoc(ctx, p.ID, doc, p.RetainUntil, changes, r.GuardedNow()); err != nil {
			return nil, fmt.Errorf("lock %s: %w", p.ID, err)
		}
		row.Doc = doc
	}
	r.clock.save()
	refs, err := r.pointRefs(ctx, p, row.Doc)
	if err != nil {
		return nil, err
	}
	packs := map[string]bool{}
	for _, ref := range refs {
		l, err := r.cat.Lookup(ctx, ref.ID)
		if err != nil {
			return nil, fmt.Errorf("lock %s: chunk %x: %w", p.ID, ref.ID[:8], err)
		}
		packs[l.Pack] = true
	}
	res.Packs = len(packs)
	var immErr error
	for name := range packs {
		if err := r.cat.LockPack(ctx, name, res.Until); err != nil {
			return nil, err
		}
		if immErr != nil {
			continue
		}
		if err := r.packs.Retain(ctx, name, res.Until); err != nil {
			immErr = err
			continue
		}
		if err := r.cat.SetImmutable(ctx, name, true); err != nil {
			return nil, err
		}
		res.Immutable++
	}
	if immErr != nil {
		res.Note = fmt.Sprintf("shard files not made immutable: %v (the catalog lock still holds)", immErr)
	}
	return res, nil
}

// fsImmutableFL is FS_IMMUTABLE_FL of <linux/fs.h>.
const fsImmutableFL = 0x00000010

func setFileImmutable(path string, on bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("read attributes of %s: %w", path, err)
	}
	nf := flags &^ fsImmutableFL
	if on {
		nf |= fsImmutableFL
	}
	if nf == flags {
		return nil
	}
	v := int(nf)
	if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, v); err != nil {
		return fmt.Errorf("set attributes of %s: %w", path, err)
	}
	return nil
}

// clearExpiredImmutable removes the immutable attribute from the shard
// files of every pack whose locks have all expired.
func (r *Repo) clearExpiredImmutable(ctx context.Context) (int, error) {
	names, err := r.cat.ExpiredImmutable(ctx, r.GuardedNow())
	if err != nil {
		return 0, err
	}
	n := 0
	for _, name := range names {
		if err := r.packs.Release(ctx, name); err != nil {
			return n, fmt.Errorf("unlock pack %s: %w", name, err)
		}
		if err := r.cat.SetImmutable(ctx, name, false); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// isImmutable reports whether any of the files carries the immutable
// attribute.
func isImmutable(paths []string) bool {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		f.Close()
		if err == nil && flags&fsImmutableFL != 0 {
			return true
		}
	}
	return false
}
