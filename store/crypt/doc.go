// Package crypt holds the repository's keys, chunk IDs and authenticated
// encryption.
//
// Key hierarchy:
//
//   - A 64-byte random master key (NewMasterKey) is the root secret. It is
//     stored only wrapped, in key slots (Slot), each sealed with AES-256-GCM
//     under a key-encryption key (KEK) from a KEKProvider: Passphrase
//     (argon2id), KeyFile (a file of >= 32 random bytes) or an external
//     provider. Any number of slots can wrap the same master key.
//   - DeriveKeys expands the master key with BLAKE3 in derive-key mode, using
//     distinct hard-coded context strings, into the data encryption key
//     (AES-256-GCM), the chunk-ID key (keyed BLAKE3) and the chunker seed
//     (the gear-table seed, so chunk boundaries do not fingerprint content).
//
// Key types: Keys (safe for concurrent use), ID, Slot, KEKProvider.
//
// Invariants:
//
//   - ChunkID is keyed BLAKE3-256 of the plaintext: stable for a repository,
//     different across repositories, not computable without the key.
//   - Sealed data is nonce(12) || ciphertext || tag(16), Overhead = 28 bytes.
//     Nonces are random (crypto/rand), so one data key must not seal more
//     than 2^32 messages (~4 PiB of 1 MiB chunks) to keep the collision risk
//     negligible. The caller binds the chunk ID as associated data, so a
//     chunk cannot be swapped for another one under a different ID.
//   - Open returns ErrAuth for any modification, wrong key or wrong ad;
//     UnwrapMaster returns ErrWrongKey when the KEK does not open the slot
//     (wrong passphrase or key file, or a tampered slot).
//   - Passphrase KDF cost is stored in each slot's params, so the default can
//     be raised later without breaking existing slots; params read from disk
//     are bounds-checked so a tampered slot cannot demand huge memory.
//
// BLAKE3 implementation: both github.com/zeebo/blake3 and
// lukechampine.com/blake3 are benchmarked in BenchmarkChunkID; see
// chunkid.go for the choice and the figures.
package crypt
