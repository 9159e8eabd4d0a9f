package fsread

import (
	"errors"
	"io"
	"io/fs"
	"time"
)

// AsIOFS adapts f to io/fs (fs.FS, fs.StatFS, fs.ReadDirFS, fs.ReadLinkFS),
// for fs.WalkDir, fs.Sub, http.FS or fstest.TestFS. Names must satisfy
// fs.ValidPath. Symbolic links are not followed: Open and Stat of a symlink
// describe the link itself (its target is a path of the machine that was
// backed up), and reading it fails; ReadLink gives the target. Special
// files (devices, fifos, sockets) open as empty files.
func AsIOFS(f FS) fs.FS { return ioFS{f} }

type ioFS struct{ f FS }

var errSymlinkRead = errors.New("fsread: is a symbolic link; use ReadLink")

func (a ioFS) check(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// Open implements fs.FS.
func (a ioFS) Open(name string) (fs.File, error) {
	if err := a.check("open", name); err != nil {
		return nil, err
	}
	e, err := a.f.Stat(name)
	if err != nil {
		return nil, err
	}
	switch {
	case e.IsDir():
		return &ioDir{fsys: a.f, name: name, info: fileInfo{e}}, nil
	case e.Mode.IsRegular():
		f, err := a.f.Open(name)
		if err != nil {
			return nil, err
		}
		return &ioFile{File: f, info: fileInfo{e}}, nil
	default:
		return &ioSpecial{info: fileInfo{e}, name: name}, nil
	}
}

// Stat implements fs.StatFS (without following symlinks, see AsIOFS).
func (a ioFS) Stat(name string) (fs.FileInfo, error) { return a.Lstat(name) }

// Lstat implements fs.ReadLinkFS.
func (a ioFS) Lstat(name string) (fs.FileInfo, error) {
	if err := a.check("lstat", name); err != nil {
		return nil, err
	}
	e, err := a.f.Stat(name)
	if err != nil {
		return nil, err
	}
	return fileInfo{e}, nil
}

// ReadLink implements fs.ReadLinkFS.
func (a ioFS) ReadLink(name string) (string, error) {
	if err := a.check("readlink", name); err != nil {
		return "", err
	}
	return a.f.Readlink(name)
}

// ReadDir implements fs.ReadDirFS.
func (a ioFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := a.check("readdir", name); err != nil {
		return nil, err
	}
	entries, err := a.f.ReadDir(name)
	return dirEntries(entries), err
}

func dirEntries(entries []Entry) []fs.DirEntry {
	out := make([]fs.DirEntry, len(entries))
	for i := range entries {
		out[i] = fs.FileInfoToDirEntry(fileInfo{&entries[i]})
	}
	return out
}

// fileInfo is an Entry as fs.FileInfo; Sys returns the *Entry.
type fileInfo struct{ e *Entry }

func (i fileInfo) Name() string       { return i.e.Name }
func (i fileInfo) Size() int64        { return i.e.Size }
func (i fileInfo) Mode() fs.FileMode  { return i.e.Mode }
func (i fileInfo) ModTime() time.Time { return i.e.ModTime }
func (i fileInfo) IsDir() bool        { return i.e.IsDir() }
func (i fileInfo) Sys() any           { return i.e }

// ioFile is an open regular file.
type ioFile struct {
	File
	info fileInfo
}

func (f *ioFile) Stat() (fs.FileInfo, error) { return f.info, nil }

// WriteTo forwards to the File's large aligned reads.
func (f *ioFile) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := f.File.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{f.File})
}

// ioSpecial is an open symlink or special file.
type ioSpecial struct {
	info fileInfo
	name string
}

func (s *ioSpecial) Stat() (fs.FileInfo, error) { return s.info, nil }
func (s *ioSpecial) Close() error               { return nil }
func (s *ioSpecial) Read([]byte) (int, error) {
	if s.info.e.Mode&fs.ModeSymlink != 0 {
		return 0, &fs.PathError{Op: "read", Path: s.name, Err: errSymlinkRead}
	}
	return 0, io.EOF
}

// ioDir is an open directory; entries are listed on the first ReadDir.
type ioDir struct {
	fsys    FS
	name    string
	info    fileInfo
	entries []fs.DirEntry
	listed  bool
	pos     int
}

func (d *ioDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *ioDir) Close() error               { return nil }
func (d *ioDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *ioDir) ReadDir(n int) ([]fs.DirEntry, error) {
	if !d.listed {
		entries, err := d.fsys.ReadDir(d.name)
		if err != nil {
			return nil, err
		}
		d.entries, d.listed = dirEntries(entries), true
	}
	rest := d.entries[d.pos:]
	if n <= 0 {
		d.pos = len(d.entries)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	rest = rest[:min(n, len(rest))]
	d.pos += len(rest)
	return rest, nil
}
