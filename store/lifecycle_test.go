package store

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/pack"
)

// commitTestPoint stores the given chunks and commits a point of host h
// whose manifest references them.
func commitTestPoint(t *testing.T, r *Repo, host string, chunks [][]byte) (*Point, []crypt.ID) {
	t.Helper()
	ctx := context.Background()
	s, err := r.NewSaver(SaverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []crypt.ID
	for _, c := range chunks {
		id, _, err := s.Save(ctx, pack.TypeData, c)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	mw := r.NewManifestWriter(ctx, s)
	mw.Write(testManifest(t, 2, ids))
	refs, err := mw.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := r.NewPoint(ctx, KindFile, host)
	if err != nil {
		t.Fatal(err)
	}
	p.Manifest = refs
	p.Finished = r.Now().UTC()
	if err := r.CommitPoint(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	return p, ids
}

func openGC(t *testing.T, r *Repo) *Repo {
	t.Helper()
	g, err := Open(context.Background(), OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), GC: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

func refsOf(t *testing.T, r *Repo, id crypt.ID) int64 {
	t.Helper()
	n, _, err := r.cat.Refs(context.Background(), catalog.ChunkID(id))
	if errors.Is(err, catalog.ErrNotFound) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestForgetThenGCFreesOnlyGarbage(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 2, 1)
	shared := randBytes(1, 300<<10)
	p1, ids1 := commitTestPoint(t, r, "h", [][]byte{shared, randBytes(2, 700<<10), randBytes(3, 500<<10)})
	p2, ids2 := commitTestPoint(t, r, "h", [][]byte{shared, randBytes(4, 600<<10)})
	if n := refsOf(t, r, ids1[0]); n != 2 {
		t.Fatalf("shared chunk refs = %d, want 2", n)
	}
	if _, err := r.Forget(ctx, []string{p1.ID}); err != nil {
		t.Fatal(err)
	}
	if n := refsOf(t, r, ids1[0]); n != 1 {
		t.Fatalf("shared chunk refs after forget = %d, want 1", n)
	}
	if n := refsOf(t, r, ids1[1]); n != 0 {
		t.Fatalf("forgotten chunk refs = %d, want 0", n)
	}
	before, _ := r.cat.Stats(ctx)
	g := openGC(t, r)
	rep, err := g.GC(ctx, GCOptions{DryRun: true})
	if err != nil || rep.GarbageChunks < 2 {
		t.Fatalf("dry run: %+v %v", rep, err)
	}
	if after, _ := r.cat.Stats(ctx); after != before {
		t.Fatalf("dry run changed the index: %+v -> %+v", before, after)
	}
	rep, err = g.GC(ctx, GCOptions{RepackBelow: 100, MaxRepackPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	if rep.GarbageChunks < 2 || rep.PacksDeleted == 0 || rep.BytesFreed <= 0 {
		t.Fatalf("gc: %+v", rep)
	}
	for _, id := range ids1[1:] {
		if n := refsOf(t, r, id); n != -1 {
			t.Fatalf("garbage chunk still indexed (refs %d)", n)
		}
	}
	for _, id := range append([]crypt.ID{ids1[0]}, ids2...) {
		if _, err := r.LoadBlob(ctx, id, nil); err != nil {
			t.Fatalf("live chunk after gc: %v", err)
		}
	}
	if _, err := r.FindPoint(ctx, p2.ID); err != nil {
		t.Fatal(err)
	}
	rv, err := r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || rv.Damaged() {
		t.Fatalf("verify after gc: %+v %v", rv, err)
	}
	// The forgotten point stays forgotten through a catalog rebuild.
	g.Close()
	if _, err := r.RebuildCatalog(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FindPoint(ctx, p1.ID); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("forgotten point after rebuild: %v", err)
	}
	if n := refsOf(t, r, ids2[1]); n != 1 {
		t.Fatalf("refs after rebuild = %d, want 1", n)
	}
}

// A backup's chunks that no point references yet, and garbage a backup
// reuses, survive a collection running beside it.
func TestGCSparesRunningWriter(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 2, 1)
	old, oldIDs := commitTestPoint(t, r, "h", [][]byte{randBytes(10, 200<<10), randBytes(11, 200<<10)})
	if _, err := r.Forget(ctx, []string{old.ID}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	time.Sleep(2 * time.Millisecond)
	w, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s, _ := w.NewSaver(SaverOptions{})
	newID, _, err := s.Save(ctx, pack.TypeData, randBytes(12, 300<<10))
	if err != nil {
		t.Fatal(err)
	}
	// Reuse of garbage: the forgotten chunk is saved again, i.e. reused.
	if id, isNew, err := s.Save(ctx, pack.TypeData, randBytes(10, 200<<10)); err != nil || isNew || id != oldIDs[0] {
		t.Fatalf("reuse of garbage: new=%v %v", isNew, err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	g := openGC(t, w)
	rep, err := g.GC(ctx, GCOptions{RepackBelow: 100, MaxRepackPercent: 100})
	if err != nil {
		t.Fatal(err)
	}
	if refsOf(t, w, newID) != 0 || refsOf(t, w, oldIDs[0]) != 0 {
		t.Fatalf("gc beside a writer removed its chunks: %+v", rep)
	}
	if refsOf(t, w, oldIDs[1]) != -1 {
		t.Fatalf("garbage nobody reused survived: %+v", rep)
	}
	mw := w.NewManifestWriter(ctx, s)
	mw.Write(testManifest(t, 1, []crypt.ID{newID, oldIDs[0]}))
	mrefs, _ := mw.Close()
	p, _, _ := w.NewPoint(ctx, KindFile, "h")
	p.Manifest = mrefs
	if err := w.CommitPoint(ctx, s, p); err != nil {
		t.Fatalf("commit after gc: %v", err)
	}
	rv, err := w.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || rv.Damaged() {
		t.Fatalf("verify: %+v %v", rv, err)
	}
}

// A commit that references a chunk the index lost fails; nothing is
// committed.
func TestCommitRefusesMissingChunk(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 1, 0)
	s, _ := r.NewSaver(SaverOptions{})
	mw := r.NewManifestWriter(ctx, s)
	mw.Write(testManifest(t, 1, []crypt.ID{{1, 2, 3}}))
	refs, _ := mw.Close()
	p, _, _ := r.NewPoint(ctx, KindFile, "h")
	p.Manifest = refs
	err := r.CommitPoint(ctx, s, p)
	if !errors.Is(err, catalog.ErrMissingChunk) {
		t.Fatalf("commit with a missing chunk: %v", err)
	}
	if ps, _ := r.Points(ctx, catalog.PointFilter{}); len(ps) != 0 {
		t.Fatalf("%d points committed", len(ps))
	}
}

func clearImmutable(t *testing.T, dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			setFileImmutable(p, false)
		}
		return nil
	})
}

func TestLockHoldsAgainstForgetGCRebuildAndClock(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 2, 1)
	p, ids := commitTestPoint(t, r, "h", [][]byte{randBytes(20, 400<<10)})
	until := time.Now().Add(365 * 24 * time.Hour)
	if _, err := r.Lock(ctx, p.ID, time.Now().Add(-time.Hour)); err == nil {
		t.Fatal("lock in the past accepted")
	}
	res, err := r.Lock(ctx, p.ID, until)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getuid() == 0 && res.Immutable == 0 {
		t.Logf("shard files not made immutable here: %s", res.Note)
	}
	if _, err := r.Forget(ctx, []string{p.ID}); !errors.Is(err, ErrPointLocked) {
		t.Fatalf("forget of a locked point: %v", err)
	}
	// A shorter lock never shortens it.
	if res, err := r.Lock(ctx, p.ID, until.Add(-time.Hour)); err != nil || res.Until.Before(until.Add(-time.Second)) {
		t.Fatalf("shorter lock: %+v %v", res, err)
	}
	if res.Immutable > 0 {
		shard := r.set.ShardPaths(packOf(t, r, ids[0]))[0]
		if err := os.Remove(shard); err == nil {
			t.Fatal("an immutable shard file was deleted")
		}
	}
	g := openGC(t, r)
	if _, err := g.GC(ctx, GCOptions{RepackBelow: 100, MaxRepackPercent: 100}); err != nil {
		t.Fatal(err)
	}
	g.Close()
	if _, err := r.LoadBlob(ctx, ids[0], nil); err != nil {
		t.Fatalf("locked chunk after gc: %v", err)
	}
	// The lock survives a rebuilt catalog.
	if _, err := r.RebuildCatalog(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Forget(ctx, []string{p.ID}); !errors.Is(err, ErrPointLocked) {
		t.Fatalf("forget after rebuild: %v", err)
	}
	r.Close()
	// The system clock set back a year (past the lock's end) does not end it.
	back := func() time.Time { return time.Now().Add(2 * 365 * 24 * time.Hour) }
	r2, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), Write: true, Now: back})
	if err != nil {
		t.Fatal(err)
	}
	r2.Close() // the clock's mark moved two years ahead
	r3, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), Write: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if now := r3.GuardedNow(); now.Before(until) {
		t.Fatalf("guarded clock went back to %v", now)
	}
	// ...and once the (guarded) time is past the lock, it ends.
	if _, err := r3.Forget(ctx, []string{p.ID}); err != nil {
		t.Fatalf("forget after the lock ended: %v", err)
	}
}

func TestClockGuardNeverGoesBack(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 1, 0)
	p, _ := commitTestPoint(t, r, "h", [][]byte{randBytes(30, 1000)})
	until := time.Now().Add(24 * time.Hour)
	if _, err := r.Lock(ctx, p.ID, until); err != nil {
		t.Fatal(err)
	}
	r.Close()
	// The system clock set back a year: the lock still holds.
	yearAgo := func() time.Time { return time.Now().Add(-365 * 24 * time.Hour) }
	r2, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), Write: true, Now: yearAgo})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if r2.GuardedNow().Before(time.Now().Add(-time.Minute)) {
		t.Fatalf("guarded clock followed the system clock back: %v", r2.GuardedNow())
	}
	if _, err := r2.Forget(ctx, []string{p.ID}); !errors.Is(err, ErrPointLocked) {
		t.Fatalf("forget with the clock set back: %v", err)
	}
	r2.Close()
	// Even with the clock file gone: the newest point's time is a floor.
	os.Remove(filepath.Join(r.Dir(), ClockFile))
	r3, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), Write: true, Now: yearAgo})
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	if _, err := r3.Forget(ctx, []string{p.ID}); !errors.Is(err, ErrPointLocked) {
		t.Fatalf("forget with the clock set back and no clock file: %v", err)
	}
	if !strings.Contains(ErrPointLocked.Error(), "locked") {
		t.Fatal(ErrPointLocked)
	}
}

func packOf(t *testing.T, r *Repo, id crypt.ID) string {
	t.Helper()
	l, err := r.Lookup(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return l.Pack
}

func TestReplicaRulesAndLag(t *testing.T) {
	ctx := context.Background()
	src := testRepo(t, 2, 1)
	full, _ := commitTestPoint(t, src, "h", [][]byte{randBytes(40, 100<<10)})
	incr, _ := commitTestPoint(t, src, "h", [][]byte{randBytes(41, 100<<10)})
	if full.Type != TypeFull || incr.Type != TypeIncremental {
		t.Fatalf("types %s %s", full.Type, incr.Type)
	}
	dst, err := Init(ctx, InitOptions{Dir: filepath.Join(t.TempDir(), "rep"), K: 1, M: 1, KEK: crypt.Passphrase([]byte("other")), ReplicaOf: src})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	id, err := src.AddReplicaRule(ctx, catalog.ReplicaRule{Target: dst.Dir(), AfterFull: true, Offsite: true})
	if err != nil {
		t.Fatal(err)
	}
	sts, err := src.ReplicaRules(ctx)
	if err != nil || len(sts) != 1 || sts[0].Pending != 1 || sts[0].Oldest.IsZero() {
		t.Fatalf("before: %+v %v", sts, err)
	}
	rule := sts[0].Rule
	rep, err := src.Replicate(ctx, dst, ReplicateOptions{Rule: &rule})
	if err != nil || len(rep.Copied) != 1 || rep.Copied[0] != full.ID {
		t.Fatalf("replicate by rule: %+v %v", rep, err)
	}
	if _, err := dst.FindPoint(ctx, incr.ID); err == nil {
		t.Fatal("an after-full rule copied an incremental")
	}
	sts, _ = src.ReplicaRules(ctx)
	if sts[0].Pending != 0 || !sts[0].Oldest.IsZero() || sts[0].Rule.ID != id {
		t.Fatalf("after: %+v", sts)
	}
	if err := src.RemoveReplicaRule(ctx, dst.Dir()); err != nil {
		t.Fatal(err)
	}
	if sts, _ := src.ReplicaRules(ctx); len(sts) != 0 {
		t.Fatalf("rules after remove: %+v", sts)
	}
}
