package diskimg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"bes/diskimg/layout"
	"bes/diskimg/usedmap"
	"bes/store"
	"bes/store/crypt"
	"bes/store/manifest"
	"bes/store/pack"
)

// DefaultChunkSize is the fixed chunk size of image points. 256 KiB keeps
// what one changed file block costs an incremental small while the per
// chunk overhead stays negligible. BenchmarkImageChunkSize (256 MiB disk,
// then 64 scattered 4 KiB changes): 64 KiB 607 MB/s and 3.7 MiB added,
// 256 KiB 857 MB/s and 13.8 MiB, 1 MiB 876 MB/s and 41 MiB, 4 MiB 614 MB/s
// and 41 MiB.
const DefaultChunkSize = 256 << 10

// ImageZstdLevel is the zstd level of image chunks. Disks hold binaries
// and file system metadata where libzstd's level 1 is much faster than its
// level 3 for a little more output: on a 1 GiB test disk (Go sources and
// binaries, 390 MiB used) level 1 took 0.98 s and stored 374 MB, level 3
// 1.21 s and 370 MB.
const ImageZstdLevel = 1

// Entry names inside an image point's manifest.
const (
	DiskEntry = "disk.img"
	InfoEntry = "image.json"
)

// maxHoleRun is the largest hole one manifest ref may describe.
const maxHoleRun = 1 << 31

// Errors of an image backup.
var (
	ErrMountedRW = errors.New("source is mounted read-write")
)

// BackupOptions configures Backup. The zero value means the defaults.
type BackupOptions struct {
	Host        string // default: os.Hostname
	ChunkSize   int64  // default DefaultChunkSize; a power of two from 64 KiB to 4 MiB
	AllowLive   bool   // image a source mounted read-write (inconsistent)
	Snapshot    string // "" or "lvm": image an LVM snapshot of the source
	Compression string // zstd (default) | lz4 | none
	Workers     int    // hashing/saving goroutines; default GOMAXPROCS
	Progress    func(Progress)
	Logger      *slog.Logger
	Run         Runner // runs lvm2 commands; default exec
}

// Progress is a snapshot of a running image backup or restore.
type Progress struct {
	Done, Total int64 // bytes read (backup) or written (restore) of the total to do
	New         int64 // bytes of new chunks (backup)
	Elapsed     time.Duration
	Finished    bool
}

// Result is what a finished image backup reports.
type Result struct {
	Point *store.Point
	Info  *Info
}

// Backup images the disk at path into a new image point.
func Backup(ctx context.Context, repo *store.Repo, path string, o BackupOptions) (*Result, error) {
	start := time.Now()
	o.defaults()
	if err := checkSourceMounts(path, o); err != nil {
		return nil, err
	}
	if o.Snapshot != "" {
		if o.Snapshot != "lvm" {
			return nil, fmt.Errorf("image backup: unknown snapshot kind %q (want lvm)", o.Snapshot)
		}
		var res *Result
		err := withLVMSnapshot(ctx, o.Run, path, func(snap string) error {
			var err error
			res, err = backupFrom(ctx, repo, snap, path, o, start)
			return err
		})
		return res, err
	}
	return backupFrom(ctx, repo, path, path, o, start)
}

func (o *BackupOptions) defaults() {
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Run == nil {
		o.Run = execRunner
	}
}

// checkSourceMounts refuses a source mounted read-write unless AllowLive.
func checkSourceMounts(path string, o BackupOptions) error {
	ms, err := Mounts(path)
	if err != nil {
		return fmt.Errorf("image backup: %w", err)
	}
	for _, m := range ms {
		if !m.RW || o.Snapshot != "" {
			continue
		}
		if !o.AllowLive {
			return fmt.Errorf("image backup: %s: %w at %s (unmount it, image an LVM snapshot with --snapshot lvm, or accept an inconsistent image with --allow-live)", path, ErrMountedRW, m.Point)
		}
		o.Logger.Warn("IMAGING A LIVE FILE SYSTEM: the image may be inconsistent", "source", path, "mounted_at", m.Point)
	}
	return nil
}

// backupFrom images the disk at readPath (a snapshot of origPath, or
// origPath itself).
func backupFrom(ctx context.Context, repo *store.Repo, readPath, origPath string, o BackupOptions, start time.Time) (*Result, error) {
	if o.ChunkSize < 64<<10 || o.ChunkSize > 4<<20 || o.ChunkSize&(o.ChunkSize-1) != 0 {
		return nil, fmt.Errorf("image backup: chunk size %d (want a power of two from 64 KiB to 4 MiB)", o.ChunkSize)
	}
	src, err := OpenSource(readPath)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tbl, err := layout.Read(src, src.Size, src.LogicalSector, src.PhysicalSector)
	if err != nil {
		return nil, fmt.Errorf("image backup of %s: the disk has a partition table that does not read (damaged, or a truncated image?): %w", origPath, err)
	}
	used, parts, outside := planUsed(src, tbl)
	data, err := src.DataExtents()
	if err != nil {
		return nil, err
	}
	used = intersect(used, data)
	info := &Info{Version: InfoVersion, Source: origPath, Identity: src.Identity(tbl.DiskGUID), ChunkSize: o.ChunkSize,
		Table: tbl, Parts: parts, Outside: outside, UsedBytes: sumLen(used)}
	for _, p := range parts {
		o.Logger.Info("image plan", "source", origPath, "part", p.String())
	}

	saver, err := repo.NewSaver(store.SaverOptions{Compression: o.Compression, ZstdLevel: ImageZstdLevel})
	if err != nil {
		return nil, err
	}
	pt, err := newImagePoint(ctx, repo, o.Host, info.Identity)
	if err != nil {
		return nil, err
	}
	pt.Paths, pt.Tags = []string{origPath}, []string{diskTag(info.Identity)}
	b := &imager{src: src, saver: saver, keys: repo.Keys(), cs: o.ChunkSize, size: src.Size, o: o, total: info.UsedBytes, mem: src.Map()}
	if pt.Parent != "" {
		if b.prev, err = parentRefs(ctx, repo, pt.Parent, o.ChunkSize); err != nil {
			return nil, err
		}
	}
	// One context for the whole point: the saver seals packs in the
	// background with it until CommitPoint.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := b.progress(ctx, start)
	refs, err := b.run(ctx, cancel, used)
	if err == nil {
		err = b.writeManifest(ctx, repo, pt, refs, info)
	}
	if err == nil {
		st := saver.Stats()
		pt.Finished = repo.Now().UTC()
		pt.Stats = store.PointStats{Files: 1, Bytes: src.Size, BytesRead: b.read.Load(), NewBytes: st.NewBytes,
			Stored: st.StoredBytes, NewChunks: st.NewChunks, Seconds: time.Since(start).Seconds()}
		err = repo.CommitPoint(ctx, saver, pt)
	}
	stop()
	if err != nil {
		saver.Abort()
		return nil, fmt.Errorf("image backup of %s: %w", origPath, err)
	}
	return &Result{Point: pt, Info: info}, nil
}

func diskTag(identity string) string { return "disk:" + identity }

// newImagePoint starts a point chained to the host's latest image point
// of the same disk, or a new full chain.
func newImagePoint(ctx context.Context, repo *store.Repo, host, identity string) (*store.Point, error) {
	pt, _, err := repo.NewPoint(ctx, store.KindImage, host)
	if err != nil {
		return nil, err
	}
	pt.Type, pt.Chain, pt.Parent = store.TypeFull, pt.ID, ""
	prev, err := LatestOfDisk(ctx, repo, pt.Host, identity)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		pt.Type, pt.Chain, pt.Parent = store.TypeIncremental, prev.Chain, prev.ID
	}
	return pt, nil
}

// LatestOfDisk returns the host's newest complete image point of the disk
// with this identity, or nil.
func LatestOfDisk(ctx context.Context, repo *store.Repo, host, identity string) (*store.Point, error) {
	ps, err := repo.Points(ctx, catalogFilter(host))
	if err != nil {
		return nil, err
	}
	for i := len(ps) - 1; i >= 0; i-- {
		p := ps[i].Point
		if p.Status == store.StatusComplete && slices.Contains(p.Tags, diskTag(identity)) {
			return p, nil
		}
	}
	return nil, nil
}

// imager runs one image backup's read/hash/save pipeline.
type imager struct {
	src   io.ReaderAt
	saver *store.Saver
	keys  *crypt.Keys
	prev  *refIndex // the parent point's chunks by disk offset, or nil
	mem   []byte    // the source mapped read-only, or nil
	cs    int64
	size  int64
	o     BackupOptions
	total int64
	read  atomic.Int64
}

type job struct {
	off  int64 // disk offset of the chunk (or hole run)
	n    int64
	hole bool
	data []byte  // the chunk: in buf, or a slice of the source's mapping
	buf  *[]byte // nil for mapped chunks
	id   crypt.ID
	err  error
	done chan struct{}
}

// run reads the used parts of the disk chunk by chunk, saves the chunks
// with parallel workers and returns the disk's chunk refs in order.
// cancel stops ctx (and so the whole backup) with a cause.
func (b *imager) run(ctx context.Context, cancel context.CancelCauseFunc, used []usedmap.Extent) ([]manifest.ChunkRef, error) {
	bufs := store.NewFreeList(2*b.o.Workers+4, func() *[]byte { s := make([]byte, b.cs); return &s })
	work := make(chan *job, b.o.Workers)
	ordered := make(chan *job, 2*b.o.Workers+2)
	for range b.o.Workers {
		go func() {
			// Chunks may be slices of the source's mapping: a source that
			// shrinks underneath faults, which becomes an error, not a crash.
			debug.SetPanicOnFault(true)
			for j := range work {
				j.err = b.process(ctx, j, bufs)
				if j.buf == nil {
					// Done with these mapped pages: unmap them from this
					// process (the page cache keeps them), or the source
					// would count in full towards the process's RSS.
					_ = unix.Madvise(j.data, unix.MADV_DONTNEED)
				}
				close(j.done)
			}
		}()
	}
	go func() {
		defer close(ordered)
		defer close(work)
		if err := b.produce(ctx, used, bufs, work, ordered); err != nil {
			cancel(err)
		}
	}()
	var refs []manifest.ChunkRef
	var firstErr error
	for j := range ordered {
		<-j.done
		if j.buf != nil {
			bufs.Put(j.buf)
		}
		if firstErr != nil {
			continue // drain
		}
		if j.err != nil {
			firstErr = j.err
			cancel(j.err)
			continue
		}
		refs = appendRef(refs, j)
	}
	// The cause that stopped everything (a read error of the producer, or
	// the first failed save) beats the cancellations it set off.
	if cause := context.Cause(ctx); cause != nil {
		return nil, cause
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return refs, nil
}

// process hashes one chunk and saves it unless it is all zero or the
// parent point holds it at the same offset.
func (b *imager) process(ctx context.Context, j *job, bufs *store.FreeList[*[]byte]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("read at %d: the source changed size or went away while it was read (%v)", j.off, r)
		}
	}()
	data := j.data
	if allZero(data) {
		j.hole = true
		return nil
	}
	j.id = b.keys.ChunkID(data)
	if b.prev.at(j.off, j.n) == j.id {
		b.saver.Known() // the parent point holds it: no lookup
		return nil
	}
	if j.buf == nil { // mapped: compress from a copy, never from the mapping
		buf := bufs.Get()
		defer bufs.Put(buf)
		data = append((*buf)[:0], data...)
	}
	_, _, err = b.saver.SaveID(ctx, pack.TypeData, j.id, data)
	return err
}

// refIndex finds the parent point's chunk at a disk offset.
type refIndex struct {
	refs   []manifest.ChunkRef
	starts []int64
}

// parentRefs loads the chunk refs of the parent image point, or nil when
// it used another chunk size (its chunks then never line up with ours).
func parentRefs(ctx context.Context, repo *store.Repo, id string, cs int64) (*refIndex, error) {
	p, err := repo.FindPoint(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("parent point: %w", err)
	}
	img, err := Load(ctx, repo, p)
	if err != nil {
		return nil, fmt.Errorf("parent point: %w", err)
	}
	if img.Info.ChunkSize != cs {
		return nil, nil
	}
	x := &refIndex{refs: img.Refs, starts: make([]int64, len(img.Refs))}
	var off int64
	for i, c := range img.Refs {
		x.starts[i] = off
		off += int64(c.Size)
	}
	return x, nil
}

// at returns the ID of the parent's chunk that starts at off with length
// n, or the zero ID.
func (x *refIndex) at(off, n int64) crypt.ID {
	if x == nil {
		return crypt.ID{}
	}
	i := sort.Search(len(x.starts), func(i int) bool { return x.starts[i] >= off })
	if i == len(x.starts) || x.starts[i] != off || int64(x.refs[i].Size) != n || x.refs[i].Hole() {
		return crypt.ID{}
	}
	return crypt.ID(x.refs[i].ID)
}

// appendRef adds a chunk or hole to refs, merging neighbouring holes.
func appendRef(refs []manifest.ChunkRef, j *job) []manifest.ChunkRef {
	if !j.hole {
		return append(refs, manifest.ChunkRef{ID: j.id, Size: uint32(j.n)})
	}
	if n := len(refs); n > 0 && refs[n-1].Hole() && int64(refs[n-1].Size)+j.n <= maxHoleRun {
		refs[n-1].Size += uint32(j.n)
		return refs
	}
	return append(refs, manifest.ChunkRef{Size: uint32(j.n)})
}

// produce walks the disk in chunk steps: chunks without used bytes become
// hole jobs, the others are read (unused parts zeroed) and queued.
func (b *imager) produce(ctx context.Context, used []usedmap.Extent, bufs *store.FreeList[*[]byte], work, ordered chan<- *job) error {
	ui := 0
	for off := int64(0); off < b.size; {
		if err := ctx.Err(); err != nil {
			return nil
		}
		for ui < len(used) && used[ui].Off+used[ui].Len <= off {
			ui++
		}
		if ui == len(used) || used[ui].Off >= off+b.cs { // no used byte in this chunk
			next := b.size
			if ui < len(used) {
				next = used[ui].Off / b.cs * b.cs
			}
			n := min(next, b.size) - off
			for n > 0 { // hole runs, each within a ref's size limit
				h := min(n, maxHoleRun)
				ordered <- doneJob(&job{off: off, n: h, hole: true})
				off, n = off+h, n-h
			}
			continue
		}
		n := min(b.cs, b.size-off)
		j := &job{off: off, n: n, done: make(chan struct{})}
		if m := b.mapped(off, n, used[ui]); m != nil {
			j.data = m
		} else {
			j.buf = bufs.Get()
			if err := b.readChunk((*j.buf)[:n], off, used[ui:]); err != nil {
				bufs.Put(j.buf)
				return err
			}
			j.data = (*j.buf)[:n]
		}
		ordered <- j
		work <- j
		off += n
	}
	return nil
}

func doneJob(j *job) *job {
	j.done = make(chan struct{})
	close(j.done)
	return j
}

// mapped returns the chunk [off, off+n) as a slice of the source's
// mapping when one used extent covers all of it, else nil (then it is
// read, with unused parts zeroed). Hashing from the mapping saves copying
// every byte of the disk through read(2).
func (b *imager) mapped(off, n int64, u usedmap.Extent) []byte {
	if b.mem == nil || u.Off > off || u.Off+u.Len < off+n || off+n > int64(len(b.mem)) {
		return nil
	}
	b.read.Add(n)
	return b.mem[off : off+n : off+n]
}

// readGap is the largest unused gap read through rather than skipped.
const readGap = 32 << 10

// readChunk fills buf (the chunk at off) with the used bytes of the disk,
// zeros elsewhere. used starts at the first extent that may overlap.
func (b *imager) readChunk(buf []byte, off int64, used []usedmap.Extent) error {
	end := off + int64(len(buf))
	pos := off // bytes before pos are filled
	for i := 0; i < len(used) && used[i].Off < end; i++ {
		lo, hi := max(used[i].Off, off), min(used[i].Off+used[i].Len, end)
		if hi <= lo {
			continue
		}
		// coalesce with following extents separated by small gaps
		for i+1 < len(used) && used[i+1].Off < end && used[i+1].Off-hi <= readGap {
			i++
			hi = min(used[i].Off+used[i].Len, end)
		}
		clear(buf[pos-off : lo-off])
		if _, err := b.src.ReadAt(buf[lo-off:hi-off], lo); err != nil {
			return err
		}
		b.zeroGaps(buf, off, lo, hi, used)
		b.read.Add(hi - lo)
		pos = hi
	}
	clear(buf[pos-off:])
	return nil
}

// zeroGaps clears the unused gaps inside [lo, hi) that a coalesced read
// brought in, so a chunk's content never depends on deleted data.
func (b *imager) zeroGaps(buf []byte, off, lo, hi int64, used []usedmap.Extent) {
	prevEnd := lo
	for _, u := range used {
		if u.Off >= hi {
			break
		}
		if u.Off+u.Len <= lo {
			continue
		}
		if u.Off > prevEnd {
			clear(buf[prevEnd-off : u.Off-off])
		}
		prevEnd = max(prevEnd, min(u.Off+u.Len, hi))
	}
	if prevEnd < hi {
		clear(buf[prevEnd-off : hi-off])
	}
}

func (b *imager) progress(ctx context.Context, start time.Time) func() {
	if b.o.Progress == nil {
		return func() {}
	}
	snap := func(done bool) Progress {
		return Progress{Done: b.read.Load(), Total: b.total, New: b.saver.Stats().NewBytes, Elapsed: time.Since(start), Finished: done}
	}
	return ticker(ctx, func() { b.o.Progress(snap(false)) }, func() { b.o.Progress(snap(true)) })
}

// writeManifest stores the point's manifest: disk.img and image.json.
func (b *imager) writeManifest(ctx context.Context, repo *store.Repo, pt *store.Point, refs []manifest.ChunkRef, info *Info) error {
	doc, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	id, _, err := b.saver.Save(ctx, pack.TypeData, doc)
	if err != nil {
		return err
	}
	now := repo.Now().UnixNano()
	mw := repo.NewManifestWriter(ctx, b.saver)
	w := manifest.NewWriter(mw)
	entries := []*manifest.Entry{
		{Path: DiskEntry, Kind: manifest.KindFile, Mode: 0o600, Size: b.size, MTime: now, CTime: now, Nlink: 1, Chunks: refs},
		{Path: InfoEntry, Kind: manifest.KindFile, Mode: 0o600, Size: int64(len(doc)), MTime: now, CTime: now, Nlink: 1,
			Chunks: []manifest.ChunkRef{{ID: id, Size: uint32(len(doc))}}},
	}
	for _, e := range entries {
		if err := w.Write(e); err != nil {
			mw.Close()
			return err
		}
	}
	if err := w.Close(); err != nil {
		mw.Close()
		return err
	}
	pt.Manifest, err = mw.Close()
	pt.Entries = w.Count()
	return err
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ticker calls tick every 200 ms until the returned stop, which calls last.
func ticker(ctx context.Context, tick, last func()) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				tick()
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		last()
	}
}
