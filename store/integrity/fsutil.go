package integrity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// This package imports nothing of the project, so it keeps its own copy of
// the durable-write helper (store's writeFileAtomic), with the same
// recognisable temp names.

// writeFileAtomic durably replaces path with data: temp file in the same
// directory, write, fsync, close, rename, fsync the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// createFileExclusive is writeFileAtomic that never replaces an existing
// file: the temp file is hard-linked to path, which fails with an error
// matching fs.ErrExist when path exists. Where the file system has no hard
// links it falls back to rename after checking that path does not exist.
func createFileExclusive(path string, data []byte, perm os.FileMode) error {
	tmp, err := writeTemp(path, data, perm)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	err = os.Link(tmp, path)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		if _, serr := os.Lstat(path); serr == nil {
			err = &fs.PathError{Op: "create", Path: path, Err: fs.ErrExist}
		} else {
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("create %s: remove temp: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data to a new, fsynced temp file beside path and returns
// its name.
func writeTemp(path string, data []byte, perm os.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp-bes")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}
