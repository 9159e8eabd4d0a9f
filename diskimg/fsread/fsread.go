package fsread

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// Sentinel errors. Errors returned by this package wrap one of these (or an
// io/fs error such as fs.ErrNotExist) so callers can classify them with
// errors.Is.
var (
	// ErrUnknownFS: the image holds neither ext2/3/4 nor FAT12/16/32.
	ErrUnknownFS = errors.New("fsread: not an ext2/ext3/ext4 or FAT filesystem")
	// ErrCorrupt: on-disk metadata is inconsistent or points outside the
	// image. Returned as a *CorruptError naming the damaged object.
	ErrCorrupt = errors.New("fsread: corrupt filesystem")
	// ErrUnsupported: the filesystem or one inode uses a feature this
	// package refuses to read (encryption, compression, ...). Returned as
	// an *UnsupportedError naming the feature.
	ErrUnsupported = errors.New("fsread: unsupported filesystem feature")
)

// errNotDir and errNotRegular are the causes of *fs.PathError values for
// operations on the wrong kind of file.
var (
	errNotDir     = errors.New("not a directory")
	errNotRegular = errors.New("not a regular file")
	errNotSymlink = errors.New("not a symbolic link")
)

// CorruptError reports damaged metadata. Object names what is damaged
// ("superblock", "inode 12", "extent tree of inode 12", "FAT entry of
// cluster 9", ...), Reason says how.
type CorruptError struct {
	Object string
	Reason string
}

func (e *CorruptError) Error() string {
	return "fsread: corrupt " + e.Object + ": " + e.Reason
}

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corruptf(object, format string, args ...any) error {
	return &CorruptError{Object: object, Reason: fmt.Sprintf(format, args...)}
}

// UnsupportedError reports a feature this package will not read. Object is
// "filesystem" for superblock features or names the inode.
type UnsupportedError struct {
	Object  string
	Feature string
}

func (e *UnsupportedError) Error() string {
	return "fsread: " + e.Object + " uses unsupported feature " + e.Feature
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// Entry describes one file, directory, symlink or special file.
type Entry struct {
	Name    string      // base name; "." for the root
	Mode    fs.FileMode // type bits + permissions + setuid/setgid/sticky
	Size    int64       // bytes; for a symlink the length of its target
	UID     uint32      // 0 on FAT
	GID     uint32      // 0 on FAT
	ModTime time.Time   // ns precision where the filesystem has it; UTC
	ATime   time.Time   // last access; FAT keeps only the date
	// Ino is the inode number on ext. On FAT it is the first cluster of a
	// directory or non-empty file (1 for the FAT12/16 root directory), and
	// 1<<63 | byte offset of the directory entry for an empty file.
	Ino   uint64
	Nlink uint32 // hard links (1 on FAT)
	Link  string // symlink target
	// Rdev is the device number of a character or block device in the
	// encoding of Linux's dev_t (as in syscall.Stat_t.Rdev).
	Rdev uint64
}

// IsDir reports whether the entry is a directory.
func (e *Entry) IsDir() bool { return e.Mode.IsDir() }

// FS is a read-only view of one filesystem in an image. Paths are
// slash-separated and relative to the root ("" or "." is the root; a
// leading "/" is ignored; ".." may not climb above the root). Symbolic
// links are never followed: Stat describes the link itself (the target is a
// path on the machine that was backed up, not necessarily in this image).
//
// An FS is safe for concurrent use by multiple goroutines.
type FS interface {
	// Type is "ext2", "ext3", "ext4", "fat12", "fat16" or "fat32".
	Type() string
	// Stat describes the file at path without following a final symlink.
	Stat(path string) (*Entry, error)
	// ReadDir lists a directory sorted by name, without "." and "..".
	// Like os.ReadDir, when some entries cannot be read it returns the
	// readable ones together with an error.
	ReadDir(path string) ([]Entry, error)
	// Open opens a regular file for reading.
	Open(path string) (File, error)
	// Readlink returns the target of a symbolic link.
	Readlink(path string) (string, error)
}

// File is an open regular file. ReadAt may be called concurrently; Read,
// Seek and WriteTo (which every File also implements) share one offset and
// are not safe for concurrent use.
type File interface {
	io.ReaderAt
	io.Reader
	io.Seeker
	Size() int64
	Close() error
}

// Open detects the filesystem in r (size bytes long) and opens it. It
// returns an error wrapping ErrUnknownFS when the image holds neither ext nor
// FAT; the message names the signature found when it is a known other one
// (NTFS, exFAT, XFS, Btrfs, LUKS, swap).
//
// The ext superblock magic is checked first (mke2fs keeps the first 1024
// bytes, so a reformatted FAT disk still has its boot sector); if the ext
// superblock turns out unusable but a FAT boot sector opens, FAT wins.
func Open(r io.ReaderAt, size int64) (FS, error) {
	if isExt(r, size) {
		f, err := OpenExt(r, size)
		if err != nil && isFAT(r, size) {
			if ff, ferr := OpenFAT(r, size); ferr == nil {
				return ff, nil
			}
		}
		return f, err
	}
	if isFAT(r, size) {
		return OpenFAT(r, size)
	}
	if name := otherSignature(r, size); name != "" {
		return nil, fmt.Errorf("%w: found %s", ErrUnknownFS, name)
	}
	return nil, ErrUnknownFS
}

// otherSignature names a few common non-supported formats for a better
// error message.
func otherSignature(r io.ReaderAt, size int64) string {
	probes := []struct {
		off   int64
		magic string
		name  string
	}{
		{3, "NTFS    ", "NTFS"},
		{3, "EXFAT   ", "exFAT"},
		{0, "XFSB", "XFS"},
		{0x10040, "_BHRfS_M", "Btrfs"},
		{0, "LUKS\xba\xbe", "LUKS"},
		{4096 - 10, "SWAPSPACE2", "Linux swap"},
	}
	for _, p := range probes {
		b := make([]byte, len(p.magic))
		if readFull(r, size, b, p.off) == nil && string(b) == p.magic {
			return p.name
		}
	}
	return ""
}

// splitPath normalises a path of the FS interface into its elements.
// "", "." and "/" are the root (no elements).
func splitPath(p string) ([]string, error) {
	p = strings.TrimLeft(p, "/")
	if p == "" {
		return nil, nil
	}
	c := path.Clean(p)
	if c == "." {
		return nil, nil
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return nil, fs.ErrInvalid
	}
	return strings.Split(c, "/"), nil
}

// baseName is the Entry.Name for a path: its last element, "." for root.
func baseName(elems []string) string {
	if len(elems) == 0 {
		return "."
	}
	return elems[len(elems)-1]
}

// validName reports whether a name read from a directory may be returned:
// not empty, not "." or "..", no slash and no NUL.
func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/\x00")
}
