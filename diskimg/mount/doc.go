// Package mount serves a restore point as a read-only FUSE file system
// (bes mount POINT DIR), so that single files can be copied out with
// ordinary tools and disk images can be attached with losetup.
//
// A file point shows its tree: directories, regular files, symlinks and
// special files (with their mode and device number; the mount is nodev,
// so device nodes cannot be opened), each with the mode, owner, size and
// mtime of its manifest entry. The tree is built in memory when the mount
// starts, one small record per manifest entry holding the entry's chunk
// list but never data. Reads are random access: the offset is mapped to a
// chunk by binary search over the file's chunk offsets, the chunk is loaded
// through store.Repo.LoadBlob (decrypted and checked against its ID), and
// decoded chunks are kept in one bounded LRU cache shared by every file.
// Hole refs read as zeros without touching the store.
//
// Memory: the tree costs about 140 bytes per manifest entry plus its name,
// 4 bytes per directory child and 36 bytes per chunk ref (so about 200 MB
// for a million files); an open file adds 8 bytes per chunk for its
// offsets; the chunk cache holds at most Options.CacheChunks decoded
// chunks (chunker maximum 4 MiB each).
//
// An image point shows disk.img, the whole disk, and part1.img, part2.img,
// ... one per partition that holds data (MBR extended containers are left
// out), each read straight from the store through diskimg.DiskReader. They
// can be attached with `losetup -r` or mounted with `mount -o loop,ro`.
//
// Everything is read-only: the file system is mounted ro,nodev,nosuid, and
// opening for writing or changing attributes fails with EROFS. The kernel
// may cache entries, attributes and data for a long time, since a restore
// point never changes.
//
// Key types: Server (a running mount: Wait, Unmount, Detach) and Options.
// Mount is safe to call concurrently for different directories; a Server's
// methods are safe for concurrent use.
//
// mount imports store, diskimg and go-fuse; nothing from appliance or
// agent.
package mount
