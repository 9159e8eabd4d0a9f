package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/manifest"
	"bes/store/pack"
)

func testRepo(t *testing.T, k, m int) *Repo {
	t.Helper()
	dir := t.TempDir()
	r, err := Init(context.Background(), InitOptions{Dir: filepath.Join(dir, "repo"), K: k, M: m,
		KEK: crypt.Passphrase([]byte("pw")), PackSize: 1 << 20, PieceSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clearImmutable(t, dir) }) // after Close, before TempDir's removal
	t.Cleanup(func() { r.Close() })
	return r
}

// testManifest encodes a valid manifest of n files; each references the
// given chunks (size 1 each, whatever their real size: only the IDs count
// here).
func testManifest(t testing.TB, n int, chunks []crypt.ID) []byte {
	t.Helper()
	var es []*manifest.Entry
	for i := range n {
		e := &manifest.Entry{Path: fmt.Sprintf("d/f%07d", i), Kind: manifest.KindFile, Mode: 0o644, MTime: int64(i)}
		for _, c := range chunks {
			e.Chunks = append(e.Chunks, manifest.ChunkRef{ID: c, Size: 1})
			e.Size++
		}
		es = append(es, e)
	}
	b, err := manifest.Encode(es)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randBytes(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestSaveLoadDedup(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 4, 2)
	s, err := r.NewSaver(SaverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []crypt.ID
	var blobs [][]byte
	for i := 0; i < 40; i++ {
		b := randBytes(uint64(i), 1000+i*997)
		if i%3 == 0 {
			b = bytes.Repeat([]byte("compressible "), 5000+i)
		}
		id, isNew, err := s.Save(ctx, pack.TypeData, b)
		if err != nil || !isNew {
			t.Fatalf("save %d: new=%v err=%v", i, isNew, err)
		}
		ids, blobs = append(ids, id), append(blobs, b)
	}
	if _, isNew, _ := s.Save(ctx, pack.TypeData, blobs[5]); isNew {
		t.Fatal("duplicate stored twice in one session")
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		got, err := r.LoadBlob(ctx, id, nil)
		if err != nil || !bytes.Equal(got, blobs[i]) {
			t.Fatalf("load %d: %v", i, err)
		}
	}
	s2, _ := r.NewSaver(SaverOptions{})
	if _, isNew, _ := s2.Save(ctx, pack.TypeData, blobs[7]); isNew {
		t.Fatal("duplicate of an indexed blob stored again")
	}
	st := s.Stats()
	if st.NewChunks != 40 || st.DupChunks != 1 {
		t.Fatalf("stats %+v", st)
	}
	if _, err := r.LoadBlob(ctx, crypt.ID{1, 2, 3}, nil); !errors.Is(err, ErrMissingChunk) {
		t.Fatalf("missing chunk: %v", err)
	}
}

func TestManifestStreamAndPoint(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 2, 1)
	s, _ := r.NewSaver(SaverOptions{})
	mw := r.NewManifestWriter(ctx, s)
	data := testManifest(t, 150000, nil) // > 1 MiB, the largest tree blob: always cut
	mw.Write(data)
	refs, err := mw.Close()
	if err != nil || len(refs) < 2 {
		t.Fatalf("manifest refs %d, %v", len(refs), err)
	}
	p, parent, err := r.NewPoint(ctx, KindFile, "h")
	if err != nil || parent != nil || p.Type != TypeFull {
		t.Fatalf("first point: %+v %v %v", p, parent, err)
	}
	p.Manifest = refs
	if err := r.CommitPoint(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	got, err := r.FindPoint(ctx, p.ID[:8])
	if err != nil || got.ID != p.ID {
		t.Fatalf("find: %v", err)
	}
	rc := r.OpenManifest(ctx, got)
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("manifest stream differs: %v", err)
	}
	p2, parent, err := r.NewPoint(ctx, KindFile, "h")
	if err != nil || parent == nil || parent.ID != p.ID || p2.Type != TypeIncremental || p2.Chain != p.Chain {
		t.Fatalf("second point: %+v %v", p2, err)
	}
}

func TestWrongPasswordAndLock(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 1, 0)
	_, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("nope"))})
	if !errors.Is(err, crypt.ErrWrongKey) {
		t.Fatalf("wrong password: %v", err)
	}
	_, err = Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw")), Write: true})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer: %v", err)
	}
	rd, err := Open(ctx, OpenOptions{Dir: r.Dir(), KEK: crypt.Passphrase([]byte("pw"))})
	if err != nil {
		t.Fatalf("reader beside a writer: %v", err)
	}
	rd.Close()
	if _, err := Open(ctx, OpenOptions{Dir: t.TempDir(), KEK: crypt.Passphrase([]byte("pw"))}); !errors.Is(err, ErrNoRepo) {
		t.Fatalf("no repo: %v", err)
	}
}

func TestRebuildCatalog(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 4, 2)
	s, _ := r.NewSaver(SaverOptions{})
	id, _, _ := s.Save(ctx, pack.TypeData, randBytes(3, 5<<20))
	mw := r.NewManifestWriter(ctx, s)
	mw.Write(testManifest(t, 3, []crypt.ID{id}))
	refs, _ := mw.Close()
	p, _, _ := r.NewPoint(ctx, KindFile, "h")
	p.Manifest = refs
	if err := r.CommitPoint(ctx, s, p); err != nil {
		t.Fatal(err)
	}
	rep, err := r.RebuildCatalog(ctx, nil)
	if err != nil || rep.Points != 1 || len(rep.Skipped) != 0 {
		t.Fatalf("rebuild: %+v %v", rep, err)
	}
	if _, err := r.LoadBlob(ctx, id, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.FindPoint(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
}

func TestLocateChunks(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 2, 1)
	s, _ := r.NewSaver(SaverOptions{})
	var ids []crypt.ID
	for i := 0; i < 40; i++ {
		id, _, err := s.Save(ctx, pack.TypeData, randBytes(uint64(100+i), 1000))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{2, 40} { // per-ID lookups, then one scan
		want := map[crypt.ID]bool{{9, 9, 9}: true}
		for _, id := range ids[:n] {
			want[id] = true
		}
		got := map[crypt.ID]bool{}
		missing, err := LocateChunks(ctx, r, want, func(l catalog.Location) { got[crypt.ID(l.ID)] = true })
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n || len(missing) != 1 || missing[0] != (crypt.ID{9, 9, 9}) {
			t.Fatalf("n=%d: found %d, missing %v", n, len(got), missing)
		}
	}
}

// A backup that dies after some packs were sealed leaves no point, and the
// next one reuses every chunk that reached a sealed pack.
func TestInterruptedSaveIsReused(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, 4, 2) // packs of 1 MiB
	s, _ := r.NewSaver(SaverOptions{})
	var blobs [][]byte
	for i := 0; i < 12; i++ {
		b := randBytes(uint64(500+i), 300<<10)
		if _, _, err := s.Save(ctx, pack.TypeData, b); err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	s.Abort() // the process dies: the open pack is lost, sealed packs stay
	if ps, _ := r.Points(ctx, catalog.PointFilter{}); len(ps) != 0 {
		t.Fatalf("%d points after an interrupted backup", len(ps))
	}
	s2, _ := r.NewSaver(SaverOptions{})
	reused := 0
	for _, b := range blobs {
		_, isNew, err := s2.Save(ctx, pack.TypeData, b)
		if err != nil {
			t.Fatal(err)
		}
		if !isNew {
			reused++
		}
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if reused < 6 {
		t.Fatalf("only %d of 12 chunks reused after the interruption", reused)
	}
	for _, b := range blobs {
		got, err := r.LoadBlob(ctx, r.Keys().ChunkID(b), nil)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("load after interruption: %v", err)
		}
	}
}

func TestInitRefusesAnotherRepositorysDisk(t *testing.T) {
	r := testRepo(t, 2, 1)
	_, err := Init(context.Background(), InitOptions{Dir: t.TempDir(), Disks: r.Config().Disks, K: 2, M: 1,
		KEK: crypt.Passphrase([]byte("pw"))})
	if err == nil || !strings.Contains(err.Error(), "already belongs") {
		t.Fatalf("init on another repository's disks: %v", err)
	}
}
