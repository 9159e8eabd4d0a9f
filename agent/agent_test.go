package agent

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bes/store"
	"bes/store/crypt"
	"bes/store/manifest"
)

func newTestRepo(t testing.TB) *store.Repo {
	t.Helper()
	r, err := store.Init(context.Background(), store.InitOptions{Dir: filepath.Join(t.TempDir(), "repo"),
		KEK: crypt.PassphraseWithCost([]byte("pw"), crypt.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func writeFile(t testing.TB, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randData(seed uint64, n int) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestExcluder(t *testing.T) {
	x, err := newExcluder([]string{"*.tmp", "/data/cache", "/srv/*/logs"})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/a/b.tmp": true, "/a/b.txt": false, "/data/cache": true, "/data/cache2": false,
		"/srv/web/logs": true, "/srv/web/logs2": false, "/tmp": false,
	} {
		if got := x.match(p); got != want {
			t.Errorf("match(%q) = %v, want %v", p, got, want)
		}
	}
	if _, err := newExcluder([]string{"[bad"}); err == nil {
		t.Error("bad glob accepted")
	}
}

func TestNormalizeRoots(t *testing.T) {
	d := t.TempDir()
	for _, s := range []string{"a/b", "a/c", "a-b"} {
		os.MkdirAll(filepath.Join(d, s), 0o755)
	}
	got, err := normalizeRoots([]string{filepath.Join(d, "a-b"), filepath.Join(d, "a"), filepath.Join(d, "a/b"), filepath.Join(d, "a")})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(d, "a"), filepath.Join(d, "a-b")}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("roots %v, want %v", got, want)
	}
	if _, err := normalizeRoots([]string{filepath.Join(d, "missing")}); err == nil {
		t.Error("missing path accepted")
	}
}

func TestIncluded(t *testing.T) {
	incl, _ := normIncludes([]string{"/srv/app/", "etc/hosts"})
	for p, want := range map[string]bool{
		"srv": true, "srv/app": true, "srv/app/x": true, "srv/apple": false, "etc": true, "etc/hosts": true, "etc/passwd": false,
	} {
		if included(incl, p) != want {
			t.Errorf("included(%q) != %v", p, want)
		}
	}
	if _, err := normIncludes([]string{"a/../../b"}); err != nil {
		t.Errorf("cleaned include rejected: %v", err)
	}
}

// A backup of two overlapping roots, then an incremental that reads only
// the changed file, then restores of both with and without includes.
func TestBackupIncrementalRestore(t *testing.T) {
	ctx := context.Background()
	r := newTestRepo(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "big.bin"), randData(1, 9<<20))
	writeFile(t, filepath.Join(src, "a", "small.txt"), []byte("hello"))
	writeFile(t, filepath.Join(src, "b", "skip.tmp"), []byte("excluded"))
	writeFile(t, filepath.Join(src, "b", "empty"), nil)
	os.Symlink("../a/small.txt", filepath.Join(src, "b", "link"))
	p1, err := Backup(ctx, r, BackupOptions{Paths: []string{src, filepath.Join(src, "a")}, Host: "h", Excludes: []string{"*.tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	if p1.Type != store.TypeFull || p1.Stats.Files != 3 || p1.Stats.BytesRead != 9<<20+5 {
		t.Fatalf("first point: %+v", p1.Stats)
	}
	writeFile(t, filepath.Join(src, "a", "small.txt"), []byte("hello again"))
	p2, err := Backup(ctx, r, BackupOptions{Paths: []string{src}, Host: "h", Excludes: []string{"*.tmp"}})
	if err != nil {
		t.Fatal(err)
	}
	if p2.Type != store.TypeIncremental || p2.Parent != p1.ID || p2.Stats.BytesRead != 11 {
		t.Fatalf("incremental: type %s parent %s read %d", p2.Type, p2.Parent, p2.Stats.BytesRead)
	}
	out := t.TempDir()
	sum, err := Restore(ctx, r, p2, RestoreOptions{Target: out})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Files != 3 || sum.Symlinks != 1 {
		t.Fatalf("restore summary %+v", sum)
	}
	got, _ := os.ReadFile(filepath.Join(out, src, "a", "big.bin"))
	if !bytes.Equal(got, randData(1, 9<<20)) {
		t.Fatal("big.bin differs")
	}
	if _, err := os.Stat(filepath.Join(out, src, "b", "skip.tmp")); !os.IsNotExist(err) {
		t.Fatal("excluded file restored")
	}
	if tgt, _ := os.Readlink(filepath.Join(out, src, "b", "link")); tgt != "../a/small.txt" {
		t.Fatalf("symlink target %q", tgt)
	}
	// includes, and never replace without overwrite
	out2 := t.TempDir()
	writeFile(t, filepath.Join(out2, src, "a", "small.txt"), []byte("mine"))
	sum, err = Restore(ctx, r, p2, RestoreOptions{Target: out2, Includes: []string{filepath.Join(src, "a")}})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out2, src, "a", "small.txt")); string(b) != "mine" || len(sum.Skipped) != 1 {
		t.Fatalf("existing file replaced without --overwrite (%q, skipped %v)", b, sum.Skipped)
	}
	if _, err := os.Stat(filepath.Join(out2, src, "b")); !os.IsNotExist(err) {
		t.Fatal("include restored more than asked")
	}
	if _, err := Restore(ctx, r, p2, RestoreOptions{Target: out2, Includes: []string{filepath.Join(src, "a")}, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(out2, src, "a", "small.txt")); string(b) != "hello again" {
		t.Fatalf("--overwrite did not replace: %q", b)
	}
}

// A hostile manifest cannot make restore write outside the target: the
// manifest codec refuses such paths, and restore writes through os.Root.
func TestRestoreStaysInTarget(t *testing.T) {
	for _, p := range []string{"../escape", "/abs", "a/../../b", "a//b", ""} {
		if manifest.ValidPath(p) == nil {
			t.Errorf("ValidPath(%q) accepted", p)
		}
	}
	dir := t.TempDir()
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(dir, "evil"))
	dc, _ := newDirCache(dir, 16)
	defer dc.close()
	rs := &restorer{dc: dc, made: map[string]bool{}, plan: map[crypt.ID][]target{}}
	e := &manifest.Entry{Path: "evil/x", Kind: manifest.KindFile, Size: 1, Chunks: []manifest.ChunkRef{{Size: 1}}}
	rs.plan1(e)
	if len(rs.sum.Errors) == 0 && len(rs.files) == 1 {
		fs := rs.files[0]
		fs.mu.Lock()
		rs.openFile(fs)
		fs.mu.Unlock()
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("restore wrote outside the target: %v", ents)
	}
}

// A backup of a tree that contains the repository leaves the repository
// and its disks out.
func TestBackupSkipsItsOwnRepository(t *testing.T) {
	ctx := context.Background()
	top := t.TempDir()
	r, err := store.Init(ctx, store.InitOptions{Dir: filepath.Join(top, "repo"),
		KEK:    crypt.PassphraseWithCost([]byte("pw"), crypt.Argon2Params{Time: 1, MemoryKiB: 1024, Threads: 1}),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	writeFile(t, filepath.Join(top, "data", "a.txt"), []byte("a"))
	p, err := Backup(ctx, r, BackupOptions{Paths: []string{top}, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	err = r.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		if strings.Contains(e.Path, "/repo") {
			t.Errorf("backed up the repository: %s", e.Path)
		}
		return nil
	})
	if err != nil || p.Stats.Files != 1 {
		t.Fatalf("files %d, %v", p.Stats.Files, err)
	}
}
