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
// zstd is libzstd (github.com/DataDog/zstd, which vendors the C library;
// cgo is needed for SQLite anyway) at level 3, one context per goroutine from
// a bounded free list (2*GOMAXPROCS). The choice was measured on the
// bench-compare corpus (1.2 GB, 1 MiB pieces, one core): libzstd 3 stored
// 707.2 MB in 2.21 s, the pure-Go klauspost encoder 716.0 MB in 2.24 s at
// SpeedFastest (the previous default) and 708.9 MB in 3.24 s at SpeedDefault
// (restic's setting); libzstd decoded it in 0.48 s against 0.67 s. So libzstd
// 3 is as fast as the fastest Go level and smaller than the default one
// (BenchmarkZstdLevels*). The frame header is still parsed with klauspost's
// pure-Go reader before libzstd sees the data. lz4 uses the block format (no
// frame), with the output bound set to the 97% threshold so hopeless blocks
// are abandoned early.
//
// Decompress is hardened against hostile input: rawLen (the size recorded by
// the caller) must be within [0, 64 MiB], the output buffer is sized to
// exactly rawLen and decoders are not allowed to grow it, so corrupt data
// produces an error, never a panic or an allocation beyond rawLen. The
// decompressed size must equal rawLen exactly.
package compress
