package fsread

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io/fs"
	"strings"
)

// maxDirEntries caps the entries of one directory (memory of ReadDir).
const maxDirEntries = 1 << 22

// extDirent is one live directory entry. name aliases the directory block
// and is only valid during the visit.
type extDirent struct {
	ino   uint32
	name  []byte
	ftype uint8
}

// dirVisit is called for each entry; returning stop ends the iteration.
type dirVisit func(d extDirent) (stop bool, err error)

// iterDir calls fn for every live entry of directory dir except "." and
// "..". Directories are read linearly, block by block: htree (dir_index)
// interior blocks look like one empty entry spanning the block, and the
// htree root hides inside the ".." entry, so no index is needed. Holes are
// skipped. Names are returned as stored (casefold directories keep the
// name's original case on disk).
func (x *ExtFS) iterDir(dir *extInode, fn dirVisit) error {
	if dir.flags&inodeEncrypt != 0 {
		return &UnsupportedError{Object: dir.name(), Feature: "encrypt"}
	}
	if dir.size > uint64(x.size) {
		return corruptf(dir.name(), "directory of %d bytes is larger than the image", dir.size)
	}
	count := 0
	visit := func(d extDirent) (bool, error) {
		if count++; count > maxDirEntries {
			return true, corruptf(dir.name(), "directory has more than %d entries", maxDirEntries)
		}
		return fn(d)
	}
	if dir.flags&inodeInlineData != 0 {
		return x.iterInlineDir(dir, visit)
	}
	m, err := x.mapper(dir)
	if err != nil {
		return err
	}
	bs := uint64(x.sb.blockSize)
	nblocks := (dir.size + bs - 1) / bs
	for lblk := uint64(0); lblk < nblocks; {
		run, err := m(lblk)
		if err != nil {
			return err
		}
		if run.zero {
			lblk += run.count
			continue
		}
		for i := uint64(0); i < run.count && lblk < nblocks; i, lblk = i+1, lblk+1 {
			b, err := x.block(run.phys + i)
			if err != nil {
				return fmt.Errorf("%s: %w", dir.name(), err)
			}
			if stop, err := x.parseDirBlock(dir, b, lblk, visit); stop || err != nil {
				return err
			}
		}
	}
	return nil
}

// iterInlineDir walks an inline directory: i_block holds the parent inode
// number (4 bytes) then entries; more entries may follow in system.data.
func (x *ExtFS) iterInlineDir(dir *extInode, fn dirVisit) error {
	stop, err := x.parseDirBlock(dir, dir.block()[4:], 0, fn)
	if stop || err != nil {
		return err
	}
	rest, err := x.inlineXattr(dir)
	if err != nil || len(rest) == 0 {
		return err
	}
	_, err = x.parseDirBlock(dir, rest, 1, fn)
	return err
}

func isDotName(b []byte) bool {
	return len(b) == 1 && b[0] == '.' || len(b) == 2 && b[0] == '.' && b[1] == '.'
}

// validNameBytes is validName for a name not yet converted: not empty, no
// slash, no NUL ("." and ".." are filtered before).
func validNameBytes(b []byte) bool {
	return len(b) > 0 && bytes.IndexByte(b, '/') < 0 && bytes.IndexByte(b, 0) < 0
}

// recLen decodes a dirent rec_len; 64 KiB blocks need the escaped form.
func (x *ExtFS) recLen(v uint16) int {
	if x.sb.blockSize < 65536 {
		return int(v)
	}
	if v == 65535 || v == 0 {
		return int(x.sb.blockSize)
	}
	return int(v&65532) | int(v&3)<<16
}

// parseDirBlock walks the entries of one directory block (or inline area)
// b, the lblk'th of dir, checking every length before using it.
func (x *ExtFS) parseDirBlock(dir *extInode, b []byte, lblk uint64, fn dirVisit) (bool, error) {
	le := binary.LittleEndian
	hasType := x.sb.has(incompatFiletype)
	for off := 0; off < len(b); {
		if off+8 > len(b) {
			return true, corruptf(dir.name(), "directory block %d: entry header at %d runs past the block", lblk, off)
		}
		ino := le.Uint32(b[off:])
		recLen := x.recLen(le.Uint16(b[off+4:]))
		nameLen := int(b[off+6])
		ftype := b[off+7]
		if !hasType {
			nameLen |= int(ftype) << 8
			ftype = 0
		}
		if recLen < 12 || recLen%4 != 0 || recLen > len(b)-off || 8+nameLen > recLen {
			return true, corruptf(dir.name(), "directory block %d: entry at %d has rec_len %d, name_len %d", lblk, off, recLen, nameLen)
		}
		if ino != 0 {
			name := b[off+8 : off+8+nameLen]
			if !isDotName(name) {
				if !validNameBytes(name) || uint64(ino) > x.sb.inodesCount {
					return true, corruptf(dir.name(), "directory block %d: entry %q with inode %d", lblk, name, ino)
				}
				if stop, err := fn(extDirent{ino: ino, name: name, ftype: ftype}); stop || err != nil {
					return true, err
				}
			}
		}
		off += recLen
	}
	return false, nil
}

// findInDir returns the inode number of name in directory dir, through
// the directory's name index when it is small enough to keep one. In a
// casefold directory a case-insensitive match (strings.EqualFold, an
// approximation of the filesystem's Unicode casefolding) is accepted when
// there is no exact one.
func (x *ExtFS) findInDir(dir *extInode, name string) (uint64, error) {
	names, err := x.dirNames(dir)
	if err == nil && names != nil {
		if ino, ok := names[name]; ok {
			return uint64(ino), nil
		}
		if dir.flags&inodeCasefold == 0 {
			return 0, fs.ErrNotExist
		}
	}
	return x.scanDir(dir, name)
}

// dirNames returns the name index of dir, building and caching it on first
// use; nil when the directory is too large to index.
func (x *ExtFS) dirNames(dir *extInode) (map[string]uint32, error) {
	if names, ok := x.names.get(dir.ino); ok {
		return names, nil
	}
	b := newNameIndexBuilder[uint32]()
	err := x.iterDir(dir, func(d extDirent) (bool, error) {
		return !b.add(string(d.name), d.ino), nil
	})
	if err != nil {
		return nil, err
	}
	x.names.put(dir.ino, b.names, max(b.cost, dirIndexEntryCost))
	return b.names, nil
}

// scanDir looks name up by reading the directory, stopping at the first
// exact match (so it also finds names before a damaged block).
func (x *ExtFS) scanDir(dir *extInode, name string) (uint64, error) {
	var found, folded uint32
	casefold := dir.flags&inodeCasefold != 0
	err := x.iterDir(dir, func(d extDirent) (bool, error) {
		if string(d.name) == name {
			found = d.ino
			return true, nil
		}
		if casefold && folded == 0 && strings.EqualFold(string(d.name), name) {
			folded = d.ino
		}
		return false, nil
	})
	switch {
	case found != 0:
		return uint64(found), nil
	case err != nil:
		return 0, err
	case folded != 0:
		return uint64(folded), nil
	}
	return 0, fs.ErrNotExist
}
