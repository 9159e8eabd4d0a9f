package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/sys/unix"
)

// Process-level tests of the lifecycle commands: forget, lock, gc,
// replicate, synth and signed integrity reports.

// forgetJSON is what bes forget --json prints.
type forgetJSON struct {
	DryRun bool `json:"dry_run"`
	Keep   []struct {
		ID      string   `json:"id"`
		Reasons []string `json:"reasons"`
	} `json:"keep"`
	Remove []struct {
		ID string `json:"id"`
	} `json:"remove"`
	Removed []string `json:"removed"`
}

// gcJSON is what bes gc --json prints.
type gcJSON struct {
	Cutoff        time.Time `json:"cutoff"`
	GarbageChunks int64     `json:"garbage_chunks"`
	PacksDeleted  int       `json:"packs_deleted"`
	PacksRepacked int       `json:"packs_repacked"`
	PacksWritten  int       `json:"packs_written"`
	TrashPending  int       `json:"trash_pending"`
	LockedSkipped int       `json:"locked_packs_skipped"`
	Damaged       []string  `json:"damaged"`
}

var forceRepack = []string{"--repack-below", "100", "--max-repack-percent", "100"}

// newKeyRepo is newRepo with a key file instead of a password, so that a
// bes process starts without hashing the password (argon2id, ~70 ms here):
// the tests below start bes hundreds of times.
func newKeyRepo(t *testing.T, k, m int) *repo {
	t.Helper()
	base := t.TempDir()
	key := filepath.Join(base, "repo.key")
	b := make([]byte, 32)
	crand.Read(b)
	if err := os.WriteFile(key, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := &repo{t: t, dir: filepath.Join(base, "repo")}
	for i := 1; i <= k+m; i++ {
		r.disks = append(r.disks, filepath.Join(base, fmt.Sprintf("disk%d", i)))
	}
	r.env = append(os.Environ(), "BES_REPO="+r.dir, "BES_KEY_FILE="+key, "BES_PASSWORD=")
	r.must("init", "--disks", strings.Join(r.disks, ","), "--ec", fmt.Sprintf("%d+%d", k, m))
	return r
}

// mustJSON runs bes with --json and decodes its output into v.
func (r *repo) mustJSON(v any, args ...string) {
	r.t.Helper()
	out := r.must(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("bes %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// mustFail runs bes, expects a failure and returns its output.
func (r *repo) mustFail(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run(args...)
	if code == 0 {
		r.t.Fatalf("bes %s succeeded, want a failure\n%s%s", strings.Join(args, " "), out, errOut)
	}
	return out + errOut
}

// at returns the same repository driven with BES_REPO=dir (the last value
// of a repeated variable wins).
func (r *repo) at(dir string) *repo {
	return &repo{t: r.t, dir: dir, env: append(slices.Clone(r.env), "BES_REPO="+dir)}
}

// bgRun is bes running in the background.
type bgRun struct {
	cmd         *exec.Cmd
	out, errOut bytes.Buffer
	done        chan struct{}
}

// start starts bes in the background; the test's cleanup kills it if it
// still runs.
func (r *repo) start(args ...string) *bgRun {
	r.t.Helper()
	b := &bgRun{cmd: exec.Command(besBin, args...), done: make(chan struct{})}
	b.cmd.Env = r.env
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.errOut
	if err := b.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	r.t.Cleanup(func() { b.kill() })
	return b
}

func (b *bgRun) running() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and reports whether the signal ended the process
// (false: it had already exited).
func (b *bgRun) kill() bool {
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.done
	ws, ok := b.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled()
}

// wait waits for the process and returns its exit code (-1 if signalled).
func (b *bgRun) wait() int {
	<-b.done
	return b.cmd.ProcessState.ExitCode()
}

// output is what the process printed.
func (b *bgRun) output() string { return b.out.String() + b.errOut.String() }

// throttle slows a process down until it exits: it runs for run, then
// stays stopped (SIGSTOP) for stop, in turn.
func throttle(b *bgRun, run, stop time.Duration) {
	go func() {
		for {
			select {
			case <-b.done:
				return
			case <-time.After(run):
			}
			b.cmd.Process.Signal(syscall.SIGSTOP)
			time.Sleep(stop)
			b.cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
}

// clearImmutableOnCleanup clears the immutable attribute that bes lock puts
// on shard files, so that the test's temp dir can be removed. Call it after
// the temp dir exists: cleanups run last registered first, so this one runs
// before the temp dir's removal.
func clearImmutableOnCleanup(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("chattr"); err != nil {
		t.Fatalf("chattr (e2fsprogs) is needed to clean up locked shard files: %v", err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-R", "-i", dir).CombinedOutput(); err != nil {
			t.Logf("chattr -R -i %s: %v\n%s", dir, err, out)
		}
	})
}

// checkImmutable fails unless lock made shard files immutable, where that is
// possible (root on a file system with the attribute). It reports whether
// they are.
func checkImmutable(t *testing.T, immutable int, note string) bool {
	t.Helper()
	if immutable > 0 {
		return true
	}
	if os.Getuid() != 0 {
		t.Logf("not root: shard files not made immutable (%s)", note)
		return false
	}
	if strings.Contains(note, "inappropriate ioctl") || strings.Contains(note, "not supported") {
		t.Logf("this file system has no immutable attribute: %s", note)
		return false
	}
	t.Fatalf("lock as root made no shard file immutable: %s", note)
	return false
}

// isImmutable reports whether a file has the immutable attribute
// (FS_IMMUTABLE_FL, chattr +i).
func isImmutable(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	return err == nil && flags&0x10 != 0 // FS_IMMUTABLE_FL
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomData(seed, stream uint64, n int) []byte {
	b := make([]byte, n)
	fillRandom(rand.New(rand.NewPCG(seed, stream)), b)
	return b
}

// forget keeps exactly the GFS set of 70 daily points, keeps a locked point
// the rules would remove, and changes nothing with --dry-run.
func TestForgetGFSProcess(t *testing.T) {
	r := newKeyRepo(t, 2, 1)
	clearImmutableOnCleanup(t, filepath.Dir(r.dir))
	r.env = append(r.env, "TZ=UTC")
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	last := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	dayOf := map[string]string{} // point ID -> day
	idOf := map[string]string{}  // day -> point ID
	for i := 69; i >= 0; i-- {
		ts := last.AddDate(0, 0, -i)
		day := ts.Format(time.DateOnly)
		writeFile(t, filepath.Join(src, "day.txt"), []byte(day))
		id := r.backup(src, "--time", ts.Format(time.RFC3339))
		dayOf[id], idOf[day] = day, id
	}
	if first := last.AddDate(0, 0, -69).Format(time.DateOnly); first != "2026-09-12" {
		t.Fatalf("first day %s", first)
	}
	// daily: the 7 newest days; weekly: the newest of ISO weeks 47, 46
	// (11-15, already daily), 45 and 44; monthly: November (11-20), October
	// and September.
	gfs := []string{"2026-09-30", "2026-10-31", "2026-11-01", "2026-11-08",
		"2026-11-14", "2026-11-15", "2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"}
	lockedDay := "2026-10-15"
	var lr struct {
		Immutable int    `json:"immutable_packs"`
		Note      string `json:"note"`
	}
	r.mustJSON(&lr, "lock", idOf[lockedDay], "--until", time.Now().AddDate(1, 0, 0).UTC().Format(time.RFC3339))
	checkImmutable(t, lr.Immutable, lr.Note)
	want := append(slices.Clone(gfs), lockedDay)
	sort.Strings(want)
	days := func(ids []string) []string {
		var out []string
		for _, id := range ids {
			out = append(out, dayOf[id])
		}
		sort.Strings(out)
		return out
	}
	rules := []string{"--keep-daily", "7", "--keep-weekly", "4", "--keep-monthly", "3"}

	before, packsBefore := r.must("points", "--json"), shardFiles(t, r.disks[0])
	var dry forgetJSON
	r.mustJSON(&dry, append([]string{"forget", "--dry-run"}, rules...)...)
	var kept []string
	for _, k := range dry.Keep {
		kept = append(kept, k.ID)
		if k.ID == idOf[lockedDay] && (len(k.Reasons) != 1 || !strings.HasPrefix(k.Reasons[0], "locked until")) {
			t.Errorf("locked point kept for %q", k.Reasons)
		}
	}
	if got := days(kept); !slices.Equal(got, want) {
		t.Fatalf("dry run keeps %v\nwant %v", got, want)
	}
	if !dry.DryRun || len(dry.Remove) != 70-len(want) || len(dry.Removed) != 0 {
		t.Fatalf("dry run: %d to remove, %d removed", len(dry.Remove), len(dry.Removed))
	}
	if after := r.must("points", "--json"); after != before {
		t.Fatal("forget --dry-run changed the points")
	}
	if !slices.Equal(shardFiles(t, r.disks[0]), packsBefore) {
		t.Fatal("forget --dry-run wrote packs")
	}

	var real forgetJSON
	r.mustJSON(&real, append([]string{"forget", "--host", "h1"}, rules...)...)
	if len(real.Removed) != 70-len(want) {
		t.Fatalf("forget removed %d points, want %d", len(real.Removed), 70-len(want))
	}
	var left []string
	for _, p := range r.points() {
		left = append(left, p["id"].(string))
	}
	if got := days(left); !slices.Equal(got, want) {
		t.Fatalf("points left %v\nwant %v", got, want)
	}
	// Applying the same rules again removes nothing.
	var again forgetJSON
	r.mustJSON(&again, append([]string{"forget"}, rules...)...)
	if len(again.Removed) != 0 {
		t.Fatalf("second forget removed %v", days(again.Removed))
	}
	if out := r.mustFail("forget", idOf[lockedDay]); !strings.Contains(out, "locked") {
		t.Fatalf("forget of a locked point: %s", out)
	}
	r.must("verify")
}

// A locked point survives forget (named or by rules), gc and deleting its
// shard files, before and after the catalog is rebuilt from the disks.
func TestLockedPointSurvives(t *testing.T) {
	r := newKeyRepo(t, 2, 1)
	clearImmutableOnCleanup(t, filepath.Dir(r.dir))
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 41, 30, 4<<20)
	only := filepath.Join(src, "only-in-p1.bin")
	writeFile(t, only, randomData(41, 1, 6<<20))
	id1 := r.backup(src)
	want1, out, code := r.restoreTo(id1, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore: %s", out)
	}
	sameTree(t, src, want1)
	os.Remove(only)
	writeFile(t, filepath.Join(src, "in-p2.bin"), randomData(41, 2, 6<<20))
	id2 := r.backup(src)

	var lr struct {
		Packs     int    `json:"packs"`
		Immutable int    `json:"immutable_packs"`
		Note      string `json:"note"`
	}
	r.mustJSON(&lr, "lock", id1, "--until", time.Now().AddDate(0, 6, 0).UTC().Format(time.RFC3339))
	immutable := checkImmutable(t, lr.Immutable, lr.Note)
	if lr.Packs == 0 {
		t.Fatalf("lock covered no packs: %+v", lr)
	}
	var shards []string // the shard files of the locked packs
	for _, d := range r.disks {
		for _, s := range shardFiles(t, d) {
			if isImmutable(t, s) {
				shards = append(shards, s)
			}
		}
	}
	if len(shards) != lr.Immutable*len(r.disks) {
		t.Fatalf("%d immutable shard files, want %d packs on %d disks", len(shards), lr.Immutable, len(r.disks))
	}

	check := func(stage string) {
		t.Helper()
		if out := r.mustFail("forget", id1); !strings.Contains(out, "locked") {
			t.Fatalf("%s: forget of the locked point: %s", stage, out)
		}
		var f forgetJSON
		r.mustJSON(&f, "forget", "--keep-last", "1")
		if len(f.Removed) != 0 || len(f.Keep) != 2 {
			t.Fatalf("%s: forget --keep-last 1 removed %v, kept %d", stage, f.Removed, len(f.Keep))
		}
		var g gcJSON
		r.mustJSON(&g, append([]string{"gc"}, forceRepack...)...)
		if g.LockedSkipped == 0 { // its packs hold no garbage: gc has no reason to look at them
			t.Logf("%s: gc skipped no locked pack: %+v", stage, g)
		}
		for _, s := range shards {
			if _, err := os.Stat(s); err != nil {
				t.Fatalf("%s: shard file of a locked pack: %v", stage, err)
			}
		}
		if immutable {
			for _, s := range shards {
				if err := os.Remove(s); !errors.Is(err, fs.ErrPermission) {
					t.Fatalf("%s: deleting %s: %v, want EPERM", stage, s, err)
				}
			}
		}
		r.must("verify", id1, "--read-data")
		got, out, code := r.restoreTo(id1, src, t.TempDir())
		if code != 0 {
			t.Fatalf("%s: restore: %s", stage, out)
		}
		sameTree(t, want1, got)
		if ps := r.points(); len(ps) != 2 || ps[0]["id"] != id1 || ps[1]["id"] != id2 {
			t.Fatalf("%s: points %v", stage, ps)
		}
	}
	check("locked")
	for _, sfx := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(r.dir, "catalog.db"+sfx))
	}
	r.must("catalog", "rebuild")
	check("after catalog rebuild")
}

// churn changes part of a source tree each round so that a gc after
// forget --keep-last 1 has garbage to sweep, packs to repack and garbage a
// running backup reuses. Round i writes n keep files (kept one more round)
// and n drop files (deleted the next round), named so that they interleave
// and their chunks share packs, and from round 2 on n revive files holding
// the data of round i-2's drop files (by then in no live point).
type churn struct {
	t    *testing.T
	dir  string
	seed uint64
	n    int
	size int
}

func (c *churn) path(i, j int, kind string) string {
	return filepath.Join(c.dir, fmt.Sprintf("churn-%02d-%02d-%s", i, j, kind))
}

func (c *churn) round(i int) {
	for j := 0; j < c.n; j++ {
		os.Remove(c.path(i-2, j, "keep"))
		os.Remove(c.path(i-1, j, "drop"))
		os.Remove(c.path(i-1, j, "revive"))
		writeFile(c.t, c.path(i, j, "keep"), randomData(c.seed, uint64(i)<<16|uint64(2*j), c.size))
		writeFile(c.t, c.path(i, j, "drop"), randomData(c.seed, uint64(i)<<16|uint64(2*j+1), c.size))
		if i >= 2 {
			writeFile(c.t, c.path(i, j, "revive"), randomData(c.seed, uint64(i-2)<<16|uint64(2*j+1), c.size))
		}
	}
}

// writerSince reads the write session start from the repository's lock
// file (ok=false: no session open).
func writerSince(dir string) (time.Time, bool) {
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	var li struct {
		Since time.Time `json:"since"`
	}
	if err != nil || json.Unmarshal(b, &li) != nil || li.Since.IsZero() {
		return time.Time{}, false
	}
	return li.Since, true
}

// gc runs again and again while a backup runs in another process; between
// rounds older points are forgotten. Every backup's point verifies and
// restores bit-identically.
func TestGCBesideRunningBackup(t *testing.T) {
	r := newKeyRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 51, 30, 2<<20)
	c := &churn{t: t, dir: src, seed: 52, n: 4, size: 2 << 20}
	c.round(0)
	r.backup(src)
	const rounds = 5
	rng := rand.New(rand.NewPCG(53, 54))
	beside := 0
	for i := 1; i <= rounds; i++ {
		c.round(i)
		b := r.start("backup", src, "--host", "h1", "--json")
		gcs, inside := 0, 0
		for b.running() {
			if _, ok := writerSince(r.dir); ok {
				break
			}
			time.Sleep(time.Millisecond)
		}
		// Slowed down, as on a busy appliance, the backup's session
		// lasts long enough for whole gc runs beside it.
		t0 := time.Now()
		throttle(b, 3*time.Millisecond, time.Duration(10+rng.IntN(10))*time.Millisecond)
		for b.running() {
			time.Sleep(time.Duration(rng.Int64N(int64(30 * time.Millisecond))))
			before, _ := writerSince(r.dir)
			var g gcJSON
			r.mustJSON(&g, append([]string{"gc"}, forceRepack...)...)
			gcs++
			if len(g.Damaged) > 0 {
				t.Fatalf("round %d: gc found damage: %v", i, g.Damaged)
			}
			after, ok := writerSince(r.dir)
			if !ok || !b.running() {
				continue
			}
			// The session had begun by the cut-off: the cut-off is its
			// start, so gc spared everything it wrote or reused.
			if g.Cutoff.After(after) {
				t.Fatalf("round %d: gc beside a write session open since %v cut off later, at %v", i, after, g.Cutoff)
			}
			if before.Equal(after) { // open for the whole gc
				inside++
				if !g.Cutoff.Equal(after) {
					t.Fatalf("round %d: gc inside a write session open since %v cut off at %v", i, after, g.Cutoff)
				}
			}
		}
		if code := b.wait(); code != 0 {
			t.Fatalf("round %d: backup beside gc: exit %d\n%s", i, code, b.output())
		}
		if inside == 0 {
			t.Fatalf("round %d: no gc ran inside the backup's write session (%d gc runs)", i, gcs)
		}
		t.Logf("round %d: a %v write session, %d gc runs, %d inside it", i, time.Since(t0).Round(time.Millisecond), gcs, inside)
		beside += inside
		var s struct {
			PointID string `json:"point_id"`
		}
		if err := json.Unmarshal(b.out.Bytes(), &s); err != nil {
			t.Fatalf("round %d: backup output: %v\n%s", i, err, b.output())
		}
		r.must("verify", s.PointID, "--read-data")
		got, out, code := r.restoreTo(s.PointID, src, t.TempDir())
		if code != 0 {
			t.Fatalf("round %d: restore: %s", i, out)
		}
		sameTree(t, src, got)
		r.must("forget", "--keep-last", "1")
	}
	var g gcJSON
	r.mustJSON(&g, append([]string{"gc"}, forceRepack...)...)
	if g.TrashPending != 0 {
		t.Fatalf("final gc left %d packs in the trash", g.TrashPending)
	}
	r.must("verify", "--read-data")
	t.Logf("%d rounds, %d gc runs entirely inside a backup's write session", rounds, beside)
}

// kill -9 gc at random moments: each time the repository verifies; at the
// end every point reads back, the latest restores bit-identically and a
// gc completes.
func TestKill9DuringGC(t *testing.T) {
	r := newKeyRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 61, 20, 1<<20)
	rng := rand.New(rand.NewPCG(61, 62))
	c := &churn{t: t, dir: src, seed: 63, n: 4, size: 2 << 20}
	// Rounds done to completion; the longest gc once the churn is in its
	// steady state (from round 2: revive files) tells how long a gc takes
	// here, to aim the kills.
	var full time.Duration
	var g gcJSON
	for i := 0; i < 4; i++ {
		c.round(i)
		r.backup(src)
		r.must("forget", "--keep-last", "1")
		t0 := time.Now()
		r.mustJSON(&g, append([]string{"gc"}, forceRepack...)...)
		if i >= 2 {
			full = max(full, time.Since(t0))
		}
	}
	if g.GarbageChunks == 0 || g.PacksRepacked == 0 || g.PacksDeleted == 0 {
		t.Fatalf("a round leaves gc too little to do: %+v", g)
	}
	garbage := func() int64 {
		var d gcJSON
		r.mustJSON(&d, "gc", "--dry-run")
		return d.GarbageChunks
	}
	packs := func() string { return strings.Join(shardFiles(t, r.disks[0]), "\n") }
	temps := func() int {
		n := 0
		for _, d := range r.disks {
			ents, _ := os.ReadDir(filepath.Join(d, "tmp"))
			n += len(ents)
		}
		return n
	}
	// Where the kills landed, told by what they left: nothing changed
	// (opening, or inside the sweep's transaction), garbage swept, a new
	// pack being written (temp files), or pack files committed or deleted.
	phases := map[string]int{}
	const rounds = 24
	kills := 0
	for i := 4; i < 4+rounds; i++ {
		c.round(i)
		r.backup(src)
		r.must("forget", "--keep-last", "1")
		g0, p0 := garbage(), packs()
		b := r.start(append([]string{"gc"}, forceRepack...)...)
		time.Sleep(time.Duration(rng.Int64N(int64(full))))
		if b.kill() {
			kills++
			tmp := temps()
			switch g1, p1 := garbage(), packs(); {
			case p1 != p0:
				phases["packs changed"]++
			case tmp > 0:
				phases["repacking"]++
			case g1 != g0:
				phases["swept"]++
			default:
				phases["nothing changed"]++
			}
		} else if code := b.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("round %d: gc exit %d\n%s", i, code, b.output())
		}
		if out, errOut, code := r.run("verify"); code != 0 {
			t.Fatalf("after gc kill %d: verify: %s%s", i, out, errOut)
		}
	}
	t.Logf("a gc takes %v here; %d of %d runs killed mid-run, leaving: %v", full.Round(time.Millisecond), kills, rounds, phases)
	if kills < 20 {
		t.Fatalf("only %d of %d gc runs were killed mid-run", kills, rounds)
	}
	if kills-phases["nothing changed"] < 8 {
		t.Fatalf("only %d kills landed after gc had changed something", kills-phases["nothing changed"])
	}
	r.must("verify", "--read-data")
	latest := r.points()[len(r.points())-1]["id"].(string)
	got, out, code := r.restoreTo(latest, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore after the kills: %s", out)
	}
	sameTree(t, src, got)
	r.mustJSON(&g, append([]string{"gc"}, forceRepack...)...)
	if g.TrashPending != 0 || len(g.Damaged) > 0 {
		t.Fatalf("final gc: %+v", g)
	}
	if n := garbage(); n != 0 {
		t.Fatalf("%d garbage chunks after the final gc", n)
	}
	// Nothing a killed gc wrote is left behind: no temp files, and every
	// pack file on the disks is one the catalog knows.
	for _, d := range r.disks {
		if ents, _ := os.ReadDir(filepath.Join(d, "tmp")); len(ents) > 0 {
			t.Errorf("%s: %d temp files left", d, len(ents))
		}
	}
	for _, f := range unknownPackFiles(t, r) {
		t.Errorf("%s: a pack file the catalog does not know, left by a killed gc", f)
	}
	r.must("verify", "--read-data")
}

// replicate killed mid-run, then run to completion: the replica alone
// restores every point and a second run copies nothing.
func TestReplicateKilledThenComplete(t *testing.T) {
	r := newKeyRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 71, 20, 1<<20)
	var ids []string
	for i := 0; i < 6; i++ {
		for j := 0; j < 3; j++ {
			writeFile(t, filepath.Join(src, fmt.Sprintf("rep-%d-%d.bin", i, j)), randomData(72, uint64(i*10+j), 3<<20))
		}
		ids = append(ids, r.backup(src))
	}
	// What each point restores to, from the source.
	want := map[string]string{}
	for _, id := range ids {
		got, out, code := r.restoreTo(id, src, t.TempDir())
		if code != 0 {
			t.Fatalf("restore %s from the source: %s", id, out)
		}
		want[id] = got
	}
	sameTree(t, src, want[ids[len(ids)-1]])

	base := t.TempDir()
	dst := r.at(filepath.Join(base, "replica"))
	for i := 1; i <= 3; i++ {
		dst.disks = append(dst.disks, filepath.Join(base, fmt.Sprintf("rdisk%d", i)))
	}
	dst.must("init", "--replica-of", r.dir, "--disks", strings.Join(dst.disks, ","), "--ec", "2+1")

	// Each run is killed a random moment (0-20 ms) after it committed a
	// point in the replica, while it copies the next one.
	rng := rand.New(rand.NewPCG(73, 74))
	kills := 0
	var progress []int
	for attempt := 0; attempt < len(ids); attempt++ {
		have := len(dst.points())
		b := r.start("replicate", "--to", dst.dir)
		waitFor(10*time.Second, func() bool { return !b.running() || len(dst.points()) > have })
		time.Sleep(time.Duration(rng.Int64N(int64(20 * time.Millisecond))))
		if !b.kill() {
			if code := b.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("replicate: exit %d\n%s", code, b.output())
			}
			break
		}
		kills++
		if out, errOut, code := dst.run("verify"); code != 0 {
			t.Fatalf("replica after kill %d: verify: %s%s", kills, out, errOut)
		}
		progress = append(progress, len(dst.points()))
	}
	t.Logf("%d replicate runs killed mid-run; replica points after each kill: %v of %d", kills, progress, len(ids))
	if kills < 2 {
		t.Fatalf("only %d replicate runs were killed mid-run", kills)
	}
	for i, n := range progress {
		if n >= len(ids) || i > 0 && n < progress[i-1] {
			t.Fatalf("replica points after the kills: %v of %d", progress, len(ids))
		}
	}
	r.must("replicate", "--to", dst.dir)
	var again struct {
		Copied       []string `json:"copied"`
		Present      int      `json:"already_there"`
		ChunksCopied int64    `json:"chunks_copied"`
	}
	r.mustJSON(&again, "replicate", "--to", dst.dir)
	if again.ChunksCopied != 0 || again.Present != len(ids) || len(again.Copied) != 0 {
		t.Fatalf("second replicate: %+v, want 0 chunks copied and %d points already there", again, len(ids))
	}

	// The source is gone: the replica alone serves every point.
	for _, p := range append([]string{r.dir}, r.disks...) {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range dst.points() {
		got = append(got, p["id"].(string))
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("replica points %v, want %v", got, ids)
	}
	dst.must("verify", "--read-data")
	for _, id := range ids {
		g, out, code := dst.restoreTo(id, src, t.TempDir())
		if code != 0 {
			t.Fatalf("restore %s from the replica: %s", id, out)
		}
		sameTree(t, want[id], g)
	}
}

// A signed integrity report verifies untouched and fails after any change.
func TestIntegrityReportTamper(t *testing.T) {
	r := newRepo(t, 2, 1)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 81, 20, 1<<20)
	r.backup(src)
	writeFile(t, filepath.Join(src, "two.txt"), []byte("two"))
	r.backup(src)
	r.must("verify", "--read-data")
	dir := t.TempDir()
	rep := filepath.Join(dir, "report.json")
	r.must("report", "integrity", "--out", rep)
	body, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(rep + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Trusted bool
		Report  struct {
			Summary struct {
				Points, Passed int
			} `json:"summary"`
		}
	}
	r.mustJSON(&v, "report", "verify", rep)
	if !v.Trusted || v.Report.Summary.Points != 2 || v.Report.Summary.Passed != 2 {
		t.Fatalf("untouched report: %+v", v)
	}
	// A report signed with a key of its own is valid for that key only.
	forged := filepath.Join(dir, "forged.json")
	r.must("report", "integrity", "--out", forged, "--key", filepath.Join(dir, "other.key"))
	if out := r.mustFail("report", "verify", forged); !strings.Contains(out, "not by the trusted key") {
		t.Fatalf("a report signed by another key: %s", out)
	}

	flip := func(b []byte, at int) []byte {
		b = slices.Clone(b)
		b[at] ^= 0x01
		return b
	}
	sigVal := bytes.Index(sig, []byte(`"signature"`)) + 20
	for _, tc := range []struct {
		name      string
		body, sig []byte
		want      string // in the error
	}{
		{"passed changed to failed", bytes.Replace(body, []byte(`"passed"`), []byte(`"failed"`), 1), sig, "bad signature"},
		{"a digit changed", bytes.Replace(body, []byte(`"chunks_checked": `), []byte(`"chunks_checked": 9`), 1), sig, "bad signature"},
		{"a byte flipped", flip(body, len(body)/2), sig, "bad signature"},
		{"a newline appended", append(slices.Clone(body), '\n'), sig, "bad signature"},
		{"truncated", body[:len(body)-1], sig, "bad signature"},
		{"signature flipped", body, flip(sig, sigVal), "bad signature"},
		{"no signature", body, nil, "report.json.sig"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "report.json")
			writeFile(t, p, tc.body)
			if tc.sig != nil {
				writeFile(t, p+".sig", tc.sig)
			}
			if bytes.Equal(tc.body, body) && bytes.Equal(tc.sig, sig) {
				t.Fatal("the case changes nothing")
			}
			if out := r.mustFail("report", "verify", p); !strings.Contains(out, tc.want) {
				t.Fatalf("error does not say %q: %s", tc.want, out)
			}
		})
	}
}

// synth records a synthetic full that starts a new chain and restores like
// the latest point; the next backup is an incremental on top of it.
func TestSynthStartsNewChain(t *testing.T) {
	r := newRepo(t, 4, 2)
	src := filepath.Join(t.TempDir(), "src")
	genTree(t, src, 91, 40, 4<<20)
	first := r.backup(src)
	latest := first
	for i := 0; i < 3; i++ {
		writeFile(t, filepath.Join(src, fmt.Sprintf("inc-%d.bin", i)), randomData(92, uint64(i), 1<<20))
		latest = r.backup(src)
	}
	var s struct {
		PointID string `json:"point_id"`
		From    string `json:"from"`
		Read    bool   `json:"read_data"`
	}
	r.mustJSON(&s, "synth", "--host", "h1", "--read-data")
	if s.From != latest || !s.Read || s.PointID == "" {
		t.Fatalf("synth: %+v, want from %s", s, latest)
	}
	ps := r.points()
	sp := ps[len(ps)-1]
	if sp["id"] != s.PointID || sp["type"] != "synthetic_full" || sp["chain"] != s.PointID || sp["parent"] != nil {
		t.Fatalf("synthetic point: %v", sp)
	}
	if prev := ps[len(ps)-2]; prev["id"] != latest || prev["chain"] != first {
		t.Fatalf("latest incremental: %v", prev)
	}
	got, out, code := r.restoreTo(s.PointID, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore the synthetic full: %s", out)
	}
	sameTree(t, src, got)

	writeFile(t, filepath.Join(src, "after-synth.bin"), randomData(92, 99, 1<<20))
	var b struct {
		PointID string `json:"point_id"`
		Type    string `json:"type"`
		Parent  string `json:"parent"`
	}
	r.mustJSON(&b, "backup", src, "--host", "h1")
	if b.Type != "incremental" || b.Parent != s.PointID {
		t.Fatalf("backup after synth: %+v, want an incremental on %s", b, s.PointID)
	}
	ps = r.points()
	if np := ps[len(ps)-1]; np["id"] != b.PointID || np["chain"] != s.PointID {
		t.Fatalf("backup after synth: %v, want chain %s", np, s.PointID)
	}
	got, out, code = r.restoreTo(b.PointID, src, t.TempDir())
	if code != 0 {
		t.Fatalf("restore after synth: %s", out)
	}
	sameTree(t, src, got)
	r.must("verify", "--read-data")
}

// holdCatalog takes the catalog's write lock (BEGIN IMMEDIATE) and holds it
// until release is called: a bes process then waits at its next catalog
// write, where the test can kill it.
func holdCatalog(t *testing.T, dir string) (release func()) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "catalog.db")+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
	}
}

// catalogPacks lists the packs the catalog knows: indexed, or in the
// trash waiting for their files to be deleted.
func catalogPacks(t *testing.T, dir string) map[string]bool {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "catalog.db")+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT name FROM packs UNION SELECT pack FROM trash")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out[n] = true
	}
	return out
}

// unknownPackFiles lists the shard files on the disks of packs the catalog
// does not know.
func unknownPackFiles(t *testing.T, r *repo) []string {
	t.Helper()
	known := catalogPacks(t, r.dir)
	var out []string
	for _, d := range r.disks {
		for _, s := range shardFiles(t, d) {
			if !known[strings.TrimSuffix(filepath.Base(s), ".shard")] {
				out = append(out, s)
			}
		}
	}
	return out
}

// waitFor polls cond every millisecond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// A gc or backup killed after it made a new pack durable and before the
// catalog recorded it leaves a pack file nothing knows; later runs must
// remove it, or the space leaks for good. Deterministic: once the process
// writes a pack, the test holds the catalog's write lock, so the process
// stops right after committing the pack's shard files, and is killed there.
func TestKilledWriterLeavesNoUnindexedPack(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"gc", append([]string{"gc"}, forceRepack...)},
		{"backup", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The moment between a pack's files and its index lasts a few
			// fsyncs: try a few times.
			for attempt := 1; attempt <= 5; attempt++ {
				if killedWriterAttempt(t, tc.name, tc.args, attempt) {
					return
				}
			}
			t.Fatalf("%s: never caught the process between a pack's files and its index", tc.name)
		})
	}
}

// killedWriterAttempt runs one attempt; false when it missed its moment.
func killedWriterAttempt(t *testing.T, name string, tcArgs []string, attempt int) bool {
	t.Helper()
	tc := struct {
		name string
		args []string
	}{name, tcArgs}
	{
		{
			r := newKeyRepo(t, 2, 1)
			src := filepath.Join(t.TempDir(), "src")
			c := &churn{t: t, dir: src, seed: 101, n: 4, size: 2 << 20}
			if err := os.MkdirAll(src, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 3; i++ {
				c.round(i)
				r.backup(src)
			}
			r.must("forget", "--keep-last", "1")
			args := tc.args
			if args == nil { // new data only: no garbage to reuse
				for j := 0; j < 3; j++ {
					writeFile(t, filepath.Join(src, fmt.Sprintf("new-%d", j)), randomData(102, uint64(j), 12<<20))
				}
				args = []string{"backup", src, "--host", "h1"}
			}
			before := map[string]bool{}
			for _, s := range shardFiles(t, r.disks[0]) {
				before[filepath.Base(s)] = true
			}
			temps := func() bool {
				for _, d := range r.disks {
					if ents, _ := os.ReadDir(filepath.Join(d, "tmp")); len(ents) > 0 {
						return true
					}
				}
				return false
			}
			committed := func() bool { // a new pack with every shard in place
				for _, s := range shardFiles(t, r.disks[0]) {
					if before[filepath.Base(s)] {
						continue
					}
					all := true
					for _, d := range r.disks[1:] {
						if _, err := os.Stat(filepath.Join(d, strings.TrimPrefix(s, r.disks[0]))); err != nil {
							all = false
						}
					}
					if all {
						return true
					}
				}
				return false
			}
			_ = temps
			b := r.start(args...)
			// The writer records a pack as pending, then commits its files,
			// then indexes it: hold the catalog once the pending row shows.
			if !waitFor(10*time.Second, func() bool { return pendingRows(t, r.dir) > 0 }) {
				t.Fatalf("%s recorded no pending pack: %s", tc.name, b.output())
			}
			release := holdCatalog(t, r.dir)
			ok := waitFor(5*time.Second, committed)
			killed := b.kill()
			release()
			orphans := unknownPackFiles(t, r)
			if !ok || !killed || len(orphans) == 0 {
				t.Logf("attempt %d: %s: pack committed while held %v, killed %v, orphans %d: missed the moment", attempt, tc.name, ok, killed, len(orphans))
				return false
			}
			t.Logf("the killed %s left %d shard files of packs the catalog does not know", tc.name, len(orphans))
			r.must("verify")
			r.backup(src)
			r.must("forget", "--keep-last", "1")
			for i := 0; i < 2; i++ {
				r.must(append([]string{"gc"}, forceRepack...)...)
			}
			r.must("verify", "--read-data")
			for _, f := range unknownPackFiles(t, r) {
				t.Errorf("%s: a pack file the catalog does not know, left by the killed %s", f, tc.name)
			}
		}
	}
	return true
}

// pendingRows counts the catalog's pending packs (0 if it cannot tell).
func pendingRows(t *testing.T, dir string) int {
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, "catalog.db")+"?mode=ro&_busy_timeout=100")
	if err != nil {
		return 0
	}
	defer db.Close()
	var n int
	db.QueryRow("SELECT count(*) FROM pending").Scan(&n)
	return n
}

// gc --repack-below 100 repacks packs that hold garbage, not packs whose
// only "dead" bytes are their own header and trailer: a second gc right
// after a first, with nothing changed in between, copies nothing.
func TestGCRepackBelow100IsIdempotent(t *testing.T) {
	r := newKeyRepo(t, 2, 1)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "a.bin"), randomData(111, 1, 20<<20))
	r.backup(src)
	var rep struct {
		GarbageChunks int64 `json:"garbage_chunks"`
		PacksRepacked int   `json:"packs_repacked"`
		BytesRepacked int64 `json:"bytes_repacked"`
		BytesFreed    int64 `json:"bytes_freed"`
	}
	for i := 1; i <= 2; i++ {
		r.mustJSON(&rep, append([]string{"gc"}, forceRepack...)...)
		t.Logf("gc %d: %+v", i, rep)
	}
	if rep.PacksRepacked != 0 || rep.BytesRepacked != 0 {
		t.Errorf("the second gc, with nothing to free, repacked %d packs (%d bytes copied, %d freed)", rep.PacksRepacked, rep.BytesRepacked, rep.BytesFreed)
	}
}
