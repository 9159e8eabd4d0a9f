package store

// FreeList keeps a bounded number of values for reuse. Unlike a sync.Pool
// it is not emptied at every garbage collection, so multi-MiB scratch
// buffers are not allocated, faulted in and zeroed again after each
// collection (on virtual machines fresh pages are expensive); unlike a
// plain slice it never holds more than its capacity. Safe for concurrent
// use.
type FreeList[T any] struct {
	c   chan T
	new func() T
}

// NewFreeList keeps up to n values; newFn makes one when none is kept.
func NewFreeList[T any](n int, newFn func() T) *FreeList[T] {
	return &FreeList[T]{c: make(chan T, n), new: newFn}
}

// Get returns a kept value or a new one.
func (f *FreeList[T]) Get() T {
	select {
	case v := <-f.c:
		return v
	default:
		return f.new()
	}
}

// Put keeps v for reuse unless the list is full.
func (f *FreeList[T]) Put(v T) {
	select {
	case f.c <- v:
	default:
	}
}

// byteList is a FreeList of byte slices handed out by length.
type byteList struct{ *FreeList[[]byte] }

func newByteList(n int) byteList {
	return byteList{NewFreeList(n, func() []byte { return nil })}
}

// get returns a slice of length n, reusing a kept one when it is big enough.
func (f byteList) get(n int) []byte {
	if b := f.Get(); cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}

// put keeps b for reuse.
func (f byteList) put(b []byte) {
	if cap(b) > 0 {
		f.Put(b[:0])
	}
}
