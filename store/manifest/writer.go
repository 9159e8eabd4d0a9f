package manifest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

const (
	magic   = "BESMAN01"
	version = 1

	tagEntry = 1
	tagEnd   = 2

	// entry flags
	fOwner  = 1 << 0 // UID, GID, User, Group follow (else: same as previous entry)
	fCTime  = 1 << 1 // CTime-MTime follows (else CTime == MTime)
	fDev    = 1 << 2 // Dev follows (else: same as previous entry)
	fRdev   = 1 << 3 // Rdev follows (else 0)
	fTarget = 1 << 4 // Target follows (else "")
	fChunks = 1 << 5 // chunk list follows (else none)
	fXattrs = 1 << 6 // xattr list follows (else nil)
	fAll    = 1<<7 - 1

	flushSize = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errClosed = errors.New("manifest: writer closed")

// state is the "previous entry" context shared by encoder and decoder.
type state struct {
	prevPath string
	prevKind Kind
	uid, gid uint32
	user     string
	group    string
	dev      uint64
	mtime    int64
}

// Writer encodes entries to an underlying io.Writer. It buffers output
// internally; call Close to write the end record and flush.
// A Writer is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	buf     []byte
	crc     uint32
	count   int64
	st      state
	started bool
	closed  bool
	err     error // sticky I/O error
	keys    []string
}

// NewWriter returns a Writer writing a manifest to w. The header is
// written with the first entry (or by Close for an empty manifest).
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, flushSize+1024)}
}

// Count returns the number of entries written so far.
func (w *Writer) Count() int64 { return w.count }

// Write validates e and appends it to the stream. An entry that fails
// validation (errors wrapping ErrInvalid or ErrOrder) is not written and the
// Writer stays usable. I/O errors are sticky. The Writer does not retain e
// or any of its slices after Write returns.
func (w *Writer) Write(e *Entry) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errClosed
	}
	if e == nil {
		return fmt.Errorf("%w: nil entry", ErrInvalid)
	}
	if r := entryProblem(e); r != "" {
		return fmt.Errorf("%w: %q: %s", ErrInvalid, e.Path, r)
	}
	if w.count > 0 {
		if r := orderProblem(w.st.prevPath, w.st.prevKind, e.Path); r != "" {
			return fmt.Errorf("%w: %q after %q: %s", ErrOrder, e.Path, w.st.prevPath, r)
		}
	}
	if !w.started {
		w.buf = appendHeader(w.buf)
		w.started = true
	}
	w.buf = w.st.appendEntry(w.buf, e, &w.keys)
	w.count++
	if len(w.buf) >= flushSize {
		w.flush()
	}
	return w.err
}

func (w *Writer) flush() {
	if len(w.buf) == 0 || w.err != nil {
		return
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("manifest: write: %w", err)
	}
	w.buf = w.buf[:0]
}

// Close writes the end record (entry count and CRC-32C of the whole
// stream) and flushes. It does not close the underlying writer. Calling
// Close again returns the result of the first call.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	if w.err != nil {
		return w.err
	}
	if !w.started {
		w.buf = appendHeader(w.buf)
		w.started = true
	}
	w.buf = appendEnd(w.buf, w.count)
	w.crc = crc32.Update(w.crc, castagnoli, w.buf)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, w.crc)
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("manifest: write: %w", err)
	}
	w.buf = nil
	return w.err
}

func appendHeader(b []byte) []byte {
	b = append(b, magic...)
	return append(b, version)
}

func appendEnd(b []byte, count int64) []byte {
	b = append(b, tagEnd)
	return binary.AppendUvarint(b, uint64(count))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func zigzag(v int64) uint64 { return uint64(v<<1) ^ uint64(v>>63) }

func unzigzag(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }

// appendEntry encodes e (without validating it) relative to st and updates st.
func (st *state) appendEntry(b []byte, e *Entry, keys *[]string) []byte {
	p := 0
	n := min(len(st.prevPath), len(e.Path))
	for p < n && st.prevPath[p] == e.Path[p] {
		p++
	}
	var flags uint64
	if e.UID != st.uid || e.GID != st.gid || e.User != st.user || e.Group != st.group {
		flags |= fOwner
	}
	if e.CTime != e.MTime {
		flags |= fCTime
	}
	if e.Dev != st.dev {
		flags |= fDev
	}
	if e.Rdev != 0 {
		flags |= fRdev
	}
	if e.Target != "" {
		flags |= fTarget
	}
	if len(e.Chunks) > 0 {
		flags |= fChunks
	}
	if len(e.Xattrs) > 0 {
		flags |= fXattrs
	}

	b = append(b, tagEntry)
	b = binary.AppendUvarint(b, uint64(p))
	b = appendString(b, e.Path[p:])
	b = append(b, byte(e.Kind))
	b = binary.AppendUvarint(b, flags)
	b = binary.AppendUvarint(b, uint64(e.Mode))
	if flags&fOwner != 0 {
		b = binary.AppendUvarint(b, uint64(e.UID))
		b = binary.AppendUvarint(b, uint64(e.GID))
		b = appendString(b, e.User)
		b = appendString(b, e.Group)
		st.uid, st.gid, st.user, st.group = e.UID, e.GID, e.User, e.Group
	}
	b = binary.AppendUvarint(b, uint64(e.Size))
	b = binary.AppendUvarint(b, zigzag(e.MTime-st.mtime))
	st.mtime = e.MTime
	if flags&fCTime != 0 {
		b = binary.AppendUvarint(b, zigzag(e.CTime-e.MTime))
	}
	b = binary.AppendUvarint(b, e.Inode)
	if flags&fDev != 0 {
		b = binary.AppendUvarint(b, e.Dev)
		st.dev = e.Dev
	}
	b = binary.AppendUvarint(b, uint64(e.Nlink))
	if flags&fRdev != 0 {
		b = binary.AppendUvarint(b, e.Rdev)
	}
	if flags&fTarget != 0 {
		b = appendString(b, e.Target)
	}
	if flags&fChunks != 0 {
		b = binary.AppendUvarint(b, uint64(len(e.Chunks)))
		for i := range e.Chunks {
			b = append(b, e.Chunks[i].ID[:]...)
			b = binary.AppendUvarint(b, uint64(e.Chunks[i].Size))
		}
	}
	if flags&fXattrs != 0 {
		ks := (*keys)[:0]
		for k := range e.Xattrs {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		b = binary.AppendUvarint(b, uint64(len(ks)))
		for _, k := range ks {
			b = appendString(b, k)
			v := e.Xattrs[k]
			b = binary.AppendUvarint(b, uint64(len(v)))
			b = append(b, v...)
		}
		clear(ks)
		*keys = ks[:0]
	}
	st.prevPath = e.Path
	st.prevKind = e.Kind
	return b
}
