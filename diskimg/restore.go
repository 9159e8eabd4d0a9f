package diskimg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"bes/diskimg/layout"
	"bes/store"
	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/manifest"
)

// Errors of an image restore.
var (
	ErrNotImage      = errors.New("not an image point")
	ErrTargetMounted = errors.New("target is mounted")
	ErrTargetExists  = errors.New("target exists")
	ErrVerify        = errors.New("verification failed")
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	Target     string // a file (created if missing) or a block device
	Overwrite  bool   // replace an existing non-empty file or a device's contents
	Verify     bool   // re-read and re-hash everything written
	ZeroUnused bool   // devices: write zeros over the unused space too
	// Sync flushes a file target to disk before Restore returns. Devices
	// are always flushed (and so is anything verified); a file, like cp,
	// dd and restic's output, is left to the kernel's writeback otherwise.
	Sync     bool
	Workers  int // default max(2, GOMAXPROCS)
	Progress func(Progress)
	Logger   *slog.Logger
}

// RestoreSummary reports a finished image restore.
type RestoreSummary struct {
	Target     string  `json:"target"`
	DiskSize   int64   `json:"disk_size"`
	TargetSize int64   `json:"target_size"`
	Written    int64   `json:"bytes_written"`
	Relocated  bool    `json:"gpt_relocated"`
	Verified   bool    `json:"verified"`
	Seconds    float64 `json:"seconds"`
}

// Image is an image point's content: its Info and the disk's chunk refs.
type Image struct {
	Info *Info
	Refs []manifest.ChunkRef
}

// Load reads an image point's manifest and Info.
func Load(ctx context.Context, repo *store.Repo, p *store.Point) (*Image, error) {
	if p.Kind != store.KindImage {
		return nil, fmt.Errorf("point %s: %w (kind %s)", p.ID, ErrNotImage, p.Kind)
	}
	img := &Image{}
	var infoRef *manifest.ChunkRef
	var diskSize int64 = -1
	err := repo.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		switch e.Path {
		case DiskEntry:
			img.Refs, diskSize = append([]manifest.ChunkRef(nil), e.Chunks...), e.Size
		case InfoEntry:
			if len(e.Chunks) == 1 {
				c := e.Chunks[0]
				infoRef = &c
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("point %s: %w", p.ID, err)
	}
	if diskSize < 0 || infoRef == nil || infoRef.Hole() {
		return nil, fmt.Errorf("point %s: %w (no %s or %s in its manifest)", p.ID, ErrNotImage, DiskEntry, InfoEntry)
	}
	doc, err := repo.LoadBlob(ctx, crypt.ID(infoRef.ID), nil)
	if err != nil {
		return nil, fmt.Errorf("point %s: %s: %w", p.ID, InfoEntry, err)
	}
	if img.Info, err = decodeInfo(doc); err != nil {
		return nil, fmt.Errorf("point %s: %w", p.ID, err)
	}
	if img.Info.Table.DiskSize != diskSize {
		return nil, fmt.Errorf("point %s: %s says %d bytes, %s holds %d", p.ID, InfoEntry, img.Info.Table.DiskSize, DiskEntry, diskSize)
	}
	return img, nil
}

// Restore writes image point p to o.Target.
func Restore(ctx context.Context, repo *store.Repo, p *store.Point, o RestoreOptions) (*RestoreSummary, error) {
	start := time.Now()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	img, err := Load(ctx, repo, p)
	if err != nil {
		return nil, fmt.Errorf("image restore: %w", err)
	}
	tbl := img.Info.Table
	t, err := openTarget(o, tbl.DiskSize)
	if err != nil {
		return nil, fmt.Errorf("image restore: %w", err)
	}
	defer t.close()
	t.openDirect(o.Target)
	sum := &RestoreSummary{Target: o.Target, DiskSize: tbl.DiskSize, TargetSize: t.size}
	if t.size < tbl.DiskSize {
		if err := tbl.CheckFits(t.size); err != nil {
			return nil, fmt.Errorf("image restore to %s: %w", o.Target, err)
		}
	}
	w := &imgWriter{t: t, o: o, refs: img.Refs, aw: make(chan struct{}, asyncWrites),
		bufs: store.NewFreeList(8, func() []byte { return alignedBuf(int(img.Info.ChunkSize)) })}
	if err := w.write(ctx, repo, start); err != nil {
		return nil, fmt.Errorf("image restore to %s: %w", o.Target, err)
	}
	durable := t.device || o.Sync || o.Verify
	if durable {
		if err := t.f.Sync(); err != nil {
			return nil, fmt.Errorf("image restore to %s: sync: %w", o.Target, err)
		}
	}
	sum.Written = w.written.Load()
	if o.Verify {
		if err := w.verify(ctx, repo, tbl); err != nil {
			return nil, fmt.Errorf("image restore to %s: %w", o.Target, err)
		}
		sum.Verified = true
	}
	if t.size != tbl.DiskSize && tbl.Kind == layout.KindGPT {
		if err := layout.Relocate(t.f, tbl, t.size); err != nil {
			return nil, fmt.Errorf("image restore to %s: moving the GPT to the new end: %w", o.Target, err)
		}
		if durable {
			if err := t.f.Sync(); err != nil {
				return nil, fmt.Errorf("image restore to %s: sync: %w", o.Target, err)
			}
		}
		sum.Relocated = true
	}
	if _, err := layout.Read(t.f, t.size, tbl.LogicalSector, tbl.PhysicalSector); err != nil && tbl.Kind != layout.KindNone {
		return nil, fmt.Errorf("image restore to %s: the restored partition table does not read back: %w", o.Target, err)
	}
	sum.Seconds = time.Since(start).Seconds()
	return sum, nil
}

type target struct {
	f      *os.File
	direct *os.File // the same file opened with O_DIRECT, or nil
	size   int64
	device bool
}

// directAlign is the offset and length alignment of direct writes.
const directAlign = 4096

// openDirect opens the target a second time for direct I/O: whole chunks
// go straight from the decoder to the disk, with no page-cache copy and no
// dirty-page throttling behind the writes of other programs. File systems
// without O_DIRECT (tmpfs) just keep the buffered path.
func (t *target) openDirect(path string) {
	if f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0); err == nil {
		t.direct = f
	}
}

func (t *target) close() {
	if t.direct != nil {
		t.direct.Close()
	}
	t.f.Close()
}

// alignedBuf returns n bytes starting on a directAlign boundary.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(&b[0])) % directAlign); r != 0 {
		off = directAlign - r
	}
	return b[off : off+n : off+n]
}

// openTarget opens (or creates) the restore target and decides its size.
func openTarget(o RestoreOptions, diskSize int64) (*target, error) {
	if o.Target == "" {
		return nil, errors.New("no target given")
	}
	ms, err := Mounts(o.Target)
	if err != nil {
		return nil, err
	}
	if len(ms) > 0 {
		return nil, fmt.Errorf("%s: %w at %s (unmount it first)", o.Target, ErrTargetMounted, ms[0].Point)
	}
	st, err := os.Stat(o.Target)
	switch {
	case errors.Is(err, os.ErrNotExist):
		f, err := os.OpenFile(o.Target, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if err := f.Truncate(diskSize); err != nil {
			f.Close()
			return nil, err
		}
		return &target{f: f, size: diskSize}, nil
	case err != nil:
		return nil, err
	case st.Mode().IsRegular():
		if st.Size() > 0 && !o.Overwrite {
			return nil, fmt.Errorf("%s: %w (give --overwrite to replace it)", o.Target, ErrTargetExists)
		}
		f, err := os.OpenFile(o.Target, os.O_RDWR, 0)
		if err != nil {
			return nil, err
		}
		size := st.Size()
		if size == 0 {
			size = diskSize
		}
		// Start from nothing: old contents must not show through the holes.
		err = f.Truncate(0)
		if err == nil {
			err = f.Truncate(size)
		}
		if err != nil {
			f.Close()
			return nil, err
		}
		return &target{f: f, size: size}, nil
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		if !o.Overwrite {
			return nil, fmt.Errorf("%s: %w: restoring overwrites the whole device (give --overwrite)", o.Target, ErrTargetExists)
		}
		f, err := os.OpenFile(o.Target, os.O_RDWR|unix.O_EXCL, 0)
		if err != nil {
			return nil, err
		}
		n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKGETSIZE64)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: size: %w", o.Target, err)
		}
		return &target{f: f, size: int64(n), device: true}, nil
	}
	return nil, fmt.Errorf("%s: not a regular file or block device", o.Target)
}

type imgWriter struct {
	t       *target
	o       RestoreOptions
	refs    []manifest.ChunkRef
	written atomic.Int64
	bufs    *store.FreeList[[]byte] // aligned buffers for direct writes
	aw      chan struct{}           // direct writes in flight
	wg      sync.WaitGroup
	werr    atomic.Pointer[error] // first error of a background write
}

// asyncWrites bounds the direct writes in flight: the worker that decoded a
// chunk goes on with the next while the disk takes this one.
const asyncWrites = 4

// wait waits for the background writes and returns the first error.
func (w *imgWriter) wait() error {
	w.wg.Wait()
	if p := w.werr.Load(); p != nil {
		return *p
	}
	return nil
}

// writeAt writes one chunk's bytes at off: directly when the target was
// opened for it and the range is aligned, through the page cache otherwise.
func (w *imgWriter) writeAt(data []byte, off int64) error {
	if w.t.direct != nil && off%directAlign == 0 && len(data)%directAlign == 0 {
		buf := w.bufs.Get()
		if cap(buf) < len(data) {
			buf = alignedBuf(len(data))
		}
		buf = buf[:len(data)]
		copy(buf, data)
		w.aw <- struct{}{}
		w.wg.Add(1)
		go func() {
			defer func() { <-w.aw; w.wg.Done() }()
			_, err := w.t.direct.WriteAt(buf, off)
			if errors.Is(err, unix.EINVAL) { // not for direct I/O after all
				_, err = w.t.f.WriteAt(buf, off)
			}
			w.bufs.Put(buf)
			if err != nil {
				err = fmt.Errorf("write at %d: %w", off, err)
				w.werr.CompareAndSwap(nil, &err)
			}
		}()
		return nil
	}
	_, err := w.t.f.WriteAt(data, off)
	return err
}

// write puts every stored chunk at its offsets (and zeros over the holes
// of a device when asked).
func (w *imgWriter) write(ctx context.Context, repo *store.Repo, start time.Time) error {
	want := map[crypt.ID][]int64{}
	var total, off int64
	var holes [][2]int64
	for _, c := range w.refs {
		n := min(int64(c.Size), w.t.size-off)
		if n > 0 {
			if c.Hole() {
				holes = append(holes, [2]int64{off, n})
			} else {
				want[c.ID] = append(want[c.ID], off)
				total += n
			}
		}
		off += int64(c.Size)
	}
	stop := func() {}
	if w.o.Progress != nil {
		snap := func(done bool) Progress {
			return Progress{Done: w.written.Load(), Total: total, Elapsed: time.Since(start), Finished: done}
		}
		stop = ticker(ctx, func() { w.o.Progress(snap(false)) }, func() { w.o.Progress(snap(true)) })
	}
	defer stop()
	var failed atomic.Pointer[error]
	order := func(id crypt.ID) int64 { return want[id][0] } // write the disk front to back
	missing, err := store.Fetch(ctx, repo, want, store.FetchOptions{Workers: w.o.Workers, Order: order},
		func(l catalog.Location, data []byte) error {
			for _, o := range want[crypt.ID(l.ID)] {
				n := min(int64(len(data)), w.t.size-o)
				if err := w.writeAt(data[:n], o); err != nil {
					return fmt.Errorf("write at %d: %w", o, err)
				}
				w.written.Add(n)
			}
			return nil
		},
		func(l catalog.Location, err error) error {
			e := fmt.Errorf("chunk %s: %w", crypt.ID(l.ID).String()[:16], err)
			failed.CompareAndSwap(nil, &e)
			return e
		})
	if werr := w.wait(); err == nil {
		err = werr
	}
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d chunks missing, first %s: %w", len(missing), missing[0].String()[:16], store.ErrMissingChunk)
	}
	if p := failed.Load(); p != nil {
		return *p
	}
	if w.t.device && w.o.ZeroUnused {
		return w.zeroHoles(holes)
	}
	return nil
}

// zeroHoles writes zeros over the unused ranges of a device target.
func (w *imgWriter) zeroHoles(holes [][2]int64) error {
	zero := make([]byte, 1<<20)
	for _, h := range holes {
		for off, end := h[0], h[0]+h[1]; off < end; {
			n := min(int64(len(zero)), end-off)
			if _, err := w.t.f.WriteAt(zero[:n], off); err != nil {
				return fmt.Errorf("zeroing at %d: %w", off, err)
			}
			off += n
		}
	}
	return nil
}

// verify drops the target's cached pages and re-reads every stored chunk
// from it, comparing its keyed hash with the chunk's ID.
func (w *imgWriter) verify(ctx context.Context, repo *store.Repo, tbl *layout.Table) error {
	_ = unix.Fadvise(int(w.t.f.Fd()), 0, 0, unix.FADV_DONTNEED)
	keys := repo.Keys()
	buf := make([]byte, 4<<20)
	var off int64
	for _, c := range w.refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int64(c.Size)
		if !c.Hole() && off+n <= w.t.size {
			if n > int64(len(buf)) {
				buf = make([]byte, n)
			}
			if _, err := w.t.f.ReadAt(buf[:n], off); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: re-reading at %d: %v", ErrVerify, off, err)
			}
			if keys.ChunkID(buf[:n]) != crypt.ID(c.ID) {
				return fmt.Errorf("%w: the %d bytes at offset %d differ from what was stored", ErrVerify, n, off)
			}
		}
		off += n
	}
	return nil
}
