package fsread

import (
	"encoding/binary"
)

const (
	xattrMagic       = 0xEA020000
	xattrEntryHeader = 16
	xattrIndexSystem = 7
)

// inlineData returns the data of an inline_data inode: the first 60 bytes
// live in i_block, the rest in the "system.data" extended attribute kept in
// the inode body after i_extra_isize. The result is a fresh copy.
func (x *ExtFS) inlineData(in *extInode) ([]byte, error) {
	if in.size > uint64(x.sb.inodeSize) {
		return nil, corruptf(in.name(), "inline data of %d bytes cannot fit in a %d-byte inode", in.size, x.sb.inodeSize)
	}
	head := in.block()
	if in.size <= extNBlockBytes {
		return append([]byte(nil), head[:in.size]...), nil
	}
	rest, err := x.inlineXattr(in)
	if err != nil {
		return nil, err
	}
	if uint64(len(rest)) < in.size-extNBlockBytes {
		return nil, corruptf(in.name(), "inline data of %d bytes but only %d stored", in.size, extNBlockBytes+len(rest))
	}
	out := make([]byte, 0, in.size)
	out = append(out, head...)
	return append(out, rest[:in.size-extNBlockBytes]...), nil
}

// inlineXattr returns the value of system.data from the in-inode extended
// attributes of in (nil when absent). It aliases the cached inode.
func (x *ExtFS) inlineXattr(in *extInode) ([]byte, error) {
	le := binary.LittleEndian
	start := extGoodOldSize + in.extraSize
	body := in.raw[:x.sb.inodeSize]
	if start+4 > int64(len(body)) || le.Uint32(body[start:]) != xattrMagic {
		return nil, nil
	}
	base := start + 4 // value offsets are relative to the first entry
	for off := base; off+4 <= int64(len(body)) && le.Uint32(body[off:]) != 0; {
		if off+xattrEntryHeader > int64(len(body)) {
			return nil, corruptf(in.name(), "extended attribute entry at %d runs past the inode", off)
		}
		e := body[off:]
		nameLen := int64(e[0])
		index := e[1]
		valueOff := int64(le.Uint16(e[2:]))
		valueInum := le.Uint32(e[4:])
		valueSize := int64(le.Uint32(e[8:]))
		next := off + (xattrEntryHeader+nameLen+3)&^3
		if next > int64(len(body)) {
			return nil, corruptf(in.name(), "extended attribute name at %d runs past the inode", off)
		}
		if index == xattrIndexSystem && string(e[xattrEntryHeader:xattrEntryHeader+nameLen]) == "data" {
			if valueInum != 0 {
				return nil, &UnsupportedError{Object: in.name(), Feature: "inline data in an xattr inode"}
			}
			if valueSize > int64(len(body)) || base+valueOff > int64(len(body))-valueSize {
				return nil, corruptf(in.name(), "system.data value %d+%d runs past the inode", valueOff, valueSize)
			}
			return body[base+valueOff : base+valueOff+valueSize], nil
		}
		off = next
	}
	return nil, nil
}
