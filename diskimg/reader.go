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

// ChunkCache loads chunks by ID from the store (decrypted and checked
// against their IDs) and keeps the most recently used ones. It is safe for
// concurrent use and may be shared by many RefReaders; readers of a chunk
// being loaded wait for that one load.
type ChunkCache struct {
	ctx  context.Context // bounds every load
	repo *store.Repo
	max  int

	mu    sync.Mutex
	items map[crypt.ID]*list.Element // element holds *cachedChunk
	lru   *list.List
	loads map[crypt.ID]*chunkLoad
}

type cachedChunk struct {
	id   crypt.ID
	data []byte
}

type chunkLoad struct {
	done chan struct{}
	data []byte
	err  error
}

// NewChunkCache returns a cache of at most max chunks (DefaultCacheChunks
// when max <= 0); ctx bounds every load.
func NewChunkCache(ctx context.Context, repo *store.Repo, max int) *ChunkCache {
	if max <= 0 {
		max = DefaultCacheChunks
	}
	return &ChunkCache{ctx: ctx, repo: repo, max: max, items: map[crypt.ID]*list.Element{}, lru: list.New(),
		loads: map[crypt.ID]*chunkLoad{}}
}

// get returns the plaintext of ref, which must not be a hole.
func (c *ChunkCache) get(ref manifest.ChunkRef) ([]byte, error) {
	id := crypt.ID(ref.ID)
	c.mu.Lock()
	if e, ok := c.items[id]; ok {
		c.lru.MoveToFront(e)
		data := e.Value.(*cachedChunk).data
		c.mu.Unlock()
		return data, nil
	}
	if l, ok := c.loads[id]; ok {
		c.mu.Unlock()
		<-l.done
		return l.data, l.err
	}
	l := &chunkLoad{done: make(chan struct{})}
	c.loads[id] = l
	c.mu.Unlock()

	l.data, l.err = c.repo.LoadBlob(c.ctx, id, nil)
	if l.err == nil && len(l.data) != int(ref.Size) {
		l.err = fmt.Errorf("chunk %s holds %d bytes, the manifest says %d", id.String()[:16], len(l.data), ref.Size)
	}
	c.mu.Lock()
	delete(c.loads, id)
	if l.err == nil {
		c.items[id] = c.lru.PushFront(&cachedChunk{id, l.data})
		for c.lru.Len() > c.max {
			old := c.lru.Remove(c.lru.Back()).(*cachedChunk)
			delete(c.items, old.id)
		}
	}
	c.mu.Unlock()
	close(l.done)
	return l.data, l.err
}

// RefReader gives random access to the bytes a chunk list describes (a
// file of a file point, or an image point's disk): holes read as zeros,
// chunks come through a ChunkCache. It is safe for concurrent use.
type RefReader struct {
	cache  *ChunkCache
	refs   []manifest.ChunkRef
	starts []int64 // offset of each ref
	size   int64
}

// NewRefReader returns a reader over refs.
func NewRefReader(cache *ChunkCache, refs []manifest.ChunkRef) *RefReader {
	r := &RefReader{cache: cache, refs: refs, starts: make([]int64, len(refs))}
	for i, c := range refs {
		r.starts[i] = r.size
		r.size += int64(c.Size)
	}
	return r
}

// DiskReader reads an image point's disk straight from the store.
type DiskReader = RefReader

// NewDiskReader returns a reader over img's disk with a cache of its own
// (cacheChunks chunks, DefaultCacheChunks when <= 0). ctx bounds every load.
func NewDiskReader(ctx context.Context, repo *store.Repo, img *Image, cacheChunks int) *DiskReader {
	return NewRefReader(NewChunkCache(ctx, repo, cacheChunks), img.Refs)
}

// Size is the number of bytes the refs describe.
func (r *RefReader) Size() int64 { return r.size }

// ReadAt implements io.ReaderAt: holes read as zeros, io.EOF at the end.
func (r *RefReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("read at %d: negative offset", off)
	}
	n := 0
	for n < len(p) {
		pos := off + int64(n)
		if pos >= r.size {
			return n, io.EOF
		}
		i := sort.Search(len(r.starts), func(i int) bool { return r.starts[i] > pos }) - 1
		c := r.refs[i]
		in := pos - r.starts[i]
		want := int(min(int64(len(p)-n), int64(c.Size)-in))
		if c.Hole() {
			clear(p[n : n+want])
		} else {
			data, err := r.cache.get(c)
			if err != nil {
				return n, fmt.Errorf("read at %d: %w", pos, err)
			}
			copy(p[n:n+want], data[in:])
		}
		n += want
	}
	return n, nil
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
