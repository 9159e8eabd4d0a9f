package fsread

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
)

// maxWalkDepth bounds the directory nesting Walk descends into (a path of
// 4096 bytes has at most 2048 levels).
const maxWalkDepth = 2048

// ErrDirCycle is passed to Walk's fn for a directory that is its own
// ancestor (only possible on a damaged filesystem); Walk does not descend.
var ErrDirCycle = errors.New("fsread: directory is its own ancestor")

// entryDirReader lists a directory from its Entry without resolving its
// path again. Both implementations have it; Walk falls back to ReadDir.
type entryDirReader interface {
	readDirEntry(p string, e *Entry) ([]Entry, error)
}

// Walk visits the tree rooted at root depth-first in name order, like
// fs.WalkDir: fn is called for root and then for every entry, with path
// root joined with the names below it ("." and "" give unprefixed paths
// with the root itself as "."). Symlinks are not followed. If a directory
// cannot be listed, fn is called a second time for it with the error (and
// with the entries that could be read still visited afterwards). fn may
// return fs.SkipDir (on a directory: skip it; on a file: skip the rest of
// its directory) or fs.SkipAll. A directory that is its own ancestor is
// reported with ErrDirCycle and not entered.
func Walk(f FS, root string, fn func(path string, e *Entry, err error) error) error {
	if root == "" {
		root = "."
	}
	e, err := f.Stat(root)
	if err != nil {
		err = fn(root, nil, err)
	} else {
		err = walk(f, root, e, fn, nil)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

func walk(f FS, name string, e *Entry, fn func(string, *Entry, error) error, ancestors []uint64) error {
	if err := fn(name, e, nil); err != nil || !e.IsDir() {
		if err == fs.SkipDir && e.IsDir() {
			err = nil
		}
		return err
	}
	var entries []Entry
	var err error
	switch {
	case slices.Contains(ancestors, e.Ino):
		err = &fs.PathError{Op: "walk", Path: name, Err: ErrDirCycle}
	case len(ancestors) >= maxWalkDepth:
		err = &fs.PathError{Op: "walk", Path: name, Err: fmt.Errorf("fsread: deeper than %d directories", maxWalkDepth)}
	default:
		if r, ok := f.(entryDirReader); ok {
			entries, err = r.readDirEntry(name, e)
		} else {
			entries, err = f.ReadDir(name)
		}
	}
	if err != nil {
		if err = fn(name, e, err); err != nil {
			if err == fs.SkipDir {
				err = nil
			}
			return err
		}
	}
	ancestors = append(ancestors, e.Ino)
	for i := range entries {
		if err := walk(f, path.Join(name, entries[i].Name), &entries[i], fn, ancestors); err != nil {
			if err == fs.SkipDir {
				break
			}
			return err
		}
	}
	return nil
}
