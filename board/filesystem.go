package board

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// statFileSystems reports each distinct file system (by device id) once,
// under the first of paths that lives on it, in the order of paths.
func statFileSystems(paths []string) ([]FileSystem, []error) {
	var (
		out  []FileSystem
		errs []error
		seen = make(map[uint64]bool)
	)
	for _, p := range paths {
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			errs = append(errs, &PathError{Path: p, Op: "stat", Err: err})
			continue
		}
		if seen[st.Dev] {
			continue
		}
		fs, err := statFS(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		seen[st.Dev] = true
		fs.Device = st.Dev
		out = append(out, fs)
	}
	return out, errs
}

func statFS(path string) (FileSystem, error) {
	var sf unix.Statfs_t
	if err := unix.Statfs(path, &sf); err != nil {
		return FileSystem{}, &PathError{Path: path, Op: "statfs", Err: err}
	}
	bsize := uint64(sf.Bsize)
	if sf.Frsize > 0 {
		bsize = uint64(sf.Frsize)
	}
	fs := FileSystem{
		Path:       path,
		TotalBytes: sf.Blocks * bsize,
		UsedBytes:  (sf.Blocks - min(sf.Bfree, sf.Blocks)) * bsize,
		FreeBytes:  sf.Bavail * bsize,
	}
	if d := fs.UsedBytes + fs.FreeBytes; d > 0 {
		fs.UsedPercent = 100 * float64(fs.UsedBytes) / float64(d)
	}
	if sf.Files > 0 {
		used := sf.Files - min(sf.Ffree, sf.Files)
		fs.InodesUsedPercent = 100 * float64(used) / float64(sf.Files)
	}
	return fs, nil
}

// PathError is a failure to read the file system under one configured
// path (missing directory, unmounted disk, I/O error).
type PathError struct {
	Path string
	Op   string
	Err  error
}

func (e *PathError) Error() string {
	return fmt.Sprintf("board: %s %s: %v", e.Op, e.Path, e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }
