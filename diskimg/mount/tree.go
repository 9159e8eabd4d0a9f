package mount

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"bes/diskimg"
	"bes/store"
	"bes/store/manifest"
)

// Modes of the objects the mount makes up: directories missing from a
// manifest, the root, and the disk images of an image point.
const (
	madeDirMode = 0o555
	imageMode   = 0o400
)

// node is one object of the mounted tree. Nodes live in tree.nodes; a
// node's index plus one is its inode number (the root is index 0).
type node struct {
	name     string
	kind     manifest.Kind
	mode     uint32 // permission bits (07777)
	uid, gid uint32
	size     int64
	mtime    int64 // Unix nanoseconds
	rdev     uint64
	target   string              // symlinks
	children []int32             // directories: sorted by name
	chunks   []manifest.ChunkRef // file points' regular files
	src      io.ReaderAt         // image points' disk and partition files
}

// tree is the whole mounted tree, immutable once built.
type tree struct {
	nodes []node
	bytes int64 // data the tree holds (statfs): its files', or the disk's
}

func (t *tree) child(dir int32, name string) (int32, bool) {
	ch := t.nodes[dir].children
	i, ok := slices.BinarySearchFunc(ch, name, func(c int32, name string) int { return strings.Compare(t.nodes[c].name, name) })
	if !ok {
		return 0, false
	}
	return ch[i], true
}

// add appends a node as the last child of dir and returns its index.
func (t *tree) add(dir int32, n node) int32 {
	i := int32(len(t.nodes))
	t.nodes = append(t.nodes, n)
	t.nodes[dir].children = append(t.nodes[dir].children, i)
	return i
}

// rootNode is the root directory, owned by the mounting user.
func rootNode(mtime int64) node {
	return node{kind: manifest.KindDir, mode: madeDirMode, uid: uint32(os.Geteuid()), gid: uint32(os.Getegid()), mtime: mtime}
}

// fileTree builds the tree of a file point from its manifest. The manifest
// reader guarantees depth-first sorted order with no entry below a
// non-directory, so a stack of open directories places every entry;
// ancestors the manifest lacks are made up as read-only directories.
func fileTree(ctx context.Context, repo *store.Repo, p *store.Point) (*tree, error) {
	mtime := p.Finished.UnixNano()
	t := &tree{nodes: []node{rootNode(mtime)}}
	type open struct {
		path string
		idx  int32
	}
	stack := []open{{"", 0}}
	err := repo.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		dir, name := path.Split(e.Path)
		dir = strings.TrimSuffix(dir, "/")
		for len(stack) > 1 && !within(dir, stack[len(stack)-1].path) {
			stack = stack[:len(stack)-1]
		}
		// make up the ancestors between the innermost open directory and dir
		for top := stack[len(stack)-1]; top.path != dir; top = stack[len(stack)-1] {
			rel := dir
			if top.path != "" {
				rel = dir[len(top.path)+1:]
			}
			next, _, _ := strings.Cut(rel, "/")
			made := rootNode(mtime)
			made.name = next
			stack = append(stack, open{path.Join(top.path, next), t.add(top.idx, made)})
		}
		idx := t.add(stack[len(stack)-1].idx, entryNode(name, e))
		if e.Kind == manifest.KindFile {
			t.bytes += e.Size
		}
		if e.Kind == manifest.KindDir {
			stack = append(stack, open{e.Path, idx})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mount point %s: %w", p.ID, err)
	}
	return t, nil
}

// within reports whether path p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

func entryNode(name string, e *manifest.Entry) node {
	n := node{name: strings.Clone(name), kind: e.Kind, mode: e.Mode & manifest.MaxMode, uid: e.UID, gid: e.GID,
		size: e.Size, mtime: e.MTime, rdev: e.Rdev, target: e.Target}
	switch e.Kind {
	case manifest.KindFile:
		n.chunks = slices.Clip(slices.Clone(e.Chunks))
	case manifest.KindSymlink:
		n.size = int64(len(e.Target))
	case manifest.KindDir:
		n.size = 0
	}
	return n
}

// imageTree builds the tree of an image point: disk.img and one
// partN.img per partition that holds data, all backed by one DiskReader.
func imageTree(ctx, loads context.Context, repo *store.Repo, p *store.Point, cacheChunks int) (*tree, error) {
	img, err := diskimg.Load(ctx, repo, p)
	if err != nil {
		return nil, err
	}
	mtime := p.Finished.UnixNano()
	t := &tree{nodes: []node{rootNode(mtime)}}
	disk := diskimg.NewDiskReader(loads, repo, img, cacheChunks)
	file := func(name string, src io.ReaderAt, size int64) node {
		return node{name: name, kind: manifest.KindFile, mode: imageMode, uid: t.nodes[0].uid, gid: t.nodes[0].gid,
			size: size, mtime: mtime, src: src}
	}
	t.add(0, file(diskimg.DiskEntry, disk, disk.Size()))
	t.bytes = disk.Size()
	for _, part := range img.Info.Table.Partitions {
		if part.IsContainer() {
			continue
		}
		r, err := img.Partition(disk, part.Number)
		if err != nil {
			return nil, fmt.Errorf("mount point %s: %w", p.ID, err)
		}
		t.add(0, file(fmt.Sprintf("part%d.img", part.Number), r, r.Size()))
	}
	ch := t.nodes[0].children
	slices.SortFunc(ch, func(a, b int32) int { return strings.Compare(t.nodes[a].name, t.nodes[b].name) })
	for i := 1; i < len(ch); i++ {
		if t.nodes[ch[i]].name == t.nodes[ch[i-1]].name {
			return nil, fmt.Errorf("mount point %s: two partitions named %s", p.ID, t.nodes[ch[i]].name)
		}
	}
	return t, nil
}
