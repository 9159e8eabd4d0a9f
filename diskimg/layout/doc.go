// Package layout is the partition-table layer of block-level disk imaging:
// it reads a disk's GPT or MBR into a Table that an image manifest records,
// tells an imager which sectors hold the table itself (MetadataExtents) and
// which lie outside every partition (Unpartitioned), checks that a restore
// target is large enough (CheckFits, MinSize), and after the table's
// sectors were copied to a target of another size, rewrites the GPT so the
// target is a valid disk of its own size (Relocate).
//
// # Reading
//
// Read decides the kind as Linux does (a 0xEE entry in the MBR means GPT;
// a sane MBR that is not a FAT/NTFS boot sector means MBR; else "none").
// It checks the GPT headers itself (signature, revision, CRC32 of header
// and entry array, every LBA inside the disk and the structures in their
// places) and only then lets go-diskfs (partition/gpt, partition/mbr)
// decode the entries, behind a recover, so malformed input always yields an
// error wrapping ErrMalformed or ErrUnsupported and never a panic, a hang or
// a huge allocation. If the primary GPT is damaged and the backup at the
// end of the disk is intact, the table is read from the backup
// (GPTInfo.PrimaryValid false). go-diskfs does not follow MBR extended
// boot record chains; layout does, numbering logical partitions from 5 as
// Linux does and recording the EBR offsets in Table.EBRs.
//
// # Invariants of a Table from Read
//
//   - Partitions are in table order, non-empty, aligned to the logical
//     sector, inside the disk, and start after sector 0; GPT partitions lie
//     between the first and last usable LBA.
//   - Data partitions do not overlap each other or the table's own
//     sectors; an MBR extended partition (IsContainer) contains its logical
//     partitions and is not data itself.
//   - GUIDs are lowercase canonical strings.
//   - MetadataExtents, MinSize, CheckFits and Relocate use only exported
//     fields, so a Table decoded from a manifest works as one from Read.
//
// A target always has the source's logical sector size; converting between
// 512-byte and 4096-byte sectors is not this package's business.
//
// # Imports
//
// Package layout imports nothing from this project: only the standard
// library, golang.org/x/sys and github.com/diskfs/go-diskfs. It keeps no
// global mutable state and does not log; every function is safe for
// concurrent use on distinct Tables and disks.
package layout
