package fsread

import (
	"errors"
	"io"
	"io/fs"
)

// Read sizes. Read serves small reads from an aligned window of readWindow
// bytes; WriteTo (used by io.Copy) reads writeToChunk bytes at a time, so the
// image is always read in large aligned pieces whatever the caller's buffer.
const (
	readWindow   = 64 << 10
	writeToChunk = 1 << 20
)

var errNegativeOffset = errors.New("fsread: negative offset")

// file implements File over a function that fills p from file offset off;
// the function is only called with off >= 0 and off+len(p) <= size, and
// must be safe for concurrent use.
type file struct {
	name   string
	size   int64
	readAt func(p []byte, off int64) error

	off    int64
	win    []byte // Read window, aligned to readWindow in file offsets
	winOff int64
	closed bool
}

func newFile(name string, size int64, readAt func(p []byte, off int64) error) *file {
	return &file{name: name, size: size, readAt: readAt}
}

func (f *file) Size() int64 { return f.size }

func (f *file) Close() error {
	if f.closed {
		return &fs.PathError{Op: "close", Path: f.name, Err: fs.ErrClosed}
	}
	f.closed = true
	f.win = nil
	return nil
}

// ReadAt implements io.ReaderAt.
func (f *file) ReadAt(p []byte, off int64) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if off < 0 {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: errNegativeOffset}
	}
	if off >= f.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), f.size-off))
	if err := f.readAt(p[:n], off); err != nil {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Read implements io.Reader.
func (f *file) Read(p []byte) (int, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	if f.off >= f.size {
		return 0, io.EOF
	}
	if len(p) >= readWindow {
		n, err := f.ReadAt(p, f.off)
		f.off += int64(n)
		if err == io.EOF && n > 0 {
			err = nil
		}
		return n, err
	}
	if f.win == nil || f.off < f.winOff || f.off >= f.winOff+int64(len(f.win)) {
		start := f.off &^ (readWindow - 1)
		n := min(readWindow, f.size-start)
		if cap(f.win) < readWindow {
			f.win = make([]byte, readWindow)
		}
		f.win = f.win[:n]
		if err := f.readAt(f.win, start); err != nil {
			f.win = f.win[:0]
			return 0, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		f.winOff = start
	}
	n := copy(p, f.win[f.off-f.winOff:])
	f.off += int64(n)
	return n, nil
}

// Seek implements io.Seeker.
func (f *file) Seek(offset int64, whence int) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrClosed}
	}
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		offset += f.size
	default:
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: fs.ErrInvalid}
	}
	if offset < 0 {
		return 0, &fs.PathError{Op: "seek", Path: f.name, Err: errNegativeOffset}
	}
	f.off = offset
	return offset, nil
}

// WriteTo implements io.WriterTo: it copies from the current offset to the
// end of the file in aligned pieces of up to writeToChunk bytes.
func (f *file) WriteTo(w io.Writer) (int64, error) {
	if f.closed {
		return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrClosed}
	}
	var total int64
	var buf []byte
	for f.off < f.size {
		end := min((f.off&^(writeToChunk-1))+writeToChunk, f.size)
		n := int(end - f.off)
		if buf == nil {
			buf = make([]byte, min(writeToChunk, f.size-f.off))
		}
		if err := f.readAt(buf[:n], f.off); err != nil {
			return total, &fs.PathError{Op: "read", Path: f.name, Err: err}
		}
		m, err := w.Write(buf[:n])
		total += int64(m)
		f.off += int64(m)
		if err != nil {
			return total, err
		}
		if m != n {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
}
