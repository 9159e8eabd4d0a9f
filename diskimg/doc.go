// Package diskimg backs up and restores whole disks block by block: raw
// image files, block devices and partitions.
//
// An image backup reads the partition table (package layout), finds the
// blocks each file system uses (package usedmap: ext2/3/4 bitmaps, FAT
// tables, else every block with all-zero chunks dropped), and stores only
// those, in fixed-size chunks aligned to the start of the disk, so that the
// same block content dedups across points and across machines. The point's
// manifest is an ordinary file manifest with two entries:
//
//   - disk.img: the whole disk as one file whose chunk list covers it end to
//     end; unused space is recorded as hole refs (never read, never stored).
//   - image.json: the Info document (disk geometry, the partition table, and
//     per partition the file system and the used-block method).
//
// So an image point restores, verifies, scrubs and rebuilds like any other
// point, and is self-contained: no earlier point of the chain is needed.
// Incremental points chain to the previous point of the same disk
// (identified by GPT disk GUID, else serial, else size and path); every used
// chunk is read and hashed, only new chunks are written.
//
// Restore writes the used chunks back to a file or block device, leaves the
// rest a hole (files) or untouched (devices, unless zeroing is asked for),
// and moves the GPT backup header to the end of a larger target.
//
// diskimg imports store and its own sub-packages (layout, usedmap, fsread);
// nothing from appliance or agent.
package diskimg
