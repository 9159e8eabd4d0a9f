package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Round trips of random trees restore bit-identically with metadata.
func TestRoundTripRandomTrees(t *testing.T) {
	for _, tc := range []struct {
		name  string
		seed  uint64
		k, m  int
		files int
		max   int
	}{
		{"4+2 with a 64 MiB file", 1, 4, 2, 120, 64 << 20},
		{"1+0 small", 2, 1, 0, 40, 1 << 20},
		{"3+1", 3, 3, 1, 60, 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRepo(t, tc.k, tc.m)
			src := filepath.Join(t.TempDir(), "src")
			genTree(t, src, tc.seed, tc.files, tc.max)
			id := r.backup(src)
			got, out, code := r.restoreTo(id, src, t.TempDir())
			if code != 0 {
				t.Fatalf("restore: exit %d: %s", code, out)
			}
			sameTree(t, src, got)
			// sparse files stay sparse
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(got, "sparse.img"), &st); err != nil {
				t.Fatal(err)
			}
			if st.Blocks*512 > 8<<20 {
				t.Errorf("sparse.img restored with %d allocated bytes, want holes", st.Blocks*512)
			}
			// an incremental after a change reads only the change
			os.WriteFile(filepath.Join(src, "new.txt"), []byte("new file"), 0o644)
			id2 := r.backup(src)
			got2, out, code := r.restoreTo(id2, src, t.TempDir())
			if code != 0 {
				t.Fatalf("restore 2: exit %d: %s", code, out)
			}
			sameTree(t, src, got2)
			if ps := r.points(); len(ps) != 2 || ps[1]["type"] != "incremental" || ps[1]["parent"] != id {
				t.Fatalf("points after two backups: %v", ps)
			}
		})
	}
}

// Deleting any m of the k+m disks loses nothing; scrub --repair rebuilds
// the lost shards once the directories are back.
func TestDiskLossAndRepair(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 7, 60, 20<<20)
	id := r.backup(src)
	pairs := [][2]int{{0, 1}, {2, 5}, {3, 4}, {0, 5}}
	for _, p := range pairs {
		for _, i := range p {
			os.RemoveAll(r.disks[i])
		}
		got, out, code := r.restoreTo(id, src, t.TempDir())
		if code != 0 {
			t.Fatalf("disks %v lost: restore exit %d: %s", p, code, out)
		}
		sameTree(t, src, got)
		for _, i := range p {
			os.MkdirAll(r.disks[i], 0o700)
		}
		r.must("scrub", "--repair")
		r.must("scrub")
		for _, i := range p {
			if len(shardFiles(t, r.disks[i])) == 0 {
				t.Fatalf("disk %d has no shards after repair", i+1)
			}
		}
	}
	// A disk replaced by an empty one: backups refuse it until a repair,
	// with or without the key, has put the repository's identity back.
	os.RemoveAll(r.disks[4])
	os.MkdirAll(r.disks[4], 0o700)
	if _, errOut, code := r.run("backup", src, "--host", "h1"); code == 0 || !strings.Contains(errOut, "disk missing") {
		t.Fatalf("backup onto an empty replacement disk: exit %d %s", code, errOut)
	}
	if out, errOut, code := r.runEnv([]string{"BES_PASSWORD="}, "scrub", "--repair"); code != 0 {
		t.Fatalf("key-less scrub --repair: %s%s", out, errOut)
	}
	r.backup(src)
	// beyond m: a clear error, never wrong data
	for _, i := range []int{0, 1, 2} {
		os.RemoveAll(r.disks[i])
	}
	_, out, code := r.restoreTo(id, src, t.TempDir())
	if code == 0 {
		t.Fatal("restore with 3 of 6 disks gone succeeded")
	}
	if !strings.Contains(out, "unrecoverable") && !strings.Contains(out, "damaged") {
		t.Errorf("error does not say what is wrong: %s", out)
	}
}

func flipBytes(t *testing.T, path string, rng *rand.Rand, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	for i := 0; i < n; i++ {
		off := rng.Int64N(fi.Size())
		b := []byte{0}
		f.ReadAt(b, off)
		b[0] ^= byte(1 + rng.IntN(255))
		f.WriteAt(b, off)
	}
}

// Flipped bytes are found by verify --read-data and scrub, repaired by
// scrub --repair, and never restored silently.
func TestBitRot(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 11, 50, 16<<20)
	id := r.backup(src)
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 3; round++ {
		// damage up to m shards of each of a few packs
		for _, f := range shardFiles(t, r.disks[rng.IntN(6)]) {
			flipBytes(t, f, rng, 3)
		}
		got, out, code := r.restoreTo(id, src, t.TempDir())
		if code != 0 {
			t.Fatalf("restore with m corrupt shards: %s", out)
		}
		sameTree(t, src, got)
		if _, _, code := r.run("scrub"); code == 0 {
			t.Fatal("scrub found nothing")
		}
		r.must("scrub", "--repair")
		r.must("scrub")
		r.must("verify", "--read-data")
	}
	// beyond m in every pack: verify and restore fail loudly
	for d := 0; d < 3; d++ {
		for _, f := range shardFiles(t, r.disks[d]) {
			flipBytes(t, f, rng, 20)
		}
	}
	out, _, code := r.run("verify", "--read-data")
	if code == 0 {
		t.Fatal("verify --read-data passed with 3 of 6 shards corrupt")
	}
	if !strings.Contains(out, "DAMAGED") {
		t.Errorf("verify does not name the damage: %s", out)
	}
	tgt := t.TempDir()
	_, out, code = r.restoreTo(id, src, tgt)
	if code == 0 {
		t.Fatal("restore succeeded from unrecoverable packs")
	}
	// whatever was written must be correct: compare the files that exist
	want := treeDigest(t, src, false)
	got := treeDigest(t, filepath.Join(tgt, src), false)
	for k, v := range got {
		if strings.Contains(v, "sha=") && want[k] != v {
			// files hit by damage may be partial but must be reported
			if !strings.Contains(out, strings.TrimPrefix(filepath.Join(src, k), "/")) {
				t.Errorf("%s restored wrong and not reported", k)
			}
		}
	}
}

// kill -9 a real backup at random moments: every committed point stays
// whole and the next backup completes.
func TestKill9DuringBackup(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 21, 150, 48<<20)
	rng := rand.New(rand.NewPCG(9, 9))
	r.backup(src)
	// How long a backup of the churn below takes here, to aim the kills.
	churn := func(i int) {
		for j := 0; j < 3; j++ {
			b := make([]byte, 16<<20)
			fillRandom(rng, b)
			os.WriteFile(filepath.Join(src, fmt.Sprintf("churn-%d.bin", j)), b, 0o644)
		}
	}
	churn(-1)
	t0 := time.Now()
	r.backup(src)
	full := time.Since(t0)
	kills := 0
	for i := 0; i < 20; i++ {
		churn(i) // new data for every run
		cmd := exec.Command(besBin, "backup", src, "--host", "h1")
		cmd.Env = r.env
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(full))))
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			kills++
		}
		if out, errOut, code := r.run("verify"); code != 0 {
			t.Fatalf("after kill %d: verify: %s%s", i, out, errOut)
		}
	}
	if kills < 15 {
		t.Fatalf("only %d of 20 backups were killed mid-run (a backup takes %v here)", kills, full)
	}
	if out, errOut, code := r.run("verify", "--read-data"); code != 0 {
		t.Fatalf("after the kills: verify --read-data: %s%s", out, errOut)
	}
	id := r.backup(src)
	got, out, code := r.restoreTo(id, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore after kills: %s", out)
	}
	sameTree(t, src, got)
	r.must("verify", "--read-data")
	t.Logf("%d backups killed, %d points committed", kills, len(r.points()))
}

// Deleting the SQLite catalog loses nothing: catalog rebuild brings every
// point back from the disks.
func TestCatalogRebuild(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 31, 40, 4<<20)
	id1 := r.backup(src)
	os.WriteFile(filepath.Join(src, "second.txt"), []byte("two"), 0o644)
	id2 := r.backup(src)
	before := r.points()
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(r.dir, "catalog.db"+sfx))
	}
	r.must("catalog", "rebuild")
	after := r.points()
	if len(after) != len(before) {
		t.Fatalf("rebuild: %d points, want %d", len(after), len(before))
	}
	for i := range before {
		if before[i]["id"] != after[i]["id"] || before[i]["parent"] != after[i]["parent"] || before[i]["type"] != after[i]["type"] {
			t.Errorf("point %d: %v != %v", i, after[i], before[i])
		}
	}
	for _, id := range []string{id1, id2} {
		got, out, code := r.restoreTo(id, src, t.TempDir())
		if code != 0 {
			t.Fatalf("restore %s after rebuild: %s", id, out)
		}
		if id == id2 {
			sameTree(t, src, got)
		}
	}
	r.must("verify", "--read-data")
	// the next backup after a rebuild is incremental against the rebuilt
	// points: nothing unchanged is read again
	out := r.must("backup", src, "--host", "h1", "--json")
	if !strings.Contains(out, `"bytes_read": 0,`) || !strings.Contains(out, `"type": "incremental"`) {
		t.Fatalf("backup after rebuild re-read the tree: %s", out)
	}
}
