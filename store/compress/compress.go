package compress

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

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

// DefaultZstdLevel is the zstd level used unless WithZstdLevel says otherwise.
const DefaultZstdLevel = zstd.SpeedFastest

// WithZstdLevel sets the zstd encoder level (default DefaultZstdLevel).
func WithZstdLevel(l zstd.EncoderLevel) Option { return func(c *Codec) { c.level = l } }

// Codec compresses and decompresses chunks. It is safe for concurrent use.
type Codec struct {
	level zstd.EncoderLevel
	// Free lists bounded by 2*GOMAXPROCS. Channels rather than sync.Pool:
	// zstd state is expensive to rebuild and sync.Pool drops it at every GC.
	encs   chan *zstd.Encoder
	decs   chan *zstd.Decoder
	lz4s   sync.Pool // *lz4.Compressor (cheap)
	probes sync.Pool // *[]byte scratch for worthCompressing
}

// New returns a Codec.
func New(opts ...Option) *Codec {
	n := 2 * runtime.GOMAXPROCS(0)
	c := &Codec{level: DefaultZstdLevel, encs: make(chan *zstd.Encoder, n), decs: make(chan *zstd.Decoder, n)}
	c.probes.New = func() any { b := make([]byte, 0, probeLen+probeLen/8); return &b }
	for _, o := range opts {
		o(c)
	}
	return c
}

func (c *Codec) putEncoder(e *zstd.Encoder) {
	select {
	case c.encs <- e:
	default:
	}
}

func (c *Codec) putDecoder(d *zstd.Decoder) {
	select {
	case c.decs <- d:
	default:
	}
}

func (c *Codec) encoder() *zstd.Encoder {
	select {
	case e := <-c.encs:
		return e
	default:
	}
	// No frame checksum: every blob is authenticated (AES-GCM) and hashed
	// against its ID after decompression anyway.
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderLevel(c.level),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		panic("compress: zstd encoder: " + err.Error()) // options are static
	}
	return e
}

func (c *Codec) decoder() *zstd.Decoder {
	select {
	case d := <-c.decs:
		return d
	default:
	}
	d, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(MaxRawLen),
		zstd.WithDecoderMaxWindow(MaxRawLen),
		zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic("compress: zstd decoder: " + err.Error())
	}
	return d
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
	e := c.encoder()
	bp := c.probes.Get().(*[]byte)
	out := e.EncodeAll(src[:min(len(src), probeLen)], (*bp)[:0])
	c.putEncoder(e)
	ok := len(out) <= limit(min(len(src), probeLen))
	*bp = out
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
	dst = dst[:0]
	if len(src) == 0 || a == None || !c.worthCompressing(src) {
		return append(dst, src...), None
	}
	lim := limit(len(src))
	switch a {
	case Zstd:
		e := c.encoder()
		out := e.EncodeAll(src, dst)
		c.putEncoder(e)
		if len(out) <= lim {
			return out, Zstd
		}
		dst = out[:0]
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
		d := c.decoder()
		// The capacity limit stops the decoder at rawLen bytes.
		out, err := d.DecodeAll(src, dst[:0:rawLen])
		c.putDecoder(d)
		if err != nil {
			return dst, fmt.Errorf("%w: zstd: %v", ErrCorrupt, err)
		}
		if len(out) != rawLen {
			return dst, fmt.Errorf("%w: zstd gave %d bytes, want %d", ErrSize, len(out), rawLen)
		}
		return out, nil
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
