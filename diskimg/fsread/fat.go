package fsread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
)

// fatRootIno is Entry.Ino of the FAT12/16 root directory (which has no
// cluster); cluster numbers start at 2.
const fatRootIno = 1

// FATFS reads a FAT12, FAT16 or FAT32 filesystem; OpenFAT returns one.
// Safe for concurrent use.
type FATFS struct {
	r       io.ReaderAt
	size    int64
	g       *fatGeom
	cache   *pageCache
	rootIno uint64
	names   dirIndexCache[fatDirent]
}

// OpenFAT opens the FAT12/16/32 filesystem in r (size bytes). The FAT type
// is decided by the cluster count, as the specification requires. The
// result is a *FATFS.
func OpenFAT(r io.ReaderAt, size int64) (FS, error) {
	b := make([]byte, fatBootSize)
	if err := readFull(r, size, b, 0); err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("%w: image of %d bytes is too small for FAT", ErrUnknownFS, size)
		}
		return nil, fmt.Errorf("fat: read boot sector: %w", err)
	}
	if !isFAT(r, size) {
		return nil, fmt.Errorf("%w: no FAT boot sector", ErrUnknownFS)
	}
	g, err := parseFATBoot(b, size)
	if err != nil {
		return nil, fmt.Errorf("fat: %w", err)
	}
	f := &FATFS{r: r, size: size, g: g, cache: newPageCache(r, size, minPage), rootIno: fatRootIno}
	if g.kind == 32 {
		f.rootIno = uint64(g.rootCluster)
	}
	return f, nil
}

// Type is "fat12", "fat16" or "fat32".
func (f *FATFS) Type() string { return fmt.Sprintf("fat%d", f.g.kind) }

// Label is the volume label from the boot sector ("" when none).
func (f *FATFS) Label() string { return f.g.label }

// ClusterSize is the allocation unit in bytes.
func (f *FATFS) ClusterSize() int64 { return f.g.clusterSize }

func (f *FATFS) rootEntry() Entry {
	return Entry{Name: ".", Mode: fs.ModeDir | 0o755, Ino: f.rootIno, Nlink: 1}
}

// entry converts a directory entry: directories 0755, files 0644, the
// read-only attribute drops the write bits.
func (f *FATFS) entry(d fatDirent) (Entry, error) {
	e := Entry{Name: d.name, Mode: 0o644, Nlink: 1,
		ModTime: fatTime(d.mdate, d.mtime), ATime: fatTime(d.adate, 0)}
	object := func() string { return fmt.Sprintf("directory entry %q at offset %d", d.name, d.pos) }
	switch {
	case d.attr&fatAttrDir != 0:
		if !f.g.validCluster(d.cluster) {
			return Entry{}, corruptf(object(), "directory cluster %d out of range 2..%d", d.cluster, f.g.clusters+1)
		}
		e.Mode = fs.ModeDir | 0o755
		e.Ino = uint64(d.cluster)
	case d.cluster != 0 || d.size != 0:
		if !f.g.validCluster(d.cluster) {
			return Entry{}, corruptf(object(), "first cluster %d out of range 2..%d", d.cluster, f.g.clusters+1)
		}
		if int64(d.size) > int64(f.g.clusters)*f.g.clusterSize {
			return Entry{}, corruptf(object(), "size %d is larger than the volume", d.size)
		}
		e.Size = int64(d.size)
		e.Ino = uint64(d.cluster)
	default: // empty file without clusters
		e.Ino = 1<<63 | uint64(d.pos)
	}
	if d.attr&fatAttrReadOnly != 0 {
		e.Mode &^= 0o222
	}
	return e, nil
}

// find looks name up in the directory at cluster: an exact long-name
// match, else a case-insensitive match of the long or the 8.3 name (FAT
// names are case-insensitive). Small directories are searched through a
// cached name index, large ones by scanning.
func (f *FATFS) find(cluster uint64, name string) (fatDirent, error) {
	names, err := f.dirNames(cluster)
	if err == nil && names != nil {
		for _, k := range []string{name, foldKey(name)} {
			if d, ok := names[k]; ok {
				return d, nil
			}
		}
		return fatDirent{}, fs.ErrNotExist
	}
	return f.scanDir(cluster, name)
}

// foldKey is the index key of a case-insensitive name; the NUL prefix
// keeps it apart from exact names (which cannot contain NUL).
func foldKey(name string) string { return "\x00" + strings.ToLower(name) }

// dirNames returns the name index of the directory at cluster (exact long
// names, and folded long and 8.3 names), nil when it is too large.
func (f *FATFS) dirNames(cluster uint64) (map[string]fatDirent, error) {
	if names, ok := f.names.get(cluster); ok {
		return names, nil
	}
	b := newNameIndexBuilder[fatDirent]()
	err := f.iterDir(cluster, func(d fatDirent) (bool, error) {
		ok := b.add(d.name, d) && b.add(foldKey(d.name), d) && b.add(foldKey(d.short), d)
		return !ok, nil
	})
	if err != nil {
		return nil, err
	}
	f.names.put(cluster, b.names, max(b.cost, dirIndexEntryCost))
	return b.names, nil
}

// scanDir is find without an index.
func (f *FATFS) scanDir(cluster uint64, name string) (fatDirent, error) {
	var exact, folded *fatDirent
	err := f.iterDir(cluster, func(d fatDirent) (bool, error) {
		if d.name == name {
			exact = &d
			return true, nil
		}
		if folded == nil && (strings.EqualFold(d.name, name) || strings.EqualFold(d.short, name)) {
			folded = &d
		}
		return false, nil
	})
	switch {
	case exact != nil:
		return *exact, nil
	case err != nil:
		return fatDirent{}, err
	case folded != nil:
		return *folded, nil
	}
	return fatDirent{}, fs.ErrNotExist
}

// resolve walks a path from the root and returns its Entry.
func (f *FATFS) resolve(op, p string) (Entry, error) {
	elems, err := splitPath(p)
	if err != nil {
		return Entry{}, &fs.PathError{Op: op, Path: p, Err: err}
	}
	e := f.rootEntry()
	for _, name := range elems {
		if !e.IsDir() {
			return Entry{}, &fs.PathError{Op: op, Path: p, Err: errNotDir}
		}
		d, err := f.find(e.Ino, name)
		if err == nil {
			e, err = f.entry(d)
		}
		if err != nil {
			return Entry{}, &fs.PathError{Op: op, Path: p, Err: err}
		}
	}
	return e, nil
}

// Stat implements FS.
func (f *FATFS) Stat(p string) (*Entry, error) {
	e, err := f.resolve("stat", p)
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// ReadDir implements FS.
func (f *FATFS) ReadDir(p string) ([]Entry, error) {
	e, err := f.resolve("readdir", p)
	if err != nil {
		return nil, err
	}
	return f.readDirEntry(p, &e)
}

// readDirEntry lists the directory described by e; Walk uses it.
func (f *FATFS) readDirEntry(p string, e *Entry) ([]Entry, error) {
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: errNotDir}
	}
	var out []Entry
	var errs []error
	err := f.iterDir(e.Ino, func(d fatDirent) (bool, error) {
		ent, err := f.entry(d)
		if err != nil {
			if len(errs) < maxEntryErrors {
				errs = append(errs, err)
			}
			return false, nil
		}
		out = append(out, ent)
		return false, nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if len(errs) > 0 {
		return out, &fs.PathError{Op: "readdir", Path: p, Err: errors.Join(errs...)}
	}
	return out, nil
}

// Open implements FS.
func (f *FATFS) Open(p string) (File, error) {
	e, err := f.resolve("open", p)
	if err != nil {
		return nil, err
	}
	if !e.Mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: p, Err: errNotRegular}
	}
	name := strings.TrimLeft(p, "/")
	if e.Size == 0 {
		return newFile(name, 0, nil), nil
	}
	ch, err := f.newChain(uint32(e.Ino), fmt.Sprintf("file %q", name))
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var mu sync.Mutex // the chain cursor is shared by ReadAt callers
	return newFile(name, e.Size, func(b []byte, off int64) error {
		mu.Lock()
		defer mu.Unlock()
		return f.readChain(ch, b, off)
	}), nil
}

// readChain fills b from file offset off of the chain, reading physically
// contiguous clusters with one ReadAt.
func (f *FATFS) readChain(ch *chain, b []byte, off int64) error {
	cs := f.g.clusterSize
	for len(b) > 0 {
		within := off % cs
		if err := ch.seek(uint64(off / cs)); err != nil {
			return err
		}
		need := uint64((within + int64(len(b)) + cs - 1) / cs)
		start, n := ch.cur, uint64(1)
		for n < need {
			end, err := ch.step()
			if err != nil {
				return err
			}
			if end {
				return corruptf(ch.object, "cluster chain ends before the file size")
			}
			if uint64(ch.cur) != uint64(start)+n {
				break
			}
			n++
		}
		m := min(int64(n)*cs-within, int64(len(b)))
		if err := readFull(f.r, f.size, b[:m], f.g.clusterOffset(start)+within); err != nil {
			return fmt.Errorf("%s: cluster %d: %w", ch.object, start, err)
		}
		b = b[m:]
		off += m
	}
	return nil
}

// Readlink implements FS; FAT has no symbolic links.
func (f *FATFS) Readlink(p string) (string, error) {
	if _, err := f.resolve("readlink", p); err != nil {
		return "", err
	}
	return "", &fs.PathError{Op: "readlink", Path: p, Err: errNotSymlink}
}
