package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"bes/store"
	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/manifest"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	Target    string
	Includes  []string // manifest paths (leading '/' allowed); empty means everything
	Overwrite bool     // replace existing files; without it an existing file is never touched
	Workers   int      // default max(2, GOMAXPROCS)
	Buffered  bool     // never use O_DIRECT for large files
	Progress  func(RestoreProgress)
	Logger    *slog.Logger
}

// RestoreProgress is a snapshot of a running restore.
type RestoreProgress struct {
	Bytes, Total int64
	Elapsed      time.Duration
	Done         bool
}

// RestoreSummary reports what Restore did.
type RestoreSummary struct {
	Files    int64    `json:"files"`
	Dirs     int64    `json:"dirs"`
	Symlinks int64    `json:"symlinks"`
	Bytes    int64    `json:"bytes"`
	Skipped  []string `json:"skipped_existing,omitempty"`
	Errors   []string `json:"errors,omitempty"`
	Seconds  float64  `json:"seconds"`
}

type fileRec struct {
	path string
	meta manifest.Entry // without chunks
}

// fileState is a regular file being restored. Workers create it on its
// first chunk, write chunks with pwrite, and set its metadata on the open
// descriptor when its last chunk is in.
type fileState struct {
	fileRec
	mu        sync.Mutex
	f         *os.File
	created   bool
	failed    bool
	remaining int                     // chunk targets not yet written
	chunks    int                     // chunk refs in all (holes included)
	holes     bool                    // some refs are holes: pre-size the file
	direct    bool                    // written with O_DIRECT (see direct.go)
	partial   map[int64]*partialBlock // direct: unaligned block edges not yet complete
	inflight  sync.WaitGroup          // direct: background writes not yet done
	aerr      atomic.Pointer[error]   // direct: first background write error
}

type target struct {
	file int32
	off  int64
}

// maxOpenFiles bounds descriptors kept open between chunks of big files.
const maxOpenFiles = 256

type restorer struct {
	repo    *store.Repo
	dc      *dirCache
	o       RestoreOptions
	files   []*fileState
	dirs    []fileRec
	links   []fileRec
	made    map[string]bool // directories known to exist; true when this restore created them
	plan    map[crypt.ID][]target
	sum     RestoreSummary
	errMu   sync.Mutex
	written atomic.Int64
	open    atomic.Int64
	asRoot  bool
	umask   uint32
	dbufs   *store.FreeList[*[]byte] // aligned buffers for direct writes
	aw      chan struct{}            // direct writes in flight (see writeAsync)
}

// Restore writes point p (or the included parts of it) under o.Target.
func Restore(ctx context.Context, repo *store.Repo, p *store.Point, o RestoreOptions) (*RestoreSummary, error) {
	start := time.Now()
	if o.Target == "" {
		return nil, errors.New("restore: no target directory")
	}
	if err := os.MkdirAll(o.Target, 0o700); err != nil {
		return nil, fmt.Errorf("restore: target: %w", err)
	}
	dc, err := newDirCache(o.Target, 4096)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer dc.close()
	r := &restorer{repo: repo, dc: dc, o: o, plan: map[crypt.ID][]target{}, made: map[string]bool{},
		asRoot: os.Geteuid() == 0, umask: processUmask(), dbufs: newDirectBufs(), aw: make(chan struct{}, asyncWrites)}
	incl, err := normIncludes(o.Includes)
	if err != nil {
		return nil, err
	}
	var total int64
	matched := make([]bool, len(incl))
	err = repo.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		if included(incl, e.Path) {
			total += r.plan1(e)
			for i, in := range incl {
				matched[i] = matched[i] || e.Path == in || strings.HasPrefix(e.Path, in+"/")
			}
		}
		return nil
	})
	if err != nil {
		return &r.sum, fmt.Errorf("restore: %w", err)
	}
	for i, ok := range matched {
		if !ok {
			return &r.sum, fmt.Errorf("restore: --include /%s matches nothing in point %s", incl[i], p.ID)
		}
	}
	stop := r.progress(ctx, total, start)
	err = r.writeData(ctx)
	stop()
	if err != nil {
		return &r.sum, fmt.Errorf("restore: %w", err)
	}
	r.finish()
	r.sum.Bytes = r.written.Load()
	r.sum.Seconds = time.Since(start).Seconds()
	if len(r.sum.Errors) > 0 {
		return &r.sum, fmt.Errorf("restore: %d errors, first: %s", len(r.sum.Errors), r.sum.Errors[0])
	}
	return &r.sum, nil
}

func normIncludes(in []string) ([]string, error) {
	var out []string
	for _, s := range in {
		c := strings.Trim(path.Clean("/"+s), "/")
		if c == "" {
			return nil, nil // "/" includes everything
		}
		if err := manifest.ValidPath(c); err != nil {
			return nil, fmt.Errorf("include %q: %w", s, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// included: the path is an included path, below one, or an ancestor of one.
func included(incl []string, p string) bool {
	if len(incl) == 0 {
		return true
	}
	for _, i := range incl {
		if p == i || strings.HasPrefix(p, i+"/") || strings.HasPrefix(i, p+"/") {
			return true
		}
	}
	return false
}

func (r *restorer) addErr(format string, args ...any) {
	r.errMu.Lock()
	r.sum.Errors = append(r.sum.Errors, fmt.Sprintf(format, args...))
	r.errMu.Unlock()
}

// mkdir makes sure directory p exists and records whether this restore
// created it (nothing can pre-exist inside a directory we created).
func (r *restorer) mkdir(p string) error {
	if _, ok := r.made[p]; ok {
		return nil
	}
	if parent := path.Dir(p); parent != "." {
		if err := r.mkdir(parent); err != nil {
			return err
		}
	}
	return r.dc.at(p, func(dirfd int, name string) error {
		err := unix.Mkdirat(dirfd, name, 0o700)
		switch {
		case err == nil:
			r.made[p] = true
		case err == unix.EEXIST:
			var st unix.Stat_t
			if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return errors.New("exists and is not a directory")
			}
			r.made[p] = false
		default:
			return err
		}
		return nil
	})
}

// clearExisting handles something already at p: without Overwrite (or when
// it is a directory) it is left alone and reported skipped; with Overwrite
// it is removed.
func (r *restorer) clearExisting(p string) (skip bool, err error) {
	err = r.dc.at(p, func(dirfd int, name string) error {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				return nil
			}
			return err
		}
		if !r.o.Overwrite || st.Mode&unix.S_IFMT == unix.S_IFDIR {
			skip = true
			return nil
		}
		return unix.Unlinkat(dirfd, name, 0)
	})
	if skip {
		r.sum.Skipped = append(r.sum.Skipped, p)
	}
	return skip, err
}

// plan1 records one manifest entry: directories are made at once, files
// and their chunks are planned for the workers, symlinks wait for the end.
// It returns the bytes planned.
func (r *restorer) plan1(e *manifest.Entry) int64 {
	meta := *e
	meta.Chunks = nil
	switch e.Kind {
	case manifest.KindDir:
		if err := r.mkdir(e.Path); err != nil {
			r.addErr("%s: %v", e.Path, err)
			return 0
		}
		r.dirs = append(r.dirs, fileRec{e.Path, meta})
		r.sum.Dirs++
		return 0
	case manifest.KindSymlink:
		r.links = append(r.links, fileRec{e.Path, meta})
		return 0
	case manifest.KindFile:
	default:
		r.addErr("%s: %s not restored (special file)", e.Path, e.Kind)
		return 0
	}
	dir := path.Dir(e.Path)
	if dir != "." {
		if err := r.mkdir(dir); err != nil {
			r.addErr("%s: %v", e.Path, err)
			return 0
		}
	}
	if dir == "." || !r.made[dir] { // the directory was there before: look before writing
		if skip, err := r.clearExisting(e.Path); skip || err != nil {
			if err != nil {
				r.addErr("%v", err)
			}
			return 0
		}
	}
	idx := int32(len(r.files))
	fs := &fileState{fileRec: fileRec{e.Path, meta}, chunks: len(e.Chunks), direct: !r.o.Buffered && e.Size >= directMin}
	r.files = append(r.files, fs)
	r.sum.Files++
	var off int64
	for _, c := range e.Chunks {
		if c.Hole() { // never stored: stays a hole of the pre-sized file
			fs.holes = true
		} else {
			r.plan[c.ID] = append(r.plan[c.ID], target{idx, off})
			fs.remaining++
		}
		off += int64(c.Size)
	}
	return e.Size
}

func (r *restorer) progress(ctx context.Context, total int64, start time.Time) func() {
	if r.o.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.o.Progress(RestoreProgress{Bytes: r.written.Load(), Total: total, Elapsed: time.Since(start)})
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
		r.o.Progress(RestoreProgress{Bytes: r.written.Load(), Total: total, Elapsed: time.Since(start), Done: true})
	}
}

// writeData groups the planned chunks by pack and has workers read each
// pack once, in offset order, writing every chunk to all its targets; then
// the files without data are created, also in parallel.
func (r *restorer) writeData(ctx context.Context) error {
	missing, err := store.Fetch(ctx, r.repo, r.plan, store.FetchOptions{Workers: r.o.Workers}, r.writeChunk,
		func(l catalog.Location, err error) error {
			r.chunkFailed(r.plan[crypt.ID(l.ID)], err)
			return nil
		})
	if err != nil {
		return err
	}
	for _, id := range missing {
		r.chunkFailed(r.plan[id], fmt.Errorf("chunk %s: %w", id.String()[:16], store.ErrMissingChunk))
	}
	// Files the data phase never opened: empty, all holes, or failed.
	return store.Parallel(ctx, r.workers(), len(r.files), func(i int) error {
		fs := r.files[i]
		fs.mu.Lock()
		defer fs.mu.Unlock()
		if !fs.created && !fs.failed && r.openFile(fs) {
			r.closeFile(fs)
		}
		return nil
	})
}

func (r *restorer) workers() int {
	if r.o.Workers > 0 {
		return r.o.Workers
	}
	return max(2, runtime.GOMAXPROCS(0))
}

func (r *restorer) chunkFailed(ts []target, err error) {
	for _, t := range ts {
		fs := r.files[t.file]
		r.addErr("%s: %v", fs.path, err)
		fs.mu.Lock()
		fs.failed = true
		fs.remaining--
		if fs.remaining == 0 && fs.f != nil {
			r.closeFile(fs)
		}
		fs.mu.Unlock()
	}
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

// openFile creates (first time) or reopens a file; caller holds fs.mu.
func (r *restorer) openFile(fs *fileState) bool {
	flags := os.O_WRONLY
	if !fs.created {
		flags |= os.O_CREATE | os.O_EXCL
	}
	if fs.direct {
		flags |= syscall.O_DIRECT
	}
	f, err := r.dc.openFile(fs.path, flags, createPerm(fs.meta.Mode))
	if fs.direct && isDirectUnsupported(err) {
		// Some file systems create the file and then refuse O_DIRECT: open
		// it plainly (without O_EXCL, it may exist now; it is ours).
		fs.direct = false
		f, err = r.dc.openFile(fs.path, flags&^(syscall.O_DIRECT|os.O_EXCL), createPerm(fs.meta.Mode))
	}
	if err == nil && !fs.created && fs.meta.Size > 0 && (fs.chunks > 1 || fs.direct || fs.holes) {
		err = f.Truncate(fs.meta.Size) // pre-sized: all-zero chunks stay holes
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		r.addErr("%s: %v", fs.path, err)
		fs.failed = true
		return false
	}
	fs.f, fs.created = f, true
	r.open.Add(1)
	return true
}

// closeFile sets the file's owner, mode and times on its descriptor and
// closes it (or just closes it when it failed); caller holds fs.mu.
func (r *restorer) closeFile(fs *fileState) {
	fs.inflight.Wait()
	if p := fs.aerr.Load(); p != nil && !fs.failed {
		r.addErr("%s: %v", fs.path, *p)
		fs.failed = true
	}
	if fs.direct && !fs.failed {
		if err := r.finishDirect(fs); err != nil {
			r.addErr("%s: %v", fs.path, err)
			fs.failed = true
		}
	}
	if fs.remaining == 0 && !fs.failed {
		if err := setFileMeta(fs.f, &fs.meta, r.asRoot, createPerm(fs.meta.Mode)&^r.umask); err != nil {
			r.addErr("%s: %v", fs.path, err)
		}
	}
	if err := fs.f.Close(); err != nil {
		r.addErr("%s: %v", fs.path, err)
	}
	fs.f = nil
	r.open.Add(-1)
}

func (r *restorer) writeChunk(l catalog.Location, data []byte) error {
	zero := allZero(data)
	for _, t := range r.plan[crypt.ID(l.ID)] {
		fs := r.files[t.file]
		fs.mu.Lock()
		if !fs.failed && (fs.f != nil || r.openFile(fs)) {
			var err error
			switch {
			case fs.direct:
				err = r.writeDirect(fs, t.off, data, zero)
			case !zero:
				_, err = fs.f.WriteAt(data, t.off)
			case fs.chunks == 1: // not pre-sized: a hole of the chunk's size
				err = fs.f.Truncate(fs.meta.Size)
			}
			if err != nil {
				r.addErr("%s: %v", fs.path, err)
				fs.failed = true
			}
			r.written.Add(int64(len(data)))
		}
		fs.remaining--
		if fs.f != nil && (fs.remaining == 0 || (!fs.direct && r.open.Load() > maxOpenFiles)) {
			r.closeFile(fs)
		}
		fs.mu.Unlock()
	}
	return nil
}

// finish creates symlinks, then sets directory metadata deepest first.
func (r *restorer) finish() {
	for i := range r.links {
		l := &r.links[i]
		if dir := path.Dir(l.path); dir != "." {
			if err := r.mkdir(dir); err != nil {
				r.addErr("%s: %v", l.path, err)
				continue
			}
		}
		if skip, err := r.clearExisting(l.path); skip || err != nil {
			if err != nil {
				r.addErr("%v", err)
			}
			continue
		}
		err := r.dc.at(l.path, func(dirfd int, name string) error {
			if err := unix.Symlinkat(l.meta.Target, dirfd, name); err != nil {
				return err
			}
			return r.setMetaAt(dirfd, name, &l.meta, true)
		})
		if err != nil {
			r.addErr("%v", err)
			continue
		}
		r.sum.Symlinks++
	}
	for i := len(r.dirs) - 1; i >= 0; i-- {
		d := &r.dirs[i]
		if err := r.dc.at(d.path, func(dirfd int, name string) error { return r.setMetaAt(dirfd, name, &d.meta, false) }); err != nil {
			r.addErr("%v", err)
		}
	}
}

// setMetaAt sets owner (as root), mode (not on symlinks) and mtime of
// name in dirfd without following a symlink.
func (r *restorer) setMetaAt(dirfd int, name string, e *manifest.Entry, link bool) error {
	if r.asRoot {
		if err := unix.Fchownat(dirfd, name, int(e.UID), int(e.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if !link {
		if err := unix.Fchmodat(dirfd, name, e.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.MTime), unix.NsecToTimespec(e.MTime)}
	if err := unix.UtimesNanoAt(dirfd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}
