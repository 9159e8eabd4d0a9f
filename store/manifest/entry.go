package manifest

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

// Kind is the type of a file-system object.
type Kind uint8

// Kinds of entries. The numeric values are part of the on-disk format.
const (
	KindFile       Kind = 1
	KindDir        Kind = 2
	KindSymlink    Kind = 3
	KindFIFO       Kind = 4
	KindDevice     Kind = 5 // block device
	KindCharDevice Kind = 6
	KindSocket     Kind = 7
	kindMax             = KindSocket
)

var kindNames = [...]string{
	KindFile:       "file",
	KindDir:        "dir",
	KindSymlink:    "symlink",
	KindFIFO:       "fifo",
	KindDevice:     "device",
	KindCharDevice: "chardevice",
	KindSocket:     "socket",
}

// String returns a short lower-case name of k ("file", "dir", ...).
func (k Kind) String() string {
	if k >= 1 && k <= kindMax {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k >= 1 && k <= kindMax }

// Limits enforced by both the Writer and the Reader.
const (
	MaxPathLen       = 4096    // bytes in Entry.Path
	MaxTargetLen     = 4096    // bytes in Entry.Target
	MaxNameLen       = 256     // bytes in Entry.User / Entry.Group
	MaxChunks        = 1 << 24 // chunks per file (also at most Size+1)
	MaxXattrs        = 256     // extended attributes per entry
	MaxXattrNameLen  = 255     // bytes in an xattr name
	MaxXattrValueLen = 64 << 10
	MaxMode          = 07777 // permission bits plus setuid/setgid/sticky
)

// ChunkRef references one chunk of a file's content, or a hole: a ref
// whose ID is all zero bytes stands for Size zero bytes that were never
// stored (a keyed hash never comes out all zero). Image points record
// unused disk space as holes; a hole may be as large as a uint32 allows.
type ChunkRef struct {
	ID   [32]byte
	Size uint32 // plaintext length of that chunk (or of the hole)
}

// Hole reports whether c is a hole rather than a stored chunk.
func (c ChunkRef) Hole() bool { return c.ID == [32]byte{} }

// Entry is one object of the tree. See the package documentation for the
// rules each field must follow.
type Entry struct {
	Path         string // slash-separated, relative to the point's root; see ValidPath
	Kind         Kind
	Mode         uint32 // st_mode & 07777
	UID, GID     uint32
	User, Group  string // names when known (may be empty)
	Size         int64  // bytes; for files the sum of the chunk sizes
	MTime, CTime int64  // Unix nanoseconds
	Inode, Dev   uint64
	Nlink        uint32
	Rdev         uint64            // devices
	Target       string            // symlink target
	Chunks       []ChunkRef        // files only
	Xattrs       map[string][]byte // optional; may be nil
}

// Clone returns a deep copy of e (Chunks, Xattrs and their values are copied).
func (e *Entry) Clone() *Entry {
	c := *e
	c.Chunks = slices.Clone(e.Chunks)
	if e.Xattrs != nil {
		c.Xattrs = make(map[string][]byte, len(e.Xattrs))
		for k, v := range e.Xattrs {
			c.Xattrs[k] = slices.Clone(v)
		}
	}
	return &c
}

var (
	// ErrCorrupt is wrapped by every error the Reader returns for a damaged,
	// truncated or hostile stream.
	ErrCorrupt = errors.New("manifest corrupt")
	// ErrInvalid is wrapped by Writer.Write and ValidPath errors for an entry
	// that breaks a field rule.
	ErrInvalid = errors.New("manifest: invalid entry")
	// ErrOrder is wrapped by Writer.Write errors for an entry out of order,
	// a duplicate path, or a child of a non-directory.
	ErrOrder = errors.New("manifest: entry out of order")
)

// CorruptError describes where and why a stream failed to decode.
// It wraps ErrCorrupt.
type CorruptError struct {
	Offset int64 // byte offset in the stream where the problem was detected
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("manifest corrupt at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Less reports whether path a sorts before path b in manifest order: a
// depth-first walk with siblings sorted by name bytes. Paths are compared
// component by component; equivalently byte-wise with '/' sorting before
// every other byte, and a path before any longer path it is a prefix of.
func Less(a, b string) bool {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		ca, cb := a[i], b[i]
		if ca != cb {
			if ca == '/' {
				return true
			}
			if cb == '/' {
				return false
			}
			return ca < cb
		}
	}
	return len(a) < len(b)
}

// ValidPath reports whether p is an acceptable Entry.Path: non-empty, at
// most MaxPathLen bytes, no NUL byte, no leading or trailing '/', no empty,
// "." or ".." component. The error wraps ErrInvalid.
func ValidPath(p string) error {
	if r := pathProblem(p); r != "" {
		return fmt.Errorf("%w: path %q: %s", ErrInvalid, p, r)
	}
	return nil
}

// pathProblem returns "" if p is valid, else the reason.
func pathProblem(p string) string {
	if p == "" {
		return "empty path"
	}
	if len(p) > MaxPathLen {
		return "path too long"
	}
	if p[0] == '/' {
		return "leading slash"
	}
	if p[len(p)-1] == '/' {
		return "trailing slash"
	}
	start := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c == 0 {
				return "NUL byte in path"
			}
			if c != '/' {
				continue
			}
		}
		switch i - start {
		case 0:
			return "empty path component"
		case 1:
			if p[start] == '.' {
				return "\".\" path component"
			}
		case 2:
			if p[start] == '.' && p[start+1] == '.' {
				return "\"..\" path component"
			}
		}
		start = i + 1
	}
	return ""
}

// orderProblem checks that cur may follow prev (whose kind is prevKind).
func orderProblem(prev string, prevKind Kind, cur string) string {
	if !Less(prev, cur) {
		if prev == cur {
			return "duplicate path"
		}
		return "path sorts before previous path"
	}
	if prevKind != KindDir && len(cur) > len(prev) && cur[len(prev)] == '/' && cur[:len(prev)] == prev {
		return "entry under a non-directory " + prevKind.String()
	}
	return ""
}

func nameProblem(s string, max int) string {
	if len(s) > max {
		return "too long"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains NUL"
	}
	return ""
}

// entryProblem validates all fields of e except the order. It returns the
// reason or "".
func entryProblem(e *Entry) string {
	if r := pathProblem(e.Path); r != "" {
		return r
	}
	if !e.Kind.Valid() {
		return "invalid kind " + e.Kind.String()
	}
	if e.Mode > MaxMode {
		return fmt.Sprintf("mode %#o has bits outside 07777", e.Mode)
	}
	if e.Size < 0 {
		return "negative size"
	}
	if r := nameProblem(e.User, MaxNameLen); r != "" {
		return "user name " + r
	}
	if r := nameProblem(e.Group, MaxNameLen); r != "" {
		return "group name " + r
	}
	if e.Target != "" {
		if e.Kind != KindSymlink {
			return "target on a " + e.Kind.String()
		}
		if r := nameProblem(e.Target, MaxTargetLen); r != "" {
			return "symlink target " + r
		}
	}
	if len(e.Chunks) > 0 && e.Kind != KindFile {
		return "chunks on a " + e.Kind.String()
	}
	if e.Kind == KindFile {
		if len(e.Chunks) > MaxChunks || uint64(len(e.Chunks)) > uint64(e.Size)+1 {
			return "too many chunks"
		}
		var sum uint64
		for i := range e.Chunks {
			sum += uint64(e.Chunks[i].Size)
		}
		if sum != uint64(e.Size) {
			return fmt.Sprintf("size %d != sum of chunk sizes %d", e.Size, sum)
		}
	}
	if len(e.Xattrs) > MaxXattrs {
		return "too many xattrs"
	}
	for k, v := range e.Xattrs {
		if k == "" {
			return "empty xattr name"
		}
		if r := nameProblem(k, MaxXattrNameLen); r != "" {
			return "xattr name " + r
		}
		if len(v) > MaxXattrValueLen {
			return "xattr value too long"
		}
	}
	return ""
}

// FileMode turns Entry.Mode bits (permissions, setuid, setgid, sticky)
// into an fs.FileMode for chmod.
func FileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// ModeBits is the inverse of FileMode: the Entry.Mode bits of m.
func ModeBits(m fs.FileMode) uint32 {
	bits := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}
