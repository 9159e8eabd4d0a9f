package usedmap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// need fails the test when a tool is missing: `make test-deps` installs
// them (e2fsprogs, dosfstools, mtools).
func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install e2fsprogs, dosfstools and mtools (make test-deps)", tool)
		}
	}
}

// run runs a command and returns its combined output, failing on a
// non-zero exit.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code := runCode(name, args...)
	if code != 0 {
		t.Fatalf("%s %q: exit %d\n%s", name, args, code, out)
	}
	return out
}

func runCode(name string, args ...string) (string, int) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	return string(out) + err.Error(), -1
}

// newImage creates a file of size bytes: sparse zeros, or random bytes so
// that free space holds garbage (a reused disk) and a copy that misses a
// used block cannot pass by luck.
func newImage(t testing.TB, path string, size int64, garbage bool) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if garbage {
		rng := mrand.NewChaCha8([32]byte{byte(size), byte(size >> 8), byte(size >> 16), byte(size >> 24)})
		if _, err := io.CopyN(f, rng, size); err != nil {
			t.Fatal(err)
		}
	} else if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// populate fills dir with nested directories, random files of up to
// maxSize bytes (some MiB in all), an empty file and a symlink.
func populate(t testing.TB, dir string, seed uint64, files int, maxSize int) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(seed, 7))
	for i := range files {
		sub := filepath.Join(dir, fmt.Sprintf("d%d", i%4), fmt.Sprintf("e%d", i%3))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		data := make([]byte, rng.IntN(maxSize)+1)
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%03d", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d0/e0/f000", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
}

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

// copyUsed writes only the used extents of src into a new sparse file of
// the same size: what a restore of the image would produce.
func copyUsed(t testing.TB, src, dst string, size int64, used []Extent) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, e := range used {
		if _, err := io.Copy(io.NewOffsetWriter(out, e.Off), io.NewSectionReader(in, e.Off, e.Len)); err != nil {
			t.Fatal(err)
		}
	}
}

// checkShape checks the Used invariants: sorted, merged, inside the
// partition, UsedBytes their sum.
func checkShape(t testing.TB, res *Result, size int64) {
	t.Helper()
	var sum, prevEnd int64 = 0, -1
	for i, e := range res.Used {
		if e.Len <= 0 || e.Off < 0 || e.End() > size || e.Off <= prevEnd {
			t.Fatalf("extent %d %+v after end %d (size %d): not sorted, merged and inside", i, e, prevEnd, size)
		}
		prevEnd = e.End()
		sum += e.Len
	}
	if sum != res.UsedBytes {
		t.Fatalf("UsedBytes %d, extents sum to %d", res.UsedBytes, sum)
	}
}

// compareTrees checks that two directory trees hold the same files,
// contents, directories and symlinks.
func compareTrees(t testing.TB, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	n := 0
	err := filepath.WalkDir(want, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		q := filepath.Join(got, rel)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			a, _ := os.Readlink(p)
			b, err := os.Readlink(q)
			if err != nil || a != b {
				return fmt.Errorf("symlink %s: %q vs %q (%v)", rel, a, b, err)
			}
		case d.IsDir():
			if st, err := os.Stat(q); err != nil || !st.IsDir() {
				return fmt.Errorf("directory %s missing in copy: %v", rel, err)
			}
		default:
			a, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(q)
			if err != nil {
				return fmt.Errorf("file %s: %w", rel, err)
			}
			if !bytes.Equal(a, b) {
				return fmt.Errorf("file %s differs (%d vs %d bytes)", rel, len(a), len(b))
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(got, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(got, p); !seen[rel] {
			return fmt.Errorf("%s only in the copy", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("no files compared under %s", want)
	}
}
