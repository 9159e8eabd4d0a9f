package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"bes/store/catalog"
	"bes/store/chunker"
	"bes/store/compress"
	"bes/store/crypt"
	"bes/store/ec"
)

// Repository files inside the repository directory.
const (
	ConfigFile  = "config.json"
	KeysDir     = "keys"
	LockFile    = "lock"
	DiskCopy    = "bes-repo.json" // config and key slots, copied onto every disk
	formatV1    = 1
	defaultPack = 32 << 20
)

// ErrNoRepo is returned when the directory holds no repository.
var ErrNoRepo = errors.New("no repository here (run bes init)")

// Config is the repository's plaintext configuration (config.json).
type Config struct {
	Version     int       `json:"version"`
	ID          string    `json:"id"`
	Created     time.Time `json:"created"`
	Disks       []string  `json:"disks"`
	K           int       `json:"ec_k"`
	M           int       `json:"ec_m"`
	PieceSize   int       `json:"ec_piece_size"`
	PackSize    int64     `json:"pack_size"`
	ChunkMin    int       `json:"chunk_min"`
	ChunkAvg    int       `json:"chunk_avg"`
	ChunkMax    int       `json:"chunk_max"`
	Compression string    `json:"compression"`
	Encryption  string    `json:"encryption"`
	// ReplicaOf is the ID of the repository this one replicates: same
	// data keys (chunks copy without re-encryption), its own key slots.
	ReplicaOf string `json:"replica_of,omitempty"`
	// Backend is "s3" for a repository in a bucket ("" for a disk set).
	Backend string `json:"backend,omitempty"`
}

// InitOptions configures a new repository. Zero values mean defaults.
type InitOptions struct {
	Dir         string   // repository directory (config, keys, catalog)
	Disks       []string // k+m disk directories; default Dir/disks/disk1..disk(k+m)
	K, M        int      // default 4+2
	Compression string   // default zstd
	Encryption  string   // "aes-256-gcm" (default) or "none"
	KEK         crypt.KEKProvider
	PackSize    int64
	PieceSize   int
	Logger      *slog.Logger
	Now         func() time.Time
	StateDir    string              // S3: local state directory (see OpenOptions)
	Getenv      func(string) string // S3: credentials; default os.Getenv
	// ObjectLock creates the S3 bucket with Object Lock, so that locked
	// points' packs get a retention the bucket enforces. Such buckets are
	// versioned: deleted packs stay as noncurrent versions until a bucket
	// lifecycle rule expires them.
	ObjectLock bool
	// ReplicaOf makes the new repository a replica of an open one: it
	// takes that repository's master key (wrapped with KEK, its own
	// key-encryption key), chunking and encryption.
	ReplicaOf *Repo
}

// OpenOptions configures Open.
type OpenOptions struct {
	Dir string
	KEK crypt.KEKProvider
	// StateDir is where an S3 repository keeps its local state (catalog,
	// locks); default $BES_CACHE_DIR or the user cache dir.
	StateDir string
	Getenv   func(string) string // for S3 credentials; default os.Getenv
	Write    bool                // take the exclusive writer lock
	GC       bool                // garbage collection: take the collector's lock (not the writer's)
	Command  string              // recorded in the lock file
	Logger   *slog.Logger
	Now      func() time.Time
}

// Repo is an open repository. Methods are safe for concurrent use.
type Repo struct {
	dir    string
	cfg    Config
	keys   *crypt.Keys
	set    *ec.Set
	cat    *catalog.Catalog
	codec  *compress.Codec
	log    *slog.Logger
	lock   *writerLock // the writer's lock, or the collector's (gc)
	rlock  *sharedLock // readers' lock, held shared (not by the collector)
	gc     bool        // opened by the garbage collector
	since  time.Time   // writer session start (see Saver.claim)
	smu    sync.Mutex  // guards savers and the session in the lock file
	savers int         // Savers alive: a write session runs while > 0
	clock  *clockGuard // monotonic high-water mark of the clock
	now    func() time.Time
	cpar   chunker.Params
	bufs   byteList // read and decode scratch
	master []byte   // the master key (a replica's init takes it)
	packs  packStore
	url    string // the S3 address of a bucket repository ("" for a disk set)
}

// keyFile is the on-disk copy of the config and key slots kept on each disk.
type diskCopy struct {
	Config Config       `json:"config"`
	Slots  []crypt.Slot `json:"slots"`
}

func orDefault[T comparable](v, d T) T {
	var zero T
	if v == zero {
		return d
	}
	return v
}

// Init creates a repository and returns it opened for writing.
func Init(ctx context.Context, o InitOptions) (*Repo, error) {
	if o.KEK == nil {
		return nil, errors.New("init: no key-encryption key provider (password or key file)")
	}
	now := nowFunc(o.Now)
	log := orDefault(o.Logger, slog.Default())
	comp := orDefault(o.Compression, "zstd")
	if _, err := compress.ParseAlgo(comp); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	enc := orDefault(o.Encryption, "aes-256-gcm")
	if enc != "aes-256-gcm" && enc != "none" {
		return nil, fmt.Errorf("init: encryption %q: want aes-256-gcm or none", enc)
	}
	cp := chunker.DefaultParams()
	idb := make([]byte, 16)
	rand.Read(idb)
	cfg := Config{
		Version: formatV1, ID: hex.EncodeToString(idb), Created: now().UTC(),
		PackSize: orDefault(o.PackSize, int64(defaultPack)),
		ChunkMin: cp.Min, ChunkAvg: cp.Avg, ChunkMax: cp.Max, Compression: comp, Encryption: enc,
	}
	master, err := crypt.NewMasterKey()
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if src := o.ReplicaOf; src != nil {
		sc := src.cfg
		master = src.master
		cfg.ReplicaOf = sc.ID
		cfg.ChunkMin, cfg.ChunkAvg, cfg.ChunkMax = sc.ChunkMin, sc.ChunkAvg, sc.ChunkMax
		cfg.Encryption = sc.Encryption
		if o.Compression == "" {
			cfg.Compression = sc.Compression
		}
	}
	slot, err := crypt.WrapMaster(ctx, o.KEK, master, now())
	if err != nil {
		return nil, fmt.Errorf("init: wrap master key: %w", err)
	}
	if IsS3(o.Dir) {
		return initS3(ctx, o, cfg, slot, log, now)
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err == nil {
		return nil, fmt.Errorf("init: %s already holds a repository", dir)
	}
	k, m := o.K, o.M
	if k == 0 && m == 0 {
		k, m = 4, 2
	}
	disks := o.Disks
	if len(disks) == 0 {
		for i := 1; i <= k+m; i++ {
			disks = append(disks, filepath.Join(dir, "disks", fmt.Sprintf("disk%d", i)))
		}
	}
	if len(disks) != k+m {
		return nil, fmt.Errorf("init: erasure coding %d+%d needs %d disk directories, got %d", k, m, k+m, len(disks))
	}
	for i, d := range disks {
		if disks[i], err = filepath.Abs(d); err != nil {
			return nil, fmt.Errorf("init: disk %s: %w", d, err)
		}
		// Never take over a disk that belongs to a repository already.
		if _, err := os.Stat(filepath.Join(disks[i], DiskCopy)); err == nil {
			return nil, fmt.Errorf("init: %s already belongs to a repository (it holds %s)", disks[i], DiskCopy)
		}
	}
	if m == 0 {
		log.Warn("repository has NO redundancy: a single damaged or lost disk loses data", "ec", fmt.Sprintf("%d+%d", k, m))
	}
	cfg.Disks, cfg.K, cfg.M, cfg.PieceSize = disks, k, m, orDefault(o.PieceSize, 512<<10)
	if _, err := ec.Open(disks, k, m, ec.Options{PieceSize: cfg.PieceSize, Logger: log}); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, KeysDir), 0o700); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	sb, _ := json.MarshalIndent(slot, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, KeysDir, newID()+".json"), sb, 0o600); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if err := writeDiskCopies(cfg, []crypt.Slot{*slot}); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	if err := writeFileAtomic(filepath.Join(dir, ConfigFile), cb, 0o600); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	log.Info("repository created", "dir", dir, "ec", fmt.Sprintf("%d+%d", k, m), "disks", len(disks))
	return Open(ctx, OpenOptions{Dir: dir, KEK: o.KEK, Write: true, Command: "init", Logger: log, Now: now})
}

// initS3 creates a repository in an S3 bucket: key slots, then the config
// (its presence makes the repository), both as objects.
func initS3(ctx context.Context, o InitOptions, cfg Config, slot *crypt.Slot, log *slog.Logger, now func() time.Time) (*Repo, error) {
	b, err := openS3(ctx, o.Dir, o.StateDir, o.Getenv, true, o.ObjectLock)
	if err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	if _, err := b.store.GetFile(ctx, s3Config); err == nil {
		return nil, fmt.Errorf("init: %s already holds a repository", o.Dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("init: %w", err)
	}
	cfg.Backend = "s3"
	sb, _ := json.MarshalIndent([]crypt.Slot{*slot}, "", "  ")
	if err := b.store.PutFile(ctx, s3Keys, sb); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	cb, _ := json.MarshalIndent(cfg, "", "  ")
	if err := b.store.PutFile(ctx, s3Config, cb); err != nil {
		return nil, fmt.Errorf("init: %w", err)
	}
	// A fresh local state: a catalog left by an earlier repository at the
	// same address would name packs this one does not have.
	for _, f := range []string{catalog.FileName, catalog.FileName + "-wal", catalog.FileName + "-shm", ClockFile} {
		os.Remove(filepath.Join(b.state, f))
	}
	log.Info("repository created", "url", o.Dir, "state", b.state)
	return Open(ctx, OpenOptions{Dir: o.Dir, StateDir: o.StateDir, Getenv: o.Getenv, KEK: o.KEK, Write: true, Command: "init", Logger: log, Now: now})
}

// ErrDiskMissing is returned when a disk of the set is absent or is not
// this repository's (an unmounted disk leaves an empty mount point).
var ErrDiskMissing = errors.New("disk missing or not this repository's")

// checkDisks makes sure every disk carries this repository's identity
// before anything is written: a backup never writes shards onto an empty
// mount point. Reads need no such check (missing shards are rebuilt from
// parity), and scrub --repair restores the identity on a replaced disk.
func (r *Repo) checkDisks() error {
	if r.set == nil {
		return nil // an S3 bucket
	}
	var bad []string
	for i, d := range r.cfg.Disks {
		b, err := os.ReadFile(filepath.Join(d, DiskCopy))
		var dc diskCopy
		if err == nil {
			err = json.Unmarshal(b, &dc)
		}
		if err != nil || dc.Config.ID != r.cfg.ID {
			bad = append(bad, fmt.Sprintf("disk%d (%s)", i+1, d))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s; mount it, or after replacing a disk run bes scrub --repair", ErrDiskMissing, strings.Join(bad, ", "))
	}
	return nil
}

func writeDiskCopies(cfg Config, slots []crypt.Slot) error {
	b, _ := json.MarshalIndent(diskCopy{Config: cfg, Slots: slots}, "", "  ")
	for _, d := range cfg.Disks {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := writeFileAtomic(filepath.Join(d, DiskCopy), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Open opens an existing repository, unwrapping its master key.
func Open(ctx context.Context, o OpenOptions) (*Repo, error) {
	log := orDefault(o.Logger, slog.Default())
	now := nowFunc(o.Now)
	var (
		dir, name string
		cb        []byte
		slots     []crypt.Slot
		bucket    *s3Repo
		err       error
	)
	if IsS3(o.Dir) {
		name = o.Dir
		if bucket, err = openS3(ctx, o.Dir, o.StateDir, o.Getenv, false, false); err != nil {
			return nil, fmt.Errorf("open repository %s: %w", name, err)
		}
		dir = bucket.state
		cb, err = bucket.store.GetFile(ctx, s3Config)
		if err == nil {
			var kb []byte
			if kb, err = bucket.store.GetFile(ctx, s3Keys); err == nil {
				if jerr := json.Unmarshal(kb, &slots); jerr != nil {
					return nil, fmt.Errorf("open repository %s: %s: %w", name, s3Keys, jerr)
				}
			}
		}
	} else {
		if dir, err = filepath.Abs(o.Dir); err != nil {
			return nil, fmt.Errorf("open repository: %w", err)
		}
		name = dir
		cb, err = os.ReadFile(filepath.Join(dir, ConfigFile))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open repository %s: %w", name, ErrNoRepo)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", name, err)
	}
	var cfg Config
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return nil, fmt.Errorf("open repository %s: config.json: %w", name, err)
	}
	if cfg.Version != formatV1 {
		return nil, fmt.Errorf("open repository %s: unsupported format version %d", name, cfg.Version)
	}
	if o.KEK == nil {
		return nil, fmt.Errorf("open repository %s: no password or key file given", name)
	}
	if bucket == nil {
		if slots, err = readSlots(dir); err != nil {
			return nil, fmt.Errorf("open repository %s: %w", name, err)
		}
	}
	master, err := unwrapAny(ctx, slots, o.KEK)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", name, err)
	}
	keys, err := crypt.DeriveKeys(master)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	r := &Repo{dir: dir, cfg: cfg, keys: keys, master: master, codec: compress.New(), log: log, now: now,
		bufs: newByteList(4 * runtime.GOMAXPROCS(0))}
	r.cpar = chunker.Params{Min: cfg.ChunkMin, Avg: cfg.ChunkAvg, Max: cfg.ChunkMax, Seed: keys.ChunkerSeed()}
	if err := r.cpar.Validate(); err != nil {
		return nil, fmt.Errorf("open repository %s: chunker: %w", dir, err)
	}
	r.clock = openClock(filepath.Join(dir, ClockFile))
	fail := func(err error) (*Repo, error) {
		r.lock.release()
		r.rlock.release()
		return nil, fmt.Errorf("open repository %s: %w", dir, err)
	}
	switch {
	case o.GC:
		r.gc = true
		f, err := tryExclusive(filepath.Join(dir, GCLockFile))
		if err != nil {
			return fail(err)
		}
		if f == nil {
			return fail(ErrGCRunning)
		}
		r.lock = &writerLock{f: f, since: now()}
	case o.Write:
		if r.lock, err = acquireLock(filepath.Join(dir, LockFile), o.Command, now); err != nil {
			return fail(err)
		}
		r.lock.idle() // sessions begin with a Saver
	}
	if !o.GC {
		if r.rlock, err = acquireShared(filepath.Join(dir, ReadLockFile)); err != nil {
			return fail(err)
		}
	}
	tag := ""
	if o.GC {
		tag = "gc"
	}
	if bucket != nil {
		r.packs, r.url = bucketStore{bucket.store}, name
	} else {
		r.set, err = ec.Open(cfg.Disks, cfg.K, cfg.M, ec.Options{PieceSize: cfg.PieceSize, Logger: log, TempTag: tag})
		if err != nil {
			return fail(err)
		}
		if r.lock != nil {
			r.set.SweepTemp() // only the single writer (or collector) may
		}
		r.packs = diskStore{r.set}
	}
	r.cat, err = catalog.Open(ctx, filepath.Join(dir, catalog.FileName))
	if err != nil {
		return fail(err)
	}
	r.clock.observe(now())
	if t, err := r.cat.Latest(ctx); err == nil {
		r.clock.observe(t) // a floor even without the clock file
	}
	if r.lock != nil && !r.gc {
		if err := r.recountIfStale(ctx); err != nil {
			r.cat.Close()
			return fail(err)
		}
	}
	return r, nil
}

// readSlots reads the key slots of a local repository.
func readSlots(dir string) ([]crypt.Slot, error) {
	names, _ := filepath.Glob(filepath.Join(dir, KeysDir, "*.json"))
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("no key slots in %s", filepath.Join(dir, KeysDir))
	}
	var out []crypt.Slot
	var lastErr error
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			lastErr = err
			continue
		}
		var s crypt.Slot
		if err := json.Unmarshal(b, &s); err != nil {
			lastErr = fmt.Errorf("key slot %s: %w", filepath.Base(n), err)
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, lastErr
	}
	return out, nil
}

func unwrapAny(ctx context.Context, slots []crypt.Slot, kek crypt.KEKProvider) ([]byte, error) {
	var lastErr error = crypt.ErrWrongKey
	for i := range slots {
		s := &slots[i]
		if s.Provider != kek.Name() {
			continue
		}
		m, err := crypt.UnwrapMaster(ctx, kek, s)
		if err == nil {
			return m, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// Close releases the catalog and the locks.
func (r *Repo) Close() error {
	r.clock.save()
	err := r.cat.Close()
	r.rlock.release()
	if lerr := r.lock.release(); err == nil {
		err = lerr
	}
	return err
}

// Dir returns the repository directory.
func (r *Repo) Dir() string { return r.dir }

// Config returns the repository configuration.
func (r *Repo) Config() Config { return r.cfg }

// Keys returns the derived keys.
func (r *Repo) Keys() *crypt.Keys { return r.keys }

// ChunkerParams returns the keyed content-defined chunking parameters.
func (r *Repo) ChunkerParams() chunker.Params { return r.cpar }

// Logger returns the repository's logger.
func (r *Repo) Logger() *slog.Logger { return r.log }

// Now returns the repository clock's time.
func (r *Repo) Now() time.Time { return r.now() }

func nowFunc(f func() time.Time) func() time.Time {
	if f == nil {
		return time.Now
	}
	return f
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newPointID returns a random ID: any 8-character prefix is almost surely
// unique, so people can use short IDs (points sort by time, not by ID).
func newPointID() string { return newID() }
