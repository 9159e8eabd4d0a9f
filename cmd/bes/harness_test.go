package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

// besBin is the bes binary built once for the process-level tests.
var besBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bes-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	besBin = filepath.Join(dir, "bes")
	out, err := exec.Command("go", "build", "-o", besBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build bes: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repo is a test repository driven through the real binary.
type repo struct {
	t     *testing.T
	dir   string
	disks []string
	env   []string
}

func newRepo(t *testing.T, k, m int) *repo {
	t.Helper()
	base := t.TempDir()
	r := &repo{t: t, dir: filepath.Join(base, "repo")}
	for i := 1; i <= k+m; i++ {
		r.disks = append(r.disks, filepath.Join(base, fmt.Sprintf("disk%d", i)))
	}
	r.env = append(os.Environ(), "BES_REPO="+r.dir, "BES_PASSWORD=test-pw-123")
	r.must("init", "--disks", strings.Join(r.disks, ","), "--ec", fmt.Sprintf("%d+%d", k, m))
	return r
}

// run runs bes and returns stdout, stderr and the exit code.
func (r *repo) run(args ...string) (string, string, int) {
	r.t.Helper()
	return r.runEnv(nil, args...)
}

func (r *repo) runEnv(extra []string, args ...string) (string, string, int) {
	r.t.Helper()
	cmd := exec.Command(besBin, args...)
	cmd.Env = append(append([]string(nil), r.env...), extra...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("bes %v: %v", args, err)
	}
	return so.String(), se.String(), code
}

func (r *repo) must(args ...string) string {
	r.t.Helper()
	out, errOut, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("bes %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (r *repo) backup(src string, extra ...string) string {
	r.t.Helper()
	out := r.must(append([]string{"backup", src, "--host", "h1", "--json"}, extra...)...)
	var s struct {
		PointID string `json:"point_id"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.PointID == "" {
		r.t.Fatalf("backup --json: %v: %q", err, out)
	}
	return s.PointID
}

// restoreTo restores a point and returns the restored copy of src.
func (r *repo) restoreTo(point, src, target string) (string, string, int) {
	r.t.Helper()
	out, errOut, code := r.run("restore", point, "--target", target)
	return filepath.Join(target, src), out + errOut, code
}

func (r *repo) points() []map[string]any {
	r.t.Helper()
	var ps []map[string]any
	if err := json.Unmarshal([]byte(r.must("points", "--json")), &ps); err != nil {
		r.t.Fatal(err)
	}
	return ps
}

// treeDigest describes a tree: per entry its type, mode, owner, mtime
// (files and dirs), size, content hash, symlink target.
func treeDigest(t *testing.T, root string, withMTime bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%v uid=%d gid=%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode().IsRegular():
			h := sha256.New()
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			io.Copy(h, f)
			f.Close()
			desc += fmt.Sprintf(" size=%d sha=%s", fi.Size(), hex.EncodeToString(h.Sum(nil))[:16])
		case fi.Mode()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			desc += " -> " + tgt
		}
		if withMTime && fi.Mode()&fs.ModeSymlink == 0 && rel != "." {
			desc += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, want, got string) {
	t.Helper()
	a, b := treeDigest(t, want, true), treeDigest(t, got, true)
	var diffs []string
	for k, v := range a {
		if b[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: want %q got %q", k, v, b[k]))
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected", k))
		}
	}
	sort.Strings(diffs)
	if len(diffs) > 0 {
		if len(diffs) > 10 {
			diffs = diffs[:10]
		}
		t.Fatalf("restored tree differs:\n%s", strings.Join(diffs, "\n"))
	}
}

// genTree writes a random tree: files of 0 B to maxSize (random, text-like,
// zero, repeated blocks), sparse files, symlinks, empty dirs, odd names,
// varied modes and mtimes.
func genTree(t *testing.T, root string, seed uint64, nfiles int, maxSize int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	names := []string{"plain", "with space", "ünïcödé", "new\nline", "-dash", ".hidden", "tab\there", "ßtraße", "q'uote\"", "*star?"}
	dirs := []string{root}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(root, 0o755))
	for i := 0; i < nfiles/8+1; i++ {
		d := filepath.Join(dirs[rng.IntN(len(dirs))], fmt.Sprintf("%s-%d", names[rng.IntN(len(names))], i))
		must(os.Mkdir(d, 0o755))
		dirs = append(dirs, d)
	}
	must(os.MkdirAll(filepath.Join(root, "empty", "deeper"), 0o700))
	sizes := []int{0, 1, 100, 4095, 4096, 65536, 1 << 20, 3<<20 + 7}
	for i := 0; i < nfiles; i++ {
		p := filepath.Join(dirs[rng.IntN(len(dirs))], fmt.Sprintf("%s.%d", names[rng.IntN(len(names))], i))
		n := sizes[rng.IntN(len(sizes))]
		if i == 0 {
			n = maxSize
		}
		data := make([]byte, n)
		switch rng.IntN(4) {
		case 0:
			fillRandom(rng, data)
		case 1:
			words := []string{"backup ", "restore ", "chunk ", "pack ", "shard "}
			var b strings.Builder
			for b.Len() < n {
				b.WriteString(words[rng.IntN(len(words))])
			}
			copy(data, b.String())
		case 2: // zeros
		case 3:
			blk := make([]byte, 4096)
			fillRandom(rng, blk)
			for o := 0; o < n; o += len(blk) {
				copy(data[o:], blk)
			}
		}
		must(os.WriteFile(p, data, 0o644))
		must(os.Chmod(p, []fs.FileMode{0o644, 0o600, 0o755, 0o400, 0o4755}[rng.IntN(5)]))
	}
	// a sparse file: a hole, data, a hole
	sp := filepath.Join(root, "sparse.img")
	f, err := os.Create(sp)
	must(err)
	must(f.Truncate(48 << 20))
	blk := make([]byte, 1<<20)
	fillRandom(rng, blk)
	_, err = f.WriteAt(blk, 20<<20)
	must(err)
	must(f.Close())
	must(os.Symlink("empty/deeper", filepath.Join(root, "link-rel")))
	must(os.Symlink("/nonexistent/abs/target", filepath.Join(root, "link-abs")))
	must(os.Symlink("../../outside", filepath.Join(dirs[len(dirs)-1], "link-up")))
	must(os.Chmod(filepath.Join(root, "empty"), 0o750))
	// varied mtimes, deepest first so parents keep theirs
	var all []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.Type()&fs.ModeSymlink == 0 {
			all = append(all, p)
		}
		return nil
	})
	for i := len(all) - 1; i >= 0; i-- {
		mt := int64(1_600_000_000_000_000_000) + rng.Int64N(200_000_000_000_000_000)
		ts := syscall.NsecToTimespec(mt)
		must(syscall.UtimesNano(all[i], []syscall.Timespec{ts, ts}))
	}
}

func fillRandom(rng *rand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		b[i], b[i+1], b[i+2], b[i+3], b[i+4], b[i+5], b[i+6], b[i+7] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24), byte(v>>32), byte(v>>40), byte(v>>48), byte(v>>56)
	}
	for i := len(b) &^ 7; i < len(b); i++ {
		b[i] = byte(rng.Uint32())
	}
}

// shardFiles lists the shard files of one disk directory.
func shardFiles(t *testing.T, disk string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(disk, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".shard") {
			out = append(out, p)
		}
		return nil
	})
	sort.Strings(out)
	return out
}
