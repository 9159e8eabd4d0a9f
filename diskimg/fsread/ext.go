package fsread

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync/atomic"
)

// ExtFS reads an ext2, ext3 or ext4 filesystem; OpenExt returns one. Besides
// FS it tells whether the journal needs recovery, the label and the feature
// flags. Safe for concurrent use.
type ExtFS struct {
	r     io.ReaderAt
	size  int64
	sb    *extSuper
	cache *pageCache
	names dirIndexCache[uint32]
	// tables caches the inode table block of the first maxCachedGroups
	// groups (value+1; 0 means not read yet).
	tables []atomic.Uint64
}

// maxCachedGroups bounds the decoded group descriptor cache (8 bytes per
// group: 512 KiB, enough for 8 TiB with 4 KiB blocks); descriptors of
// further groups are read through the block cache.
const maxCachedGroups = 1 << 16

// OpenExt opens the ext2/3/4 filesystem in r (size bytes). The superblock is
// validated; group descriptors, inodes and directories are read on demand
// through a bounded cache. The result is an *ExtFS.
func OpenExt(r io.ReaderAt, size int64) (FS, error) {
	b := make([]byte, extSuperSize)
	if err := readFull(r, size, b, extSuperOffset); err != nil {
		if errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("%w: image of %d bytes is too small for ext", ErrUnknownFS, size)
		}
		return nil, fmt.Errorf("ext: read superblock: %w", err)
	}
	sb, err := parseExtSuper(b, size)
	if err != nil {
		return nil, fmt.Errorf("ext: %w", err)
	}
	x := &ExtFS{r: r, size: size, sb: sb, cache: newPageCache(r, size, max(sb.blockSize, minPage)),
		tables: make([]atomic.Uint64, min(sb.groupCount, maxCachedGroups))}
	root, err := x.readInode(extRootIno)
	if err != nil {
		return nil, fmt.Errorf("%s: root directory: %w", sb.typeName(), err)
	}
	if !root.isDir() {
		return nil, fmt.Errorf("%s: %w", sb.typeName(), corruptf("inode 2", "root inode is not a directory (mode %#o)", root.mode))
	}
	return x, nil
}

// Type is "ext2", "ext3" or "ext4".
func (x *ExtFS) Type() string { return x.sb.typeName() }

// NeedsRecovery reports that the journal holds transactions that were not
// replayed (the filesystem was not cleanly unmounted). The image is read as
// it is on disk, so recently written files may be stale or missing.
func (x *ExtFS) NeedsRecovery() bool { return x.sb.has(incompatRecover) }

// Label is the volume name.
func (x *ExtFS) Label() string { return x.sb.label }

// Features lists the compat, incompat and ro_compat feature names set in
// the superblock, sorted.
func (x *ExtFS) Features() []string { return x.sb.features() }

// BlockSize is the filesystem block size in bytes.
func (x *ExtFS) BlockSize() int64 { return x.sb.blockSize }

// block returns filesystem block b from the metadata cache. The slice must
// not be modified.
func (x *ExtFS) block(b uint64) ([]byte, error) {
	if b >= x.sb.blocksCount {
		return nil, corruptf(fmt.Sprintf("block %d", b), "beyond the end of the filesystem (%d blocks)", x.sb.blocksCount)
	}
	return x.cache.slice(int64(b)*x.sb.blockSize, int(x.sb.blockSize))
}

// inodeTable returns the first block of the inode table of group g.
func (x *ExtFS) inodeTable(g uint64) (uint64, error) {
	if g < uint64(len(x.tables)) {
		if v := x.tables[g].Load(); v != 0 {
			return v - 1, nil
		}
	}
	table, err := x.readInodeTable(g)
	if err == nil && g < uint64(len(x.tables)) {
		x.tables[g].Store(table + 1)
	}
	return table, err
}

// readInodeTable decodes the inode table location from the descriptor of
// group g.
func (x *ExtFS) readInodeTable(g uint64) (uint64, error) {
	if g >= x.sb.groupCount {
		return 0, corruptf(fmt.Sprintf("group descriptor %d", g), "group beyond the %d groups", x.sb.groupCount)
	}
	blk, off := x.sb.descLocation(g)
	b, err := x.block(blk)
	if err != nil {
		return 0, fmt.Errorf("group descriptor %d: %w", g, err)
	}
	d := b[off : off+x.sb.descSize]
	table := uint64(binary.LittleEndian.Uint32(d[0x8:]))
	if x.sb.has(incompat64bit) {
		table |= uint64(binary.LittleEndian.Uint32(d[0x28:])) << 32
	}
	tableBlocks := (x.sb.inodesPerGroup*uint64(x.sb.inodeSize) + uint64(x.sb.blockSize) - 1) / uint64(x.sb.blockSize)
	if table == 0 || table > x.sb.blocksCount || tableBlocks > x.sb.blocksCount-table {
		return 0, corruptf(fmt.Sprintf("group descriptor %d", g), "inode table at block %d is outside the filesystem", table)
	}
	return table, nil
}

// inodeBytes returns the on-disk inode ino (inode-size bytes; not to be
// modified).
func (x *ExtFS) inodeBytes(ino uint64) ([]byte, error) {
	if ino < 1 || ino > x.sb.inodesCount {
		return nil, corruptf(fmt.Sprintf("inode %d", ino), "inode number out of range 1..%d", x.sb.inodesCount)
	}
	g := (ino - 1) / x.sb.inodesPerGroup
	idx := (ino - 1) % x.sb.inodesPerGroup
	table, err := x.inodeTable(g)
	if err != nil {
		return nil, fmt.Errorf("inode %d: %w", ino, err)
	}
	return x.cache.slice(int64(table)*x.sb.blockSize+int64(idx)*x.sb.inodeSize, int(x.sb.inodeSize))
}

// lookup resolves a path to its inode without following symlinks.
func (x *ExtFS) lookup(elems []string) (*extInode, error) {
	in, err := x.readInode(extRootIno)
	if err != nil {
		return nil, err
	}
	for _, name := range elems {
		if !in.isDir() {
			return nil, errNotDir
		}
		ino, err := x.findInDir(in, name)
		if err != nil {
			return nil, err
		}
		if in, err = x.readInode(ino); err != nil {
			return nil, err
		}
	}
	return in, nil
}

// resolve is lookup for a path of the FS interface, errors as *fs.PathError.
func (x *ExtFS) resolve(op, p string) ([]string, *extInode, error) {
	elems, err := splitPath(p)
	if err != nil {
		return nil, nil, &fs.PathError{Op: op, Path: p, Err: err}
	}
	in, err := x.lookup(elems)
	if err != nil {
		return nil, nil, &fs.PathError{Op: op, Path: p, Err: err}
	}
	return elems, in, nil
}

// Stat implements FS.
func (x *ExtFS) Stat(p string) (*Entry, error) {
	elems, in, err := x.resolve("stat", p)
	if err != nil {
		return nil, err
	}
	e, err := x.entry(baseName(elems), in)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	return &e, nil
}

// ReadDir implements FS.
func (x *ExtFS) ReadDir(p string) ([]Entry, error) {
	_, in, err := x.resolve("readdir", p)
	if err != nil {
		return nil, err
	}
	return x.readDirInode(p, in)
}

// readDirEntry lists the directory described by e (from Stat or ReadDir),
// without resolving p again; Walk uses it.
func (x *ExtFS) readDirEntry(p string, e *Entry) ([]Entry, error) {
	in, err := x.readInode(e.Ino)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: err}
	}
	return x.readDirInode(p, in)
}

// maxEntryErrors caps how many per-entry errors ReadDir reports.
const maxEntryErrors = 8

func (x *ExtFS) readDirInode(p string, dir *extInode) ([]Entry, error) {
	if !dir.isDir() {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: errNotDir}
	}
	var out []Entry
	var errs []error
	err := x.iterDir(dir, func(d extDirent) (bool, error) {
		e, err := x.direntEntry(d)
		if err != nil {
			if len(errs) < maxEntryErrors {
				errs = append(errs, fmt.Errorf("%q: %w", string(d.name), err))
			}
			return false, nil
		}
		out = append(out, e)
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

// direntEntry builds the Entry of one directory entry.
func (x *ExtFS) direntEntry(d extDirent) (Entry, error) {
	in, err := x.readInode(uint64(d.ino))
	if err != nil {
		return Entry{}, err
	}
	if in.mode&extTypeMask == 0 && d.ftype != 0 {
		in.mode |= direntTypeMode(d.ftype)
	}
	return x.entry(string(d.name), in)
}

// Open implements FS.
func (x *ExtFS) Open(p string) (File, error) {
	_, in, err := x.resolve("open", p)
	if err != nil {
		return nil, err
	}
	if in.mode&extTypeMask != extTypeReg {
		return nil, &fs.PathError{Op: "open", Path: p, Err: errNotRegular}
	}
	r, err := x.dataReader(in)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return newFile(strings.TrimLeft(p, "/"), int64(in.size), r), nil
}

// Readlink implements FS.
func (x *ExtFS) Readlink(p string) (string, error) {
	_, in, err := x.resolve("readlink", p)
	if err != nil {
		return "", err
	}
	if in.mode&extTypeMask != extTypeLnk {
		return "", &fs.PathError{Op: "readlink", Path: p, Err: errNotSymlink}
	}
	t, err := x.readSymlink(in)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: p, Err: err}
	}
	return t, nil
}
