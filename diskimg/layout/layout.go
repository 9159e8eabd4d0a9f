package layout

import (
	"errors"
	"fmt"
	"io"
)

// Kinds of partition table a Table can describe.
const (
	KindGPT  = "gpt"
	KindMBR  = "mbr"
	KindNone = "none"
)

var (
	// ErrMalformed is wrapped by every Read error about a table that is
	// damaged or inconsistent: bad checksums on both GPT copies, partitions
	// outside the disk or overlapping, a looping chain of extended boot
	// records, and the like.
	ErrMalformed = errors.New("malformed partition table")
	// ErrUnsupported is wrapped by errors about a table that is well formed
	// but uses a variant this package does not handle (for example GPT
	// entries larger than 128 bytes) or about arguments it does not accept
	// (an unsupported sector size).
	ErrUnsupported = errors.New("unsupported partition table")
	// ErrTooSmall is wrapped by CheckFits and Relocate errors when the target
	// disk cannot hold the layout; the error is a *FitError.
	ErrTooSmall = errors.New("target disk too small")
)

// Table describes a disk's layout as recorded in an image manifest.
//
// Every field is exported so that a Table survives a round trip through the
// manifest: MetadataExtents, CheckFits and Relocate use nothing else.
type Table struct {
	Kind           string      // KindGPT, KindMBR or KindNone
	DiskSize       int64       // bytes
	LogicalSector  int         // 512 or 4096
	PhysicalSector int         // bytes, >= LogicalSector
	DiskGUID       string      // GPT only, canonical lowercase 8-4-4-4-12
	Partitions     []Partition // in table order, empty entries skipped

	// GPT only: where the table keeps its own structures.
	GPT *GPTInfo `json:",omitempty"`
	// MBR only: byte offsets of the extended boot records (one logical
	// sector each) that chain the logical partitions, in chain order.
	EBRs []int64 `json:",omitempty"`
}

// GPTInfo is the geometry of a GUID partition table, in logical sectors
// (LBAs) of the disk it was read from.
type GPTInfo struct {
	EntriesLBA       int64 // first LBA of the primary partition entry array
	EntryCount       int   // entries in the array (used or not)
	EntrySize        int   // bytes per entry (128)
	FirstUsableLBA   int64
	LastUsableLBA    int64
	BackupLBA        int64 // the backup header (the primary's AlternateLBA)
	BackupEntriesLBA int64 // first LBA of the backup partition entry array
	// PrimaryValid and BackupValid tell which copies passed every check.
	// Read fails unless at least one did; when only the backup did, the
	// partitions were read from it and EntriesLBA is the conventional 2.
	PrimaryValid bool
	BackupValid  bool
}

// Partition is one used entry of a partition table.
type Partition struct {
	Number     int    // 1-based as Linux names them (sda1...); MBR logical partitions from 5
	Start      int64  // byte offset on the disk
	Size       int64  // bytes
	TypeGUID   string // GPT: partition type GUID, lowercase; MBR: ""
	MBRType    byte   // MBR: partition type byte; GPT: 0
	Bootable   bool   // MBR active flag
	Name       string // GPT name (UTF-16LE decoded)
	Attributes uint64 // GPT attribute bits
	UniqueGUID string // GPT unique partition GUID, lowercase
}

// End returns the byte offset just past the partition.
func (p Partition) End() int64 { return p.Start + p.Size }

// IsContainer reports whether p is an MBR extended partition: a container
// for logical partitions (which are listed separately), not a data area of
// its own. An imager copies the logical partitions, never the container.
func (p Partition) IsContainer() bool {
	switch p.MBRType {
	case 0x05, 0x0f, 0x85:
		return true
	}
	return false
}

// Extent is a byte range on a disk.
type Extent struct{ Off, Len int64 }

// End returns the byte offset just past the extent.
func (e Extent) End() int64 { return e.Off + e.Len }

// maxSectorSize bounds the sector sizes Read accepts.
const maxSectorSize = 64 << 10

// Read reads the partition table of a disk of size bytes whose contents r
// gives, with the given logical and physical sector sizes (physical 0
// means the logical size).
//
// The kind is decided as Linux and libblkid decide it: an MBR sector
// (0x55AA at byte 510) with a 0xEE entry means GPT (protective or hybrid
// MBR; the GPT is authoritative); an MBR sector whose boot flags are all 0x00
// or 0x80 and that is not the boot sector of a FAT or NTFS file system means
// MBR; anything else means no table ("none": for example a file system on
// the whole disk, or a GPT whose protective MBR was wiped). A table that is
// present but damaged is an error wrapping ErrMalformed, never a panic and
// never "none".
func Read(r io.ReaderAt, size int64, logical, physical int) (*Table, error) {
	if physical == 0 {
		physical = logical
	}
	if err := checkSectorSizes(logical, physical); err != nil {
		return nil, err
	}
	if size < int64(logical) {
		return nil, fmt.Errorf("%w: disk of %d bytes is smaller than one %d-byte sector", ErrMalformed, size, logical)
	}
	d := &disk{r: r, size: size, ls: int64(logical)}
	lba0, err := d.read(0, int64(logical))
	if err != nil {
		return nil, fmt.Errorf("read sector 0: %w", err)
	}
	t := &Table{DiskSize: size, LogicalSector: logical, PhysicalSector: physical}
	switch {
	case hasMBRSignature(lba0) && hasGPTEntry(lba0):
		t.Kind = KindGPT
		err = readGPT(d, t)
	case hasMBRSignature(lba0) && bootFlagsValid(lba0) && !isFSBootSector(lba0):
		t.Kind = KindMBR
		err = readMBR(d, t)
	default:
		t.Kind = KindNone
	}
	if err != nil {
		return nil, fmt.Errorf("read %s partition table: %w", t.Kind, err)
	}
	if err := t.validate(); err != nil {
		return nil, fmt.Errorf("read %s partition table: %w", t.Kind, err)
	}
	return t, nil
}

func checkSectorSizes(logical, physical int) error {
	pow2 := func(n int) bool { return n > 0 && n&(n-1) == 0 }
	if !pow2(logical) || logical < 512 || logical > 4096 {
		return fmt.Errorf("%w: logical sector size %d (want 512, 1024, 2048 or 4096)", ErrUnsupported, logical)
	}
	if !pow2(physical) || physical < logical || physical > maxSectorSize {
		return fmt.Errorf("%w: physical sector size %d with logical %d", ErrUnsupported, physical, logical)
	}
	return nil
}

// disk reads bounded byte ranges of the disk being examined.
type disk struct {
	r    io.ReaderAt
	size int64
	ls   int64 // logical sector size
}

func (d *disk) sectors() int64 { return d.size / d.ls }

// read returns n bytes at off, which must lie inside the disk.
func (d *disk) read(off, n int64) ([]byte, error) {
	if off < 0 || n < 0 || off > d.size || n > d.size-off {
		return nil, fmt.Errorf("%w: %d bytes at offset %d lie beyond the %d-byte disk", ErrMalformed, n, off, d.size)
	}
	b := make([]byte, n)
	got, err := d.r.ReadAt(b, off)
	if got == len(b) {
		return b, nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return nil, fmt.Errorf("read %d bytes at offset %d: %w", n, off, err)
}
