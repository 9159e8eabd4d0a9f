// Package catalog is the SQLite index of a repository: packs, the chunk
// index, and restore points with their manifests.
//
// The catalog is an index, not the truth: everything in it can be rebuilt
// from the packs on the disks (see store.Repo.RebuildCatalog). It runs in WAL
// mode with synchronous=FULL so a committed transaction survives a crash.
// Schema changes are numbered migrations applied in order at Open and
// recorded in PRAGMA user_version.
//
// Write ordering (the repository's invariant, see docs/crash-safety.md):
// a pack's chunk rows are inserted only after the pack is durable on the
// disks, and a restore point row only after every chunk it references is in
// the index. Removal runs in the reverse order.
//
// Memory: the chunk index lives in SQLite only; no Go map of every chunk is
// ever built. Lookups go through the SQLite page cache (bounded by
// cache_size).
//
// Package catalog imports nothing else of the project.
package catalog
