// Package compress compresses chunks before they are encrypted and stored.
//
// Key types: Algo (None, Zstd, LZ4; the value is persisted, so the numbers
// never change) and Codec, which pools zstd encoders/decoders and lz4
// compressors and is safe for concurrent use.
//
// Compress never makes data bigger: when the output would be >= 97% of the
// input it returns the input unchanged with Algo None, and the caller stores
// the chunk raw. To keep incompressible data (media, archives, encrypted
// files) cheap, chunks of 64 KiB and more are first judged from a
// byte-histogram entropy estimate of four 4 KiB samples (start, 1/3, 2/3,
// end): if every sample looks random (> 7.85 bits/byte), the chunk is
// returned raw without running the compressor. A low-entropy sample (zeros,
// text, structured data) always leads to real compression.
//
// zstd runs at SpeedFastest by default, one goroutine per encoder, with
// WithLowerEncoderMem. SpeedDefault was measured (BenchmarkZstdLevels*): on
// real text (Go sources, 3 MiB) it was ~27% slower (150 vs 205 MB/s) for a
// 25.0% vs 27.6% output size; on synthetic log-like text it was within 10%
// (237 vs 250 MB/s, 20.0% vs 22.1%). The real-text cost exceeds the 20%
// budget, so SpeedFastest stays the default; WithZstdLevel overrides it.
// Encoders and decoders are kept in bounded free lists (2*GOMAXPROCS). lz4 uses the block format (no frame), with the output
// bound set to the 97% threshold so hopeless blocks are abandoned early.
//
// Decompress is hardened against hostile input: rawLen (the size recorded by
// the caller) must be within [0, 64 MiB], the output buffer is sized to
// exactly rawLen and decoders are not allowed to grow it, so corrupt data
// produces an error, never a panic or an allocation beyond rawLen. The
// decompressed size must equal rawLen exactly.
package compress
