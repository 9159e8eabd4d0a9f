package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bes/store/catalog"
	"bes/store/crypt"
)

// TestMain makes new passphrase slots cheap: every command derives the KEK
// again, and the default argon2id cost (~70 ms, several times that under
// -race) would dominate the run time. Slots keep their own cost, so the
// password path (including wrong-password detection) is unchanged.
func TestMain(m *testing.M) {
	crypt.DefaultArgon2 = crypt.Argon2Params{Time: 1, MemoryKiB: 1 << 10, Threads: 1}
	os.Exit(m.Run())
}

const testPassword = "correct horse battery staple"

// tenv is a fake process environment for in-process runs of the CLI.
type tenv struct {
	t    *testing.T
	vars map[string]string
}

func newEnv(t *testing.T) *tenv {
	t.Helper()
	return &tenv{t: t, vars: map[string]string{
		"BES_REPO":     filepath.Join(t.TempDir(), "repo"),
		"BES_PASSWORD": testPassword,
	}}
}

func (e *tenv) with(k, v string) *tenv {
	m := map[string]string{}
	for k, v := range e.vars {
		m[k] = v
	}
	m[k] = v
	return &tenv{t: e.t, vars: m}
}

// run executes one command line and returns its stdout, stderr and error.
func (e *tenv) run(args ...string) (string, string, error) {
	e.t.Helper()
	var stdout, stderr bytes.Buffer
	err := Run(context.Background(), args, Env{
		Stdout: &stdout,
		Stderr: &stderr,
		Getenv: func(k string) string { return e.vars[k] },
	})
	return stdout.String(), stderr.String(), err
}

// ok runs a command that must succeed and returns its stdout.
func (e *tenv) ok(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.run(args...)
	if err != nil || ExitCode(err) != ExitOK {
		e.t.Fatalf("bes %s: %v (exit %d)\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, ExitCode(err), out, errOut)
	}
	return out
}

// fails runs a command that must fail with exit code 1 and an error
// mentioning every want.
func (e *tenv) fails(args []string, want ...string) error {
	e.t.Helper()
	out, _, err := e.run(args...)
	if err == nil {
		e.t.Fatalf("bes %s succeeded, want an error\nstdout:\n%s", strings.Join(args, " "), out)
	}
	if code := ExitCode(err); code != ExitError {
		e.t.Errorf("bes %s: exit code %d, want %d (%v)", strings.Join(args, " "), code, ExitError, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			e.t.Errorf("bes %s: error %q does not mention %q", strings.Join(args, " "), err, w)
		}
	}
	return err
}

// decodeOne decodes exactly one JSON value from s into v.
func decodeOne(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, s)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		t.Fatalf("more than one JSON value in output (%v):\n%s", err, s)
	}
}

// decodeLines decodes JSON lines.
func decodeLines[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("decode JSON lines: %v\n%s", err, s)
		}
		out = append(out, v)
	}
}

// initRepo creates a 2+1 repository on three disk directories.
func (e *tenv) initRepo() []string {
	e.t.Helper()
	base := e.t.TempDir()
	disks := []string{filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "c")}
	out := e.ok("init", "--disks", strings.Join(disks, ","), "--ec", "2+1", "--json")
	var res struct {
		ID    string   `json:"id"`
		Repo  string   `json:"repo"`
		Disks []string `json:"disks"`
		EC    string   `json:"ec"`
	}
	decodeOne(e.t, out, &res)
	if res.EC != "2+1" || len(res.Disks) != 3 || res.ID == "" || res.Repo != e.vars["BES_REPO"] {
		e.t.Fatalf("init result %+v", res)
	}
	for i, d := range res.Disks {
		if d != disks[i] {
			e.t.Fatalf("disk %d = %s, want %s", i, d, disks[i])
		}
		if _, err := os.Stat(filepath.Join(d, "bes-repo.json")); err != nil {
			e.t.Fatalf("disk copy: %v", err)
		}
	}
	return disks
}

type treeFile struct {
	path, content, link string
	mode                fs.FileMode
}

// writeTree creates a small source tree and returns its directory.
func writeTree(t *testing.T) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	files := []treeFile{
		{path: "a.txt", content: "hello a\n", mode: 0o644},
		{path: "notes.md", content: "# notes\n", mode: 0o600},
		{path: "empty.txt", content: "", mode: 0o640},
		{path: "big.bin", content: string(big), mode: 0o644},
		{path: "zero.bin", content: string(make([]byte, 70<<10)), mode: 0o644},
		{path: "sub/c.txt", content: "sub c\n", mode: 0o644},
		{path: "sub/deep/d.txt", content: "deep d\n", mode: 0o755},
		{path: "sub/e.dat", content: "e data", mode: 0o644},
		{path: "other/f.txt", content: "f\n", mode: 0o644},
		{path: "link", link: "a.txt"},
	}
	for _, f := range files {
		p := filepath.Join(src, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.link != "" {
			if err := os.Symlink(f.link, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(f.content), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // not subject to umask
			t.Fatal(err)
		}
	}
	return src
}

// snapshot maps every path below dir to a description of its content.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			m[rel] = "link:" + target
		case d.IsDir():
			m[rel] = "dir:" + fi.Mode().Perm().String()
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			m[rel] = "file:" + fi.Mode().Perm().String() + ":" + string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func compareTrees(t *testing.T, want, got map[string]string) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			t.Errorf("restored tree lacks %s", p)
		case g != w:
			t.Errorf("restored %s differs: got %.60q, want %.60q", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("restored tree has extra %s", p)
		}
	}
}

type backupJSON struct {
	PointID     string   `json:"point_id"`
	Host        string   `json:"host"`
	Type        string   `json:"type"`
	Parent      string   `json:"parent"`
	Files       *int64   `json:"files"`
	Dirs        int64    `json:"dirs"`
	Bytes       *int64   `json:"bytes"`
	BytesRead   int64    `json:"bytes_read"`
	NewBytes    *int64   `json:"new_bytes"`
	BytesStored *int64   `json:"bytes_stored"`
	Seconds     *float64 `json:"seconds"`
	MBps        *float64 `json:"mb_per_s"`
	Errors      int64    `json:"errors"`
}

func (e *tenv) backup(args ...string) backupJSON {
	e.t.Helper()
	out := e.ok(append([]string{"backup", "--json"}, args...)...)
	var b backupJSON
	decodeOne(e.t, out, &b)
	if b.PointID == "" || b.Files == nil || b.Bytes == nil || b.NewBytes == nil || b.BytesStored == nil || b.Seconds == nil || b.MBps == nil {
		e.t.Fatalf("backup JSON lacks fields:\n%s", out)
	}
	return b
}

type pointsEntry struct {
	ID           string   `json:"id"`
	Time         string   `json:"time"`
	Host         string   `json:"host"`
	Kind         string   `json:"kind"`
	Type         string   `json:"type"`
	Status       string   `json:"status"`
	Parent       string   `json:"parent"`
	Paths        []string `json:"paths"`
	Files        int64    `json:"files"`
	VerifyStatus string   `json:"verify_status"`
}

func (e *tenv) points() []pointsEntry {
	e.t.Helper()
	var ps []pointsEntry
	decodeOne(e.t, e.ok("points", "--json"), &ps)
	return ps
}

type lsEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   string `json:"mode"`
	Size   int64  `json:"size"`
	Target string `json:"target"`
}

func lsPaths(es []lsEntry) map[string]lsEntry {
	m := map[string]lsEntry{}
	for _, e := range es {
		m[e.Path] = e
	}
	return m
}

type restoreJSON struct {
	PointID string `json:"point_id"`
	Summary struct {
		Files    int64    `json:"files"`
		Dirs     int64    `json:"dirs"`
		Symlinks int64    `json:"symlinks"`
		Bytes    int64    `json:"bytes"`
		Skipped  []string `json:"skipped_existing"`
		Errors   []string `json:"errors"`
	} `json:"summary"`
}

func (e *tenv) restore(args ...string) restoreJSON {
	e.t.Helper()
	var r restoreJSON
	decodeOne(e.t, e.ok(append([]string{"restore", "--json"}, args...)...), &r)
	return r
}

func TestEndToEnd(t *testing.T) {
	e := newEnv(t)
	e.initRepo()
	src := writeTree(t)
	srcSnap := snapshot(t, src)
	mpath := strings.TrimPrefix(src, "/") // the tree's path inside the manifest

	// backup
	b1 := e.backup(src, "--host", "h1")
	wantBytes := int64(len("hello a\n") + len("# notes\n") + 300<<10 + 70<<10 + len("sub c\n") + len("deep d\n") + len("e data") + len("f\n"))
	if *b1.Files != 9 || *b1.Bytes != wantBytes || b1.Host != "h1" || b1.Type != "full" || b1.Errors != 0 {
		t.Errorf("first backup: %+v (files %d, bytes %d), want 9 files, %d bytes, full", b1, *b1.Files, *b1.Bytes, wantBytes)
	}
	if *b1.NewBytes <= 0 || *b1.NewBytes > *b1.Bytes+1<<20 || *b1.BytesStored <= 0 || *b1.Seconds <= 0 || *b1.MBps < 0 {
		t.Errorf("first backup figures: new %d, stored %d, %.3fs, %.1f MB/s", *b1.NewBytes, *b1.BytesStored, *b1.Seconds, *b1.MBps)
	}
	id1 := b1.PointID

	// points --json
	ps := e.points()
	if len(ps) != 1 {
		t.Fatalf("points: %+v", ps)
	}
	p := ps[0]
	if p.ID != id1 || p.Time == "" || p.Host != "h1" || p.Kind != "file" || p.Type != "full" || p.Status != "complete" ||
		p.Files != 9 || p.VerifyStatus != "pending" || len(p.Paths) != 1 || p.Paths[0] != src {
		t.Errorf("points[0] = %+v", p)
	}
	if out := e.ok("points"); !strings.Contains(out, id1[:8]) || !strings.Contains(out, "1 points") {
		t.Errorf("points text output:\n%s", out)
	}

	t.Run("ls", func(t *testing.T) {
		all := lsPaths(decodeLines[lsEntry](t, e.ok("ls", "latest", "--json")))
		for rel, want := range map[string]string{"": "dir", "a.txt": "file", "sub/deep/d.txt": "file", "link": "symlink", "empty.txt": "file"} {
			pth := "/" + mpath
			if rel != "" {
				pth += "/" + rel
			}
			got, ok := all[pth]
			if !ok || got.Type != want {
				t.Errorf("ls latest: %s = %+v (present %v), want type %s", pth, got, ok, want)
			}
		}
		if got := all["/"+mpath+"/link"]; got.Target != "a.txt" {
			t.Errorf("ls: link target %q", got.Target)
		}
		if got := all["/"+mpath+"/big.bin"]; got.Size != 300<<10 || got.Mode != "0644" {
			t.Errorf("ls: big.bin %+v", got)
		}
		if _, ok := all["/"+strings.Split(mpath, "/")[0]]; !ok {
			t.Errorf("ls latest lacks the ancestor directory of the backed-up tree")
		}

		// ID prefix and sub path: only the subtree, in text form.
		out := e.ok("ls", id1[:8], src+"/sub")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 5 { // sub, sub/c.txt, sub/deep, sub/deep/d.txt, sub/e.dat
			t.Errorf("ls %s %s/sub: %d lines:\n%s", id1[:8], src, len(lines), out)
		}
		for _, l := range lines {
			if !strings.Contains(l, " /"+mpath+"/sub") {
				t.Errorf("ls of sub lists %q", l)
			}
		}
		if !strings.Contains(out, "/"+mpath+"/sub/deep/d.txt") || !strings.HasPrefix(lines[0], "d") {
			t.Errorf("ls of sub:\n%s", out)
		}
		// A sub path given relative to the manifest root works too.
		if out2 := e.ok("ls", id1, mpath+"/sub/"); out2 != out {
			t.Errorf("ls with manifest-relative path differs:\n%s\nvs\n%s", out2, out)
		}
		// A sibling with a common name prefix is not included.
		if strings.Contains(e.ok("ls", id1, src+"/su"), "sub") {
			t.Errorf("ls of %s/su lists sub", src)
		}
	})

	t.Run("find", func(t *testing.T) {
		out, errOut, err := e.run("find", "latest", "*.txt")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			got = append(got, strings.TrimPrefix(f[len(f)-1], "/"+mpath+"/"))
		}
		want := []string{"a.txt", "empty.txt", "other/f.txt", "sub/c.txt", "sub/deep/d.txt"}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("find *.txt = %v, want %v\n%s", got, want, out)
		}
		if !strings.Contains(errOut, "5 matches") {
			t.Errorf("find stderr %q", errOut)
		}
		// A glob with '/' is matched against the whole path.
		js := decodeLines[lsEntry](t, e.ok("find", "latest", "/"+mpath+"/sub/*", "--json"))
		if len(js) != 3 {
			t.Errorf("find %s/sub/*: %+v", src, js)
		}
		if out, errOut, err := e.run("find", "latest", "*.nothing"); err != nil || out != "" || !strings.Contains(errOut, "0 matches") {
			t.Errorf("find without matches: %q %q %v", out, errOut, err)
		}
	})

	t.Run("restore", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "T")
		r := e.restore("latest", "--target", target)
		if r.PointID != id1 || r.Summary.Files != 9 || r.Summary.Symlinks != 1 || len(r.Summary.Errors) != 0 || len(r.Summary.Skipped) != 0 {
			t.Errorf("restore summary %+v", r)
		}
		restored := filepath.Join(target, src)
		compareTrees(t, srcSnap, snapshot(t, restored))
		fi, err := os.Lstat(filepath.Join(restored, "zero.bin"))
		if err != nil || fi.Size() != 70<<10 {
			t.Errorf("zero.bin: %v %v", fi, err)
		}

		// Again without --overwrite: a modified file is left alone and reported.
		mod := filepath.Join(restored, "sub", "c.txt")
		if err := os.WriteFile(mod, []byte("local change"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = e.restore(id1, "--target", target)
		if b, _ := os.ReadFile(mod); string(b) != "local change" {
			t.Errorf("restore without --overwrite replaced %s: %q", mod, b)
		}
		skipped := map[string]bool{}
		for _, s := range r.Summary.Skipped {
			skipped[s] = true
		}
		if !skipped[mpath+"/sub/c.txt"] || !skipped[mpath+"/link"] || r.Summary.Files != 0 {
			t.Errorf("restore without --overwrite: skipped %v, files %d", r.Summary.Skipped, r.Summary.Files)
		}
		out := e.ok("restore", id1[:10], "--target", target)
		if !strings.Contains(out, "existing files left untouched") || !strings.Contains(out, "--overwrite") {
			t.Errorf("restore text output does not report skipped files:\n%s", out)
		}

		// With --overwrite it is replaced.
		r = e.restore(id1, "--target", target, "--overwrite")
		if len(r.Summary.Skipped) != 0 || r.Summary.Files != 9 || len(r.Summary.Errors) != 0 {
			t.Errorf("restore --overwrite: %+v", r.Summary)
		}
		compareTrees(t, srcSnap, snapshot(t, restored))
	})

	t.Run("restore include", func(t *testing.T) {
		target := filepath.Join(t.TempDir(), "T")
		r := e.restore("latest", "--target", target, "--include", src+"/sub", "--include", "/"+mpath+"/notes.md")
		if r.Summary.Files != 4 || r.Summary.Symlinks != 0 || len(r.Summary.Errors) != 0 {
			t.Errorf("restore --include: %+v", r.Summary)
		}
		want := map[string]string{}
		for p, v := range srcSnap {
			if p == "." || p == "sub" || strings.HasPrefix(p, "sub/") || p == "notes.md" {
				want[p] = v
			}
		}
		compareTrees(t, want, snapshot(t, filepath.Join(target, src)))
	})

	t.Run("restore needs target", func(t *testing.T) {
		e.fails([]string{"restore", "latest"}, "--target")
	})

	// A second backup of a partly changed tree is an incremental.
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte("hello a, changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b2 := e.backup(src, "--host", "h1")
	if b2.Type != "incremental" || b2.Parent != id1 || b2.PointID == id1 {
		t.Errorf("second backup: %+v", b2)
	}
	if b2.BytesRead >= *b2.Bytes || *b2.NewBytes >= *b1.NewBytes {
		t.Errorf("second backup read %d of %d bytes, %d new (first: %d new): unchanged files were re-read", b2.BytesRead, *b2.Bytes, *b2.NewBytes, *b1.NewBytes)
	}
	if ps := e.points(); len(ps) != 2 || ps[0].ID != id1 || ps[1].ID != b2.PointID || ps[1].Parent != id1 {
		t.Errorf("points after second backup: %+v", ps)
	}

	t.Run("verify", func(t *testing.T) {
		out := e.ok("verify")
		if !strings.Contains(out, "no errors were found") || !strings.Contains(out, id1) || !strings.Contains(out, "passed") {
			t.Errorf("verify:\n%s", out)
		}
		var rep struct {
			Points []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"points"`
			PacksRead     int64    `json:"packs_read"`
			ChunksChecked int64    `json:"chunks_checked"`
			BytesChecked  int64    `json:"bytes_checked"`
			DamagedChunks []string `json:"damaged_chunks"`
		}
		decodeOne(t, e.ok("verify", "--read-data", "--json", "--sample", "3"), &rep)
		if len(rep.Points) != 2 || rep.PacksRead < 1 || rep.ChunksChecked < 3 || rep.BytesChecked <= 0 || len(rep.DamagedChunks) != 0 {
			t.Errorf("verify --read-data: %+v", rep)
		}
		for _, p := range rep.Points {
			if p.Status != "passed" {
				t.Errorf("verify: point %s %s", p.ID, p.Status)
			}
		}
		for _, p := range e.points() {
			if p.VerifyStatus != "passed" {
				t.Errorf("points after verify: %s verify status %q", p.ID, p.VerifyStatus)
			}
		}
		// One point by prefix.
		decodeOne(t, e.ok("verify", id1[:16], "--json"), &rep)
		if len(rep.Points) != 1 || rep.Points[0].ID != id1 {
			t.Errorf("verify %s: %+v", id1[:16], rep)
		}
	})

	t.Run("scrub", func(t *testing.T) {
		out := e.ok("scrub")
		if !strings.Contains(out, "all shards healthy") || strings.Contains(out, "scrubbed 0 packs") {
			t.Errorf("scrub:\n%s", out)
		}
		// Without a key it checks shards and parity only.
		nokey := e.with("BES_PASSWORD", "")
		out, errOut, err := nokey.run("scrub", "--json")
		if err != nil || !strings.Contains(errOut, "no key given") {
			t.Fatalf("scrub without key: %v\n%s", err, errOut)
		}
		var rep struct {
			Packs int   `json:"packs"`
			Bytes int64 `json:"bytes"`
		}
		decodeOne(t, out, &rep)
		if rep.Packs < 1 || rep.Bytes <= 0 {
			t.Errorf("scrub without key: %+v", rep)
		}
	})

	t.Run("catalog rebuild", func(t *testing.T) {
		before := e.points()
		var rep struct {
			Packs   int      `json:"packs"`
			Chunks  int      `json:"chunks"`
			Points  int      `json:"points"`
			Skipped []string `json:"skipped"`
		}
		decodeOne(t, e.ok("catalog", "rebuild", "--json"), &rep)
		if rep.Points != 2 || rep.Packs < 1 || rep.Chunks < 3 || len(rep.Skipped) != 0 {
			t.Errorf("catalog rebuild: %+v", rep)
		}
		after := e.points()
		if len(after) != len(before) {
			t.Fatalf("points after rebuild: %+v, before %+v", after, before)
		}
		for i := range after {
			if after[i].ID != before[i].ID || after[i].Parent != before[i].Parent || after[i].Files != before[i].Files || after[i].Status != before[i].Status {
				t.Errorf("point %d after rebuild %+v, before %+v", i, after[i], before[i])
			}
		}
		// The rebuilt catalog still serves restores.
		target := filepath.Join(t.TempDir(), "T")
		e.restore(id1, "--target", target, "--include", src+"/big.bin")
		if got := snapshot(t, filepath.Join(target, src)); got["big.bin"] != srcSnap["big.bin"] {
			t.Errorf("restore after rebuild: big.bin differs")
		}
		if out := e.ok("catalog", "rebuild"); !strings.Contains(out, "catalog rebuilt:") || !strings.Contains(out, "2 points") {
			t.Errorf("catalog rebuild text:\n%s", out)
		}
	})

	t.Run("unknown point", func(t *testing.T) {
		err := e.fails([]string{"ls", "ffffffffffff"}, "not found")
		if !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("ls of an unknown point: %v, want catalog.ErrNotFound", err)
		}
	})
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		env  *tenv
		args []string
		want []string
	}{
		{"no repo", e.with("BES_REPO", ""), []string{"points"}, []string{"no repository", "BES_REPO"}},
		{"no repo backup", e.with("BES_REPO", ""), []string{"backup", "."}, []string{"no repository"}},
		{"no repo init", e.with("BES_REPO", ""), []string{"init", "--ec", "2+1"}, []string{"no repository"}},
		{"ec 0+1", e, []string{"init", "--ec", "0+1"}, []string{"--ec", "0+1"}},
		{"ec missing plus", e, []string{"init", "--ec", "4"}, []string{"--ec"}},
		{"ec negative parity", e, []string{"init", "--ec", "2+-1"}, []string{"--ec"}},
		{"ec too wide", e, []string{"init", "--ec", "30+3"}, []string{"--ec"}},
		{"ec 4+2 with 3 disks", e, []string{"init", "--ec", "4+2", "--disks", "/nonexistent/a,/nonexistent/b,/nonexistent/c"}, []string{"6 disk", "3"}},
		{"duplicate disks", e, []string{"init", "--ec", "2+1", "--disks", "/nonexistent/x,/nonexistent/x/,/nonexistent/y"}, []string{"same"}},
		{"no repository yet", e, []string{"points"}, []string{"no repository here"}},
		{"bad glob", e, []string{"find", "latest", "[a-"}, []string{"glob", "[a-"}},
		{"unknown command", e, []string{"frobnicate"}, []string{"unknown command"}},
		{"ls args", e, []string{"ls"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env.t = t
			tt.env.fails(tt.args, tt.want...)
		})
	}
	if _, err := os.Stat(e.vars["BES_REPO"]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed init left %s behind (%v)", e.vars["BES_REPO"], err)
	}
}

func TestRepoErrors(t *testing.T) {
	e := newEnv(t)
	e.initRepo()
	src := writeTree(t)

	t.Run("init twice", func(t *testing.T) {
		e := &tenv{t: t, vars: e.vars}
		e.fails([]string{"init", "--ec", "1+0"}, "already holds a repository")
	})
	t.Run("wrong password", func(t *testing.T) {
		bad := e.with("BES_PASSWORD", "not the password")
		bad.t = t
		bad.fails([]string{"points"}, "wrong password")
	})
	t.Run("no password", func(t *testing.T) {
		nopw := e.with("BES_PASSWORD", "")
		nopw.t = t
		nopw.fails([]string{"points"}, "no password given")
	})
	t.Run("password file", func(t *testing.T) {
		pf := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(pf, []byte(testPassword+"\nignored\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		withFile := e.with("BES_PASSWORD", "").with("BES_PASSWORD_FILE", pf)
		withFile.t = t
		if out := withFile.ok("points"); !strings.Contains(out, "0 points") {
			t.Errorf("points with a password file:\n%s", out)
		}
	})
	t.Run("latest without points", func(t *testing.T) {
		e := &tenv{t: t, vars: e.vars}
		e.fails([]string{"restore", "latest", "--target", t.TempDir()}, "no restore points")
	})
	t.Run("backup of a missing path", func(t *testing.T) {
		e := &tenv{t: t, vars: e.vars}
		e.fails([]string{"backup", filepath.Join(src, "nope")}, "nope")
	})
	t.Run("unknown point and bad glob", func(t *testing.T) {
		e := &tenv{t: t, vars: e.vars}
		e.backup(src)
		err := e.fails([]string{"restore", "0123456789abcdef", "--target", t.TempDir()}, "not found")
		if !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("restore of an unknown point: %v", err)
		}
		e.fails([]string{"find", "latest", "a[b"}, "glob")
		e.fails([]string{"backup", "--exclude", "a[b", src}, "exclude")

		// --exclude and --compression reach the backup.
		b := e.backup(src, "--exclude", "*.bin", "--exclude", src+"/sub/deep", "--compression", "lz4", "--host", "h2")
		if *b.Files != 6 {
			t.Errorf("backup with excludes: %d files, want 6", *b.Files)
		}
		if out := e.ok("ls", b.PointID, src+"/sub"); strings.Contains(out, "deep") || !strings.Contains(out, "c.txt") {
			t.Errorf("excluded directory in the point:\n%s", out)
		}
		out, errOut, err := e.run("find", b.PointID, "*.bin")
		if err != nil || out != "" || !strings.Contains(errOut, "0 matches") {
			t.Errorf("excluded files in the point: %q %q %v", out, errOut, err)
		}
		var ps []pointsEntry
		decodeOne(t, e.ok("points", "--json", "--host", "h2"), &ps)
		if len(ps) != 1 || ps[0].ID != b.PointID {
			t.Errorf("points --host h2: %+v", ps)
		}
		decodeOne(t, e.ok("points", "--json", "--host", "nobody"), &ps)
		if len(ps) != 0 {
			t.Errorf("points --host nobody: %+v", ps)
		}
		e.fails([]string{"backup", "--compression", "brotli", src}, "brotli")
		e.fails([]string{"verify", "abc"}, "not found") // prefix too short
	})
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, ExitOK},
		{errors.New("x"), ExitError},
		{&exitError{ExitPartial, errors.New("partial")}, ExitPartial},
		{errors.Join(errors.New("wrapped"), &exitError{ExitPartial, errors.New("partial")}), ExitPartial},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestDamagedDisk(t *testing.T) {
	e := newEnv(t)
	disks := e.initRepo()
	src := writeTree(t)
	srcSnap := snapshot(t, src)
	e.backup(src)

	// Lose every shard on one disk: reads reconstruct from parity.
	if err := os.RemoveAll(filepath.Join(disks[0], "packs")); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(t.TempDir(), "T")
	e.restore("latest", "--target", target)
	compareTrees(t, srcSnap, snapshot(t, filepath.Join(target, src)))
	e.ok("verify", "--read-data")

	out, _, err := e.run("scrub")
	if err == nil || ExitCode(err) != ExitError || !strings.Contains(err.Error(), "--repair") || !strings.Contains(out, "damaged") {
		t.Fatalf("scrub of a degraded repository: %v\n%s", err, out)
	}
	// Repair needs no key.
	if out := e.with("BES_PASSWORD", "").ok("scrub", "--repair"); !strings.Contains(out, "repaired") {
		t.Errorf("scrub --repair without a key:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(disks[0], "packs")); err != nil {
		t.Errorf("repair did not recreate the lost shards: %v", err)
	}
	if out := e.ok("scrub"); !strings.Contains(out, "all shards healthy") {
		t.Errorf("scrub after repair:\n%s", out)
	}

	// Lose two disks of a 2+1 set: the data is gone, and both verify and
	// scrub say so.
	for _, d := range disks[:2] {
		if err := os.RemoveAll(filepath.Join(d, "packs")); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err = e.run("verify", "--read-data")
	if err == nil || ExitCode(err) != ExitError || !strings.Contains(err.Error(), "damage") {
		t.Errorf("verify --read-data with two lost disks: %v\n%s", err, out)
	}
	out, _, err = e.run("scrub")
	if err == nil || ExitCode(err) != ExitError || !strings.Contains(err.Error(), "unrecoverable") {
		t.Errorf("scrub with two lost disks: %v\n%s", err, out)
	}
}

func TestDrillRecordsTimeToRestore(t *testing.T) {
	e := newEnv(t)
	e.initRepo()
	src := writeTree(t)
	e.ok("backup", src, "--host", "h1")
	sandbox := t.TempDir()
	out := e.ok("drill", "latest", "--sandbox", sandbox, "--json")
	var d struct {
		OK    bool    `json:"ok"`
		Files int64   `json:"files"`
		Secs  float64 `json:"seconds"`
	}
	decodeOne(t, out, &d)
	if !d.OK || d.Files < 8 || d.Secs <= 0 {
		t.Fatalf("drill: %s", out)
	}
	if ents, _ := os.ReadDir(sandbox); len(ents) != 0 {
		t.Fatalf("sandbox left behind: %v", ents)
	}
	e.fails([]string{"drill", "nosuchpoint"}, "not found")
}
