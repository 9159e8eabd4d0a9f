package diskimg

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"bes/diskimg/usedmap"
)

// Source is a disk opened for imaging: a raw image file or a block device.
type Source struct {
	Path           string // as given
	Size           int64
	LogicalSector  int
	PhysicalSector int
	Device         bool   // a block device (else a regular file)
	Serial         string // device serial number when the kernel knows one
	Dev            uint64 // st_rdev of a device, st_dev/ino identity otherwise
	f              *os.File
	mem            []byte // read-only mapping (see Map), or nil
}

// Map maps the whole source read-only (once) and returns the mapping, or
// nil when it cannot be mapped. Touching it after the source shrank raises
// SIGBUS: readers must run with debug.SetPanicOnFault. Close unmaps it.
func (s *Source) Map() []byte {
	if s.mem != nil || s.Size <= 0 || int64(int(s.Size)) != s.Size {
		return s.mem
	}
	m, err := unix.Mmap(int(s.f.Fd()), 0, int(s.Size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	_ = unix.Madvise(m, unix.MADV_SEQUENTIAL)
	s.mem = m
	return m
}

// OpenSource opens path read-only as an image source.
func OpenSource(path string) (*Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("image source: %w", err)
	}
	s, err := newSource(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func newSource(path string, f *os.File) (*Source, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("image source %s: %w", path, err)
	}
	s := &Source{Path: path, f: f, LogicalSector: 512, PhysicalSector: 512}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		s.Size = st.Size
	case unix.S_IFBLK:
		s.Device, s.Dev = true, st.Rdev
		fd := int(f.Fd())
		n, err := unix.IoctlGetInt(fd, unix.BLKGETSIZE64)
		if err != nil {
			return nil, fmt.Errorf("image source %s: size: %w", path, err)
		}
		s.Size = int64(n)
		if v, err := unix.IoctlGetInt(fd, unix.BLKSSZGET); err == nil && v > 0 {
			s.LogicalSector = v
		}
		if v, err := unix.IoctlGetInt(fd, unix.BLKPBSZGET); err == nil && v > 0 {
			s.PhysicalSector = v
		}
		s.Serial = deviceSerial(st.Rdev)
	default:
		return nil, fmt.Errorf("image source %s: not a regular file or block device", path)
	}
	if s.Size <= 0 {
		return nil, fmt.Errorf("image source %s: empty", path)
	}
	return s, nil
}

// ReadAt reads from the source. A short read inside the disk (a truncated
// file or a device that went away) is an error, never zeros.
func (s *Source) ReadAt(p []byte, off int64) (int, error) {
	n, err := s.f.ReadAt(p, off)
	if err == io.EOF && off+int64(n) < s.Size {
		err = fmt.Errorf("read %s at %d: %w (the source shrank while it was read)", s.Path, off+int64(n), io.ErrUnexpectedEOF)
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return n, fmt.Errorf("read %s at %d: %w", s.Path, off, err)
	}
	return n, err
}

// Close unmaps and closes the source.
func (s *Source) Close() error {
	if s.mem != nil {
		_ = unix.Munmap(s.mem)
		s.mem = nil
	}
	return s.f.Close()
}

// DataExtents returns the parts of the source that may hold data: for a
// sparse file its data extents (SEEK_DATA/SEEK_HOLE), otherwise the whole.
func (s *Source) DataExtents() ([]usedmap.Extent, error) {
	whole := []usedmap.Extent{{Off: 0, Len: s.Size}}
	if s.Device {
		return whole, nil
	}
	fd := int(s.f.Fd())
	var out []usedmap.Extent
	for off := int64(0); off < s.Size; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from here on
		}
		if err != nil {
			return whole, nil // no hole support: everything may be data
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return whole, nil
		}
		h = min(h, s.Size)
		if h > d {
			out = append(out, usedmap.Extent{Off: d, Len: h - d})
		}
		off = h
	}
	return out, nil
}

// Identity names the disk for chaining incremental points: the GPT disk
// GUID, else the device serial, else size and path.
func (s *Source) Identity(diskGUID string) string {
	switch {
	case diskGUID != "":
		return "gpt:" + strings.ToLower(diskGUID)
	case s.Serial != "":
		return "serial:" + s.Serial
	}
	p, err := filepath.Abs(s.Path)
	if err != nil {
		p = s.Path
	}
	return fmt.Sprintf("size:%d:%s", s.Size, p)
}

// deviceSerial reads what sysfs knows of a block device's serial number
// (the whole disk's, for a partition).
func deviceSerial(rdev uint64) string {
	base := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(rdev), unix.Minor(rdev))
	for _, p := range []string{base + "/device/serial", base + "/../device/serial", base + "/device/wwid", base + "/serial"} {
		if b, err := os.ReadFile(p); err == nil {
			if v := strings.TrimSpace(string(b)); v != "" {
				return v
			}
		}
	}
	return ""
}
