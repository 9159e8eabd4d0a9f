package fsread

import (
	"encoding/binary"
	"reflect"
	"testing"
	"unicode/utf16"
)

// shortSlot builds a short directory entry.
func shortSlot(name11 string, attr, nt byte, cluster uint16, size uint32) []byte {
	e := make([]byte, fatDirentSize)
	copy(e, name11)
	e[11], e[12] = attr, nt
	binary.LittleEndian.PutUint16(e[26:], cluster)
	binary.LittleEndian.PutUint32(e[28:], size)
	return e
}

// lfnSlots builds the long-name slots for name, last slot first, with the
// checksum of short.
func lfnSlots(name, short string) []byte {
	units := utf16.Encode([]rune(name))
	if len(units)%lfnCharsSlot != 0 {
		units = append(units, 0)
		for len(units)%lfnCharsSlot != 0 {
			units = append(units, 0xFFFF)
		}
	}
	n := len(units) / lfnCharsSlot
	sum := lfnChecksum([]byte(short))
	var out []byte
	for ord := n; ord >= 1; ord-- {
		e := make([]byte, fatDirentSize)
		e[0] = byte(ord)
		if ord == n {
			e[0] |= 0x40
		}
		e[11], e[13] = fatAttrLFN, sum
		for i, o := range lfnCharOffsets {
			binary.LittleEndian.PutUint16(e[o:], units[(ord-1)*lfnCharsSlot+i])
		}
		out = append(out, e...)
	}
	return out
}

func TestFATDirParsing(t *testing.T) {
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	badSum := lfnSlots("Checksum Mismatch.txt", "CHECKS~1TXT")
	badSum[13] ^= 0xFF // first slot's checksum no longer matches
	swapped := lfnSlots("Two slots needed here.txt", "TWOSLO~1TXT")
	swapped[0] = 0x41 // claims to be a one-slot sequence: ordinal mismatch follows
	dir := cat(
		shortSlot("BESTEST    ", fatAttrVolumeID, 0, 0, 0),
		shortSlot(".          ", fatAttrDir, 0, 5, 0),
		lfnSlots("A Long Name With Ünïcödé ✓.txt", "ALONGN~1TXT"), shortSlot("ALONGN~1TXT", 0x20, 0, 3, 10),
		shortSlot("LOWER   TXT", 0x20, fatNTLowerBase|fatNTLowerExt, 4, 1),
		shortSlot("BASE    EXT", 0x20, fatNTLowerBase, 0, 0),
		shortSlot("\xe5DELETEDTXT", 0x20, 0, 6, 1),
		badSum, shortSlot("CHECKS~1TXT", 0x20, 0, 7, 1),
		swapped, shortSlot("TWOSLO~1TXT", 0x20, 0, 8, 1),
		shortSlot("\x05SCAPED    ", fatAttrDir, 0, 9, 0),
		shortSlot("CAF\x82    TXT", 0x01, 0, 10, 1),
		make([]byte, fatDirentSize), // end of directory
		shortSlot("HIDDEN  TXT", 0x20, 0, 11, 1),
	)
	p := &dirParser{f: &FATFS{g: &fatGeom{kind: 16}}, object: "test"}
	var got []string
	p.fn = func(d fatDirent) (bool, error) {
		got = append(got, d.name)
		return false, nil
	}
	done, err := p.chunk(dir, 0)
	if err != nil || !done {
		t.Fatalf("chunk: done=%v err=%v", done, err)
	}
	want := []string{"A Long Name With Ünïcödé ✓.txt", "lower.txt", "base.EXT", "CHECKS~1.TXT", "TWOSLO~1.TXT", "σSCAPED", "CAFé.TXT"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names\n got %q\nwant %q", got, want)
	}
}

func TestFATTime(t *testing.T) {
	// 2001-02-03 04:05:06
	date := uint16((2001-1980)<<9 | 2<<5 | 3)
	tm := uint16(4<<11 | 5<<5 | 3)
	if got := fatTime(date, tm); got.String() != "2001-02-03 04:05:06 +0000 UTC" {
		t.Errorf("fatTime = %v", got)
	}
	if got := fatTime(0, 0); !got.IsZero() {
		t.Errorf("zero date = %v", got)
	}
	if got := fatTime(uint16(13<<5|1), 0); !got.IsZero() { // month 13
		t.Errorf("invalid date = %v", got)
	}
}
