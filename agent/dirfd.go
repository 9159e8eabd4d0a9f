package agent

import (
	"fmt"
	"os"
	"path"
	"sync"

	"golang.org/x/sys/unix"
)

// dirCache resolves directories under the restore target to open
// descriptors, each opened from its parent with O_NOFOLLOW|O_DIRECTORY, so
// no symlink is ever followed on the way down (nothing can be written
// outside the target) and a file is created with one openat on its parent
// instead of a walk from the root for every operation. Descriptors not in
// use are closed when more than max are open. Safe for concurrent use.
type dirCache struct {
	mu  sync.Mutex
	fds map[string]*dirEnt // "." is the target itself
	max int
}

type dirEnt struct {
	fd   int
	refs int
}

const openFlags = unix.O_CLOEXEC | unix.O_NOFOLLOW

func newDirCache(target string, max int) (*dirCache, error) {
	fd, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open target %s: %w", target, err)
	}
	return &dirCache{fds: map[string]*dirEnt{".": {fd: fd, refs: 1}}, max: max}, nil
}

// get returns the entry for dir, opening it (and its parents) as needed;
// caller holds c.mu.
func (c *dirCache) get(dir string) (*dirEnt, error) {
	if e := c.fds[dir]; e != nil {
		return e, nil
	}
	parent, err := c.get(path.Dir(dir))
	if err != nil {
		return nil, err
	}
	parent.refs++ // keep the parent while opening below it
	fd, err := unix.Openat(parent.fd, path.Base(dir), unix.O_RDONLY|unix.O_DIRECTORY|openFlags, 0)
	parent.refs--
	if err != nil {
		return nil, &os.PathError{Op: "open directory", Path: dir, Err: err}
	}
	e := &dirEnt{fd: fd}
	c.fds[dir] = e
	return e, nil
}

func (c *dirCache) evict() {
	for d, e := range c.fds {
		if len(c.fds) <= c.max/2 {
			return
		}
		if e.refs == 0 && d != "." {
			unix.Close(e.fd)
			delete(c.fds, d)
		}
	}
}

// at runs fn with the descriptor of p's parent directory and p's base name.
func (c *dirCache) at(p string, fn func(dirfd int, name string) error) error {
	c.mu.Lock()
	e, err := c.get(path.Dir(p))
	if err == nil {
		e.refs++
		if len(c.fds) > c.max {
			c.evict()
		}
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	err = fn(e.fd, path.Base(p))
	c.mu.Lock()
	e.refs--
	c.mu.Unlock()
	if err != nil {
		return &os.PathError{Op: "restore", Path: p, Err: err}
	}
	return nil
}

// close closes every descriptor.
func (c *dirCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for d, e := range c.fds {
		unix.Close(e.fd)
		delete(c.fds, d)
	}
}

// openFileAt opens (creating with excl) a regular file below the target.
func (c *dirCache) openFile(p string, flags int, perm uint32) (*os.File, error) {
	var f *os.File
	err := c.at(p, func(dirfd int, name string) error {
		fd, err := unix.Openat(dirfd, name, flags|openFlags, perm)
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), p)
		return nil
	})
	return f, err
}
