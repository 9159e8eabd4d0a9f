package manifest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
)

const readBufSize = 128 << 10 // must exceed the largest single field (an xattr value)

// Reader decodes a manifest stream. A Reader is not safe for concurrent use.
//
// Entries are returned as they are decoded; the CRC-32C covering the whole
// stream is only verified when the end record is reached, so a consumer must
// treat what it has read as unverified until Next returns io.EOF.
type Reader struct {
	r      io.Reader
	rerr   error // deferred error from the underlying reader
	buf    []byte
	pos    int   // next unread byte in buf
	end    int   // end of valid data in buf
	crcPos int   // bytes of buf before crcPos are included in crc
	base   int64 // stream offset of buf[0]
	crc    uint32

	st      state
	count   int64
	started bool
	err     error // sticky
	e       Entry
	scratch []byte
}

// NewReader returns a Reader decoding the manifest in r.
func NewReader(r io.Reader) *Reader {
	return newReaderSize(r, readBufSize)
}

func newReaderSize(r io.Reader, size int) *Reader {
	return &Reader{r: r, buf: make([]byte, size)}
}

// Count returns the number of entries decoded so far.
func (r *Reader) Count() int64 { return r.count }

// Next returns the next entry. After the last entry it verifies the end
// record (entry count, CRC-32C, no trailing data) and returns io.EOF.
// Any damage, truncation or rule violation yields an error wrapping
// ErrCorrupt (a *CorruptError with the byte offset and reason); errors of
// the underlying reader are returned wrapped as they are. Errors are sticky.
//
// The returned *Entry is owned by the Reader and is overwritten by the next
// call, including the backing array of Entry.Chunks. Strings and the Xattrs
// map (with its values) are freshly allocated, but callers should use
// Entry.Clone for anything they keep.
func (r *Reader) Next() (*Entry, error) {
	if r.err != nil {
		return nil, r.err
	}
	e, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	return e, nil
}

func (r *Reader) off() int64 { return r.base + int64(r.pos) }

func (r *Reader) corrupt(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// fill reads more data from the underlying reader, compacting buf first.
func (r *Reader) fill() error {
	if r.pos > 0 {
		r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.pos])
		n := copy(r.buf, r.buf[r.pos:r.end])
		r.base += int64(r.pos)
		r.end, r.pos, r.crcPos = n, 0, 0
	}
	if r.rerr != nil {
		return r.rerr
	}
	if r.end == len(r.buf) {
		return io.ErrShortBuffer // cannot happen: fields are smaller than buf
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		if n < 0 || n > len(r.buf)-r.end {
			return fmt.Errorf("manifest: invalid read count %d", n)
		}
		r.end += n
		if err != nil {
			r.rerr = err
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

// ensure makes at least n bytes available at buf[pos:].
func (r *Reader) ensure(n int) error {
	for r.end-r.pos < n {
		if err := r.fill(); err != nil {
			if err == io.EOF {
				return r.corrupt(r.base+int64(r.end), "truncated stream")
			}
			return fmt.Errorf("manifest: read at byte %d: %w", r.off(), err)
		}
	}
	return nil
}

func (r *Reader) byte() (byte, error) {
	if r.pos >= r.end {
		if err := r.ensure(1); err != nil {
			return 0, err
		}
	}
	c := r.buf[r.pos]
	r.pos++
	return c, nil
}

func (r *Reader) uvarint() (uint64, error) {
	if r.end-r.pos >= binary.MaxVarintLen64 {
		v, n := binary.Uvarint(r.buf[r.pos:r.end])
		if n <= 0 {
			return 0, r.corrupt(r.off(), "malformed varint")
		}
		r.pos += n
		return v, nil
	}
	start := r.off()
	var v uint64
	var s uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			return v | uint64(c)<<s, nil
		}
		v |= uint64(c&0x7f) << s
		s += 7
	}
	return 0, r.corrupt(start, "malformed varint")
}

// bounded reads a uvarint and checks it is <= max.
func (r *Reader) bounded(max uint64, what string) (uint64, error) {
	off := r.off()
	v, err := r.uvarint()
	if err != nil {
		return 0, err
	}
	if v > max {
		return 0, r.corrupt(off, "%s %d exceeds %d", what, v, max)
	}
	return v, nil
}

// bytes returns the next n bytes; the slice is valid until the next read.
func (r *Reader) bytes(n int) ([]byte, error) {
	if err := r.ensure(n); err != nil {
		return nil, err
	}
	b := r.buf[r.pos : r.pos+n : r.pos+n]
	r.pos += n
	return b, nil
}

// str reads a length-prefixed string of at most max bytes without NUL.
// If it equals reuse, reuse is returned without allocating.
func (r *Reader) str(max int, what, reuse string) (string, error) {
	n, err := r.bounded(uint64(max), what+" length")
	if err != nil {
		return "", err
	}
	off := r.off()
	b, err := r.bytes(int(n))
	if err != nil {
		return "", err
	}
	if bytes.IndexByte(b, 0) >= 0 {
		return "", r.corrupt(off, "%s contains NUL", what)
	}
	if string(b) == reuse {
		return reuse, nil
	}
	return string(b), nil
}

func (r *Reader) next() (*Entry, error) {
	if !r.started {
		if err := r.ensure(len(magic) + 1); err != nil {
			return nil, err
		}
		if string(r.buf[r.pos:r.pos+len(magic)]) != magic {
			return nil, r.corrupt(0, "bad magic")
		}
		if v := r.buf[r.pos+len(magic)]; v != version {
			return nil, r.corrupt(int64(len(magic)), "unsupported version %d", v)
		}
		r.pos += len(magic) + 1
		r.started = true
	}
	off := r.off()
	tag, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch tag {
	case tagEntry:
		return r.entry(off)
	case tagEnd:
		return nil, r.endRecord()
	}
	return nil, r.corrupt(off, "unknown record tag %d", tag)
}

func (r *Reader) endRecord() error {
	off := r.off()
	n, err := r.uvarint()
	if err != nil {
		return err
	}
	if n != uint64(r.count) {
		return r.corrupt(off, "end record counts %d entries, stream has %d", n, r.count)
	}
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcPos:r.pos])
	r.crcPos = r.pos
	off = r.off()
	b, err := r.bytes(4)
	if err != nil {
		return err
	}
	r.crcPos = r.pos // the checksum itself is not checksummed
	if got := binary.LittleEndian.Uint32(b); got != r.crc {
		return r.corrupt(off, "checksum mismatch (stored %08x, computed %08x)", got, r.crc)
	}
	// Nothing may follow the end record.
	for r.pos == r.end {
		if err := r.fill(); err != nil {
			if err == io.EOF {
				return io.EOF
			}
			return fmt.Errorf("manifest: read at byte %d: %w", r.off(), err)
		}
	}
	return r.corrupt(r.off(), "trailing data after end record")
}

func (r *Reader) entry(recOff int64) (*Entry, error) {
	st := &r.st
	e := &r.e
	chunks := e.Chunks[:0]
	*e = Entry{}

	// Path: shared prefix with the previous path + suffix.
	p, err := r.bounded(uint64(len(st.prevPath)), "shared path prefix")
	if err != nil {
		return nil, err
	}
	sl, err := r.bounded(MaxPathLen-p, "path suffix length")
	if err != nil {
		return nil, err
	}
	suffix, err := r.bytes(int(sl))
	if err != nil {
		return nil, err
	}
	r.scratch = append(append(r.scratch[:0], st.prevPath[:p]...), suffix...)
	e.Path = string(r.scratch)
	if why := pathProblem(e.Path); why != "" {
		return nil, r.corrupt(recOff, "path %q: %s", e.Path, why)
	}
	if r.count > 0 {
		if why := orderProblem(st.prevPath, st.prevKind, e.Path); why != "" {
			return nil, r.corrupt(recOff, "path %q after %q: %s", e.Path, st.prevPath, why)
		}
	}

	off := r.off()
	k, err := r.byte()
	if err != nil {
		return nil, err
	}
	e.Kind = Kind(k)
	if !e.Kind.Valid() {
		return nil, r.corrupt(off, "invalid kind %d", k)
	}
	off = r.off()
	flags, err := r.uvarint()
	if err != nil {
		return nil, err
	}
	if flags&^fAll != 0 {
		return nil, r.corrupt(off, "unknown flags %#x", flags)
	}
	v, err := r.bounded(MaxMode, "mode")
	if err != nil {
		return nil, err
	}
	e.Mode = uint32(v)

	if flags&fOwner != 0 {
		if v, err = r.bounded(math.MaxUint32, "uid"); err != nil {
			return nil, err
		}
		st.uid = uint32(v)
		if v, err = r.bounded(math.MaxUint32, "gid"); err != nil {
			return nil, err
		}
		st.gid = uint32(v)
		if st.user, err = r.str(MaxNameLen, "user name", st.user); err != nil {
			return nil, err
		}
		if st.group, err = r.str(MaxNameLen, "group name", st.group); err != nil {
			return nil, err
		}
	}
	e.UID, e.GID, e.User, e.Group = st.uid, st.gid, st.user, st.group

	if v, err = r.bounded(math.MaxInt64, "size"); err != nil {
		return nil, err
	}
	e.Size = int64(v)
	if v, err = r.uvarint(); err != nil {
		return nil, err
	}
	st.mtime += unzigzag(v)
	e.MTime, e.CTime = st.mtime, st.mtime
	if flags&fCTime != 0 {
		if v, err = r.uvarint(); err != nil {
			return nil, err
		}
		e.CTime = e.MTime + unzigzag(v)
	}
	if e.Inode, err = r.uvarint(); err != nil {
		return nil, err
	}
	if flags&fDev != 0 {
		if st.dev, err = r.uvarint(); err != nil {
			return nil, err
		}
	}
	e.Dev = st.dev
	if v, err = r.bounded(math.MaxUint32, "nlink"); err != nil {
		return nil, err
	}
	e.Nlink = uint32(v)
	if flags&fRdev != 0 {
		if e.Rdev, err = r.uvarint(); err != nil {
			return nil, err
		}
	}
	if flags&fTarget != 0 {
		off = r.off()
		if e.Kind != KindSymlink {
			return nil, r.corrupt(off, "target on a %s", e.Kind)
		}
		if e.Target, err = r.str(MaxTargetLen, "symlink target", ""); err != nil {
			return nil, err
		}
		if e.Target == "" {
			return nil, r.corrupt(off, "empty symlink target with target flag")
		}
	}
	if flags&fChunks != 0 {
		off = r.off()
		if e.Kind != KindFile {
			return nil, r.corrupt(off, "chunks on a %s", e.Kind)
		}
		n, err := r.bounded(min(MaxChunks, uint64(e.Size)+1), "chunk count")
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, r.corrupt(off, "zero chunk count with chunk flag")
		}
		// Grow as data actually arrives: a hostile count cannot force a
		// large allocation for a short stream.
		var sum uint64
		for range n {
			var c ChunkRef
			id, err := r.bytes(len(c.ID))
			if err != nil {
				return nil, err
			}
			copy(c.ID[:], id)
			if v, err = r.bounded(math.MaxUint32, "chunk size"); err != nil {
				return nil, err
			}
			c.Size = uint32(v)
			sum += v
			chunks = append(chunks, c)
		}
		if sum != uint64(e.Size) {
			return nil, r.corrupt(off, "size %d != sum of chunk sizes %d", e.Size, sum)
		}
		e.Chunks = chunks
	} else {
		if e.Kind == KindFile && e.Size != 0 {
			return nil, r.corrupt(r.off(), "file of size %d has no chunks", e.Size)
		}
		e.Chunks = chunks // empty, keeps capacity for reuse
	}
	if flags&fXattrs != 0 {
		off = r.off()
		n, err := r.bounded(MaxXattrs, "xattr count")
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, r.corrupt(off, "zero xattr count with xattr flag")
		}
		e.Xattrs = make(map[string][]byte, n)
		prev := ""
		for i := range n {
			off = r.off()
			name, err := r.str(MaxXattrNameLen, "xattr name", "")
			if err != nil {
				return nil, err
			}
			if name == "" {
				return nil, r.corrupt(off, "empty xattr name")
			}
			if i > 0 && name <= prev {
				return nil, r.corrupt(off, "xattr names not strictly sorted")
			}
			prev = name
			vl, err := r.bounded(MaxXattrValueLen, "xattr value length")
			if err != nil {
				return nil, err
			}
			b, err := r.bytes(int(vl))
			if err != nil {
				return nil, err
			}
			e.Xattrs[name] = append([]byte{}, b...)
		}
	}
	st.prevPath = e.Path
	st.prevKind = e.Kind
	r.count++
	return e, nil
}

// Encode encodes entries (which must be valid and in order) into one
// manifest.
func Encode(entries []*Entry) ([]byte, error) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, e := range entries {
		if err := w.Write(e); err != nil {
			return nil, err
		}
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Decode decodes a complete manifest. The returned entries are independent
// copies.
func Decode(b []byte) ([]*Entry, error) {
	// The stream is never longer than b, so a buffer of len(b)+1 never fills.
	r := newReaderSize(bytes.NewReader(b), min(readBufSize, len(b)+1))
	var out []*Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e.Clone())
	}
}
