// Package fsread reads ext2/ext3/ext4 and FAT12/16/32 filesystems inside a
// disk-image backup without mounting them, so BES can list, search and
// restore single files from an image restore point.
//
// The only input is an io.ReaderAt and the image size: in production the
// reader serves the backup store through a chunk cache, so this package
// never assumes a real file, reads metadata in aligned pages of at least
// 4 KiB (one block when blocks are larger) kept in a bounded LRU (2 MiB per
// open filesystem), and reads file contents straight into the caller's
// buffer, one ReadAt per physically contiguous run; File.Read uses a 64 KiB
// aligned window and File.WriteTo (io.Copy) 1 MiB pieces. Memory does not
// grow with the size of the filesystem: group descriptors are read on
// demand (their inode table locations memoised, 8 bytes per group for the
// first 65536 groups), directories are scanned block by block, no
// per-block or per-cluster map is ever built, and the name indexes that
// make repeated lookups in one directory cheap live in a 4 MiB LRU
// (directories whose names need more than 1 MiB are scanned instead).
// ReadDir returns a directory's whole listing, capped at 4Mi entries.
//
// Open detects the type; OpenExt and OpenFAT force one. Walk visits a tree
// in name order like fs.WalkDir; AsIOFS adapts an FS to io/fs. Symbolic
// links are never followed. An FS is safe for concurrent use.
//
// # ext2, ext3, ext4
//
// Supported: block sizes 1 KiB to 64 KiB, 128-byte and larger inodes,
// 32- and 64-bit group descriptors, meta_bg, flex_bg, sparse_super(2),
// bigalloc; extent trees of any legal depth (at most 5) with unwritten
// extents and holes read as zeros; ext2/ext3 direct, indirect, double and
// triple indirect block maps with zero pointers read as holes; inline_data
// files, directories and symlinks (i_block plus the system.data attribute
// in the inode body); fast and slow symlinks; directories read linearly,
// which also covers htree (dir_index) and large_dir directories; file types
// from the inode mode (the dirent type fills in a typeless mode); 64-bit
// sizes, huge_file, 32-bit uid/gid, nanosecond and post-2038 timestamps
// from the extra inode fields; device numbers. Casefold directories list
// names as stored; lookups there fall back to strings.EqualFold.
//
// Accepted but not acted on: a journal that needs recovery is not replayed
// (ExtFS.NeedsRecovery reports it; the image is read as it is on disk);
// mmp, metadata_csum and csum_seed (checksums are not verified: a damaged
// block is caught by the structural checks instead), ea_inode (only the
// in-inode system.data attribute is read; inline data kept in an xattr
// inode, which Linux never writes, is refused), all read-only-compatible
// features (they do not change how data is found).
//
// Refused with an *UnsupportedError: the compression and dirdata
// INCOMPAT features, any unknown INCOMPAT bit (named in the error), an
// external journal device (journal_dev), and per inode the encrypt flag
// (listing an encrypted directory, opening an encrypted file or reading an
// encrypted symlink). Extended attributes and ACLs are not exposed.
//
// # FAT
//
// FAT12, FAT16 and FAT32 are told apart by cluster count. Supported: the
// fixed root directory of FAT12/16 and the cluster-chain root of FAT32,
// VFAT long names (UTF-16, the checksum must match the short entry or the
// 8.3 name is used), 8.3 names in code page 437 with the NT lowercase flags
// of byte 12, the active FAT of FAT32 when mirroring is off. Timestamps are
// local time of the writer with 2 s resolution (access: date only) and are
// returned as if they were UTC. Directories are 0755, files 0644, the
// read-only attribute drops the write bits; UID and GID are 0. Lookups are
// case-insensitive and match 8.3 aliases too. Entry.Ino is the first
// cluster (see Entry). exFAT and VFAT extended attributes are not read.
//
// # Damage
//
// Every number read from disk is checked before use: a damaged image gives
// a *CorruptError (errors.Is ErrCorrupt) naming the object, never a panic,
// a hang or an allocation larger than the image justifies. Cluster chains
// are walked with constant-memory loop detection, directories are capped
// (FAT: 65536 entries; ext: the image size and 4Mi entries), extent trees
// are at most 5 deep, Walk does not re-enter a directory that is its own
// ancestor. FuzzExt and FuzzFAT exercise this.
//
// Package fsread imports only the standard library; nothing of this
// project.
package fsread
