// Package manifest encodes and decodes the file tree of one file-level
// restore point: a stream of Entry records (path, kind, metadata, chunk
// list, xattrs) in a strict order, terminated by an end record carrying the
// entry count and a CRC-32C over the whole stream. The byte format is
// specified in docs/manifest-format.md.
//
// # Order
//
// Entries appear in the order of a depth-first walk with siblings sorted by
// name bytes: a parent before its children, and otherwise byte-wise by path
// where '/' sorts before every other byte (see Less). Each path must sort
// strictly after the previous one, so duplicates are impossible, and no
// entry may lie beneath a non-directory entry (so a symlink in the tree can
// never be used to redirect a restore of later entries). Parents are not
// required to be present: a restorer creates missing intermediate
// directories.
//
// # Paths
//
// Paths are relative to the point's root and slash-separated; ValidPath
// gives the rules (non-empty, <= 4096 bytes, no NUL, no leading or trailing
// '/', no empty, "." or ".." component). Both the Writer and the Reader
// enforce them, so a decoded manifest can never name a path outside the
// restore root.
//
// # Streaming
//
// Writer and Reader never hold more than one entry plus a fixed-size buffer
// in memory. Reader.Next reuses the returned *Entry (and the backing array
// of its Chunks) on the next call; use Entry.Clone to keep an entry. The
// stream checksum is verified only when Next returns io.EOF, so entries
// read before that are unverified; a truncated stream (no end record) is
// always reported as ErrCorrupt, never as a short tree.
//
// # Errors
//
// Every decoding failure wraps ErrCorrupt (as a *CorruptError with the byte
// offset and a reason); every decoding bound is checked before memory is
// allocated. Writer.Write rejects invalid entries with errors wrapping
// ErrInvalid and out-of-order entries with errors wrapping ErrOrder.
//
// Encode and Decode are conveniences for tests and small manifests.
package manifest
