package ec

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/reedsolomon"
)

var (
	// ErrNotFound is returned when no shard of the pack exists on any disk.
	ErrNotFound = errors.New("pack not found")
	// ErrUnrecoverable is wrapped by errors for packs that have a stripe
	// with fewer than k good pieces.
	ErrUnrecoverable = errors.New("pack unrecoverable")
)

// DefaultPieceSize is the piece size used when Options.PieceSize is 0.
const DefaultPieceSize = 512 << 10

const (
	tmpSuffix    = ".tmp-bes"
	shardSuffix  = ".shard"
	metaCacheMax = 4096
	// metaDegradedTTL bounds how long metadata describing a degraded pack
	// (some shard unusable) is trusted before it is reloaded, so that a
	// repair done by another process is noticed.
	metaDegradedTTL = 10 * time.Second
)

// Options configures a Set.
type Options struct {
	PieceSize int          // bytes per shard per stripe; 0 means DefaultPieceSize. Must be a multiple of 64.
	Logger    *slog.Logger // nil means slog.Default()
	// TempTag marks this process's temp files (a short [a-z] word): the
	// garbage collector writes beside a backup, and each sweeps only the
	// stale temp files of its own kind.
	TempTag string
}

// shardFile is what writers need from a temp file; tests inject faults.
type shardFile interface {
	io.Writer
	Sync() error
	Close() error
}

// Set is an erasure-coded set of k+m directories. It is safe for
// concurrent use.
type Set struct {
	dirs  []string
	k, m  int
	piece int
	tag   string
	log   *slog.Logger
	enc   reedsolomon.Encoder

	// openFile creates a new temp file exclusively (hook for tests).
	openFile func(path string) (shardFile, error)

	bufs chan []byte // piece buffers kept for reuse (not emptied by GC, unlike a sync.Pool)

	mu    sync.Mutex
	cache map[string]*packMeta
}

// Open opens the set of directories dirs (len(dirs) == k+m), creating any
// missing directory with mode 0700, and removes stale temp files.
func Open(dirs []string, k, m int, opt Options) (*Set, error) {
	if k < 1 || k > maxK {
		return nil, fmt.Errorf("ec: data shard count k=%d out of range [1, %d]", k, maxK)
	}
	if m < 0 || m > maxM {
		return nil, fmt.Errorf("ec: parity shard count m=%d out of range [0, %d]", m, maxM)
	}
	if len(dirs) != k+m {
		return nil, fmt.Errorf("ec: %d+%d layout needs %d directories, got %d", k, m, k+m, len(dirs))
	}
	piece := opt.PieceSize
	if piece == 0 {
		piece = DefaultPieceSize
	}
	if err := checkPieceSize(piece); err != nil {
		return nil, fmt.Errorf("ec: %w", err)
	}
	log := opt.Logger
	if log == nil {
		log = slog.Default()
	}
	clean := make([]string, len(dirs))
	seen := map[string]int{}
	for i, d := range dirs {
		if d == "" {
			return nil, fmt.Errorf("ec: directory %d is empty", i)
		}
		a, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("ec: directory %q: %w", d, err)
		}
		if j, dup := seen[a]; dup {
			return nil, fmt.Errorf("ec: directories %d and %d are the same (%s)", j, i, a)
		}
		seen[a] = i
		clean[i] = a
	}
	infos := make([]os.FileInfo, len(clean))
	for i, d := range clean {
		for _, sub := range []string{d, filepath.Join(d, "packs"), filepath.Join(d, "tmp")} {
			if err := mkdirDurable(sub); err != nil {
				return nil, fmt.Errorf("ec: create %s: %w", sub, err)
			}
		}
		fi, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("ec: %w", err)
		}
		for j := 0; j < i; j++ {
			if os.SameFile(fi, infos[j]) {
				return nil, fmt.Errorf("ec: directories %s and %s are the same directory", clean[j], d)
			}
		}
		infos[i] = fi
	}
	enc, err := reedsolomon.New(k, m, reedsolomon.WithMaxGoroutines(1)) // callers parallelise
	if err != nil {
		return nil, fmt.Errorf("ec: reedsolomon %d+%d: %w", k, m, err)
	}
	s := &Set{
		dirs:  clean,
		k:     k,
		m:     m,
		piece: piece,
		log:   log,
		tag:   opt.TempTag,
		enc:   enc,
		cache: map[string]*packMeta{},
		bufs:  make(chan []byte, 2*(k+m)),
	}
	s.openFile = func(path string) (shardFile, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	}
	return s, nil
}

// SweepTemp removes temp files left by writers that died. Only the
// repository's single writer may call it (a reader sweeping would delete a
// running writer's temp shards).
func (s *Set) SweepTemp() {
	for _, d := range s.dirs {
		s.sweepTmp(d)
	}
}

// K returns the number of data shards.
func (s *Set) K() int { return s.k }

// M returns the number of parity shards.
func (s *Set) M() int { return s.m }

// Dirs returns the (absolute) disk directories, index i holding shard i.
func (s *Set) Dirs() []string { return append([]string(nil), s.dirs...) }

func (s *Set) sweepTmp(dir string) {
	td := filepath.Join(dir, "tmp")
	ents, err := os.ReadDir(td)
	if err != nil {
		s.log.Warn("ec: cannot sweep temp dir", "dir", td, "err", err)
		return
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), tmpSuffix) && tempTag(e.Name()) == s.tag {
			p := filepath.Join(td, e.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.log.Warn("ec: cannot remove stale temp file", "path", p, "err", err)
			}
		}
	}
}

func (s *Set) diskName(i int) string { return fmt.Sprintf("disk%d (%s)", i, s.dirs[i]) }

func (s *Set) shardDir(i int, name string) string {
	return filepath.Join(s.dirs[i], "packs", name[:2])
}

func (s *Set) shardPath(i int, name string) string {
	return filepath.Join(s.dirs[i], "packs", name[:2], name+shardSuffix)
}

func tagPart(tag string) string {
	if tag == "" {
		return ""
	}
	return "." + tag
}

// tempTag returns the tag of a temp file name (name.i.rand[.tag].tmp-bes).
func tempTag(file string) string {
	parts := strings.Split(strings.TrimSuffix(file, tmpSuffix), ".")
	if len(parts) == 4 {
		return parts[3]
	}
	return ""
}

// createTemp creates a new temp file for shard i of pack name, recreating
// the tmp directory if the disk was wiped.
func (s *Set) createTemp(i int, name string) (shardFile, string, error) {
	var rb [8]byte
	if _, err := rand.Read(rb[:]); err != nil {
		return nil, "", err
	}
	td := filepath.Join(s.dirs[i], "tmp")
	p := filepath.Join(td, fmt.Sprintf("%s.%d.%s%s%s", name, i, hex.EncodeToString(rb[:]), tagPart(s.tag), tmpSuffix))
	f, err := s.openFile(p)
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		if err2 := mkdirDurable(td); err2 != nil {
			return nil, "", err2
		}
		f, err = s.openFile(p)
	}
	if err != nil {
		return nil, "", err
	}
	return f, p, nil
}

// install fsyncs nothing itself: f must already be synced and closed. It
// renames tmp into place for shard i and fsyncs the destination directory.
func (s *Set) install(i int, name, tmp string) error {
	d := s.shardDir(i, name)
	if err := mkdirDurable(d); err != nil {
		return err
	}
	if err := os.Rename(tmp, s.shardPath(i, name)); err != nil {
		return err
	}
	return syncDir(d)
}

func checkNameErr(name string) error {
	if !validName(name) {
		return fmt.Errorf("ec: invalid pack name %q (want 16-64 lower-case hex digits)", name)
	}
	return nil
}

// Size returns the length of pack name.
func (s *Set) Size(ctx context.Context, name string) (int64, error) {
	if err := checkNameErr(name); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	pm, _, err := s.getMeta(name, false)
	if err != nil {
		return 0, err
	}
	return pm.g.Size, nil
}

// List calls fn, in name order, for every pack with at least one shard on
// any disk. A disk whose directory cannot be read is logged and skipped; an
// error is returned only if no disk could be listed.
func (s *Set) List(ctx context.Context, fn func(name string) error) error {
	names := map[string]struct{}{}
	var errs []error
	for i, d := range s.dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := listDisk(ctx, filepath.Join(d, "packs"), names); err != nil {
			s.log.Warn("ec: cannot list disk", "disk", s.diskName(i), "err", err)
			errs = append(errs, fmt.Errorf("ec: list %s: %w", s.diskName(i), err))
		}
	}
	if len(errs) == len(s.dirs) {
		return errors.Join(errs...)
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(n); err != nil {
			return err
		}
	}
	return nil
}

func listDisk(ctx context.Context, packs string, names map[string]struct{}) error {
	subs, err := os.ReadDir(packs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // wiped or deleted disk: nothing to list
	}
	if err != nil {
		return err
	}
	for _, sd := range subs {
		if !sd.IsDir() || len(sd.Name()) != 2 {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		ents, err := os.ReadDir(filepath.Join(packs, sd.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		for _, e := range ents {
			n, ok := strings.CutSuffix(e.Name(), shardSuffix)
			if ok && validName(n) && n[:2] == sd.Name() && e.Type().IsRegular() {
				names[n] = struct{}{}
			}
		}
	}
	return nil
}

// Remove deletes every shard of pack name and fsyncs the directories.
// Missing shards (or a pack that does not exist at all) are not an error.
func (s *Set) Remove(ctx context.Context, name string) error {
	if err := checkNameErr(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	defer s.dropMeta(name)
	var errs []error
	for i := range s.dirs {
		err := os.Remove(s.shardPath(i, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err == nil {
			err = syncDir(s.shardDir(i, name))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("ec: remove shard %d of pack %s on %s: %w", i, name, s.dirs[i], err))
		}
	}
	return errors.Join(errs...)
}

// getBuf returns a buffer of length n, reused when one is kept.
func (s *Set) getBuf(n int) []byte {
	select {
	case b := <-s.bufs:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return make([]byte, n, max(n, s.piece))
}

func (s *Set) putBuf(b []byte) {
	if b == nil || cap(b) == 0 {
		return
	}
	select {
	case s.bufs <- b[:0]:
	default:
	}
}

// mkdirDurable creates dir (and missing parents) with mode 0700, fsyncing
// the parent of every directory it creates.
func mkdirDurable(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirDurable(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// syncDir fsyncs a directory so renames/creations/removals in it are durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

func removeQuiet(p string) {
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		slog.Default().Warn("ec: cannot remove temp file", "path", p, "err", err)
	}
}

// ShardPaths returns the paths of the k+m shard files of pack name (some
// may not exist).
func (s *Set) ShardPaths(name string) []string {
	out := make([]string, len(s.dirs))
	for i := range s.dirs {
		out[i] = s.shardPath(i, name)
	}
	return out
}
