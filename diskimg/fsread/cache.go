package fsread

import (
	"container/list"
	"fmt"
	"io"
	"sync"
)

// Cache sizing. Metadata (superblock area, group descriptors, inode tables,
// extent and indirect blocks, directories, the FAT) is read in aligned pages
// of at least minPage bytes (or one filesystem block when larger) and kept
// in an LRU of at most cacheBudget bytes per open filesystem. File contents
// bypass the cache and are read straight into the caller's buffer.
const (
	minPage     = 4096
	cacheBudget = 2 << 20
	minPages    = 8
)

// readFull reads exactly len(p) bytes at off from r, whose size is size.
// Reading outside [0, size) is reported as corruption: metadata pointed
// there.
func readFull(r io.ReaderAt, size int64, p []byte, off int64) error {
	if off < 0 || int64(len(p)) > size || off > size-int64(len(p)) {
		return corruptf("image", "read of %d bytes at offset %d is outside the image (%d bytes)", len(p), off, size)
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("fsread: read %d bytes at offset %d: %w", len(p), off, err)
}

// pageCache is a bounded LRU of aligned pages of the image. Pages are never
// modified after they are read, so slices returned by page and slice stay
// valid (and immutable) after eviction. Safe for concurrent use.
type pageCache struct {
	r        io.ReaderAt
	size     int64
	pageSize int64
	max      int

	mu    sync.Mutex
	pages map[int64]*list.Element
	lru   list.List // of *cachedPage, most recent first
}

type cachedPage struct {
	off  int64
	data []byte
}

// newPageCache caches r (size bytes) in pages of pageSize bytes (a power of
// two).
func newPageCache(r io.ReaderAt, size, pageSize int64) *pageCache {
	n := int(cacheBudget / pageSize)
	if n < minPages {
		n = minPages
	}
	return &pageCache{r: r, size: size, pageSize: pageSize, max: n, pages: make(map[int64]*list.Element)}
}

// page returns the page starting at off (a multiple of the page size). The
// last page of the image may be short.
func (c *pageCache) page(off int64) ([]byte, error) {
	c.mu.Lock()
	if el, ok := c.pages[off]; ok {
		c.lru.MoveToFront(el)
		c.mu.Unlock()
		return el.Value.(*cachedPage).data, nil
	}
	c.mu.Unlock()
	if off < 0 || off >= c.size {
		return nil, corruptf("image", "offset %d is outside the image (%d bytes)", off, c.size)
	}
	n := min(c.pageSize, c.size-off)
	data := make([]byte, n)
	if err := readFull(c.r, c.size, data, off); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.pages[off]; ok { // another goroutine was faster
		c.lru.MoveToFront(el)
		return el.Value.(*cachedPage).data, nil
	}
	c.pages[off] = c.lru.PushFront(&cachedPage{off: off, data: data})
	for c.lru.Len() > c.max {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.pages, el.Value.(*cachedPage).off)
	}
	return data, nil
}

// slice returns n bytes at off. When they lie in one page the result
// aliases the cached page and must not be modified; otherwise it is a copy.
func (c *pageCache) slice(off int64, n int) ([]byte, error) {
	if off < 0 || int64(n) > c.size || off > c.size-int64(n) {
		return nil, corruptf("image", "read of %d bytes at offset %d is outside the image (%d bytes)", n, off, c.size)
	}
	start := off &^ (c.pageSize - 1)
	if off+int64(n) <= start+c.pageSize {
		p, err := c.page(start)
		if err != nil {
			return nil, err
		}
		return p[off-start : off-start+int64(n)], nil
	}
	buf := make([]byte, n)
	for done := 0; done < n; {
		o := off + int64(done)
		ps := o &^ (c.pageSize - 1)
		p, err := c.page(ps)
		if err != nil {
			return nil, err
		}
		done += copy(buf[done:], p[o-ps:])
	}
	return buf, nil
}
