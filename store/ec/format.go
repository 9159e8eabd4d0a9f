// Pack shard file format (draft text for docs/pack-format.md, section "Erasure-coded shard files").
//
// # Erasure-coded shard files
//
// A pack (an opaque, immutable byte blob) is stored on an erasure-coded set of
// k+m disk directories as k data shards and m parity shards (systematic
// Reed-Solomon over GF(2^8), github.com/klauspost/reedsolomon default matrix,
// reedsolomon.New(k, m)). Shard i lives on disk i, always at the same relative
// path:
//
//	<dir_i>/packs/<NAME[0:2]>/<NAME>.shard
//
// where NAME is the pack name (lower-case hex, 16..64 characters). Temporary
// files are written to <dir_i>/tmp/<NAME>.<i>.<random>.tmp-bes and renamed
// into place after fsync; stale temporary files are deleted when the set is
// opened.
//
// Striping. Let P be the piece size recorded in the header (a multiple of 64,
// default 512 KiB). Stripe j covers pack bytes [j*k*P, (j+1)*k*P); data shard
// d holds stripe bytes [d*P, (d+1)*P) and parity shard k+p holds parity piece
// p of that stripe. The number of stripes is n = ceil(size / (k*P)) (0 for an
// empty pack). The last stripe covers rem = size - (n-1)*k*P bytes and uses
// the smaller piece size Plast = roundup64(ceil(rem/k)); its data is
// zero-padded to k*Plast bytes before encoding, and data shard d holds bytes
// [d*Plast, (d+1)*Plast) of that stripe. All pieces of one stripe have the
// same length in every shard.
//
// A shard file is:
//
//	header (4096 bytes) | piece_0 | piece_1 | ... | piece_{n-1} | footer
//
// Piece j (j < n) starts at file offset 4096 + j*P, so with the default P
// every full piece is block-aligned and is written with O_DIRECT. All
// integers are little-endian; all checksums are CRC-32C (Castagnoli).
//
// Header (4096 bytes; bytes 128.. are zero):
//
//	off  size  field
//	  0     8  magic "BESSHRD1"
//	  8     2  format version (1)
//	 10     2  header length (4096)
//	 12     2  k (data shards, 1..64)
//	 14     2  m (parity shards, 0..64)
//	 16     2  shard index (0..k+m-1; < k data, >= k parity)
//	 18     2  name length (16..64)
//	 20     4  piece size P (multiple of 64, 64 .. 64 MiB)
//	 24    64  pack name, ASCII, zero padded
//	 88    36  reserved (zero)
//	124     4  CRC-32C of bytes 0..123
//
// Footer (32 + 4n bytes), located from the end of the file:
//
//	off      size  field
//	  0         8  pack length in bytes
//	  8         4  stripe count n
//	 12         4  last-stripe piece size Plast (0 when n == 0)
//	 16        4n  CRC-32C of each of this shard's pieces, in stripe order
//	 16+4n      4  footer length (32 + 4n)
//	 20+4n      4  CRC-32C of footer bytes 0 .. 20+4n-1
//	 24+4n      8  magic "BESSHEND"
//
// A reader validates the header CRC and fields, finds the footer through the
// trailing 16 bytes, validates the footer CRC, and checks that k, m, index,
// name, stripe count, Plast and the file length all agree with each other.
// Any inconsistency makes the shard count as missing. The pack geometry
// (P, length) is taken from the majority of self-consistent shards. A piece
// whose CRC does not match counts as missing for its stripe; a stripe with at
// least k good pieces is reconstructed, otherwise the pack is unrecoverable.
// Checksums cover stored bytes only, so scrub and repair need no key.

package ec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const (
	headerLen     = 4096 // one block, so pieces start block-aligned (direct I/O)
	headerMagic   = "BESSHRD1"
	footerMagic   = "BESSHEND"
	formatVersion = 1

	trailerLen   = 16 // footer length u32 + crc u32 + magic
	footerFixed  = 16 // size u64 + stripes u32 + last piece u32
	minFooterLen = footerFixed + trailerLen
	maxFooterLen = 1 << 26

	pieceAlign   = 64
	minPieceSize = 64
	maxPieceSize = 64 << 20
	maxPackSize  = 1 << 46

	maxK = 64
	maxM = 64
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// header is the fixed-size header at the start of every shard file.
type header struct {
	K, M      int
	Index     int
	PieceSize int
	Name      string
}

func (h header) encode() []byte {
	b := make([]byte, headerLen)
	copy(b[0:8], headerMagic)
	binary.LittleEndian.PutUint16(b[8:], formatVersion)
	binary.LittleEndian.PutUint16(b[10:], headerLen)
	binary.LittleEndian.PutUint16(b[12:], uint16(h.K))
	binary.LittleEndian.PutUint16(b[14:], uint16(h.M))
	binary.LittleEndian.PutUint16(b[16:], uint16(h.Index))
	binary.LittleEndian.PutUint16(b[18:], uint16(len(h.Name)))
	binary.LittleEndian.PutUint32(b[20:], uint32(h.PieceSize))
	copy(b[24:88], h.Name)
	binary.LittleEndian.PutUint32(b[124:], crc(b[:124]))
	return b
}

// decodeHeader parses and validates a shard header. It never panics.
func decodeHeader(b []byte) (header, error) {
	var h header
	if len(b) < headerLen {
		return h, fmt.Errorf("header truncated (%d of %d bytes)", len(b), headerLen)
	}
	b = b[:headerLen]
	if string(b[0:8]) != headerMagic {
		return h, errors.New("bad header magic")
	}
	if got, want := binary.LittleEndian.Uint32(b[124:]), crc(b[:124]); got != want {
		return h, fmt.Errorf("header checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	if v := binary.LittleEndian.Uint16(b[8:]); v != formatVersion {
		return h, fmt.Errorf("unsupported shard format version %d", v)
	}
	if l := binary.LittleEndian.Uint16(b[10:]); l != headerLen {
		return h, fmt.Errorf("bad header length %d", l)
	}
	h.K = int(binary.LittleEndian.Uint16(b[12:]))
	h.M = int(binary.LittleEndian.Uint16(b[14:]))
	h.Index = int(binary.LittleEndian.Uint16(b[16:]))
	nameLen := int(binary.LittleEndian.Uint16(b[18:]))
	h.PieceSize = int(binary.LittleEndian.Uint32(b[20:]))
	if h.K < 1 || h.K > maxK || h.M > maxM {
		return h, fmt.Errorf("bad layout %d+%d in header", h.K, h.M)
	}
	if h.Index >= h.K+h.M {
		return h, fmt.Errorf("shard index %d out of range for %d+%d", h.Index, h.K, h.M)
	}
	if err := checkPieceSize(h.PieceSize); err != nil {
		return h, err
	}
	if nameLen < 16 || nameLen > 64 {
		return h, fmt.Errorf("bad name length %d in header", nameLen)
	}
	h.Name = string(b[24 : 24+nameLen])
	if !validName(h.Name) {
		return h, fmt.Errorf("bad pack name %q in header", h.Name)
	}
	for _, c := range b[24+nameLen : 88] {
		if c != 0 {
			return h, errors.New("garbage after pack name in header")
		}
	}
	return h, nil
}

func checkPieceSize(p int) error {
	if p < minPieceSize || p > maxPieceSize || p%pieceAlign != 0 {
		return fmt.Errorf("bad piece size %d (want a multiple of %d in [%d, %d])", p, pieceAlign, minPieceSize, maxPieceSize)
	}
	return nil
}

// footer is the variable-size trailer of a shard file.
type footer struct {
	Size      int64
	Stripes   int
	LastPiece int
	CRCs      []uint32
}

func footerLenFor(stripes int) int { return minFooterLen + 4*stripes }

func (f footer) encode() []byte {
	n := len(f.CRCs)
	fl := footerLenFor(n)
	b := make([]byte, fl)
	binary.LittleEndian.PutUint64(b[0:], uint64(f.Size))
	binary.LittleEndian.PutUint32(b[8:], uint32(n))
	binary.LittleEndian.PutUint32(b[12:], uint32(f.LastPiece))
	for i, c := range f.CRCs {
		binary.LittleEndian.PutUint32(b[16+4*i:], c)
	}
	binary.LittleEndian.PutUint32(b[fl-16:], uint32(fl))
	binary.LittleEndian.PutUint32(b[fl-12:], crc(b[:fl-12]))
	copy(b[fl-8:], footerMagic)
	return b
}

// footerLenFromTrailer validates the last trailerLen bytes of a shard file
// and returns the total footer length they announce, checked against the
// space available after the header (avail).
func footerLenFromTrailer(t []byte, avail int64) (int, error) {
	if len(t) < trailerLen {
		return 0, errors.New("footer trailer truncated")
	}
	t = t[len(t)-trailerLen:]
	if string(t[8:16]) != footerMagic {
		return 0, errors.New("bad footer magic")
	}
	fl := int64(binary.LittleEndian.Uint32(t[0:]))
	if fl < minFooterLen || fl > maxFooterLen || (fl-minFooterLen)%4 != 0 {
		return 0, fmt.Errorf("bad footer length %d", fl)
	}
	if fl > avail {
		return 0, fmt.Errorf("footer length %d exceeds file (%d bytes after header)", fl, avail)
	}
	return int(fl), nil
}

// decodeFooter parses and validates a complete footer (b must be exactly
// the footer bytes, trailer included). It never panics and allocates at most
// len(b) bytes.
func decodeFooter(b []byte) (footer, error) {
	var f footer
	if len(b) < minFooterLen {
		return f, fmt.Errorf("footer truncated (%d bytes)", len(b))
	}
	if len(b) > maxFooterLen {
		return f, fmt.Errorf("footer too large (%d bytes)", len(b))
	}
	fl := len(b)
	if string(b[fl-8:]) != footerMagic {
		return f, errors.New("bad footer magic")
	}
	if l := binary.LittleEndian.Uint32(b[fl-16:]); int64(l) != int64(fl) {
		return f, fmt.Errorf("footer length field %d does not match %d", l, fl)
	}
	if got, want := binary.LittleEndian.Uint32(b[fl-12:]), crc(b[:fl-12]); got != want {
		return f, fmt.Errorf("footer checksum mismatch (stored %08x, computed %08x)", got, want)
	}
	size := binary.LittleEndian.Uint64(b[0:])
	if size > maxPackSize {
		return f, fmt.Errorf("pack length %d out of range", size)
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if int64(n) != int64(fl-minFooterLen)/4 || (fl-minFooterLen)%4 != 0 {
		return f, fmt.Errorf("stripe count %d does not match footer length %d", n, fl)
	}
	f.Size = int64(size)
	f.Stripes = int(n)
	f.LastPiece = int(binary.LittleEndian.Uint32(b[12:]))
	if f.Stripes == 0 {
		if f.Size != 0 || f.LastPiece != 0 {
			return f, errors.New("non-empty pack with zero stripes")
		}
	} else if f.LastPiece <= 0 || f.LastPiece%pieceAlign != 0 || f.LastPiece > maxPieceSize {
		return f, fmt.Errorf("bad last piece size %d", f.LastPiece)
	}
	f.CRCs = make([]uint32, f.Stripes)
	for i := range f.CRCs {
		f.CRCs[i] = binary.LittleEndian.Uint32(b[16+4*i:])
	}
	return f, nil
}

// geometry describes how a pack of a given size is striped.
type geometry struct {
	K     int
	P     int   // piece size of full stripes
	Size  int64 // pack length
	N     int   // stripe count
	LastP int   // piece size of the last stripe (0 if N == 0)
}

func roundUp(x, a int64) int64 { return (x + a - 1) / a * a }

func newGeometry(k, p int, size int64) geometry {
	g := geometry{K: k, P: p, Size: size}
	if size <= 0 {
		return g
	}
	sw := int64(k) * int64(p)
	g.N = int((size + sw - 1) / sw)
	rem := size - int64(g.N-1)*sw
	g.LastP = int(roundUp((rem+int64(k)-1)/int64(k), pieceAlign))
	return g
}

// pieceLen is the length of every piece of stripe j.
func (g geometry) pieceLen(j int) int {
	if j == g.N-1 {
		return g.LastP
	}
	return g.P
}

// stripeStart is the pack offset of stripe j.
func (g geometry) stripeStart(j int) int64 { return int64(j) * int64(g.K) * int64(g.P) }

// pieceOff is the shard-file offset of piece j.
func (g geometry) pieceOff(j int) int64 { return headerLen + int64(j)*int64(g.P) }

// fileSize is the exact length of a shard file for this geometry.
func (g geometry) fileSize() int64 {
	s := int64(headerLen) + int64(footerLenFor(g.N))
	if g.N > 0 {
		s += int64(g.N-1)*int64(g.P) + int64(g.LastP)
	}
	return s
}

// validName reports whether name matches ^[0-9a-f]{16,64}$.
func validName(name string) bool {
	if len(name) < 16 || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
