package store

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/s3store/s3test"
)

// backend makes repositories of one kind for the backend suite.
type backend struct {
	name string
	// addr returns a fresh repository address and the options to open it.
	addr func(t *testing.T) (string, OpenOptions)
}

func diskBackend() backend {
	return backend{name: "disks", addr: func(t *testing.T) (string, OpenOptions) {
		dir := filepath.Join(t.TempDir(), "repo")
		t.Cleanup(func() { clearImmutable(t, filepath.Dir(dir)) })
		return dir, OpenOptions{Dir: dir}
	}}
}

func s3Backend(srv *s3test.Server) backend {
	n := 0
	return backend{name: "s3", addr: func(t *testing.T) (string, OpenOptions) {
		n++
		addr := srv.URL("bes-suite", t.Name()+"-"+string(rune('a'+n)))
		env := map[string]string{"AWS_ACCESS_KEY_ID": srv.AccessKey, "AWS_SECRET_ACCESS_KEY": srv.SecretKey, "AWS_DEFAULT_REGION": srv.Region}
		return addr, OpenOptions{Dir: addr, StateDir: t.TempDir(), Getenv: func(k string) string { return env[k] }}
	}}
}

func (b backend) init(t *testing.T, o InitOptions) (*Repo, OpenOptions) {
	t.Helper()
	addr, oo := b.addr(t)
	o.Dir, o.StateDir, o.Getenv, o.ObjectLock = addr, oo.StateDir, oo.Getenv, true
	if o.KEK == nil {
		o.KEK = crypt.Passphrase([]byte("pw"))
	}
	if o.K == 0 {
		o.K, o.M = 2, 1
	}
	if o.PackSize == 0 {
		o.PackSize, o.PieceSize = 1<<20, 4096
	}
	r, err := Init(context.Background(), o)
	if err != nil {
		t.Fatalf("%s: init: %v", b.name, err)
	}
	t.Cleanup(func() { r.Close() })
	oo.KEK = o.KEK
	return r, oo
}

// TestBackends runs the same suite on the local erasure-coded disk set and
// on a real S3 server (versitygw, a separate process on 127.0.0.1).
func TestBackends(t *testing.T) {
	srv := s3test.Start(t)
	for _, b := range []backend{diskBackend(), s3Backend(srv)} {
		t.Run(b.name, func(t *testing.T) {
			t.Run("points", func(t *testing.T) { suitePoints(t, b) })
			t.Run("gc", func(t *testing.T) { suiteGC(t, b) })
			t.Run("lock", func(t *testing.T) { suiteLock(t, b) })
			t.Run("rebuild", func(t *testing.T) { suiteRebuild(t, b) })
			t.Run("replicate-from", func(t *testing.T) { suiteReplicate(t, b, diskBackend()) })
			t.Run("replicate-to", func(t *testing.T) { suiteReplicate(t, diskBackend(), b) })
		})
	}
}

func loadAll(t *testing.T, r *Repo, ids []crypt.ID, want [][]byte) {
	t.Helper()
	for i, id := range ids {
		got, err := r.LoadBlob(context.Background(), id, nil)
		if err != nil {
			t.Fatalf("load chunk %d: %v", i, err)
		}
		if want != nil && !bytes.Equal(got, want[i]) {
			t.Fatalf("chunk %d differs", i)
		}
	}
}

func suitePoints(t *testing.T, b backend) {
	ctx := context.Background()
	r, _ := b.init(t, InitOptions{})
	data := [][]byte{randBytes(1, 900<<10), randBytes(2, 1500<<10), randBytes(3, 10)}
	p, ids := commitTestPoint(t, r, "h", data)
	loadAll(t, r, ids, data)
	got, err := r.FindPoint(ctx, p.ID)
	if err != nil || got.ID != p.ID {
		t.Fatalf("find point: %v", err)
	}
	rep, err := r.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || rep.Damaged() || rep.ChunksChecked < 3 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func suiteGC(t *testing.T, b backend) {
	ctx := context.Background()
	r, oo := b.init(t, InitOptions{})
	keep := randBytes(5, 400<<10)
	p1, ids1 := commitTestPoint(t, r, "h", [][]byte{keep, randBytes(6, 700<<10)})
	_, ids2 := commitTestPoint(t, r, "h", [][]byte{keep, randBytes(7, 300<<10)})
	if _, err := r.Forget(ctx, []string{p1.ID}); err != nil {
		t.Fatal(err)
	}
	r.Close()
	oo.GC = true
	g, err := Open(ctx, oo)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := g.GC(ctx, GCOptions{RepackBelow: 100, MaxRepackPercent: 100})
	g.Close()
	if err != nil || rep.GarbageChunks == 0 || rep.PacksDeleted == 0 || rep.TrashPending != 0 {
		t.Fatalf("gc: %+v %v", rep, err)
	}
	oo.GC = false
	r2, err := Open(ctx, oo)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	if n := refsOf(t, r2, ids1[1]); n != -1 {
		t.Fatalf("garbage chunk still indexed after gc (refs %d)", n)
	}
	loadAll(t, r2, ids2, nil)
	n := 0
	r2.packs.List(ctx, func(string) error { n++; return nil })
	st, _ := r2.cat.Stats(ctx)
	if int64(n) != st.Packs {
		t.Fatalf("%d packs stored, %d indexed: gc left files behind", n, st.Packs)
	}
}

func suiteLock(t *testing.T, b backend) {
	ctx := context.Background()
	r, _ := b.init(t, InitOptions{})
	p, ids := commitTestPoint(t, r, "h", [][]byte{randBytes(8, 200<<10)})
	res, err := r.Lock(ctx, p.ID, time.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: lock: %+v", b.name, res)
	if _, err := r.Forget(ctx, []string{p.ID}); !errors.Is(err, ErrPointLocked) {
		t.Fatalf("forget of a locked point: %v", err)
	}
	if res.Immutable > 0 {
		name := packOf(t, r, ids[0])
		if err := r.packs.Remove(ctx, name); err == nil {
			if _, serr := r.packs.Size(ctx, name); serr != nil {
				t.Fatalf("%s: a retained pack was deleted", b.name)
			}
		}
	}
	loadAll(t, r, ids, nil)
}

func suiteRebuild(t *testing.T, b backend) {
	ctx := context.Background()
	r, oo := b.init(t, InitOptions{})
	data := [][]byte{randBytes(9, 600<<10), randBytes(10, 2<<20)}
	p, ids := commitTestPoint(t, r, "h", data)
	r.Close()
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(r.Dir(), catalog.FileName+sfx))
	}
	oo.Write = true
	r2, err := Open(ctx, oo)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	rep, err := r2.RebuildCatalog(ctx, nil)
	if err != nil || rep.Points != 1 {
		t.Fatalf("rebuild: %+v %v", rep, err)
	}
	if _, err := r2.FindPoint(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	loadAll(t, r2, ids, data)
}

func suiteReplicate(t *testing.T, from, to backend) {
	ctx := context.Background()
	src, _ := from.init(t, InitOptions{})
	data := [][]byte{randBytes(11, 1<<20), randBytes(12, 3<<20)}
	p, ids := commitTestPoint(t, src, "h", data)
	dst, _ := to.init(t, InitOptions{ReplicaOf: src, K: 1, M: 1})
	rep, err := src.Replicate(ctx, dst, ReplicateOptions{})
	if err != nil || len(rep.Copied) != 1 || rep.Chunks == 0 {
		t.Fatalf("replicate: %+v %v", rep, err)
	}
	again, err := src.Replicate(ctx, dst, ReplicateOptions{})
	if err != nil || again.Chunks != 0 || again.Present != 1 {
		t.Fatalf("second replicate: %+v %v", again, err)
	}
	src.Close()
	if _, err := dst.FindPoint(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	loadAll(t, dst, ids, data)
	v, err := dst.Verify(ctx, VerifyOptions{ReadData: true})
	if err != nil || v.Damaged() {
		t.Fatalf("verify replica: %+v %v", v, err)
	}
}
