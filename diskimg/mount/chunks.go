package mount

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

// DefaultCacheChunks is how many decoded chunks a mount keeps by default.
const DefaultCacheChunks = 32

// chunkCache loads chunks by ID and keeps the most recently used ones. It
// is shared by every file of a mount and safe for concurrent use; readers
// of a chunk being loaded wait for that one load.
type chunkCache struct {
	ctx  context.Context // bounds every load: the mount's lifetime
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

func newChunkCache(ctx context.Context, repo *store.Repo, max int) *chunkCache {
	if max <= 0 {
		max = DefaultCacheChunks
	}
	return &chunkCache{ctx: ctx, repo: repo, max: max, items: map[crypt.ID]*list.Element{}, lru: list.New(),
		loads: map[crypt.ID]*chunkLoad{}}
}

// get returns the plaintext of ref, which must not be a hole.
func (c *chunkCache) get(ref manifest.ChunkRef) ([]byte, error) {
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

// chunkReader reads one file of a file point from its chunk refs. It is
// safe for concurrent use.
type chunkReader struct {
	cache  *chunkCache
	refs   []manifest.ChunkRef
	starts []int64 // file offset of each ref
	size   int64
}

func newChunkReader(cache *chunkCache, refs []manifest.ChunkRef) *chunkReader {
	r := &chunkReader{cache: cache, refs: refs, starts: make([]int64, len(refs))}
	for i, c := range refs {
		r.starts[i] = r.size
		r.size += int64(c.Size)
	}
	return r
}

// ReadAt implements io.ReaderAt: holes read as zeros, io.EOF at the end.
func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
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
