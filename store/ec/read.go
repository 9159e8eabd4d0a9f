package ec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// errBadPiece marks a piece that failed verification.
var errBadPiece = errors.New("checksum mismatch")

// reader reads verified pieces of one pack. Files are opened lazily. Distinct
// shard indexes may be used from different goroutines concurrently.
type reader struct {
	s     *Set
	pm    *packMeta
	files []*os.File
	dead  []error // per shard: non-nil once the shard is unusable for this reader
	bufs  [][]byte
}

func (s *Set) newReader(pm *packMeta) *reader {
	n := s.k + s.m
	r := &reader{s: s, pm: pm, files: make([]*os.File, n), dead: make([]error, n), bufs: make([][]byte, n)}
	for i, sh := range pm.shards {
		r.dead[i] = sh.err
	}
	return r
}

func (r *reader) close() {
	for i, f := range r.files {
		if f != nil {
			f.Close()
			r.files[i] = nil
		}
	}
	for i, b := range r.bufs {
		r.s.putBuf(b)
		r.bufs[i] = nil
	}
}

// buf returns shard i's scratch buffer with length n.
func (r *reader) buf(i, n int) []byte {
	if cap(r.bufs[i]) < n {
		r.s.putBuf(r.bufs[i])
		r.bufs[i] = r.s.getBuf(n)
	}
	r.bufs[i] = r.bufs[i][:n]
	return r.bufs[i]
}

// readPiece reads piece j of shard i into r.bufs[i] and verifies it.
func (r *reader) readPiece(i, j int) error {
	return r.readPieceInto(i, j, r.buf(i, r.pm.g.pieceLen(j)))
}

// readPieceInto reads piece j of shard i into b (exactly its length) and
// verifies it; on failure b holds garbage.
func (r *reader) readPieceInto(i, j int, b []byte) error {
	if r.dead[i] != nil {
		return r.dead[i]
	}
	if r.files[i] == nil {
		f, err := os.Open(r.s.shardPath(i, r.pm.name))
		if err != nil {
			r.dead[i] = err
			return err
		}
		r.files[i] = f
	}
	g := r.pm.g
	if n, err := r.files[i].ReadAt(b, g.pieceOff(j)); n < len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read piece: %w", err)
	}
	if crc(b) != r.pm.shards[i].crcs[j] {
		return errBadPiece
	}
	return nil
}

// readPieces reads the listed pieces of stripe j; ok[i] is set for each
// piece that was read and verified. Sequential on purpose: callers read
// many packs in parallel, and a goroutine per piece costs more scheduling
// than it saves on page-cache reads.
func (r *reader) readPieces(j int, idx []int, ok []bool, onErr func(i int, err error)) {
	for _, i := range idx {
		if err := r.readPiece(i, j); err != nil {
			onErr(i, err)
		} else {
			ok[i] = true
		}
	}
}

// stripe makes r.bufs[i] hold the verified content of piece i of stripe j
// for every i with want[i], reading them directly where healthy and
// otherwise reconstructing from k good pieces. Shards with avoid[i] are not
// used as sources. It returns an error wrapping ErrUnrecoverable if fewer
// than k good pieces exist.
func (r *reader) stripe(j int, want, avoid []bool) error {
	s := r.s
	n := s.k + s.m
	ok := make([]bool, n)
	tried := make([]bool, n)
	var failures []error
	onErr := func(i int, err error) {
		if r.pm.shards[i].err == nil { // don't repeat known-bad shards
			s.log.Warn("ec: bad piece, reconstructing", "pack", r.pm.name, "disk", s.diskName(i),
				"shard", i, "stripe", j, "err", err)
		}
		failures = append(failures, fmt.Errorf("%s: shard %d: %w", s.diskName(i), i, err))
	}
	var idx []int
	for i := range n {
		if want[i] && !avoid[i] {
			idx = append(idx, i)
			tried[i] = true
		}
	}
	if len(idx) > 0 {
		r.readPieces(j, idx, ok, onErr)
	}
	missing := false
	for i := range n {
		if want[i] && !ok[i] {
			missing = true
		}
	}
	if !missing {
		return nil
	}
	good := 0
	for i := range n {
		if ok[i] {
			good++
		}
	}
	// Fetch more pieces until k are good or nothing is left to try.
	for good < s.k {
		idx = idx[:0]
		for i := 0; i < n && len(idx) < s.k-good; i++ {
			if !tried[i] && !avoid[i] && r.dead[i] == nil {
				idx = append(idx, i)
				tried[i] = true
			}
		}
		if len(idx) == 0 {
			break
		}
		r.readPieces(j, idx, ok, onErr)
		good = 0
		for i := range n {
			if ok[i] {
				good++
			}
		}
	}
	if good < s.k {
		return fmt.Errorf("ec: pack %s stripe %d: only %d good pieces, need %d: %w (%v)",
			r.pm.name, j, good, s.k, ErrUnrecoverable, errors.Join(failures...))
	}
	plen := r.pm.g.pieceLen(j)
	shards := make([][]byte, n)
	required := make([]bool, n)
	for i := range n {
		switch {
		case ok[i]:
			shards[i] = r.bufs[i][:plen]
		case want[i]:
			shards[i] = r.buf(i, plen)[:0]
			required[i] = true
		}
	}
	if err := s.enc.ReconstructSome(shards, required); err != nil {
		return fmt.Errorf("ec: pack %s stripe %d: reconstruct: %w", r.pm.name, j, err)
	}
	for i := range n {
		if required[i] {
			r.bufs[i] = shards[i]
		}
	}
	return nil
}

// ReadAt reads len(p) bytes of pack name starting at off. It follows
// io.ReaderAt: fewer than len(p) bytes are returned only with an error, io.EOF
// at the end of the pack.
func (s *Set) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	if err := checkNameErr(name); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("ec: read pack %s: negative offset %d", name, off)
	}
	for attempt := 0; ; attempt++ {
		pm, cached, err := s.getMeta(name, attempt > 0)
		if err != nil {
			return 0, err
		}
		n, err := s.readAt(ctx, pm, p, off)
		if err != nil && cached && attempt == 0 && errors.Is(err, ErrUnrecoverable) {
			// The cached metadata may be stale (pack rewritten or repaired
			// by someone else); retry once with fresh metadata.
			continue
		}
		return n, err
	}
}

func (s *Set) readAt(ctx context.Context, pm *packMeta, p []byte, off int64) (int, error) {
	g := pm.g
	if off >= g.Size {
		if len(p) == 0 {
			return 0, nil
		}
		return 0, io.EOF
	}
	if pm.good < s.k {
		return 0, pm.unreadableErr(s)
	}
	end := off + int64(len(p))
	var eof error
	if end > g.Size {
		end, eof = g.Size, io.EOF
	}
	r := s.newReader(pm)
	defer r.close()
	n := s.k + s.m
	want := make([]bool, n)
	avoid := make([]bool, n)
	stripeLen := int64(s.k) * int64(g.P)
	done := 0
	for pos := off; pos < end; {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		j := int(pos / stripeLen)
		start := g.stripeStart(j)
		plen := int64(g.pieceLen(j))
		sEnd := min(end, start+int64(s.k)*plen) // data end of this stripe within range
		clear(want)
		d0 := int((pos - start) / plen)
		d1 := int((sEnd - 1 - start) / plen)
		need := false
		for d := d0; d <= d1; d++ {
			pStart := start + int64(d)*plen
			from, to := max(pos, pStart), min(sEnd, pStart+plen)
			// A whole, healthy piece is read straight into p and verified
			// there; anything else goes through the stripe path.
			whole := from == pStart && to == pStart+plen
			if !whole || r.readPieceInto(d, j, p[done+int(from-pos):done+int(to-pos)]) != nil {
				want[d], need = true, true
			}
		}
		if need {
			if err := r.stripe(j, want, avoid); err != nil {
				return done, err
			}
		}
		for d := d0; d <= d1; d++ {
			if !want[d] {
				continue
			}
			pStart := start + int64(d)*plen
			from, to := max(pos, pStart), min(sEnd, pStart+plen)
			copy(p[done+int(from-pos):], r.bufs[d][from-pStart:to-pStart])
		}
		done += int(sEnd - pos)
		pos = sEnd
	}
	return done, eof
}

// Prefetch asks the kernel to start reading the data pieces that hold pack
// bytes [off, off+n) into the page cache (posix_fadvise WILLNEED), so a
// later ReadAt finds them there. It is a hint: errors are ignored. Packs
// are written with O_DIRECT and are not in the page cache after a backup.
func (s *Set) Prefetch(name string, off, n int64) { s.advise(name, off, n, unix.FADV_WILLNEED) }

// Drop tells the kernel that the data pieces holding pack bytes
// [off, off+n) are not needed again soon (posix_fadvise DONTNEED): a
// restore that has decoded them frees their page-cache pages for the next
// reads instead of taking fresh memory for every pack it reads. A hint:
// errors are ignored.
func (s *Set) Drop(name string, off, n int64) { s.advise(name, off, n, unix.FADV_DONTNEED) }

func (s *Set) advise(name string, off, n int64, advice int) {
	if checkNameErr(name) != nil || n <= 0 || off < 0 {
		return
	}
	pm, _, err := s.getMeta(name, false)
	if err != nil {
		return
	}
	g := pm.g
	end := min(off+n, g.Size)
	if off >= end {
		return
	}
	stripeLen := int64(s.k) * int64(g.P)
	j0, j1 := int(off/stripeLen), int((end-1)/stripeLen)
	from := g.pieceOff(j0)
	to := g.pieceOff(j1) + int64(g.pieceLen(j1))
	for d := 0; d < s.k; d++ {
		if pm.shards[d].err != nil {
			continue
		}
		f, err := os.Open(s.shardPath(d, name))
		if err != nil {
			continue
		}
		unix.Fadvise(int(f.Fd()), from, to-from, advice)
		f.Close()
	}
}
