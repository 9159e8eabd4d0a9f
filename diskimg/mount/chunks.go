package mount

// DefaultCacheChunks is how many decoded chunks a mount keeps by default
// (one cache, diskimg.ChunkCache, shared by every file of the mount).
const DefaultCacheChunks = 32

func cacheChunks(n int) int {
	if n <= 0 {
		return DefaultCacheChunks
	}
	return n
}
