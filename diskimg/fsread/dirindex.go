package fsread

import (
	"container/list"
	"sync"
)

// Name index sizing: a directory searched by name is indexed (name ->
// entry) when its names cost at most dirIndexMaxBytes; indexes of recently
// searched directories are kept in an LRU of dirIndexBudget bytes. Larger
// directories are scanned linearly for every lookup.
const (
	dirIndexMaxBytes  = 1 << 20
	dirIndexBudget    = 4 << 20
	dirIndexEntryCost = 48 // map slot and string header, roughly
)

// dirIndexCache holds name indexes of directories keyed by inode number
// (ext) or first cluster (FAT). The filesystem is read-only, so entries are
// never stale. Safe for concurrent use.
type dirIndexCache[V any] struct {
	mu   sync.Mutex
	used int
	lru  list.List // of *indexedDir[V], most recent first
	m    map[uint64]*list.Element
}

type indexedDir[V any] struct {
	key   uint64
	names map[string]V // nil: too large to index, scan instead
	cost  int
}

// get returns the index of directory key; ok is false when it is not
// cached. A cached nil index means "too large, scan".
func (c *dirIndexCache[V]) get(key uint64) (names map[string]V, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[key]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*indexedDir[V]).names, true
}

// put stores the index of directory key, evicting the least recently used
// ones beyond the budget.
func (c *dirIndexCache[V]) put(key uint64, names map[string]V, cost int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[uint64]*list.Element)
	}
	if _, ok := c.m[key]; ok {
		return
	}
	c.m[key] = c.lru.PushFront(&indexedDir[V]{key: key, names: names, cost: cost})
	c.used += cost
	for c.used > dirIndexBudget && c.lru.Len() > 1 {
		el := c.lru.Back()
		d := el.Value.(*indexedDir[V])
		c.lru.Remove(el)
		delete(c.m, d.key)
		c.used -= d.cost
	}
}

// nameIndexBuilder accumulates an index until it exceeds the per-directory
// limit.
type nameIndexBuilder[V any] struct {
	names map[string]V
	cost  int
}

func newNameIndexBuilder[V any]() *nameIndexBuilder[V] {
	return &nameIndexBuilder[V]{names: make(map[string]V)}
}

// add records name (the first of duplicate names wins); it returns false
// once the index has grown too large (names is then dropped).
func (b *nameIndexBuilder[V]) add(name string, v V) bool {
	if b.names == nil {
		return false
	}
	b.cost += len(name) + dirIndexEntryCost
	if b.cost > dirIndexMaxBytes {
		b.names = nil
		return false
	}
	if _, dup := b.names[name]; !dup {
		b.names[name] = v
	}
	return true
}
