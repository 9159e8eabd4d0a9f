package mount

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"bes/diskimg"
	"bes/store/manifest"
)

// fsys is what every inode of one mount shares.
type fsys struct {
	tree   *tree
	chunks *diskimg.ChunkCache
	log    *slog.Logger
	point  string
}

// inode is the go-fuse face of tree node i. The kernel creates and forgets
// inodes as it looks names up; the tree itself stays in memory.
type inode struct {
	fs.Inode
	fsys *fsys
	i    int32
}

var (
	_ fs.NodeLookuper   = (*inode)(nil)
	_ fs.NodeReaddirer  = (*inode)(nil)
	_ fs.NodeGetattrer  = (*inode)(nil)
	_ fs.NodeSetattrer  = (*inode)(nil)
	_ fs.NodeAccesser   = (*inode)(nil)
	_ fs.NodeOpener     = (*inode)(nil)
	_ fs.NodeReader     = (*inode)(nil)
	_ fs.NodeReadlinker = (*inode)(nil)
	_ fs.NodeStatfser   = (*inode)(nil)
)

func (n *inode) node() *node { return &n.fsys.tree.nodes[n.i] }

// typeBits maps a manifest kind to the S_IFMT bits of a mode.
func typeBits(k manifest.Kind) uint32 {
	switch k {
	case manifest.KindDir:
		return syscall.S_IFDIR
	case manifest.KindSymlink:
		return syscall.S_IFLNK
	case manifest.KindFIFO:
		return syscall.S_IFIFO
	case manifest.KindDevice:
		return syscall.S_IFBLK
	case manifest.KindCharDevice:
		return syscall.S_IFCHR
	case manifest.KindSocket:
		return syscall.S_IFSOCK
	}
	return syscall.S_IFREG
}

// fill sets the attributes of tree node i.
func (f *fsys) fill(i int32, a *fuse.Attr) {
	nd := &f.tree.nodes[i]
	a.Ino = uint64(i) + 1
	a.Mode = typeBits(nd.kind) | nd.mode
	a.Size = uint64(max(nd.size, 0))
	a.Blocks = (a.Size + 511) / 512
	a.Blksize = 4096
	a.Uid, a.Gid = nd.uid, nd.gid
	a.Rdev = uint32(nd.rdev)
	sec, nsec := nd.mtime/1e9, nd.mtime%1e9
	if nsec < 0 { // before 1970
		sec, nsec = sec-1, nsec+1e9
	}
	a.Mtime, a.Mtimensec = uint64(sec), uint32(nsec)
	a.Ctime, a.Ctimensec = a.Mtime, a.Mtimensec
	a.Atime, a.Atimensec = a.Mtime, a.Mtimensec
	a.Nlink = 1
	if nd.kind == manifest.KindDir {
		a.Nlink = 2
		for _, c := range nd.children {
			if f.tree.nodes[c].kind == manifest.KindDir {
				a.Nlink++
			}
		}
	}
}

func (n *inode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	c, ok := n.fsys.tree.child(n.i, name)
	if !ok {
		return nil, syscall.ENOENT
	}
	n.fsys.fill(c, &out.Attr)
	child := &inode{fsys: n.fsys, i: c}
	return n.NewInode(ctx, child, fs.StableAttr{Mode: out.Attr.Mode & syscall.S_IFMT, Ino: out.Attr.Ino}), 0
}

func (n *inode) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	ch := n.node().children
	list := make([]fuse.DirEntry, len(ch))
	for k, c := range ch {
		nd := &n.fsys.tree.nodes[c]
		list[k] = fuse.DirEntry{Name: nd.name, Mode: typeBits(nd.kind), Ino: uint64(c) + 1}
	}
	return fs.NewListDirStream(list), 0
}

func (n *inode) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.fsys.fill(n.i, &out.Attr)
	return 0
}

// Setattr refuses every change: the mount is read-only.
func (n *inode) Setattr(ctx context.Context, _ fs.FileHandle, _ *fuse.SetAttrIn, _ *fuse.AttrOut) syscall.Errno {
	return syscall.EROFS
}

// Access grants reading and searching to whoever may use the mount (only
// the user who mounted it), refuses writing, and executing files that have
// no execute bit.
func (n *inode) Access(ctx context.Context, mask uint32) syscall.Errno {
	nd := n.node()
	switch {
	case mask&unix.W_OK != 0:
		return syscall.EROFS
	case mask&unix.X_OK != 0 && nd.kind != manifest.KindDir && nd.mode&0o111 == 0:
		return syscall.EACCES
	}
	return 0
}

func (n *inode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0 {
		return nil, 0, syscall.EROFS
	}
	nd := n.node()
	if nd.kind != manifest.KindFile {
		return nil, 0, syscall.EINVAL
	}
	var r io.ReaderAt = nd.src
	if r == nil {
		r = diskimg.NewRefReader(n.fsys.chunks, nd.chunks)
	}
	// contents never change: let the kernel keep its page cache
	return r, fuse.FOPEN_KEEP_CACHE, 0
}

func (n *inode) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	r, ok := fh.(io.ReaderAt)
	if !ok {
		return nil, syscall.EBADF
	}
	size := n.node().size
	if off >= size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), size-off)]
	k, err := r.ReadAt(dest, off)
	if err != nil && !(errors.Is(err, io.EOF) && k == len(dest)) {
		n.fsys.log.Error("mount: read failed", "point", n.fsys.point, "path", n.path(), "offset", off, "err", err)
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// path is the node's path in the mount, for log messages.
func (n *inode) path() string {
	return "/" + n.Path(nil)
}

func (n *inode) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	nd := n.node()
	if nd.kind != manifest.KindSymlink {
		return nil, syscall.EINVAL
	}
	return []byte(nd.target), 0
}

// Statfs reports the point's size and entry count, nothing free.
func (n *inode) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	out.Bsize, out.Frsize = 4096, 4096
	out.Blocks = uint64(n.fsys.tree.bytes+4095) / 4096
	out.Files = uint64(len(n.fsys.tree.nodes))
	out.NameLen = 255
	return 0
}
