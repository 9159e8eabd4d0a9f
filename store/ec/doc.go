// Package ec stores immutable packs on an erasure-coded set of k+m disk
// directories (one directory per disk on a real appliance).
//
// Each pack is split into stripes of k pieces; m parity pieces per stripe
// are computed with systematic Reed-Solomon (github.com/klauspost/reedsolomon;
// with m == 0 only the data is stored). Shard i of a pack (data for i < k,
// parity for i >= k) is stored on disk i at
//
//	<dir_i>/packs/<NAME[0:2]>/<NAME>.shard
//
// the same relative path on every disk (the shard index is in the header).
// A shard file is a 128-byte header, the shard's pieces in stripe order, and
// a footer carrying the pack length and a CRC-32C per piece; see format.go
// for the exact byte layout. Checksums cover stored bytes, so scrub and
// repair work without any encryption key.
//
// Writes stream through a Writer that buffers one stripe (k*PieceSize
// bytes), writes temp files <dir_i>/tmp/<NAME>.<i>.<random>.tmp-bes, and on
// Commit fsyncs them, renames them into place and fsyncs the directories.
// Stale temp files are removed by Open.
//
// Reads (ReadAt) fetch only the data pieces they need and verify their
// checksums; a missing shard file, a bad header/footer, a short file or a
// piece with a bad checksum counts as a missing piece and the stripe is
// reconstructed from any k good pieces. If fewer than k good pieces exist the
// read fails with an error wrapping ErrUnrecoverable; wrong data is never
// returned. Check scrubs a pack (every piece of every shard plus parity
// consistency) and, with repair, rebuilds bad or missing shards in place,
// recreating wiped or deleted disk directories.
//
// Validated pack metadata (geometry and per-piece checksums) is cached in
// memory; it is invalidated by this Set's Commit, Remove and repair, and
// metadata of degraded packs is reloaded after a few seconds.
package ec
