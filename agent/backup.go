package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bes/store"
	"bes/store/chunker"
	"bes/store/crypt"
	"bes/store/manifest"
	"bes/store/pack"
)

// BackupOptions configures Backup. Zero values mean defaults.
type BackupOptions struct {
	Paths       []string
	Host        string // default: os.Hostname
	Excludes    []string
	Compression string // zstd | lz4 | none; default: the repository's
	Workers     int    // chunk workers; default GOMAXPROCS
	Policy      string // the backup policy, recorded in the point
	// Time, if set, is recorded as the point's time instead of now (for
	// imports, and to exercise retention); it may not lie in the future.
	Time     time.Time
	Progress func(Progress)
	Logger   *slog.Logger
}

// Progress is a snapshot of a running backup.
type Progress struct {
	Files, Dirs, Bytes, BytesRead, NewBytes, Stored, Errors int64
	Elapsed                                                 time.Duration
	Done                                                    bool
}

type item struct {
	e     manifest.Entry
	abs   string
	read  bool
	jobs  []*chunkJob
	wg    sync.WaitGroup
	err   error
	errMu sync.Mutex
}

func (it *item) fail(err error) {
	it.errMu.Lock()
	if it.err == nil {
		it.err = err
	}
	it.errMu.Unlock()
}

type chunkJob struct {
	it   *item
	data *[]byte
	id   crypt.ID
	size uint32
}

type backup struct {
	repo  *store.Repo
	saver *store.Saver
	log   *slog.Logger
	ex    *excluder
	cpar  chunker.Params

	files, dirs, bytes, read, errs, unchanged atomic.Int64
	bufs                                      *store.FreeList[*[]byte]
}

// Backup backs up local paths into a new restore point and returns it once
// it is committed (everything it references durable and indexed).
func Backup(ctx context.Context, repo *store.Repo, o BackupOptions) (*store.Point, error) {
	start := time.Now()
	roots, err := normalizeRoots(o.Paths)
	if err != nil {
		return nil, err
	}
	ex, err := newExcluder(o.Excludes)
	if err != nil {
		return nil, err
	}
	// Never back up the repository into itself.
	ex.skip = map[string]bool{repo.Dir(): true}
	for _, d := range repo.Config().Disks {
		ex.skip[d] = true
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	if !o.Time.IsZero() && o.Time.After(repo.Now().Add(time.Minute)) {
		return nil, fmt.Errorf("backup: --time %s lies in the future", o.Time.UTC().Format(time.RFC3339))
	}
	saver, err := repo.NewSaver(store.SaverOptions{Compression: o.Compression})
	if err != nil {
		return nil, err
	}
	pt, parent, err := repo.NewPoint(ctx, store.KindFile, o.Host)
	if err != nil {
		return nil, err
	}
	pt.Paths, pt.Policy = roots, o.Policy
	b := &backup{repo: repo, saver: saver, log: log, ex: ex, cpar: repo.ChunkerParams()}
	max := b.cpar.Max
	// chunk buffers: one per reader, per worker and per queued job
	b.bufs = store.NewFreeList(4*runtime.GOMAXPROCS(0)+2, func() *[]byte { s := make([]byte, 0, max); return &s })

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stopProgress := b.progress(ctx, o.Progress, start)
	refs, entries, err := b.run(ctx, cancel, roots, parent, o.Workers)
	if err == nil {
		err = context.Cause(ctx)
	}
	if err != nil {
		saver.Abort()
		stopProgress()
		return nil, fmt.Errorf("backup: %w", err)
	}
	st := saver.Stats()
	pt.Manifest, pt.Entries = refs, entries
	pt.Finished = repo.Now().UTC()
	if !o.Time.IsZero() {
		took := pt.Finished.Sub(pt.Started)
		pt.Started = o.Time.UTC()
		pt.Finished = pt.Started.Add(took)
	}
	pt.Stats = store.PointStats{
		Files: b.files.Load(), Dirs: b.dirs.Load(), Bytes: b.bytes.Load(), BytesRead: b.read.Load(),
		NewBytes: st.NewBytes, Stored: st.StoredBytes, NewChunks: st.NewChunks, Errors: b.errs.Load(),
		Seconds: time.Since(start).Seconds(), Unchanged: b.unchanged.Load(),
	}
	if err := repo.CommitPoint(ctx, saver, pt); err != nil {
		saver.Abort()
		stopProgress()
		return nil, fmt.Errorf("backup: %w", err)
	}
	pt.Stats.Seconds = time.Since(start).Seconds()
	stopProgress()
	return pt, nil
}

func (b *backup) progress(ctx context.Context, fn func(Progress), start time.Time) func() {
	if fn == nil {
		return func() {}
	}
	snap := func(done bool) Progress {
		st := b.saver.Stats()
		return Progress{Files: b.files.Load(), Dirs: b.dirs.Load(), Bytes: b.bytes.Load(), BytesRead: b.read.Load(),
			NewBytes: st.NewBytes, Stored: st.StoredBytes, Errors: b.errs.Load(), Elapsed: time.Since(start), Done: done}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				fn(snap(false))
			case <-stop:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(stop); wg.Wait(); fn(snap(true)) })
	}
}

// run wires the pipeline: walker -> (file readers -> chunk workers) ->
// manifest writer.
func (b *backup) run(ctx context.Context, cancel context.CancelCauseFunc, roots []string, parent *store.Point, workers int) ([]store.BlobRef, int64, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	items := make(chan *item, 4096)
	files := make(chan *item, 1024)
	jobs := make(chan *chunkJob, workers)

	var prev *manifest.Reader
	if parent != nil {
		rc := b.repo.OpenManifest(ctx, parent)
		defer rc.Close()
		prev = manifest.NewReader(rc)
	}
	go func() {
		defer close(items)
		defer close(files)
		if err := b.walk(ctx, roots, prev, items, files); err != nil {
			cancel(err)
		}
	}()
	var readers, chunkers sync.WaitGroup
	// One reader per chunk worker: each holds a chunker buffer of the
	// maximum chunk size, and more readers measured no faster.
	for i := 0; i < workers; i++ {
		readers.Add(1)
		go func() { defer readers.Done(); b.readFiles(ctx, files, jobs) }()
	}
	for i := 0; i < workers; i++ {
		chunkers.Add(1)
		go func() { defer chunkers.Done(); b.saveChunks(ctx, cancel, jobs) }()
	}
	go func() { readers.Wait(); close(jobs) }()

	mw := b.repo.NewManifestWriter(ctx, b.saver)
	w := manifest.NewWriter(mw)
	var werr error
	for it := range items {
		it.wg.Wait()
		if werr != nil {
			continue // drain
		}
		if it.err != nil {
			b.errs.Add(1)
			b.log.Warn("skipped", "path", it.abs, "err", it.err)
			continue
		}
		if it.read {
			it.e.Chunks = make([]manifest.ChunkRef, len(it.jobs))
			var sz int64
			for i, j := range it.jobs {
				it.e.Chunks[i] = manifest.ChunkRef{ID: j.id, Size: j.size}
				sz += int64(j.size)
			}
			it.jobs = nil
			it.e.Size = sz
		}
		if it.e.Kind == manifest.KindFile {
			b.bytes.Add(it.e.Size)
		}
		if werr = w.Write(&it.e); werr != nil {
			cancel(werr)
		}
	}
	chunkers.Wait()
	if werr == nil {
		werr = w.Close()
	}
	refs, err := mw.Close()
	if werr != nil {
		return nil, 0, werr
	}
	return refs, w.Count(), err
}

// walk emits items in manifest order, merge-joining with the previous
// manifest to reuse the chunk lists of unchanged files.
func (b *backup) walk(ctx context.Context, roots []string, prev *manifest.Reader, items, files chan<- *item) error {
	j := &joiner{r: prev}
	emitted := map[string]bool{}
	for _, root := range roots {
		// ancestors of the root, as directories
		var anc []string
		for d := filepath.Dir(root); d != "/" && !emitted[d]; d = filepath.Dir(d) {
			anc = append(anc, d)
		}
		for i := len(anc) - 1; i >= 0; i-- {
			emitted[anc[i]] = true
			if err := b.emit(ctx, anc[i], j, items, files, false); err != nil {
				return err
			}
		}
		if err := b.emit(ctx, root, j, items, files, true); err != nil {
			return err
		}
	}
	return nil
}

// emit sends one path (and, when recurse, everything below it).
func (b *backup) emit(ctx context.Context, abs string, j *joiner, items, files chan<- *item, recurse bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		b.errs.Add(1)
		b.log.Warn("skipped", "path", abs, "err", err)
		return nil
	}
	rel := relPath(abs)
	if rel != "" {
		it := &item{abs: abs}
		it.e.Path = rel
		fillEntry(&it.e, fi)
		switch it.e.Kind {
		case manifest.KindDir:
			b.dirs.Add(1)
		case manifest.KindFile:
			b.files.Add(1)
		case manifest.KindSymlink:
			if it.e.Target, err = os.Readlink(abs); err != nil {
				b.errs.Add(1)
				return nil
			}
		}
		if it.e.Kind == manifest.KindFile {
			if old := j.find(rel); old != nil && unchanged(old, &it.e) {
				it.e.Chunks = append([]manifest.ChunkRef(nil), old.Chunks...)
				b.unchanged.Add(1)
			} else if it.e.Size > 0 {
				it.read = true
			}
		}
		if it.read {
			it.wg.Add(1)
		}
		select {
		case items <- it:
		case <-ctx.Done():
			return ctx.Err() // never sent: nobody waits on it
		}
		if it.read {
			select {
			case files <- it:
			case <-ctx.Done():
				it.fail(ctx.Err())
				it.wg.Done()
				return ctx.Err()
			}
		}
	}
	if !recurse || !fi.IsDir() {
		return nil
	}
	ents, err := os.ReadDir(abs)
	if err != nil {
		b.errs.Add(1)
		b.log.Warn("cannot read directory", "path", abs, "err", err)
	}
	for _, de := range ents { // ReadDir sorts by name: manifest order
		child := filepath.Join(abs, de.Name())
		if b.ex.match(child) {
			continue
		}
		if err := b.emit(ctx, child, j, items, files, true); err != nil {
			return err
		}
	}
	return nil
}

func unchanged(old, cur *manifest.Entry) bool {
	return old.Kind == manifest.KindFile && old.Size == cur.Size && old.MTime == cur.MTime &&
		old.CTime == cur.CTime && old.Inode == cur.Inode
}

// joiner walks the previous manifest alongside the new walk.
type joiner struct {
	r    *manifest.Reader
	cur  *manifest.Entry
	done bool
}

func (j *joiner) find(path string) *manifest.Entry {
	if j.r == nil {
		return nil
	}
	for !j.done {
		if j.cur == nil {
			e, err := j.r.Next()
			if err != nil { // EOF or damage: stop reusing, read everything
				j.done = true
				return nil
			}
			j.cur = e
		}
		if j.cur.Path == path {
			return j.cur
		}
		if !manifest.Less(j.cur.Path, path) {
			return nil
		}
		j.cur = nil
	}
	return nil
}

// readFiles cuts files into chunks and hands them to the chunk workers.
func (b *backup) readFiles(ctx context.Context, files <-chan *item, jobs chan<- *chunkJob) {
	c := chunker.New(nil, b.cpar)
	for it := range files {
		b.readFile(ctx, c, it, jobs)
		it.wg.Done()
	}
}

func (b *backup) readFile(ctx context.Context, c *chunker.Chunker, it *item, jobs chan<- *chunkJob) {
	f, err := os.OpenFile(it.abs, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, os.ErrPermission) {
		f, err = os.Open(it.abs)
	}
	if err != nil {
		it.fail(err)
		return
	}
	defer f.Close()
	c.Reset(f)
	for {
		bp := b.bufs.Get()
		data, err := c.Next((*bp)[:0])
		if err == io.EOF {
			b.bufs.Put(bp)
			return
		}
		if err != nil {
			b.bufs.Put(bp)
			it.fail(fmt.Errorf("read %s: %w", it.abs, err))
			return
		}
		*bp = data
		b.read.Add(int64(len(data)))
		j := &chunkJob{it: it, data: bp, size: uint32(len(data))}
		it.jobs = append(it.jobs, j)
		it.wg.Add(1)
		select {
		case jobs <- j:
		case <-ctx.Done():
			it.wg.Done()
			it.fail(ctx.Err())
			return
		}
	}
}

// saveChunks hashes, dedups, compresses, encrypts and packs chunks.
func (b *backup) saveChunks(ctx context.Context, cancel context.CancelCauseFunc, jobs <-chan *chunkJob) {
	for j := range jobs {
		if ctx.Err() == nil {
			id, _, err := b.saver.Save(ctx, pack.TypeData, *j.data)
			if err != nil {
				cancel(err)
			}
			j.id = id
		}
		b.bufs.Put(j.data)
		j.data = nil
		j.it.wg.Done()
	}
}
