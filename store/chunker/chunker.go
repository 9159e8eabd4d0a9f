package chunker

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// Size limits enforced by Params.Validate.
const (
	MinSize = 64       // smallest allowed Params.Min
	MaxSize = 64 << 20 // largest allowed Params.Max
)

// window is the number of bytes that influence the gear hash: with a shift
// of one bit per byte, a byte falls out of the 64-bit state after 64 steps.
const window = 64

// Params configures content-defined chunking. The zero value (or any value
// with Min, Avg and Max all zero) means DefaultParams sizes, keeping Seed.
type Params struct {
	Min, Avg, Max int
	Seed          uint64
}

// DefaultParams returns Min 512 KiB, Avg 1 MiB, Max 4 MiB, Seed 0.
func DefaultParams() Params {
	return Params{Min: 512 << 10, Avg: 1 << 20, Max: 4 << 20}
}

// withDefaults fills in the default sizes when none are set.
func (p Params) withDefaults() Params {
	if p.Min == 0 && p.Avg == 0 && p.Max == 0 {
		d := DefaultParams()
		d.Seed = p.Seed
		return d
	}
	return p
}

// Validate reports whether p is usable: 64 B <= Min <= Avg <= Max <= 64 MiB
// and Avg a power of two. The zero value is valid (it means the defaults).
func (p Params) Validate() error {
	p = p.withDefaults()
	switch {
	case p.Min < MinSize:
		return fmt.Errorf("chunker: Min %d below %d bytes", p.Min, MinSize)
	case p.Min > p.Avg:
		return fmt.Errorf("chunker: Min %d larger than Avg %d", p.Min, p.Avg)
	case p.Avg > p.Max:
		return fmt.Errorf("chunker: Avg %d larger than Max %d", p.Avg, p.Max)
	case p.Max > MaxSize:
		return fmt.Errorf("chunker: Max %d above %d bytes", p.Max, MaxSize)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("chunker: Avg %d is not a power of two", p.Avg)
	}
	return nil
}

// gearTable derives the 256-entry gear table from seed with splitmix64.
func gearTable(seed uint64) *[256]uint64 {
	var g [256]uint64
	s := seed
	for i := range g {
		s += 0x9e3779b97f4a7c15
		z := s
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		g[i] = z ^ (z >> 31)
	}
	return &g
}

// topMask returns a mask selecting the n most significant bits. The top bits
// of the gear hash depend on the full 64-byte window, the low bits only on
// the last few bytes, so the top bits are the ones to test.
func topMask(n int) uint64 {
	return ^uint64(0) << (64 - n)
}

// Chunker is a content-defined chunker. It is not safe for concurrent use.
type Chunker struct {
	r      io.Reader
	gear   *[256]uint64
	min    int
	avg    int
	max    int
	maskS  uint64 // stricter mask, used for lengths in (Min, Avg]
	maskL  uint64 // looser mask, used for lengths in (Avg, Max]
	buf    []byte // internal buffer, len Max+readSize
	left   int    // buf[:left] holds bytes read ahead of the last cut
	eof    bool   // r returned io.EOF
	err    error  // sticky error
	offset int64  // stream offset of the next chunk
}

// readSize is how much Next reads at a time. Reading modest pieces and
// scanning them right away keeps the data in the CPU cache for the scan and
// the copy; reading 2*Max at once made the chunker memory-bound.
const readSize = 128 << 10

// New returns a Chunker reading from r. Invalid Params are reported by the
// first call to Next (call p.Validate beforehand to check early).
func New(r io.Reader, p Params) *Chunker {
	p = p.withDefaults()
	c := &Chunker{r: r}
	if err := p.Validate(); err != nil {
		c.err = err
		return c
	}
	b := bits.TrailingZeros(uint(p.Avg))
	c.gear = gearTable(p.Seed)
	c.min, c.avg, c.max = p.Min, p.Avg, p.Max
	c.maskS = topMask(b + 2)
	c.maskL = topMask(max(b-2, 1))
	c.buf = make([]byte, p.Max+readSize)
	return c
}

// Reset prepares c to chunk a new stream from r, reusing its buffers. It
// clears any previous read error (but not a Params error).
func (c *Chunker) Reset(r io.Reader) {
	c.r = r
	c.left = 0
	c.eof = false
	c.offset = 0
	if c.gear != nil {
		c.err = nil
	}
}

// Offset returns the stream offset of the next chunk to be returned.
func (c *Chunker) Offset() int64 { return c.offset }

// Next returns the next chunk, copied into buf[:0] (grown if needed). It
// returns io.EOF after the last chunk.
//
// When cap(buf) >= Max (e.g. the caller passes back the previous chunk, or
// pooled Max-sized buffers), the input is read directly into buf and only
// the few bytes read past the cut are copied; otherwise the chunk is
// assembled in the internal buffer and copied out.
func (c *Chunker) Next(buf []byte) ([]byte, error) {
	if c.err != nil {
		return buf[:0], c.err
	}
	direct := cap(buf) >= max(c.max, c.left)
	w := c.buf
	if direct {
		w = buf[:cap(buf)]
		copy(w, c.buf[:c.left])
	}
	avail, n, err := c.cut(w, c.left)
	if err != nil {
		c.err = err
		c.left = 0
		return buf[:0], err
	}
	if n == 0 {
		return buf[:0], io.EOF
	}
	c.offset += int64(n)
	if direct {
		buf = w[:n]
	} else {
		buf = append(buf[:0], w[:n]...)
	}
	// Keep the read-ahead w[n:avail] (at most readSize bytes) for the next call.
	c.left = copy(c.buf, w[n:avail])
	return buf, nil
}

// cut reads into w (which holds avail bytes of the current chunk and beyond)
// until it can decide where the chunk ends. It returns the number of valid
// bytes in w and the chunk length n. The scan is resumable: data arriving in
// pieces is hashed exactly as if it had arrived at once, so cut points do not
// depend on how the reader splits its reads.
func (c *Chunker) cut(w []byte, avail int) (int, int, error) {
	g := c.gear
	var h uint64
	pos := 0 // bytes of the chunk already scanned; 0 = not started
	for {
		if pos == 0 && (avail > c.min || avail >= c.max) {
			// Cut points below Min are skipped; only the 64 bytes below
			// Min are hashed, to fill the rolling window.
			h = warm(w[max(c.min-window, 0):c.min], g)
			pos = c.min
		}
		if pos > 0 {
			limit := min(avail, c.max)
			data := w[:limit]
			if pos < c.avg && pos < limit {
				e := min(c.avg, limit)
				i, hh, ok := scan(data[pos:e], h, c.maskS, g)
				if ok {
					return avail, pos + i + 1, nil
				}
				h, pos = hh, e
			}
			if pos < limit {
				i, hh, ok := scan(data[pos:limit], h, c.maskL, g)
				if ok {
					return avail, pos + i + 1, nil
				}
				h, pos = hh, limit
			}
			if pos == c.max {
				return avail, pos, nil
			}
		}
		if c.eof {
			return avail, avail, nil
		}
		// Read up to readSize more bytes (less at EOF or the end of w;
		// avail < Max <= len(w) here, so there is room).
		lim := min(avail+readSize, len(w))
		for avail < lim && !c.eof {
			n, err := c.r.Read(w[avail:lim])
			if n < 0 || n > lim-avail {
				return 0, 0, errors.New("chunker: reader returned invalid count")
			}
			avail += n
			if err == io.EOF {
				c.eof = true
			} else if err != nil {
				return 0, 0, err
			}
		}
	}
}

// scan rolls the gear hash h over d and returns the index of the first byte
// after which h&mask == 0, the hash state after that byte (or after all of d)
// and whether a match was found. It is the hot path of the package.
//
// A single rolling hash is a serial dependency chain (shift, add: about two
// cycles per byte), so scan splits d into blocks of four lanes and rolls four
// independent hashes at once. This is exact: the gear hash after a byte only
// depends on the last 64 bytes, so a lane that starts by hashing the 64 bytes
// before its first position has exactly the state the serial scan would have.
// When any lane matches, the earliest match is resolved serially.
func scan(d []byte, h, mask uint64, g *[256]uint64) (int, uint64, bool) {
	off := 0
	for len(d)-off >= 4*lane {
		blk := (*[4 * lane]byte)(d[off : off+4*lane])
		h1 := warm(blk[lane-window:lane], g)
		h2 := warm(blk[2*lane-window:2*lane], g)
		h3 := warm(blk[3*lane-window:3*lane], g)
		j, h0, h1, h2, h3 := lanes4(blk, h, h1, h2, h3, mask, g)
		if j == lane {
			h = h3
			off += 4 * lane
			continue
		}
		// Some lane matched after its j-th byte. Lanes are in stream order,
		// and each was clean before j, so check them in order: a lane's own
		// match at j, else the rest of that lane serially.
		for k, hk := range [4]uint64{h0, h1, h2, h3} {
			base := off + k*lane
			if hk&mask == 0 {
				return base + j, hk, true
			}
			if i, hh, ok := scan1(blk[k*lane+j+1:(k+1)*lane], hk, mask, g); ok {
				return base + j + 1 + i, hh, true
			}
		}
		panic("chunker: lane match not found") // unreachable
	}
	i, hh, ok := scan1(d[off:], h, mask, g)
	return off + i, hh, ok
}

// lane is the length of each of the four lanes scan works on.
const lane = 4 << 10

// warm returns the gear hash of d (64 bytes).
func warm(d []byte, g *[256]uint64) uint64 {
	var h uint64
	for _, b := range d {
		h = h<<1 + g[b]
	}
	return h
}

// lanes4 rolls four independent hashes over the four quarters of blk and
// returns the first index j at which any of them matches mask, with the four
// states after index j (j == lane if none matched). Indexing one array with
// constant offsets keeps everything in registers and free of bounds checks.
//
//go:noinline
func lanes4(blk *[4 * lane]byte, h0, h1, h2, h3, mask uint64, g *[256]uint64) (int, uint64, uint64, uint64, uint64) {
	for j := 0; j < lane; j++ {
		h0 = h0<<1 + g[blk[j]]
		h1 = h1<<1 + g[blk[j+lane]]
		h2 = h2<<1 + g[blk[j+2*lane]]
		h3 = h3<<1 + g[blk[j+3*lane]]
		if h0&mask == 0 || h1&mask == 0 || h2&mask == 0 || h3&mask == 0 {
			return j, h0, h1, h2, h3
		}
	}
	return lane, h0, h1, h2, h3
}

// scan1 is the serial reference version of scan.
func scan1(d []byte, h, mask uint64, g *[256]uint64) (int, uint64, bool) {
	for i, b := range d {
		h = h<<1 + g[b]
		if h&mask == 0 {
			return i, h, true
		}
	}
	return len(d), h, false
}

// Fixed splits a stream into chunks of a fixed size. It is not safe for
// concurrent use.
type Fixed struct {
	r    io.Reader
	size int
	err  error
}

// NewFixed returns a fixed-size chunker. size must be in [1, 64 MiB];
// otherwise Next reports an error.
func NewFixed(r io.Reader, size int) *Fixed {
	f := &Fixed{r: r, size: size}
	if size < 1 || size > MaxSize {
		f.err = fmt.Errorf("chunker: fixed chunk size %d out of range [1, %d]", size, MaxSize)
	}
	return f
}

// Reset prepares f to chunk a new stream from r.
func (f *Fixed) Reset(r io.Reader) {
	f.r = r
	if f.size >= 1 && f.size <= MaxSize {
		f.err = nil
	}
}

// Next returns the next chunk, copied into buf[:0] (grown if needed): every
// chunk has exactly size bytes except the last, which is shorter but never
// empty. It returns io.EOF after the last chunk.
func (f *Fixed) Next(buf []byte) ([]byte, error) {
	if f.err != nil {
		return buf[:0], f.err
	}
	if cap(buf) < f.size {
		buf = make([]byte, f.size)
	}
	buf = buf[:f.size]
	n, err := io.ReadFull(f.r, buf)
	switch {
	case err == io.EOF || (err == io.ErrUnexpectedEOF && n > 0):
		f.err = io.EOF
		if n == 0 {
			return buf[:0], io.EOF
		}
		return buf[:n], nil
	case err != nil:
		f.err = err
		return buf[:0], err
	}
	return buf, nil
}
