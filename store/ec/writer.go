package ec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Writer streams one pack into the set. It buffers a single stripe
// (k*PieceSize bytes); each full stripe is encoded and one piece is appended
// to each of the k+m temp shard files. A Writer is not safe for concurrent
// use. On any error the temp files are removed; Abort is always safe.
type Writer struct {
	s           *Set
	name        string
	p           int
	files       []shardFile
	paths       []string
	crcs        [][]uint32
	buf         []byte         // k*p stripe buffer being filled
	parity      [][]byte       // m buffers of p bytes
	spare       []byte         // the other stripe buffer (double buffering)
	spareParity [][]byte       //
	inflight    chan stripeErr // the stripe being written, nil if none
	direct      bool           // every shard file is in O_DIRECT mode
	fill        int
	n           int64
	err         error // sticky
	done        bool  // committed or aborted
}

// NewWriter starts writing pack name. Nothing is visible to readers until
// Commit returns nil.
func (s *Set) NewWriter(name string) (*Writer, error) {
	if err := checkNameErr(name); err != nil {
		return nil, err
	}
	n := s.k + s.m
	w := &Writer{
		s:     s,
		name:  name,
		p:     s.piece,
		files: make([]shardFile, n),
		paths: make([]string, n),
		crcs:  make([][]uint32, n),
	}
	for i := range n {
		f, path, err := s.createTemp(i, name)
		if err != nil {
			w.fail(i, "create temp for", err)
			return nil, w.err
		}
		w.files[i], w.paths[i] = f, path
		h := header{K: s.k, M: s.m, Index: i, PieceSize: w.p, Name: name}
		if err := writeFull(f, h.encode()); err != nil {
			w.fail(i, "write", err)
			return nil, w.err
		}
	}
	w.buf, w.spare = AlignedBuf(s.k*w.p), AlignedBuf(s.k*w.p)
	w.parity, w.spareParity = make([][]byte, s.m), make([][]byte, s.m)
	for i := range w.parity {
		w.parity[i], w.spareParity[i] = AlignedBuf(w.p), AlignedBuf(w.p)
	}
	if w.p%DirectAlign == 0 {
		w.direct = true
		for _, f := range w.files {
			w.direct = setDirect(f, true) && w.direct // best effort: buffered where unsupported
		}
	}
	return w, nil
}

// Full pieces are written with O_DIRECT: on the appliance's disks (and
// markedly on virtual machines) copying into fresh page-cache pages costs
// more CPU than everything else a backup does, and packs are not read back
// soon. The header is one block and P a multiple of it, so every full piece
// is aligned; the last, shorter stripe and the footer go through the page
// cache (O_DIRECT is switched off before them).
// DirectAlign is the block alignment used for direct I/O (O_DIRECT).
const DirectAlign = 4096

// AlignedBuf returns n bytes starting on a DirectAlign boundary, as direct
// I/O needs.
func AlignedBuf(n int) []byte {
	b := make([]byte, n+DirectAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (DirectAlign - 1))
	if off != 0 {
		off = DirectAlign - off
	}
	return b[off : off+n : off+n]
}

// setDirect turns O_DIRECT on or off for a shard file; it reports whether
// the file now has it on.
func setDirect(f shardFile, on bool) bool {
	of, ok := f.(*os.File)
	if !ok {
		return false
	}
	fd := int(of.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return false
	}
	want := fl &^ unix.O_DIRECT
	if on {
		want |= unix.O_DIRECT
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFL, want); err != nil {
		return false
	}
	return on
}

func writeFull(f io.Writer, b []byte) error {
	n, err := f.Write(b)
	if err == nil && n != len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// fail records the first error and removes all temp files.
func (w *Writer) fail(i int, op string, err error) {
	if w.err == nil {
		w.err = fmt.Errorf("ec: %s shard %d of pack %s on %s: %w", op, i, w.name, w.s.dirs[i], err)
	}
	w.cleanup()
}

func (w *Writer) cleanup() {
	if w.inflight != nil { // let the stripe in flight finish with the files
		<-w.inflight
		w.inflight = nil
	}
	for i, f := range w.files {
		if f != nil {
			f.Close()
			w.files[i] = nil
		}
	}
	for i, p := range w.paths {
		if p != "" {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				w.s.log.Warn("ec: cannot remove temp file", "path", p, "err", err)
			}
			w.paths[i] = ""
		}
	}
	w.buf, w.parity, w.spare, w.spareParity = nil, nil, nil, nil
}

// Len returns the number of bytes written so far.
func (w *Writer) Len() int64 { return w.n }

// Write appends p to the pack.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.done {
		return 0, fmt.Errorf("ec: write to closed writer for pack %s", w.name)
	}
	total := 0
	for len(p) > 0 {
		c := copy(w.buf[w.fill:], p)
		w.fill += c
		total += c
		p = p[c:]
		w.n += int64(c)
		if w.fill == len(w.buf) {
			if err := w.flush(w.p, true); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// stripeErr is the outcome of writing one stripe.
type stripeErr struct {
	i   int // shard index, -1 for the encoder
	err error
}

// flush encodes the buffered stripe with piece length pl and appends one
// piece to every shard file. With async (full stripes from Write) it is
// written in the background while the caller fills the other stripe buffer, so direct
// I/O overlaps with the work that produces the next stripe; at most one
// stripe is in flight.
func (w *Writer) flush(pl int, async bool) error {
	if err := w.wait(); err != nil {
		return err
	}
	clear(w.buf[w.fill : w.s.k*pl])
	buf, parity := w.buf, w.parity
	w.fill = 0
	if !async {
		return w.settle(w.writeStripe(buf, parity, pl))
	}
	w.buf, w.parity, w.spare, w.spareParity = w.spare, w.spareParity, buf, parity
	w.inflight = make(chan stripeErr, 1)
	go func(ch chan stripeErr) { ch <- w.writeStripe(buf, parity, pl) }(w.inflight)
	return nil
}

// wait waits for the stripe in flight, if any.
func (w *Writer) wait() error {
	if w.inflight == nil {
		return w.err
	}
	r := <-w.inflight
	w.inflight = nil
	return w.settle(r)
}

func (w *Writer) settle(r stripeErr) error {
	switch {
	case r.err == nil:
		return nil
	case r.i < 0:
		w.err = fmt.Errorf("ec: encode pack %s: %w", w.name, r.err)
		w.cleanup()
	default:
		w.fail(r.i, "write", r.err)
	}
	return w.err
}

// writeStripe encodes parity and appends one piece per shard. Direct writes
// wait for the disk, so they go to all shards at once; page-cache appends
// are sequential, where a goroutine per piece costs more than it saves.
func (w *Writer) writeStripe(buf []byte, parity [][]byte, pl int) stripeErr {
	s := w.s
	n := s.k + s.m
	shards := make([][]byte, n)
	for d := 0; d < s.k; d++ {
		shards[d] = buf[d*pl : (d+1)*pl]
	}
	for i := range parity {
		shards[s.k+i] = parity[i][:pl]
	}
	if s.m > 0 {
		if err := s.enc.Encode(shards); err != nil {
			return stripeErr{-1, err}
		}
	}
	for i := range n {
		w.crcs[i] = append(w.crcs[i], crc(shards[i]))
	}
	if w.direct {
		errs := make([]error, n)
		w.parallel(func(i int) { errs[i] = writeFull(w.files[i], shards[i]) })
		for i, err := range errs {
			if err != nil {
				return stripeErr{i, err}
			}
		}
		return stripeErr{}
	}
	for i := range n {
		if err := writeFull(w.files[i], shards[i]); err != nil {
			return stripeErr{i, err}
		}
	}
	return stripeErr{}
}

// parallel runs fn(i) for every shard index concurrently.
func (w *Writer) parallel(fn func(i int)) {
	n := len(w.files)
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

// Commit writes the final partial stripe and the footers, fsyncs every shard
// file, renames each into place and fsyncs the directories. After Commit
// returns nil the pack is durable. If Commit fails before any shard was
// renamed, nothing is visible; if it fails during the renames (rare: an
// I/O error on a disk), the shards already renamed remain and the pack is
// degraded or incomplete -- the caller should Remove it or retry.
func (w *Writer) Commit() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("ec: commit of closed writer for pack %s", w.name)
	}
	if err := w.wait(); err != nil {
		return err
	}
	s := w.s
	// The last, shorter stripe and the footers are not block-sized.
	for _, f := range w.files {
		setDirect(f, false)
	}
	w.direct = false
	if w.fill > 0 {
		pl := int(roundUp(int64((w.fill+s.k-1)/s.k), pieceAlign))
		if err := w.flush(pl, false); err != nil {
			return err
		}
	}
	g := newGeometry(s.k, w.p, w.n)
	errs := make([]error, len(w.files))
	ops := make([]string, len(w.files))
	w.parallel(func(i int) {
		f := footer{Size: w.n, Stripes: g.N, LastPiece: g.LastP, CRCs: w.crcs[i]}
		if err := writeFull(w.files[i], f.encode()); err != nil {
			errs[i], ops[i] = err, "write footer of"
			return
		}
		if err := w.files[i].Sync(); err != nil {
			errs[i], ops[i] = err, "fsync"
			return
		}
		err := w.files[i].Close()
		w.files[i] = nil
		if err != nil {
			errs[i], ops[i] = err, "close"
		}
	})
	for i, err := range errs {
		if err != nil {
			w.fail(i, ops[i], err)
			return w.err
		}
	}
	w.parallel(func(i int) {
		if err := s.install(i, w.name, w.paths[i]); err != nil {
			errs[i] = err
			return
		}
		w.paths[i] = ""
	})
	s.dropMeta(w.name)
	for i, err := range errs {
		if err != nil {
			w.fail(i, "install", err)
			return w.err
		}
	}
	w.done = true
	w.buf, w.parity, w.spare, w.spareParity = nil, nil, nil, nil
	return nil
}

// Abort discards the pack being written and removes the temp files. It is
// idempotent, safe after a failed Write or Commit, and a no-op after a
// successful Commit.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	w.done = true
	w.cleanup()
	return nil
}
