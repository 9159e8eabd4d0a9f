// Package pack defines the pack file format: stored blobs appended one after
// another, then an encrypted trailer that lists them, so that a pack
// describes itself and the catalog can be rebuilt from packs alone.
//
//	pack    = blob* sealed-trailer trailer-len:u32le magic:"BESPACK1"
//	trailer = "BESPT001" count:uvarint entry*count crc32c:u32le
//	entry   = type:u8 flags:u8 id:[32] offset:uvarint length:uvarint rawlen:uvarint
//
// The trailer is sealed (AES-256-GCM) with the pack name as associated data,
// so a trailer cannot be moved to another pack. Blobs are sealed by the
// repository with their chunk ID as associated data. See docs/pack-format.md.
//
// Package pack imports nothing else of the project.
package pack

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Blob types.
const (
	TypeData  uint8 = 1 // file or image data chunk
	TypeTree  uint8 = 2 // a chunk of a manifest
	TypePoint uint8 = 3 // a restore point document
)

// FlagEncrypted marks a blob sealed with AES-256-GCM; the low bits of Flags
// hold the compression algorithm.
const FlagEncrypted uint8 = 0x80

// Limits that bound every decode.
const (
	Magic        = "BESPACK1"
	TailSize     = 4 + len(Magic)
	MaxTrailer   = 64 << 20
	MaxBlobSize  = 64 << 20
	entryMaxSize = 2 + 32 + 3*binary.MaxVarintLen64
	trailerMagic = "BESPT001"
)

// ErrCorrupt marks a damaged or foreign pack trailer.
var ErrCorrupt = errors.New("pack trailer corrupt")

// Entry describes one blob in a pack.
type Entry struct {
	Type   uint8
	Flags  uint8
	ID     [32]byte
	Offset int64
	Length int64
	RawLen int64
}

// Sealer encrypts and authenticates trailers; crypt.Keys implements it.
type Sealer interface {
	Seal(dst, plaintext, ad []byte) []byte
	Open(dst, sealed, ad []byte) ([]byte, error)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func trailerAD(name string) []byte { return []byte("bes-pack-trailer:" + name) }

// AppendTrailer appends the sealed trailer listing entries to dst. The
// caller writes Tail(len(sealed)) after it.
func AppendTrailer(dst []byte, name string, entries []Entry, s Sealer) []byte {
	plain := make([]byte, 0, len(trailerMagic)+binary.MaxVarintLen64+len(entries)*entryMaxSize+4)
	plain = append(plain, trailerMagic...)
	plain = binary.AppendUvarint(plain, uint64(len(entries)))
	for _, e := range entries {
		plain = append(plain, e.Type, e.Flags)
		plain = append(plain, e.ID[:]...)
		plain = binary.AppendUvarint(plain, uint64(e.Offset))
		plain = binary.AppendUvarint(plain, uint64(e.Length))
		plain = binary.AppendUvarint(plain, uint64(e.RawLen))
	}
	plain = binary.LittleEndian.AppendUint32(plain, crc32.Checksum(plain, castagnoli))
	return append(dst, s.Seal(nil, plain, trailerAD(name))...)
}

// Tail builds the fixed tail that follows a sealed trailer of length n.
func Tail(n int) []byte {
	t := binary.LittleEndian.AppendUint32(nil, uint32(n))
	return append(t, Magic...)
}

// ParseTail checks the last TailSize bytes of a pack of size packSize and
// returns the sealed trailer's length.
func ParseTail(tail []byte, packSize int64) (int, error) {
	if len(tail) != TailSize || !bytes.Equal(tail[4:], []byte(Magic)) {
		return 0, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	n := int64(binary.LittleEndian.Uint32(tail))
	if n > MaxTrailer || n > packSize-int64(TailSize) {
		return 0, fmt.Errorf("%w: trailer length %d out of range for a %d-byte pack", ErrCorrupt, n, packSize)
	}
	return int(n), nil
}

// DecodeTrailer opens a sealed trailer of pack name whose blob area is
// blobsEnd bytes long, and validates every entry against it.
func DecodeTrailer(sealed []byte, name string, blobsEnd int64, s Sealer) ([]Entry, error) {
	plain, err := s.Open(nil, sealed, trailerAD(name))
	if err != nil {
		return nil, fmt.Errorf("pack %s: open trailer: %w", name, err)
	}
	es, err := parsePlain(plain, blobsEnd)
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", name, err)
	}
	return es, nil
}

func parsePlain(p []byte, blobsEnd int64) ([]Entry, error) {
	if len(p) < len(trailerMagic)+1+4 || string(p[:len(trailerMagic)]) != trailerMagic {
		return nil, fmt.Errorf("%w: bad trailer magic", ErrCorrupt)
	}
	body, sum := p[:len(p)-4], binary.LittleEndian.Uint32(p[len(p)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: trailer checksum mismatch", ErrCorrupt)
	}
	r := body[len(trailerMagic):]
	count, n := binary.Uvarint(r)
	if n <= 0 || count > uint64(len(r))/(2+32+3) {
		return nil, fmt.Errorf("%w: bad entry count", ErrCorrupt)
	}
	r = r[n:]
	out := make([]Entry, 0, count)
	var end int64
	for i := uint64(0); i < count; i++ {
		var e Entry
		if len(r) < 34 {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrCorrupt, i)
		}
		e.Type, e.Flags = r[0], r[1]
		copy(e.ID[:], r[2:34])
		r = r[34:]
		var vals [3]uint64
		for j := range vals {
			v, n := binary.Uvarint(r)
			if n <= 0 || v > 1<<40 {
				return nil, fmt.Errorf("%w: entry %d: bad varint", ErrCorrupt, i)
			}
			vals[j], r = v, r[n:]
		}
		e.Offset, e.Length, e.RawLen = int64(vals[0]), int64(vals[1]), int64(vals[2])
		switch {
		case e.Type < TypeData || e.Type > TypePoint:
			return nil, fmt.Errorf("%w: entry %d: unknown type %d", ErrCorrupt, i, e.Type)
		case e.Offset < end || e.Offset+e.Length > blobsEnd:
			return nil, fmt.Errorf("%w: entry %d: range [%d,+%d) overlaps or exceeds the blob area (%d)", ErrCorrupt, i, e.Offset, e.Length, blobsEnd)
		case e.Length > MaxBlobSize || e.RawLen > MaxBlobSize:
			return nil, fmt.Errorf("%w: entry %d: size out of range", ErrCorrupt, i)
		}
		end = e.Offset + e.Length
		out = append(out, e)
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(r))
	}
	return out, nil
}
