package diskimg

import (
	"fmt"
	"io"
	"sort"

	"bes/diskimg/layout"
	"bes/diskimg/usedmap"
)

// InfoVersion is the version of the Info document this code writes.
const InfoVersion = 1

// Info describes an image point; it is stored as image.json in the point.
type Info struct {
	Version   int           `json:"version"`
	Source    string        `json:"source"`   // path as given to the backup
	Identity  string        `json:"identity"` // what chains points of the same disk
	ChunkSize int64         `json:"chunk_size"`
	Table     *layout.Table `json:"table"`
	Parts     []PartReport  `json:"partitions"`
	Outside   PartReport    `json:"outside"`    // space outside every partition
	UsedBytes int64         `json:"used_bytes"` // bytes the used-block maps asked to read
}

// PartReport says how the used blocks of one partition were found.
type PartReport struct {
	Number    int            `json:"number"` // 0: the whole disk (no table) or the outside space
	Start     int64          `json:"start"`
	Size      int64          `json:"size"`
	FS        string         `json:"fs,omitempty"`
	Method    usedmap.Method `json:"method"`
	UsedBytes int64          `json:"used_bytes"`
	Note      string         `json:"note,omitempty"` // why a file system map was not used
}

// planUsed finds the byte ranges of the disk to read: the partition
// table's own sectors, each partition's used blocks, and all of the space
// outside partitions (boot loaders live there; all-zero chunks are dropped
// while reading). The result is sorted and merged, in disk coordinates.
func planUsed(r io.ReaderAt, t *layout.Table) ([]usedmap.Extent, []PartReport, PartReport) {
	var used []usedmap.Extent
	var parts []PartReport
	add := func(base int64, es []usedmap.Extent) {
		for _, e := range es {
			used = append(used, usedmap.Extent{Off: base + e.Off, Len: e.Len})
		}
	}
	if t.Kind == layout.KindNone {
		pr, es := planPart(r, 0, 0, t.DiskSize)
		add(0, es)
		return normalize(used, t.DiskSize), []PartReport{pr}, PartReport{Method: usedmap.MethodZeroScan}
	}
	for _, m := range t.MetadataExtents() {
		used = append(used, usedmap.Extent{Off: m.Off, Len: m.Len})
	}
	for _, p := range t.Partitions {
		if p.IsContainer() {
			continue // its EBRs are metadata, its logical partitions come on their own
		}
		pr, es := planPart(r, p.Number, p.Start, p.Size)
		parts = append(parts, pr)
		add(p.Start, es)
	}
	outside := PartReport{Method: usedmap.MethodZeroScan}
	for _, e := range t.Unpartitioned() {
		used = append(used, usedmap.Extent{Off: e.Off, Len: e.Len})
		outside.Size += e.Len
		outside.UsedBytes += e.Len
	}
	return normalize(used, t.DiskSize), parts, outside
}

// planPart maps one partition; an unreadable or unknown file system falls
// back to zero-scanning all of it.
func planPart(r io.ReaderAt, num int, start, size int64) (PartReport, []usedmap.Extent) {
	pr := PartReport{Number: num, Start: start, Size: size}
	res, err := usedmap.Detect(io.NewSectionReader(r, start, size), size)
	if err != nil || res == nil {
		pr.Method, pr.UsedBytes = usedmap.MethodZeroScan, size
		if err != nil {
			pr.Note = err.Error()
		}
		return pr, []usedmap.Extent{{Off: 0, Len: size}}
	}
	pr.FS, pr.Method, pr.UsedBytes = res.FS, res.Method, res.UsedBytes
	if res.Method == usedmap.MethodZeroScan && res.FS == "" {
		pr.Note = "no ext or FAT file system recognised"
	}
	return pr, res.Used
}

// normalize clips extents to [0, size), sorts and merges them.
func normalize(es []usedmap.Extent, size int64) []usedmap.Extent {
	out := es[:0]
	for _, e := range es {
		if e.Off < 0 {
			e.Len += e.Off
			e.Off = 0
		}
		if e.Off+e.Len > size {
			e.Len = size - e.Off
		}
		if e.Len > 0 {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Off < out[j].Off })
	merged := out[:0]
	for _, e := range out {
		if n := len(merged); n > 0 && e.Off <= merged[n-1].Off+merged[n-1].Len {
			merged[n-1].Len = max(merged[n-1].Len, e.Off+e.Len-merged[n-1].Off)
			continue
		}
		merged = append(merged, e)
	}
	return merged
}

// intersect returns the parts of a that also lie in b (both normalized).
func intersect(a, b []usedmap.Extent) []usedmap.Extent {
	var out []usedmap.Extent
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo := max(a[i].Off, b[j].Off)
		hi := min(a[i].Off+a[i].Len, b[j].Off+b[j].Len)
		if hi > lo {
			out = append(out, usedmap.Extent{Off: lo, Len: hi - lo})
		}
		if a[i].Off+a[i].Len < b[j].Off+b[j].Len {
			i++
		} else {
			j++
		}
	}
	return out
}

// sumLen is the total length of es.
func sumLen(es []usedmap.Extent) int64 {
	var n int64
	for _, e := range es {
		n += e.Len
	}
	return n
}

func (p PartReport) String() string {
	name := fmt.Sprintf("partition %d", p.Number)
	if p.Number == 0 {
		name = "disk"
	}
	fs := p.FS
	if fs == "" {
		fs = "unknown"
	}
	return fmt.Sprintf("%s: %s, %s, %d of %d bytes to read", name, fs, p.Method, p.UsedBytes, p.Size)
}
