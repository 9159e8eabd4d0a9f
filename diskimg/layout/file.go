package layout

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"
)

// view presents a window of the disk as the backend.File that go-diskfs's
// readers take. It never reads outside the window (reads past its end return
// io.EOF), and the bytes of hide read as zeros: Read uses that to keep
// go-diskfs away from a primary GPT header that it rejected itself.
type view struct {
	d    *disk
	base int64 // disk offset of the window
	size int64 // window length
	pos  int64 // position for Read and Seek
	hide Extent
}

func (v *view) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if off >= v.size {
		return 0, io.EOF
	}
	n := int64(len(p))
	if n > v.size-off {
		n = v.size - off
	}
	got, err := v.d.r.ReadAt(p[:n], v.base+off)
	if int64(got) == n {
		err = nil
	} else if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	v.zeroHidden(p[:got], off)
	if err == nil && n < int64(len(p)) {
		err = io.EOF
	}
	return got, err
}

// zeroHidden clears the part of b (read at window offset off) that hide covers.
func (v *view) zeroHidden(b []byte, off int64) {
	lo, hi := max(off, v.hide.Off), min(off+int64(len(b)), v.hide.End())
	for i := lo; i < hi; i++ {
		b[i-off] = 0
	}
}

func (v *view) Read(p []byte) (int, error) {
	n, err := v.ReadAt(p, v.pos)
	v.pos += int64(n)
	return n, err
}

func (v *view) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += v.pos
	case io.SeekEnd:
		off += v.size
	default:
		return 0, fmt.Errorf("seek: bad whence %d", whence)
	}
	if off < 0 {
		return 0, errors.New("seek: negative position")
	}
	v.pos = off
	return off, nil
}

func (v *view) Close() error { return nil }

func (v *view) Stat() (fs.FileInfo, error) { return viewInfo{v.size}, nil }

type viewInfo struct{ size int64 }

func (i viewInfo) Name() string       { return "disk" }
func (i viewInfo) Size() int64        { return i.size }
func (i viewInfo) Mode() fs.FileMode  { return 0o400 }
func (i viewInfo) ModTime() time.Time { return time.Time{} }
func (i viewInfo) IsDir() bool        { return false }
func (i viewInfo) Sys() any           { return nil }

// guard runs fn, a call into go-diskfs, turning a panic into an error
// wrapping ErrMalformed. Read validates the bytes before it hands them to
// go-diskfs, so a panic here means a check of ours is missing; it must
// still never take the caller down.
func guard(what string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: go-diskfs panicked reading %s: %v", ErrMalformed, what, r)
		}
	}()
	return fn()
}
