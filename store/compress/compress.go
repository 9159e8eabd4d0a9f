package compress

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	czstd "github.com/DataDog/zstd"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Algo identifies a compression algorithm. Values are persisted.
type Algo uint8

const (
	None Algo = 0
	Zstd Algo = 1
	LZ4  Algo = 2
)

// MaxRawLen is the largest decompressed size Decompress accepts.
const MaxRawLen = 64 << 20

// ParseAlgo parses "zstd", "lz4" or "none" (case-insensitive).
func ParseAlgo(s string) (Algo, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "none":
		return None, nil
	case "zstd":
		return Zstd, nil
	case "lz4":
		return LZ4, nil
	}
	return None, fmt.Errorf("compress: unknown algorithm %q (want zstd, lz4 or none)", s)
}

// String returns the name of a, as accepted by ParseAlgo.
func (a Algo) String() string {
	switch a {
	case None:
		return "none"
	case Zstd:
		return "zstd"
	case LZ4:
		return "lz4"
	}
	return fmt.Sprintf("algo(%d)", uint8(a))
}

// Option configures a Codec.
type Option func(*Codec)

// DefaultZstdLevel is the zstd level used unless WithZstdLevel says otherwise
// (libzstd's level 3, its own default; see the package doc for the figures).
const DefaultZstdLevel = 3

// probeLevel is the level of the trial compression of random-looking data.
const probeLevel = 1

// WithZstdLevel sets the zstd level, 1 (fastest) to 19 (default
// DefaultZstdLevel); out-of-range values are clamped.
func WithZstdLevel(l int) Option { return func(c *Codec) { c.level = min(max(l, 1), 19) } }

// Codec compresses and decompresses chunks. It is safe for concurrent use.
type Codec struct {
	level int
	// A free list bounded by 2*GOMAXPROCS of libzstd contexts (one per
	// goroutine at a time; each holds C-side state that is expensive to
	// rebuild, which sync.Pool would drop at every GC).
	ctxs   chan czstd.Ctx
	lz4s   sync.Pool // *lz4.Compressor (cheap)
	probes sync.Pool // *[]byte scratch for worthCompressing
}

// New returns a Codec.
func New(opts ...Option) *Codec {
	n := 2 * runtime.GOMAXPROCS(0)
	c := &Codec{level: DefaultZstdLevel, ctxs: make(chan czstd.Ctx, n)}
	c.probes.New = func() any { b := make([]byte, 0, czstd.CompressBound(probeLen)); return &b }
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *Codec) ctx() czstd.Ctx {
	select {
	case z := <-c.ctxs:
		return z
	default:
		return czstd.NewCtx()
	}
}

func (c *Codec) putCtx(z czstd.Ctx) {
	select {
	case c.ctxs <- z:
	default:
	}
}

// Sampling parameters for the incompressibility test.
const (
	sampleLen      = 4 << 10
	samples        = 4
	sampleMinInput = 64 << 10 // below this, just compress
	entropyLimit   = 7.85     // bits/byte; random 4 KiB samples measure ~7.95
)

// looksRandom reports whether every one of a few samples of src has the
// byte entropy of random data.
func looksRandom(src []byte) bool {
	if len(src) < sampleMinInput {
		return false
	}
	step := (len(src) - sampleLen) / (samples - 1)
	for i := 0; i < samples; i++ {
		off := i * step
		if entropy(src[off:off+sampleLen]) < entropyLimit {
			return false
		}
	}
	return true
}

// probeLen is how much of a random-looking chunk is trial-compressed:
// byte entropy cannot see repetition (a random block repeated), a probe
// finds any period shorter than it.
const probeLen = 64 << 10

// worthCompressing reports whether src may compress: anything that does
// not sample as random, or whose first probeLen bytes compress.
func (c *Codec) worthCompressing(src []byte) bool {
	if !looksRandom(src) {
		return true
	}
	z := c.ctx()
	bp := c.probes.Get().(*[]byte)
	out, err := z.CompressLevel((*bp)[:0], src[:min(len(src), probeLen)], probeLevel)
	c.putCtx(z)
	ok := err == nil && len(out) <= limit(min(len(src), probeLen))
	if cap(out) > cap(*bp) {
		*bp = out
	}
	c.probes.Put(bp)
	return ok
}

// entropy returns the order-0 (byte histogram) entropy of p in bits/byte.
func entropy(p []byte) float64 {
	var hist [256]uint32
	for _, b := range p {
		hist[b]++
	}
	n := float64(len(p))
	var sum float64
	for _, c := range hist {
		if c != 0 {
			f := float64(c)
			sum += f * math.Log2(f)
		}
	}
	return math.Log2(n) - sum/n
}

// limit is the largest output that counts as worth it (< ~97% of n).
func limit(n int) int { return n - n/32 - 1 }

// Compress appends the compressed form of src to dst[:0] and returns it with
// the algorithm actually used. If compression does not pay (output >= ~97%
// of the input, data that samples as random, empty input, or a = None), it
// returns append(dst[:0], src...) and None.
func (c *Codec) Compress(dst, src []byte, a Algo) ([]byte, Algo) {
	return c.CompressLevel(dst, src, a, 0)
}

// CompressLevel is Compress with a zstd level for this call (0: the
// Codec's level).
func (c *Codec) CompressLevel(dst, src []byte, a Algo, level int) ([]byte, Algo) {
	if level <= 0 {
		level = c.level
	}
	dst = dst[:0]
	if len(src) == 0 || a == None || !c.worthCompressing(src) {
		return append(dst, src...), None
	}
	lim := limit(len(src))
	switch a {
	case Zstd:
		// libzstd allocates when dst is below the bound; callers keep
		// their buffers, so this happens once per buffer.
		if b := czstd.CompressBound(len(src)); cap(dst) < b {
			dst = make([]byte, 0, b)
		}
		z := c.ctx()
		out, err := z.CompressLevel(dst, src, min(level, 19))
		c.putCtx(z)
		if err == nil && len(out) <= lim {
			return out, Zstd
		}
		dst = dst[:0]
	case LZ4:
		if cap(dst) < lim {
			dst = make([]byte, 0, len(src))
		}
		z, ok := c.lz4s.Get().(*lz4.Compressor)
		if !ok {
			z = new(lz4.Compressor)
		}
		// A destination shorter than the bound makes lz4 give up as soon as
		// the output would not fit: exactly the "does not pay" case.
		n, err := z.CompressBlock(src, dst[:lim])
		c.lz4s.Put(z)
		if err == nil && n > 0 {
			return dst[:n], LZ4
		}
	}
	return append(dst, src...), None
}

// Errors returned by Decompress.
var (
	ErrCorrupt = errors.New("compress: corrupt compressed data")
	ErrSize    = errors.New("compress: decompressed size mismatch")
)

// Decompress appends the decompressed src to dst[:0]. rawLen is the exact
// expected size (at most MaxRawLen). Corrupt input or a size mismatch gives
// an error; it never allocates more than rawLen bytes for the output.
func (c *Codec) Decompress(dst, src []byte, a Algo, rawLen int) ([]byte, error) {
	if rawLen < 0 || rawLen > MaxRawLen {
		return dst[:0], fmt.Errorf("compress: raw length %d out of range [0, %d]", rawLen, MaxRawLen)
	}
	if cap(dst) < rawLen {
		dst = make([]byte, 0, rawLen)
	}
	dst = dst[:0]
	switch a {
	case None:
		if len(src) != rawLen {
			return dst, fmt.Errorf("%w: stored %d bytes, want %d", ErrSize, len(src), rawLen)
		}
		return append(dst, src...), nil
	case Zstd:
		// Check the frame header before decoding: a frame that declares a
		// different size, or a window larger than the chunk needs, is not
		// one of ours and must not make the decoder allocate.
		var hdr zstd.Header
		if err := hdr.Decode(src); err != nil {
			return dst, fmt.Errorf("%w: zstd header: %v", ErrCorrupt, err)
		}
		if hdr.Skippable || hdr.WindowSize > uint64(max(rawLen, 64<<10)) {
			return dst, fmt.Errorf("%w: zstd frame window %d for %d bytes", ErrCorrupt, hdr.WindowSize, rawLen)
		}
		if hdr.HasFCS && hdr.FrameContentSize != uint64(rawLen) {
			return dst, fmt.Errorf("%w: zstd frame holds %d bytes, want %d", ErrSize, hdr.FrameContentSize, rawLen)
		}
		if rawLen == 0 {
			return dst, nil
		}
		// DecompressInto never writes beyond dst[:rawLen] and fails
		// when the frame holds more.
		z := c.ctx()
		n, err := z.DecompressInto(dst[:rawLen], src)
		c.putCtx(z)
		if err != nil {
			return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if n != rawLen {
			return dst, fmt.Errorf("%w: zstd gave %d bytes, want %d", ErrSize, n, rawLen)
		}
		return dst[:n], nil
	case LZ4:
		if rawLen == 0 {
			if len(src) == 0 {
				return dst, nil
			}
			return dst, fmt.Errorf("%w: lz4 data for an empty chunk", ErrCorrupt)
		}
		n, err := lz4.UncompressBlock(src, dst[:rawLen])
		if err != nil {
			return dst, fmt.Errorf("%w: lz4: %v", ErrCorrupt, err)
		}
		if n != rawLen {
			return dst, fmt.Errorf("%w: lz4 gave %d bytes, want %d", ErrSize, n, rawLen)
		}
		return dst[:n], nil
	}
	return dst, fmt.Errorf("compress: unknown algorithm %d", uint8(a))
}
