package diskimg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"bes/diskimg/fsread"
	"bes/store"
	"bes/store/manifest"
)

// PartFS is one partition's file system inside an image point.
type PartFS struct {
	Name   string // path prefix of its files: "part1", ... ("disk" without a table)
	Number int
	FS     fsread.FS // nil when Err is set
	Err    error     // why the partition cannot be browsed
}

// Browser reads the file systems inside an image point through the store.
type Browser struct {
	Image *Image
	Disk  *DiskReader
	Parts []PartFS
}

// Browse opens the file systems of image point p (ext2/3/4 and FAT).
func Browse(ctx context.Context, repo *store.Repo, p *store.Point) (*Browser, error) {
	img, err := Load(ctx, repo, p)
	if err != nil {
		return nil, err
	}
	b := &Browser{Image: img, Disk: NewDiskReader(ctx, repo, img, 0)}
	nums := []int{0}
	if len(img.Info.Table.Partitions) > 0 {
		nums = nums[:0]
		for _, pt := range img.Info.Table.Partitions {
			if !pt.IsContainer() {
				nums = append(nums, pt.Number)
			}
		}
	}
	for _, n := range nums {
		pf := PartFS{Name: partName(n), Number: n}
		sec, err := img.Partition(b.Disk, n)
		if err == nil {
			pf.FS, err = fsread.Open(sec, sec.Size())
		}
		pf.Err = err
		b.Parts = append(b.Parts, pf)
	}
	return b, nil
}

func partName(n int) string {
	if n == 0 {
		return "disk"
	}
	return "part" + strconv.Itoa(n)
}

// split resolves "partN/rest" to the partition and the path inside it.
func (b *Browser) split(p string) (*PartFS, string, error) {
	first, rest, _ := strings.Cut(p, "/")
	for i := range b.Parts {
		if b.Parts[i].Name == first {
			if b.Parts[i].Err != nil {
				return nil, "", fmt.Errorf("%s: %w", first, b.Parts[i].Err)
			}
			return &b.Parts[i], rest, nil
		}
	}
	return nil, "", fmt.Errorf("%s: no such partition in this image (have %s)", first, b.names())
}

func (b *Browser) names() string {
	var s []string
	for _, p := range b.Parts {
		s = append(s, p.Name)
	}
	return strings.Join(s, ", ")
}

// Walk calls fn for every file, directory and link inside the image's
// file systems (under prefix, if given) as manifest entries whose paths
// start with the partition name, in manifest order. Partitions that cannot
// be read are reported through warn and skipped.
func (b *Browser) Walk(ctx context.Context, prefix string, warn func(error), fn func(*manifest.Entry) error) error {
	prefix = strings.Trim(path.Clean("/"+prefix), "/")
	for _, pf := range b.Parts {
		if prefix != "" && prefix != pf.Name && !strings.HasPrefix(prefix, pf.Name+"/") {
			continue
		}
		if pf.Err != nil {
			warn(fmt.Errorf("%s: not browsable: %w", pf.Name, pf.Err))
			continue
		}
		root := strings.TrimPrefix(strings.TrimPrefix(prefix, pf.Name), "/")
		if root == "" {
			if err := fn(&manifest.Entry{Path: pf.Name, Kind: manifest.KindDir, Mode: 0o755}); err != nil {
				return err
			}
		}
		err := fsread.Walk(pf.FS, root, func(p string, e *fsread.Entry, err error) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err != nil {
				warn(fmt.Errorf("%s/%s: %w", pf.Name, p, err))
				return nil
			}
			if p == "" || p == "." {
				return nil
			}
			return fn(toEntry(pf.Name+"/"+p, e))
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// toEntry converts a file system entry into a manifest entry.
func toEntry(p string, e *fsread.Entry) *manifest.Entry {
	m := &manifest.Entry{Path: p, Mode: manifest.ModeBits(e.Mode), UID: e.UID, GID: e.GID, Size: e.Size,
		MTime: e.ModTime.UnixNano(), Inode: e.Ino, Nlink: e.Nlink, Rdev: e.Rdev, Target: e.Link}
	switch t := e.Mode.Type(); {
	case t == 0:
		m.Kind = manifest.KindFile
	case t&fs.ModeDir != 0:
		m.Kind, m.Size = manifest.KindDir, 0
	case t&fs.ModeSymlink != 0:
		m.Kind = manifest.KindSymlink
	case t&fs.ModeNamedPipe != 0:
		m.Kind, m.Size = manifest.KindFIFO, 0
	case t&fs.ModeSocket != 0:
		m.Kind, m.Size = manifest.KindSocket, 0
	case t&fs.ModeCharDevice != 0:
		m.Kind, m.Size = manifest.KindCharDevice, 0
	default:
		m.Kind, m.Size = manifest.KindDevice, 0
	}
	return m
}

// FileRestoreOptions configures RestoreFiles.
type FileRestoreOptions struct {
	Target    string
	Includes  []string // "partN/path" prefixes; none: everything
	Overwrite bool
}

// FileRestoreSummary reports RestoreFiles.
type FileRestoreSummary struct {
	Files, Dirs, Symlinks int64
	Bytes                 int64
	Skipped               []string
	Errors                []string
	Seconds               float64
}

// RestoreFiles copies files out of the image's file systems into a
// directory, with their permissions, owners (as root) and times.
func (b *Browser) RestoreFiles(ctx context.Context, o FileRestoreOptions) (*FileRestoreSummary, error) {
	start := time.Now()
	sum := &FileRestoreSummary{}
	if o.Target == "" {
		return sum, errors.New("restore: no target directory")
	}
	if err := os.MkdirAll(o.Target, 0o700); err != nil {
		return sum, fmt.Errorf("restore: target: %w", err)
	}
	incl := o.Includes
	if len(incl) == 0 {
		incl = []string{""}
	}
	var dirs, links []*manifest.Entry
	buf := make([]byte, 1<<20)
	asRoot := os.Geteuid() == 0
	for _, in := range incl {
		in = strings.Trim(path.Clean("/"+in), "/")
		matched := false
		err := b.Walk(ctx, in, func(err error) { sum.Errors = append(sum.Errors, err.Error()) }, func(e *manifest.Entry) error {
			if in != "" && e.Path != in && !strings.HasPrefix(e.Path, in+"/") {
				return nil // the partition's own entry above an include
			}
			matched = true
			if err := manifest.ValidPath(e.Path); err != nil {
				sum.Errors = append(sum.Errors, err.Error())
				return nil
			}
			dst := filepath.Join(o.Target, filepath.FromSlash(e.Path))
			switch e.Kind {
			case manifest.KindDir:
				if err := os.MkdirAll(dst, 0o700); err != nil {
					return err
				}
				dirs = append(dirs, e.Clone())
				sum.Dirs++
			case manifest.KindSymlink:
				links = append(links, e.Clone())
			case manifest.KindFile:
				n, skipped, err := b.restoreFile(e, dst, o.Overwrite, asRoot, buf)
				switch {
				case err != nil:
					sum.Errors = append(sum.Errors, fmt.Sprintf("%s: %v", e.Path, err))
				case skipped:
					sum.Skipped = append(sum.Skipped, e.Path)
				default:
					sum.Files++
					sum.Bytes += n
				}
			default:
				sum.Errors = append(sum.Errors, fmt.Sprintf("%s: %s not restored (special file)", e.Path, e.Kind))
			}
			return nil
		})
		if err != nil {
			return sum, fmt.Errorf("restore: %w", err)
		}
		if !matched {
			return sum, fmt.Errorf("restore: --include /%s matches nothing in this image (partitions: %s)", in, b.names())
		}
	}
	for _, l := range links {
		dst := filepath.Join(o.Target, filepath.FromSlash(l.Path))
		if o.Overwrite {
			os.Remove(dst)
		}
		if err := os.Symlink(l.Target, dst); err != nil {
			sum.Errors = append(sum.Errors, fmt.Sprintf("%s: %v", l.Path, err))
			continue
		}
		if asRoot {
			_ = os.Lchown(dst, int(l.UID), int(l.GID))
		}
		t := unix.NsecToTimespec(l.MTime)
		_ = unix.UtimesNanoAt(unix.AT_FDCWD, dst, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
		sum.Symlinks++
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i].Path) > len(dirs[j].Path) })
	for _, d := range dirs { // deepest first, so setting a dir's times sticks
		dst := filepath.Join(o.Target, filepath.FromSlash(d.Path))
		if err := setMeta(dst, d, asRoot); err != nil {
			sum.Errors = append(sum.Errors, fmt.Sprintf("%s: %v", d.Path, err))
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	if len(sum.Errors) > 0 {
		return sum, fmt.Errorf("restore: %d errors, first: %s", len(sum.Errors), sum.Errors[0])
	}
	return sum, nil
}

// restoreFile copies one regular file out of the image.
func (b *Browser) restoreFile(e *manifest.Entry, dst string, overwrite, asRoot bool, buf []byte) (int64, bool, error) {
	pf, inner, err := b.split(e.Path)
	if err != nil {
		return 0, false, err
	}
	src, err := pf.FS.Open(inner)
	if err != nil {
		return 0, false, err
	}
	defer src.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, false, err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL | unix.O_NOFOLLOW
	f, err := os.OpenFile(dst, flags, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if !overwrite {
			return 0, true, nil
		}
		if err := os.Remove(dst); err != nil {
			return 0, false, err
		}
		f, err = os.OpenFile(dst, flags, 0o600)
	}
	if err != nil {
		return 0, false, err
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{src}, buf)
	if err == nil && n != e.Size {
		err = fmt.Errorf("read %d bytes, the file system says %d", n, e.Size)
	}
	if err == nil {
		err = setFileMeta(f, e, asRoot)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, false, err
}

func setFileMeta(f *os.File, e *manifest.Entry, asRoot bool) error {
	if asRoot {
		if err := f.Chown(int(e.UID), int(e.GID)); err != nil {
			return err
		}
	}
	if err := f.Chmod(manifest.FileMode(e.Mode)); err != nil {
		return err
	}
	t := unix.NsecToTimespec(e.MTime)
	return unix.UtimesNanoAt(unix.AT_FDCWD, f.Name(), []unix.Timespec{t, t}, 0)
}

func setMeta(p string, e *manifest.Entry, asRoot bool) error {
	if asRoot {
		if err := os.Lchown(p, int(e.UID), int(e.GID)); err != nil {
			return err
		}
	}
	if err := os.Chmod(p, manifest.FileMode(e.Mode)); err != nil {
		return err
	}
	t := unix.NsecToTimespec(e.MTime)
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW)
}
