package fsread

import (
	"encoding/binary"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"
)

// Directory entry attributes.
const (
	fatAttrReadOnly = 0x01
	fatAttrVolumeID = 0x08
	fatAttrDir      = 0x10
	fatAttrLFN      = 0x0F // read-only|hidden|system|volume: a long-name slot

	fatNTLowerBase = 0x08 // byte 12: base name stored upper, shown lower
	fatNTLowerExt  = 0x10 // byte 12: extension stored upper, shown lower

	// The FAT specification allows 65536 entries per directory.
	fatMaxDirBytes = 65536 * fatDirentSize
	lfnMaxSlots    = 20
	lfnCharsSlot   = 13
)

// fatDirent is one live short entry with its long name resolved.
type fatDirent struct {
	name    string // long name, else the 8.3 name
	short   string // 8.3 name
	attr    byte
	cluster uint32
	size    uint32
	mdate   uint16
	mtime   uint16
	adate   uint16
	pos     int64 // byte offset of the short entry in the image
}

// lfnState collects the long-name slots that precede a short entry. Slots
// are stored last first: ordinal N|0x40, N-1, ..., 1, each carrying the
// checksum of the short name they belong to.
type lfnState struct {
	units [lfnMaxSlots * lfnCharsSlot]uint16
	n     int // slots in the sequence, 0 when none is pending
	next  int // ordinal expected next; 0 once complete
	sum   byte
}

var lfnCharOffsets = [lfnCharsSlot]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}

func (s *lfnState) reset() { s.n, s.next = 0, 0 }

func (s *lfnState) add(e []byte) {
	ord := int(e[0] & 0x3F)
	if e[0]&0x40 != 0 {
		if ord < 1 || ord > lfnMaxSlots {
			s.reset()
			return
		}
		s.n, s.next, s.sum = ord, ord, e[13]
	} else if s.n == 0 || ord != s.next || e[13] != s.sum {
		s.reset()
		return
	}
	base := (ord - 1) * lfnCharsSlot
	for i, o := range lfnCharOffsets {
		s.units[base+i] = binary.LittleEndian.Uint16(e[o:])
	}
	s.next--
}

// name returns the long name if a complete sequence with a matching
// checksum precedes the short name raw (11 bytes).
func (s *lfnState) name(raw []byte) (string, bool) {
	if s.n == 0 || s.next != 0 || lfnChecksum(raw) != s.sum {
		return "", false
	}
	units := s.units[:s.n*lfnCharsSlot]
	for i, u := range units {
		if u == 0 {
			units = units[:i]
			break
		}
	}
	name := string(utf16.Decode(units))
	return name, validName(name)
}

// lfnChecksum is the rotate-and-add checksum of an 11-byte short name.
func lfnChecksum(raw []byte) byte {
	var sum byte
	for _, b := range raw[:11] {
		sum = (sum&1)<<7 + sum>>1 + b
	}
	return sum
}

// shortName decodes an 8.3 name (OEM code page 437), honouring the NT
// lowercase flags of byte 12.
func shortName(e []byte) string {
	raw := append([]byte(nil), e[:11]...)
	if raw[0] == 0x05 { // 0xE5 as first byte, escaped
		raw[0] = 0xE5
	}
	base := decodeOEM([]byte(strings.TrimRight(string(raw[:8]), " ")))
	ext := decodeOEM([]byte(strings.TrimRight(string(raw[8:11]), " ")))
	if e[12]&fatNTLowerBase != 0 {
		base = strings.ToLower(base)
	}
	if e[12]&fatNTLowerExt != 0 {
		ext = strings.ToLower(ext)
	}
	if ext == "" {
		return base
	}
	return base + "." + ext
}

// fatTime converts a FAT date and time (local time of the writer, 2 s
// resolution) to a time.Time, taking the fields as UTC. A zero or invalid
// date gives the zero time.
func fatTime(date, tm uint16) time.Time {
	y, mo, d := 1980+int(date>>9), int(date>>5&0xF), int(date&0x1F)
	h, mi, s := int(tm>>11), int(tm>>5&0x3F), int(tm&0x1F)*2
	if date == 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59 {
		return time.Time{}
	}
	return time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
}

// dirParser turns a stream of 32-byte directory slots into entries.
type dirParser struct {
	f      *FATFS
	object string
	lfn    lfnState
	fn     func(fatDirent) (stop bool, err error)
}

// chunk parses slots b located at image offset pos. done reports the end
// of the directory (a zero slot) or a stop from fn.
func (p *dirParser) chunk(b []byte, pos int64) (done bool, err error) {
	le := binary.LittleEndian
	for i := 0; i+fatDirentSize <= len(b); i += fatDirentSize {
		e := b[i : i+fatDirentSize]
		attr := e[11]
		switch {
		case e[0] == 0x00:
			return true, nil
		case e[0] == 0xE5:
			p.lfn.reset()
			continue
		case attr&0x3F == fatAttrLFN:
			p.lfn.add(e)
			continue
		case attr&fatAttrVolumeID != 0:
			p.lfn.reset()
			continue
		}
		short := shortName(e)
		long, ok := p.lfn.name(e[:11])
		p.lfn.reset()
		if short == "." || short == ".." {
			continue
		}
		if !validName(short) {
			return true, corruptf(p.object, "entry at offset %d has short name %q", pos+int64(i), short)
		}
		d := fatDirent{name: short, short: short, attr: attr, size: le.Uint32(e[28:]),
			mtime: le.Uint16(e[22:]), mdate: le.Uint16(e[24:]), adate: le.Uint16(e[18:]),
			cluster: uint32(le.Uint16(e[26:])), pos: pos + int64(i)}
		if ok {
			d.name = long
		}
		if p.f.g.kind == 32 {
			d.cluster |= uint32(le.Uint16(e[20:])) << 16
		}
		if stop, err := p.fn(d); stop || err != nil {
			return true, err
		}
	}
	return false, nil
}

// iterDir calls fn for each entry of the directory starting at cluster
// (rootIno for the root), except ".", "..", volume labels and deleted
// entries. Reading stops at the first zero slot.
func (f *FATFS) iterDir(cluster uint64, fn func(fatDirent) (bool, error)) error {
	object := fmt.Sprintf("directory at cluster %d", cluster)
	if cluster == f.rootIno {
		object = "root directory"
	}
	p := &dirParser{f: f, object: object, fn: fn}
	step := min(f.g.clusterSize, minPage)
	if cluster == f.rootIno && f.g.kind != 32 {
		for off := int64(0); off < f.g.rootSize; off += step {
			n := min(step, f.g.rootSize-off)
			b, err := f.cache.slice(f.g.rootOffset+off, int(n))
			if err != nil {
				return fmt.Errorf("%s: %w", object, err)
			}
			if done, err := p.chunk(b, f.g.rootOffset+off); done || err != nil {
				return err
			}
		}
		return nil
	}
	if cluster > uint64(^uint32(0)) {
		return corruptf(object, "cluster number out of range")
	}
	ch, err := f.newChain(uint32(cluster), object)
	if err != nil {
		return err
	}
	for read := int64(0); ; read += f.g.clusterSize {
		if read >= fatMaxDirBytes {
			return corruptf(object, "directory is larger than %d entries", fatMaxDirBytes/fatDirentSize)
		}
		base := f.g.clusterOffset(ch.cur)
		for off := int64(0); off < f.g.clusterSize; off += step {
			b, err := f.cache.slice(base+off, int(step))
			if err != nil {
				return fmt.Errorf("%s: %w", object, err)
			}
			if done, err := p.chunk(b, base+off); done || err != nil {
				return err
			}
		}
		end, err := ch.step()
		if end || err != nil {
			return err
		}
	}
}
