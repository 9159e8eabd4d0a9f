// Package agent is the host side of file backup: it walks local paths with
// excludes, chunks and uploads changed files through a store.Saver, writes
// the manifest, and restores points into a target directory.
//
// Backup is a pipeline: one walker (in manifest order, merge-joined with the
// previous point's manifest so unchanged files are not read again), file
// readers that cut files into content-defined chunks, chunk workers that
// hash, dedup, compress, encrypt and pack them, and one manifest writer that
// emits entries in walk order as their chunks complete. Memory is bounded by
// the channel capacities, not by the tree size.
//
// Restore plans reads so each pack is read once, in offset order, with
// parallel workers writing into pre-sized (sparse) files; every chunk is
// verified against its ID. All writes go through an os.Root so nothing can
// be written outside the target, whatever a manifest says.
//
// Package agent imports store and its sub-packages only.
package agent
