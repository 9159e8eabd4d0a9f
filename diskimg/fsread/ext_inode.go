package fsread

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"time"
)

// Inode mode type bits (i_mode & 0xF000).
const (
	extTypeMask = 0xF000
	extTypeFifo = 0x1000
	extTypeChr  = 0x2000
	extTypeDir  = 0x4000
	extTypeBlk  = 0x6000
	extTypeReg  = 0x8000
	extTypeLnk  = 0xA000
	extTypeSock = 0xC000
)

// Inode flags (i_flags).
const (
	inodeEncrypt    = 0x800
	inodeIndex      = 0x1000 // htree directory
	inodeHugeFile   = 0x40000
	inodeExtents    = 0x80000
	inodeEAInode    = 0x200000
	inodeInlineData = 0x10000000
	inodeCasefold   = 0x40000000
)

const (
	extNBlockBytes = 60 // i_block
	extGoodOldSize = 128
)

// extInode is a decoded inode. raw aliases the cached inode bytes and must
// not be modified.
type extInode struct {
	ino       uint64
	raw       []byte
	mode      uint16
	uid, gid  uint32
	size      uint64
	links     uint32
	blocks512 uint64 // i_blocks in 512-byte units
	flags     uint32
	fileACL   uint64
	extraSize int64 // i_extra_isize
	atime     time.Time
	mtime     time.Time
}

func (in *extInode) isDir() bool   { return in.mode&extTypeMask == extTypeDir }
func (in *extInode) block() []byte { return in.raw[0x28 : 0x28+extNBlockBytes] }
func (in *extInode) name() string  { return fmt.Sprintf("inode %d", in.ino) }

// readInode reads and decodes inode ino.
func (x *ExtFS) readInode(ino uint64) (*extInode, error) {
	raw, err := x.inodeBytes(ino)
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	in := &extInode{
		ino:   ino,
		raw:   raw,
		mode:  le.Uint16(raw[0x0:]),
		uid:   uint32(le.Uint16(raw[0x2:])) | uint32(le.Uint16(raw[0x78:]))<<16,
		gid:   uint32(le.Uint16(raw[0x18:])) | uint32(le.Uint16(raw[0x7A:]))<<16,
		links: uint32(le.Uint16(raw[0x1A:])),
		flags: le.Uint32(raw[0x20:]),
	}
	in.fileACL = uint64(le.Uint32(raw[0x68:])) | uint64(le.Uint16(raw[0x76:]))<<32
	in.size = uint64(le.Uint32(raw[0x4:]))
	if in.mode&extTypeMask == extTypeReg || x.sb.has(incompatLargedir) {
		in.size |= uint64(le.Uint32(raw[0x6C:])) << 32
	}
	if in.size > math.MaxInt64 {
		return nil, corruptf(in.name(), "size %d", in.size)
	}
	if x.sb.inodeSize > extGoodOldSize {
		in.extraSize = int64(le.Uint16(raw[0x80:]))
		if in.extraSize > x.sb.inodeSize-extGoodOldSize || in.extraSize%4 != 0 {
			return nil, corruptf(in.name(), "extra inode size %d (inode size %d)", in.extraSize, x.sb.inodeSize)
		}
	}
	in.blocks512 = x.blocks512(in)
	in.atime = in.time(0x08, 0x8C)
	in.mtime = in.time(0x10, 0x88)
	return in, nil
}

// blocks512 decodes i_blocks into 512-byte units (huge_file aware).
func (x *ExtFS) blocks512(in *extInode) uint64 {
	le := binary.LittleEndian
	b := uint64(le.Uint32(in.raw[0x1C:]))
	if x.sb.roCompat&roHugeFile != 0 {
		b |= uint64(le.Uint16(in.raw[0x74:])) << 32
		if in.flags&inodeHugeFile != 0 {
			b *= uint64(x.sb.blockSize / 512)
		}
	}
	return b
}

// time decodes the seconds field at off and, when the inode is large
// enough to hold it, the extra field at extraOff (2 epoch bits extending
// the signed seconds, 30 bits of nanoseconds).
func (in *extInode) time(off, extraOff int) time.Time {
	sec := int64(int32(binary.LittleEndian.Uint32(in.raw[off:])))
	var nsec int64
	if int64(extraOff)+4-extGoodOldSize <= in.extraSize {
		extra := binary.LittleEndian.Uint32(in.raw[extraOff:])
		sec += int64(extra&3) << 32
		nsec = int64(extra >> 2)
		if nsec > 999999999 {
			nsec = 999999999
		}
	}
	return time.Unix(sec, nsec).UTC()
}

// fileMode converts a Linux i_mode to an fs.FileMode.
func fileMode(mode uint16) fs.FileMode {
	m := fs.FileMode(mode & 0o777)
	if mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	switch mode & extTypeMask {
	case extTypeReg:
	case extTypeDir:
		m |= fs.ModeDir
	case extTypeLnk:
		m |= fs.ModeSymlink
	case extTypeFifo:
		m |= fs.ModeNamedPipe
	case extTypeSock:
		m |= fs.ModeSocket
	case extTypeChr:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case extTypeBlk:
		m |= fs.ModeDevice
	default:
		m |= fs.ModeIrregular
	}
	return m
}

// direntTypeMode maps a directory entry file_type to i_mode type bits.
func direntTypeMode(t uint8) uint16 {
	switch t {
	case 1:
		return extTypeReg
	case 2:
		return extTypeDir
	case 3:
		return extTypeChr
	case 4:
		return extTypeBlk
	case 5:
		return extTypeFifo
	case 6:
		return extTypeSock
	case 7:
		return extTypeLnk
	}
	return 0
}

// entry builds the Entry of inode in under the given name.
func (x *ExtFS) entry(name string, in *extInode) (Entry, error) {
	e := Entry{
		Name:    name,
		Mode:    fileMode(in.mode),
		Size:    int64(in.size),
		UID:     in.uid,
		GID:     in.gid,
		ModTime: in.mtime,
		ATime:   in.atime,
		Ino:     in.ino,
		Nlink:   in.links,
	}
	switch in.mode & extTypeMask {
	case extTypeLnk:
		t, err := x.readSymlink(in)
		if err != nil {
			return Entry{}, err
		}
		e.Link = t
	case extTypeChr, extTypeBlk:
		e.Rdev = in.rdev()
	}
	return e, nil
}

// rdev decodes the device number kept in i_block: the old 16-bit encoding
// in word 0, else the new 32-bit one in word 1. The result uses Linux's
// userspace dev_t encoding.
func (in *extInode) rdev() uint64 {
	b := in.block()
	var major, minor uint64
	if old := binary.LittleEndian.Uint32(b[0:]); old != 0 {
		major, minor = uint64(old>>8)&0xff, uint64(old)&0xff
	} else {
		n := uint64(binary.LittleEndian.Uint32(b[4:]))
		major, minor = (n&0xfff00)>>8, (n&0xff)|((n>>12)&0xfff00)
	}
	return (major&0xfffff000)<<32 | (major&0xfff)<<8 | (minor&0xffffff00)<<12 | minor&0xff
}

// maxSymlink caps the length of a symlink target (Linux allows at most one
// block, and PATH_MAX is 4096).
const maxSymlink = 64 << 10

// readSymlink returns the target of symlink inode in: in i_block for a fast
// symlink, else in its data (blocks, extents or inline data).
func (x *ExtFS) readSymlink(in *extInode) (string, error) {
	if in.flags&inodeEncrypt != 0 {
		return "", &UnsupportedError{Object: in.name(), Feature: "encrypt"}
	}
	if in.size > maxSymlink || int64(in.size) > x.sb.blockSize {
		return "", corruptf(in.name(), "symlink target of %d bytes", in.size)
	}
	if x.isFastSymlink(in) {
		if in.size >= extNBlockBytes {
			return "", corruptf(in.name(), "fast symlink of %d bytes does not fit in i_block", in.size)
		}
		return string(in.block()[:in.size]), nil
	}
	r, err := x.dataReader(in)
	if err != nil {
		return "", err
	}
	buf := make([]byte, in.size)
	if err := r(buf, 0); err != nil {
		return "", err
	}
	return string(buf), nil
}

// isFastSymlink follows Linux: a symlink without inline data whose blocks
// (not counting an xattr block) are zero keeps its target in i_block.
func (x *ExtFS) isFastSymlink(in *extInode) bool {
	if in.flags&inodeEAInode != 0 {
		return in.size > 0 && in.size < extNBlockBytes
	}
	if in.flags&inodeInlineData != 0 {
		return false
	}
	var ea uint64
	if in.fileACL != 0 {
		ea = uint64(x.sb.clusterSize / 512)
	}
	return in.blocks512 == ea
}
