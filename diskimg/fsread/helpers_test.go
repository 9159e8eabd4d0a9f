package fsread

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// needTools skips the test when a command it runs is not installed.
func needTools(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s not installed", n)
		}
	}
}

func hasTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// needRoot skips tests that chown, mknod or mount.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// run runs a command and fails the test with its output on error; okCodes
// lists exit codes other than 0 that count as success.
func run(t testing.TB, env []string, okCodes []int, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		for _, c := range okCodes {
			if ee.ExitCode() == c {
				return string(out)
			}
		}
	}
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// randBytes returns n pseudo-random bytes from a fixed seed.
func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // umask-proof
		t.Fatal(err)
	}
}

// openImage opens an image file as a ReaderAt for the reader under test.
func openImage(t testing.TB, path string) (*os.File, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return f, st.Size()
}

// cmpOpts says what compareTree checks beyond names, types, permissions,
// sizes, owners, link targets, device numbers and contents.
type cmpOpts struct {
	nanos      bool          // mtimes to the nanosecond (else seconds)
	atime      bool          // access times too
	mtimeSlack time.Duration // FAT: allowed difference (2 s resolution)
	noOwner    bool          // FAT: no uid/gid, modes only dir/file/ro
	skip       func(rel string) bool
}

// compareTree checks that fsys holds exactly the tree under dir (apart
// from paths opts.skip excludes), reading every file both through WriteTo
// and through small Reads and random ReadAts.
func compareTree(t *testing.T, fsys FS, dir string, opts cmpOpts) {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if opts.skip != nil && opts.skip(rel) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		seen[rel] = true
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		compareEntry(t, fsys, p, rel, fi, opts)
		if fi.IsDir() {
			compareListing(t, fsys, p, rel, opts)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Everything in the image must be in the source tree.
	err = Walk(fsys, ".", func(p string, e *Entry, err error) error {
		if err != nil {
			t.Errorf("walk %q: %v", p, err)
			return nil
		}
		if opts.skip != nil && opts.skip(p) {
			if e.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !seen[p] {
			t.Errorf("image has %q, the source tree does not", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func compareListing(t *testing.T, fsys FS, p, rel string, opts cmpOpts) {
	t.Helper()
	want, err := os.ReadDir(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fsys.ReadDir(rel)
	if err != nil {
		t.Errorf("ReadDir(%q): %v", rel, err)
		return
	}
	var wn, gn []string
	for _, w := range want {
		if opts.skip == nil || !opts.skip(joinRel(rel, w.Name())) {
			wn = append(wn, w.Name())
		}
	}
	for _, g := range got {
		if opts.skip == nil || !opts.skip(joinRel(rel, g.Name)) {
			gn = append(gn, g.Name)
		}
	}
	if strings.Join(wn, "\x00") != strings.Join(gn, "\x00") {
		t.Errorf("ReadDir(%q): got %d names %q..., want %d names %q...", rel, len(gn), head(gn), len(wn), head(wn))
	}
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func compareEntry(t *testing.T, fsys FS, p, rel string, fi os.FileInfo, opts cmpOpts) {
	t.Helper()
	e, err := fsys.Stat(rel)
	if err != nil {
		t.Errorf("Stat(%q): %v", rel, err)
		return
	}
	wantMode := fi.Mode()
	if opts.noOwner {
		wantMode = fi.Mode() & (fs.ModeDir | 0o777)
	}
	if e.Mode != wantMode {
		t.Errorf("%q: mode %v, want %v", rel, e.Mode, wantMode)
	}
	if !fi.IsDir() && e.Size != fi.Size() {
		t.Errorf("%q: size %d, want %d", rel, e.Size, fi.Size())
	}
	st := fi.Sys().(*syscall.Stat_t)
	if !opts.noOwner {
		if e.UID != st.Uid || e.GID != st.Gid {
			t.Errorf("%q: owner %d:%d, want %d:%d", rel, e.UID, e.GID, st.Uid, st.Gid)
		}
		if uint64(e.Nlink) != uint64(st.Nlink) && !fi.IsDir() {
			t.Errorf("%q: nlink %d, want %d", rel, e.Nlink, st.Nlink)
		}
		if fi.Mode()&fs.ModeDevice != 0 && e.Rdev != uint64(st.Rdev) {
			t.Errorf("%q: rdev %#x, want %#x", rel, e.Rdev, st.Rdev)
		}
	}
	compareTimes(t, rel, e, fi, st, opts)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		want, _ := os.Readlink(p)
		got, err := fsys.Readlink(rel)
		if err != nil || got != want || e.Link != want {
			t.Errorf("%q: link %q / %q (%v), want %q", rel, got, e.Link, err, want)
		}
	case fi.Mode().IsRegular():
		compareContent(t, fsys, p, rel)
	}
}

func compareTimes(t *testing.T, rel string, e *Entry, fi os.FileInfo, st *syscall.Stat_t, opts cmpOpts) {
	t.Helper()
	if rel == "." || (opts.noOwner && fi.IsDir()) {
		return // mkfs touches the root; mtools does not keep directory times
	}
	want := fi.ModTime()
	got := e.ModTime
	switch {
	case opts.mtimeSlack > 0:
		if d := got.Sub(want); d < -opts.mtimeSlack || d > opts.mtimeSlack {
			t.Errorf("%q: mtime %v, want %v ± %v", rel, got, want, opts.mtimeSlack)
		}
	case opts.nanos:
		if !got.Equal(want) {
			t.Errorf("%q: mtime %v, want %v", rel, got, want)
		}
	default:
		if got.Unix() != want.Unix() {
			t.Errorf("%q: mtime %v, want %v", rel, got, want)
		}
	}
	if opts.atime {
		wantA := time.Unix(st.Atim.Sec, st.Atim.Nsec)
		if !e.ATime.Equal(wantA) {
			t.Errorf("%q: atime %v, want %v", rel, e.ATime, wantA)
		}
	}
}

// compareContent reads a file three ways and compares with the source.
func compareContent(t *testing.T, fsys FS, p, rel string) {
	t.Helper()
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.Open(rel)
	if err != nil {
		t.Errorf("Open(%q): %v", rel, err)
		return
	}
	defer f.Close()
	if f.Size() != int64(len(want)) {
		t.Errorf("%q: File.Size %d, want %d", rel, f.Size(), len(want))
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil { // WriteTo
		t.Errorf("%q: copy: %v", rel, err)
		return
	}
	if !bytes.Equal(h.Sum(nil), sha256Sum(want)) {
		t.Errorf("%q: content differs (WriteTo)", rel)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, make([]byte, 3000)); err != nil { // small Reads
		t.Errorf("%q: read: %v", rel, err)
		return
	}
	if !bytes.Equal(h.Sum(nil), sha256Sum(want)) {
		t.Errorf("%q: content differs (Read)", rel)
	}
	r := rand.New(rand.NewPCG(uint64(len(want)), 7))
	for i := 0; i < 20 && len(want) > 0; i++ {
		off := r.IntN(len(want))
		n := min(1+r.IntN(200000), len(want)-off)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, int64(off)); err != nil && err != io.EOF {
			t.Errorf("%q: ReadAt(%d, %d): %v", rel, n, off, err)
			return
		}
		if !bytes.Equal(buf, want[off:off+n]) {
			t.Errorf("%q: ReadAt(%d, %d) differs", rel, n, off)
			return
		}
	}
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
