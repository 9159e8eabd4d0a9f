package layout

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// ReaderWriterAt is a target disk that Relocate reads and rewrites.
type ReaderWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

// Relocate makes a target disk of newSize bytes, onto which the table's
// MetadataExtents (and the partitions) were written at their original
// offsets, a valid GPT disk of that size: it writes the backup entry array
// and header at the new end, sets the primary header's AlternateLBA and
// LastUsableLBA to match, recomputes every CRC32, resizes the protective
// MBR's 0xEE entry, and zeroes the stale backup copy left in the middle of
// a larger disk. Partitions do not move. If the source's primary GPT was
// damaged, the primary is rebuilt from the backup copy, which must then lie
// on the target.
//
// newSize may also be smaller than DiskSize when CheckFits(newSize) passes
// (the old backup then lies beyond the target and is not needed). For MBR
// and disks without a table, and when newSize == DiskSize, Relocate does
// nothing (a target of the same size is a faithful copy of the source, with
// a damaged primary GPT if the source had one). The target must use the
// table's logical sector size.
//
// Write order: new backup entries, new backup header, primary, MBR, then
// the stale backup is zeroed, so an interrupted Relocate leaves a primary
// that still points at a valid backup. Relocate does not sync: the caller
// flushes the target before relying on it.
func Relocate(rw ReaderWriterAt, t *Table, newSize int64) error {
	if t == nil {
		return fmt.Errorf("relocate: nil table")
	}
	if t.Kind != KindGPT || newSize == t.DiskSize {
		return nil
	}
	if err := relocateGPT(rw, t, newSize); err != nil {
		return fmt.Errorf("relocate GPT from %s to %s: %w", humanBytes(t.DiskSize), humanBytes(newSize), err)
	}
	return nil
}

func relocateGPT(rw ReaderWriterAt, t *Table, newSize int64) error {
	ls := int64(t.LogicalSector)
	if err := checkSectorSizes(t.LogicalSector, max(t.PhysicalSector, t.LogicalSector)); err != nil {
		return err
	}
	if newSize%ls != 0 {
		return fmt.Errorf("%w: new size is not a multiple of the %d-byte sector", ErrUnsupported, ls)
	}
	if err := t.CheckFits(newSize); err != nil {
		return err
	}
	h, entries, fromPrimary, err := targetHeader(rw, t, newSize)
	if err != nil {
		return err
	}
	es := h.entrySectors(ls)
	last := uint64(newSize/ls - 1)
	backupEntries := last - uint64(es)
	lastUsable := backupEntries - 1
	primaryEntries := h.entriesLBA
	if !fromPrimary {
		primaryEntries = 2
	}
	w := &writer{rw: rw}
	w.put(entries, int64(backupEntries)*ls, "backup entry array")
	w.put(h.encode(last, 1, lastUsable, backupEntries, ls), int64(last)*ls, "backup header")
	if !fromPrimary {
		w.put(entries, int64(primaryEntries)*ls, "primary entry array")
	}
	w.put(h.encode(1, last, lastUsable, primaryEntries, ls), ls, "primary header")
	if w.err != nil {
		return w.err
	}
	if err := fixProtectiveMBR(rw, t.DiskSize/ls, newSize/ls); err != nil {
		return err
	}
	return zeroStaleBackup(w, t, int64(backupEntries)*ls)
}

// targetHeader reads the GPT the imager copied to the target: the primary
// if it is intact, else the backup at its old place. It checks the copy
// against the geometry of the source disk and that it is t's table.
func targetHeader(rw ReaderWriterAt, t *Table, newSize int64) (*gptHeader, []byte, bool, error) {
	ls := int64(t.LogicalSector)
	d := &disk{r: rw, size: t.DiskSize, ls: ls}
	h, entries, perr := loadGPTCopy(d, 1, true)
	fromPrimary := perr == nil
	if perr != nil {
		bl := t.gptInfo().BackupLBA
		if (bl+1)*ls > newSize {
			return nil, nil, false, fmt.Errorf("%w: primary GPT on the target: %v; the backup copy at LBA %d lies beyond the new end", ErrMalformed, perr, bl)
		}
		var berr error
		h, entries, berr = loadGPTCopy(d, bl, false)
		if berr != nil {
			return nil, nil, false, fmt.Errorf("%w: neither GPT copy on the target is valid (write MetadataExtents first): primary: %v; backup: %v", ErrMalformed, perr, berr)
		}
		if uint64(2+h.entrySectors(ls)) > h.firstUsable {
			return nil, nil, false, fmt.Errorf("%w: no room for a primary entry array before LBA %d", ErrMalformed, h.firstUsable)
		}
	}
	g := t.gptInfo()
	if h.diskGUID != t.DiskGUID || int64(h.firstUsable) != g.FirstUsableLBA || int(h.count) != g.EntryCount {
		return nil, nil, false, fmt.Errorf("%w: the GPT on the target (disk GUID %s) is not this table's (disk GUID %s)", ErrMalformed, h.diskGUID, t.DiskGUID)
	}
	return h, entries, fromPrimary, nil
}

// encode returns a header sector of ls bytes: h with the given location
// fields and a fresh header CRC32 (the entry array CRC is unchanged).
func (h *gptHeader) encode(my, alt, lastUsable, entriesLBA uint64, ls int64) []byte {
	b := make([]byte, ls)
	copy(b, h.raw)
	le := binary.LittleEndian
	le.PutUint64(b[offMyLBA:], my)
	le.PutUint64(b[offAltLBA:], alt)
	le.PutUint64(b[offLastLBA:], lastUsable)
	le.PutUint64(b[offEntriesLBA:], entriesLBA)
	le.PutUint32(b[offHeaderCRC:], 0)
	le.PutUint32(b[offHeaderCRC:], crc32.ChecksumIEEE(b[:gptHeaderSize]))
	return b
}

// fixProtectiveMBR resizes a 0xEE entry that starts at LBA 1 and covered
// the old disk (or would reach past the new end) to cover the new disk,
// as the UEFI specification wants of a protective MBR.
func fixProtectiveMBR(rw ReaderWriterAt, oldSectors, newSectors int64) error {
	b := make([]byte, 512)
	if n, err := rw.ReadAt(b, 0); n != len(b) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("read MBR: %w", err)
	}
	if !hasMBRSignature(b) {
		return nil
	}
	cover := func(sectors int64) uint32 { return uint32(min(sectors-1, 0xffffffff)) }
	le := binary.LittleEndian
	for i := range mbrEntryCount {
		e := mbrEntry(b, i)
		size := le.Uint32(e[12:])
		if e[4] != mbrTypeGPT || le.Uint32(e[8:]) != 1 || (size != cover(oldSectors) && int64(size) <= newSectors-1) {
			continue
		}
		le.PutUint32(e[12:], cover(newSectors))
		if _, err := rw.WriteAt(e[12:16], int64(mbrEntries+i*mbrEntrySize+12)); err != nil {
			return fmt.Errorf("write protective MBR: %w", err)
		}
	}
	return nil
}

// zeroStaleBackup zeroes the source's backup entry array and header where
// they now lie inside a larger target, before newBackup (the byte offset
// of the new backup entry array), so no tool mistakes them for a table.
func zeroStaleBackup(w *writer, t *Table, newBackup int64) error {
	ls := int64(t.LogicalSector)
	g := t.gptInfo()
	floor := t.lastDataEnd()
	for _, e := range []Extent{{g.BackupEntriesLBA * ls, g.entrySectors(ls) * ls}, {g.BackupLBA * ls, ls}} {
		lo, hi := max(e.Off, floor), min(e.End(), newBackup)
		if lo < hi {
			w.put(make([]byte, hi-lo), lo, "zeros over the old backup GPT")
		}
	}
	return w.err
}

// writer writes whole buffers and keeps the first error.
type writer struct {
	rw  ReaderWriterAt
	err error
}

func (w *writer) put(b []byte, off int64, what string) {
	if w.err != nil {
		return
	}
	if n, err := w.rw.WriteAt(b, off); err != nil || n != len(b) {
		if err == nil {
			err = io.ErrShortWrite
		}
		w.err = fmt.Errorf("write %s at byte %d: wrote %d of %d bytes: %w", what, off, n, len(b), err)
	}
}
