package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

type target struct {
	file int32
	off  int64
}

type restorer struct {
	repo    *store.Repo
	root    *os.Root
	o       RestoreOptions
	files   []fileRec
	dirs    []fileRec
	links   []fileRec
	plan    map[crypt.ID][]target
	sum     RestoreSummary
	errMu   sync.Mutex
	written atomic.Int64
	asRoot  bool
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
	root, err := os.OpenRoot(o.Target)
	if err != nil {
		return nil, fmt.Errorf("restore: target: %w", err)
	}
	defer root.Close()
	r := &restorer{repo: repo, root: root, o: o, plan: map[crypt.ID][]target{}, asRoot: os.Geteuid() == 0}
	incl, err := normIncludes(o.Includes)
	if err != nil {
		return nil, err
	}
	var total int64
	err = repo.WalkManifest(ctx, p, func(e *manifest.Entry) error {
		if !included(incl, e.Path) {
			return nil
		}
		n, err := r.create(e)
		total += n
		return err
	})
	if err != nil {
		return &r.sum, fmt.Errorf("restore: %w", err)
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

// create makes directories at once and files empty but full-sized (so
// all-zero chunks stay holes), and plans their chunks. It returns the bytes
// planned.
func (r *restorer) create(e *manifest.Entry) (int64, error) {
	meta := *e
	meta.Chunks = nil
	switch e.Kind {
	case manifest.KindDir:
		if err := r.root.MkdirAll(e.Path, 0o700); err != nil {
			r.addErr("%s: %v", e.Path, err)
			return 0, nil
		}
		r.dirs = append(r.dirs, fileRec{e.Path, meta})
		r.sum.Dirs++
		return 0, nil
	case manifest.KindSymlink:
		r.links = append(r.links, fileRec{e.Path, meta})
		return 0, nil
	case manifest.KindFile:
	default:
		r.addErr("%s: %s not restored (special file)", e.Path, e.Kind)
		return 0, nil
	}
	if dir := path.Dir(e.Path); dir != "." {
		if err := r.root.MkdirAll(dir, 0o700); err != nil {
			r.addErr("%s: %v", e.Path, err)
			return 0, nil
		}
	}
	if fi, err := r.root.Lstat(e.Path); err == nil {
		if !r.o.Overwrite || fi.IsDir() {
			r.sum.Skipped = append(r.sum.Skipped, e.Path)
			return 0, nil
		}
		if err := r.root.Remove(e.Path); err != nil {
			r.addErr("%s: %v", e.Path, err)
			return 0, nil
		}
	}
	f, err := r.root.OpenFile(e.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		r.addErr("%s: %v", e.Path, err)
		return 0, nil
	}
	if e.Size > 0 {
		err = f.Truncate(e.Size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.addErr("%s: %v", e.Path, err)
		return 0, nil
	}
	idx := int32(len(r.files))
	r.files = append(r.files, fileRec{e.Path, meta})
	r.sum.Files++
	var off int64
	for _, c := range e.Chunks {
		r.plan[c.ID] = append(r.plan[c.ID], target{idx, off})
		off += int64(c.Size)
	}
	return e.Size, nil
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
// pack once, in offset order, writing every chunk to all its targets.
func (r *restorer) writeData(ctx context.Context) error {
	byPack := map[string][]catalog.Location{}
	for id := range r.plan {
		l, err := r.repo.Lookup(ctx, id)
		if err != nil {
			for _, t := range r.plan[id] {
				r.addErr("%s: %v", r.files[t.file].path, err)
			}
			continue
		}
		byPack[l.Pack] = append(byPack[l.Pack], l)
	}
	packs := make([]string, 0, len(byPack))
	for p := range byPack {
		packs = append(packs, p)
	}
	sort.Strings(packs)
	workers := r.o.Workers
	if workers <= 0 {
		workers = max(2, runtime.GOMAXPROCS(0))
	}
	ch := make(chan string)
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pk := range ch {
				err := r.repo.ReadPackBlobs(ctx, pk, byPack[pk], r.writeChunk, func(l catalog.Location, err error) error {
					for _, t := range r.plan[crypt.ID(l.ID)] {
						r.addErr("%s: %v", r.files[t.file].path, err)
					}
					return nil
				})
				if err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		}()
	}
	for _, p := range packs {
		select {
		case ch <- p:
		case <-ctx.Done():
		}
	}
	close(ch)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
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

func (r *restorer) writeChunk(l catalog.Location, data []byte) error {
	ts := r.plan[crypt.ID(l.ID)]
	if allZero(data) { // files were pre-sized: leave a hole
		r.written.Add(int64(len(data) * len(ts)))
		return nil
	}
	for _, t := range ts {
		fr := &r.files[t.file]
		f, err := r.root.OpenFile(fr.path, os.O_WRONLY, 0)
		if err == nil {
			_, err = f.WriteAt(data, t.off)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			r.addErr("%s: %v", fr.path, err)
			continue
		}
		r.written.Add(int64(len(data)))
	}
	return nil
}

// finish sets file metadata, creates symlinks, then sets directory
// metadata deepest first.
func (r *restorer) finish() {
	for i := range r.files {
		r.setMeta(&r.files[i], false)
	}
	for i := range r.links {
		l := &r.links[i]
		if _, err := r.root.Lstat(l.path); err == nil {
			if !r.o.Overwrite {
				r.sum.Skipped = append(r.sum.Skipped, l.path)
				continue
			}
			r.root.Remove(l.path)
		}
		if dir := path.Dir(l.path); dir != "." {
			r.root.MkdirAll(dir, 0o700)
		}
		if err := r.root.Symlink(l.meta.Target, l.path); err != nil {
			r.addErr("%s: %v", l.path, err)
			continue
		}
		if r.asRoot {
			r.root.Lchown(l.path, int(l.meta.UID), int(l.meta.GID))
		}
		r.sum.Symlinks++
	}
	for i := len(r.dirs) - 1; i >= 0; i-- {
		r.setMeta(&r.dirs[i], true)
	}
}

func (r *restorer) setMeta(fr *fileRec, dir bool) {
	if r.asRoot {
		if err := r.root.Lchown(fr.path, int(fr.meta.UID), int(fr.meta.GID)); err != nil {
			r.addErr("%s: chown: %v", fr.path, err)
		}
	}
	mode := fs.FileMode(fr.meta.Mode & 0o777)
	if fr.meta.Mode&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if fr.meta.Mode&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if fr.meta.Mode&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	if err := r.root.Chmod(fr.path, mode); err != nil {
		r.addErr("%s: chmod: %v", fr.path, err)
	}
	mt := time.Unix(0, fr.meta.MTime)
	if err := r.root.Chtimes(fr.path, mt, mt); err != nil {
		r.addErr("%s: chtimes: %v", fr.path, err)
	}
}
