package agent

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"bes/store/manifest"
)

// excluder matches exclude globs: a pattern without '/' matches any base
// name; one with '/' matches the whole absolute path. skip holds exact
// paths never backed up (the repository and its disks).
type excluder struct {
	base, full []string
	skip       map[string]bool
}

func newExcluder(globs []string) (*excluder, error) {
	x := &excluder{}
	for _, g := range globs {
		if _, err := filepath.Match(g, ""); err != nil {
			return nil, fmt.Errorf("exclude %q: %w", g, err)
		}
		if strings.Contains(g, "/") {
			x.full = append(x.full, strings.TrimSuffix(g, "/"))
		} else {
			x.base = append(x.base, g)
		}
	}
	return x, nil
}

func (x *excluder) match(abs string) bool {
	if x.skip[abs] {
		return true
	}
	base := filepath.Base(abs)
	for _, g := range x.base {
		if ok, _ := filepath.Match(g, base); ok {
			return true
		}
	}
	for _, g := range x.full {
		if ok, _ := filepath.Match(g, abs); ok {
			return true
		}
	}
	return false
}

// relPath turns a clean absolute path into a manifest path.
func relPath(abs string) string { return strings.TrimPrefix(abs, "/") }

// normalizeRoots makes paths absolute and clean, sorts them in manifest
// order and drops any path inside another.
func normalizeRoots(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("no paths to back up")
	}
	var out []string
	for _, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		if _, err := os.Lstat(a); err != nil {
			return nil, fmt.Errorf("path %s: %w", p, err)
		}
		out = append(out, filepath.Clean(a))
	}
	sort.Slice(out, func(i, j int) bool { return manifest.Less(relPath(out[i]), relPath(out[j])) })
	kept := out[:0]
	for _, p := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if p == last || last == "/" || strings.HasPrefix(p, last+"/") {
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// fillEntry sets the metadata of e from an lstat result.
func fillEntry(e *manifest.Entry, fi fs.FileInfo) {
	st, _ := fi.Sys().(*syscall.Stat_t)
	m := fi.Mode()
	e.Mode = uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		e.Mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		e.Mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		e.Mode |= 0o1000
	}
	switch {
	case m.IsRegular():
		e.Kind, e.Size = manifest.KindFile, fi.Size()
	case m.IsDir():
		e.Kind = manifest.KindDir
	case m&fs.ModeSymlink != 0:
		e.Kind = manifest.KindSymlink
	case m&fs.ModeNamedPipe != 0:
		e.Kind = manifest.KindFIFO
	case m&fs.ModeSocket != 0:
		e.Kind = manifest.KindSocket
	case m&fs.ModeCharDevice != 0:
		e.Kind = manifest.KindCharDevice
	case m&fs.ModeDevice != 0:
		e.Kind = manifest.KindDevice
	}
	e.MTime = fi.ModTime().UnixNano()
	if st != nil {
		e.UID, e.GID = st.Uid, st.Gid
		e.CTime = st.Ctim.Nano()
		e.Inode, e.Dev, e.Nlink, e.Rdev = st.Ino, uint64(st.Dev), uint32(st.Nlink), uint64(st.Rdev)
	}
}
