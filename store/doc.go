// Package store is the repository: it ties together chunking, keyed chunk
// IDs, compression, encryption, pack files, the erasure-coded disk set and
// the SQLite catalog, and offers the operations above them: save and load
// blobs, commit and list restore points, verify, scrub, and rebuild the
// catalog from the disks.
//
// How a byte travels: plaintext chunk -> ID = keyed BLAKE3 -> already
// indexed? skip -> compress -> seal (AES-256-GCM, AAD = ID) -> appended to
// an open pack -> the pack is sealed with its encrypted trailer, erasure
// coded into k+m shards, one per disk, and made durable -> only then are its
// chunks indexed in the catalog -> only after every chunk of a restore point
// is indexed is the point document stored (in a pack of its own) and its
// catalog row committed. Removal runs in the reverse order. So a crash at
// any moment leaves at worst unreferenced packs (garbage), never a committed
// point that references missing data. See docs/crash-safety.md.
//
// Sub-packages: chunker, compress, crypt, pack, ec, catalog, manifest. The
// disks are the truth; the catalog is an index that RebuildCatalog recreates.
//
// Package store imports nothing outside store/ of this project.
package store
