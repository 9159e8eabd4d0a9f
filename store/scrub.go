package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/ec"
	"bes/store/manifest"
)

// ScrubReport is the outcome of a scrub.
type ScrubReport struct {
	Packs         int              `json:"packs"`
	Bytes         int64            `json:"bytes"`
	Damaged       []ec.CheckReport `json:"damaged,omitempty"`
	Repaired      int              `json:"repaired_packs"`
	Unrecoverable []string         `json:"unrecoverable_packs,omitempty"`
	Hits          []string         `json:"hits,omitempty"` // "point ID: file path" hit by unrecoverable packs
	Errors        []string         `json:"errors,omitempty"`
}

// Healthy reports whether the scrub found nothing left to fix.
func (s *ScrubReport) Healthy(repair bool) bool {
	if len(s.Unrecoverable) > 0 || len(s.Errors) > 0 {
		return false
	}
	return repair || len(s.Damaged) == 0
}

// OpenSet opens the erasure-coded disk set of a repository from its
// config alone: no key is needed to scrub and repair. With write it takes
// the writer lock; the returned func releases it.
func OpenSet(dir string, write bool) (*ec.Set, func(), error) {
	var cfg Config
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("open repository %s: %w", dir, ErrNoRepo)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, nil, fmt.Errorf("open repository %s: config.json: %w", dir, err)
	}
	var lock *writerLock
	if write {
		if lock, err = acquireLock(filepath.Join(dir, LockFile), "scrub", time.Now); err != nil {
			return nil, nil, fmt.Errorf("open repository %s: %w", dir, err)
		}
	}
	rl, err := acquireShared(filepath.Join(dir, ReadLockFile))
	if err != nil {
		lock.release()
		return nil, nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	set, err := ec.Open(cfg.Disks, cfg.K, cfg.M, ec.Options{PieceSize: cfg.PieceSize})
	if err != nil {
		lock.release()
		rl.release()
		return nil, nil, err
	}
	if write {
		set.SweepTemp()
	}
	return set, func() { lock.release(); rl.release() }, nil
}

// ScrubSet checks every shard and parity of every pack on the set and,
// with repair, rebuilds missing or corrupt shards from the good ones.
func ScrubSet(ctx context.Context, set *ec.Set, repair bool, progress func(done int, name string)) (*ScrubReport, error) {
	rep := &ScrubReport{}
	err := set.List(ctx, func(name string) error {
		cr, err := set.Check(ctx, name, repair)
		rep.Packs++
		rep.Bytes += cr.Size
		if progress != nil {
			progress(rep.Packs, name)
		}
		if err != nil && !errors.Is(err, ec.ErrUnrecoverable) {
			rep.Errors = append(rep.Errors, fmt.Sprintf("pack %s: %v", name, err))
			return nil
		}
		if len(cr.BadShards) > 0 || cr.Unrecoverable {
			rep.Damaged = append(rep.Damaged, cr)
		}
		if len(cr.Repaired) > 0 {
			rep.Repaired++
		}
		if cr.Unrecoverable {
			rep.Unrecoverable = append(rep.Unrecoverable, name)
		}
		return nil
	})
	return rep, err
}

// Scrub runs ScrubSet on the repository's disks, restores the config copy
// on replaced disks, and names the points and files that unrecoverable
// packs hit.
func (r *Repo) Scrub(ctx context.Context, repair bool, progress func(done int, name string)) (*ScrubReport, error) {
	if r.set == nil {
		return nil, errors.New("scrub checks erasure-coded shards on disks; an S3 repository has none (the bucket keeps its own redundancy): use bes verify --read-data")
	}
	rep, err := ScrubSet(ctx, r.set, repair, progress)
	if err != nil {
		return rep, err
	}
	if repair {
		if err := r.repairDiskCopies(); err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
	}
	if len(rep.Unrecoverable) > 0 {
		hits, err := r.pointsHitBy(ctx, rep.Unrecoverable)
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
		}
		rep.Hits = hits
	}
	return rep, nil
}

func (r *Repo) repairDiskCopies() error { return repairDiskCopies(r.dir, r.cfg) }

// RepairDiskIdentity writes the repository's identity (config and wrapped
// key slots) onto every disk that lost it, such as a replaced disk after
// its shards were repaired. It needs no key.
func RepairDiskIdentity(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return fmt.Errorf("repair disk identity: %w", err)
	}
	var cfg Config
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("repair disk identity: config.json: %w", err)
	}
	return repairDiskCopies(dir, cfg)
}

func repairDiskCopies(dir string, cfg Config) error {
	var slots []crypt.Slot
	names, _ := filepath.Glob(filepath.Join(dir, KeysDir, "*.json"))
	for _, n := range names {
		var s crypt.Slot
		if b, err := os.ReadFile(n); err == nil && json.Unmarshal(b, &s) == nil {
			slots = append(slots, s)
		}
	}
	for _, d := range cfg.Disks {
		if _, err := os.Stat(filepath.Join(d, DiskCopy)); err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		b, _ := json.MarshalIndent(diskCopy{Config: cfg, Slots: slots}, "", "  ")
		if err := writeFileAtomic(filepath.Join(d, DiskCopy), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// pointsHitBy names every point and file that references a blob stored in
// one of the given packs.
func (r *Repo) pointsHitBy(ctx context.Context, packs []string) ([]string, error) {
	lost := map[crypt.ID]bool{}
	for _, p := range packs {
		blobs, err := r.cat.PackBlobs(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, b := range blobs {
			lost[crypt.ID(b.ID)] = true
		}
	}
	infos, err := r.Points(ctx, catalog.PointFilter{})
	if err != nil {
		return nil, err
	}
	var hits []string
	for _, pi := range infos {
		for _, m := range pi.Manifest {
			if lost[m.ID] {
				hits = append(hits, pi.ID+": manifest")
			}
		}
		err := r.WalkManifest(ctx, pi.Point, func(e *manifest.Entry) error {
			for _, c := range e.Chunks {
				if lost[c.ID] {
					hits = append(hits, pi.ID+": "+e.Path)
					break
				}
			}
			return nil
		})
		if err != nil {
			hits = append(hits, fmt.Sprintf("%s: manifest unreadable: %v", pi.ID, err))
		}
	}
	return hits, nil
}
