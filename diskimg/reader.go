package diskimg

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"bes/store"
	"bes/store/crypt"
	"bes/store/manifest"
)

// DefaultCacheChunks is how many decoded chunks a DiskReader keeps.
const DefaultCacheChunks = 64

// DiskReader gives random access to an image point's disk straight from
// the store: holes read as zeros, chunks are loaded (decrypted and checked
// against their IDs) on demand and kept in a small LRU cache. It is safe
// for concurrent use.
type DiskReader struct {
	ctx    context.Context
	repo   *store.Repo
	refs   []manifest.ChunkRef
	starts []int64 // disk offset of each ref
	size   int64

	mu    sync.Mutex
	cache map[int]*list.Element // ref index -> element holding *cached
	lru   *list.List
	max   int
	loads map[int]*loading // chunks being loaded, so concurrent readers wait for one load
}

type cached struct {
	idx  int
	data []byte
}

type loading struct {
	done chan struct{}
	data []byte
	err  error
}

// NewDiskReader returns a reader over img's disk. ctx bounds every load.
func NewDiskReader(ctx context.Context, repo *store.Repo, img *Image, cacheChunks int) *DiskReader {
	if cacheChunks <= 0 {
		cacheChunks = DefaultCacheChunks
	}
	d := &DiskReader{ctx: ctx, repo: repo, refs: img.Refs, starts: make([]int64, len(img.Refs)),
		cache: map[int]*list.Element{}, lru: list.New(), max: cacheChunks, loads: map[int]*loading{}}
	var off int64
	for i, c := range img.Refs {
		d.starts[i] = off
		off += int64(c.Size)
	}
	d.size = off
	return d
}

// Size is the disk size in bytes.
func (d *DiskReader) Size() int64 { return d.size }

// ReadAt implements io.ReaderAt.
func (d *DiskReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("disk read at %d: negative offset", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= d.size {
			return n, io.EOF
		}
		i := sort.Search(len(d.starts), func(i int) bool { return d.starts[i] > pos }) - 1
		c := d.refs[i]
		in := pos - d.starts[i]
		want := min(int64(len(p)-n), int64(c.Size)-in)
		if c.Hole() {
			clear(p[n : n+int(want)])
		} else {
			data, err := d.chunk(i)
			if err != nil {
				return n, fmt.Errorf("disk read at %d: %w", pos, err)
			}
			copy(p[n:n+int(want)], data[in:])
		}
		n += int(want)
	}
	return n, nil
}

// chunk returns the plaintext of ref i, from the cache or the store.
func (d *DiskReader) chunk(i int) ([]byte, error) {
	d.mu.Lock()
	if e, ok := d.cache[i]; ok {
		d.lru.MoveToFront(e)
		data := e.Value.(*cached).data
		d.mu.Unlock()
		return data, nil
	}
	if l, ok := d.loads[i]; ok {
		d.mu.Unlock()
		<-l.done
		return l.data, l.err
	}
	l := &loading{done: make(chan struct{})}
	d.loads[i] = l
	d.mu.Unlock()

	l.data, l.err = d.repo.LoadBlob(d.ctx, crypt.ID(d.refs[i].ID), nil)
	if l.err == nil && len(l.data) != int(d.refs[i].Size) {
		l.err = fmt.Errorf("chunk %s holds %d bytes, the manifest says %d", crypt.ID(d.refs[i].ID).String()[:16], len(l.data), d.refs[i].Size)
	}
	d.mu.Lock()
	delete(d.loads, i)
	if l.err == nil {
		d.cache[i] = d.lru.PushFront(&cached{i, l.data})
		for d.lru.Len() > d.max {
			old := d.lru.Remove(d.lru.Back()).(*cached)
			delete(d.cache, old.idx)
		}
	}
	d.mu.Unlock()
	close(l.done)
	return l.data, l.err
}

// Partition returns a reader over partition number num (0: the whole disk
// when it has no table) and its size.
func (img *Image) Partition(d io.ReaderAt, num int) (*io.SectionReader, error) {
	t := img.Info.Table
	if num == 0 {
		return io.NewSectionReader(d, 0, t.DiskSize), nil
	}
	for _, p := range t.Partitions {
		if p.Number == num && !p.IsContainer() {
			return io.NewSectionReader(d, p.Start, p.Size), nil
		}
	}
	return nil, fmt.Errorf("no partition %d on this disk", num)
}
