// Package chunker splits byte streams into chunks for deduplication.
//
// Two chunkers are provided:
//
//   - Chunker: content-defined chunking (CDC) in the style of FastCDC. A gear
//     rolling hash (h = h<<1 + gear[b]) is evaluated over the input; a cut
//     point is declared where the top bits of h are all zero. Normalized
//     chunking uses a stricter mask (log2(Avg)+2 bits) between Min and Avg
//     and a looser one (log2(Avg)-2 bits) between Avg and Max, which
//     concentrates chunk sizes around Avg. Cut points below Min are skipped
//     entirely (only the last 64 bytes before Min are hashed to warm up the
//     64-byte window), which is where most of the speed comes from.
//   - Fixed: fixed-size chunking for block-device images, where content
//     shifts do not happen and alignment matters.
//
// Key types: Params (Min/Avg/Max sizes and the gear-table Seed), Chunker,
// Fixed.
//
// The 256-entry gear table is derived deterministically from Params.Seed
// with splitmix64. The repository passes a secret seed (crypt.Keys.ChunkerSeed)
// so that chunk boundaries, which are visible to the storage backend through
// chunk sizes, do not fingerprint known content.
//
// Invariants:
//
//   - Boundaries are a pure function of (content, Params): they do not depend
//     on how the underlying io.Reader splits its reads. Before a cut decision
//     is made the chunker always has Max bytes (or everything up to EOF)
//     buffered, and the hash window starts at a position determined only by
//     the chunk start.
//   - Every chunk is in [Min, Max] bytes, except the final chunk of a stream,
//     which may be shorter than Min (but is never empty).
//   - A 0-byte input yields io.EOF from the first Next call.
//   - Input that never produces a cut point (e.g. all zeros) is cut at exactly
//     Max, so identical runs produce identical chunks that deduplicate.
//   - Memory is bounded: the internal buffer is Max+128 KiB, allocated once
//     per Chunker and reused by Reset. Input is read 128 KiB at a time and
//     scanned while it is still in cache. If the buffer passed to Next has
//     capacity >= Max (the previous chunk passed back in, or pooled Max-sized
//     buffers), input is read straight into it and only the bytes read past
//     the cut are copied; otherwise the chunk is copied out of the internal
//     buffer. Either way the steady state performs no allocations.
//   - The scan rolls four independent gear hashes over four 4 KiB lanes at
//     once (the serial hash is a dependency chain of ~2 cycles per byte).
//     This is exact, not an approximation: the hash only depends on the last
//     64 bytes, so each lane is primed with the 64 bytes before it.
//   - A read error other than io.EOF is returned by Next and is sticky.
//
// Neither Chunker nor Fixed is safe for concurrent use.
package chunker
