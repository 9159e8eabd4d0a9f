package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"bes/diskimg"
	"bes/store"
)

// Errors of Mount and Server.Unmount.
var (
	ErrNotDir   = errors.New("mount point is not a directory")
	ErrNotEmpty = errors.New("mount point is not empty")
	ErrBusy     = errors.New("mount point is busy")
)

// cacheTimeout is how long the kernel may trust entries and attributes: a
// restore point never changes.
const cacheTimeout = time.Hour

// Options configures Mount. The zero value means the defaults.
type Options struct {
	CacheChunks int          // decoded chunks kept in memory, shared by all files; default DefaultCacheChunks
	Logger      *slog.Logger // read errors; default slog.Default()
	Debug       bool         // log every FUSE request and reply (go-fuse's debug output) to Logger at level Info
}

// Server is a mounted restore point. Its methods are safe for concurrent use.
type Server struct {
	dir    string
	point  string
	srv    *fuse.Server
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // serializes Unmount and Detach
}

// Mount serves point p of repo read-only at dir, which must be an empty
// directory, and returns once the mount is visible. ctx bounds reading the
// point's manifest; loads made to answer reads last until the mount ends.
// The caller keeps repo open until Wait returns.
func Mount(ctx context.Context, repo *store.Repo, p *store.Point, dir string, o Options) (*Server, error) {
	abs, err := CheckDir(dir)
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	loads, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var t *tree
	if p.Kind == store.KindImage {
		t, err = imageTree(ctx, loads, repo, p, o.CacheChunks)
	} else {
		t, err = fileTree(ctx, repo, p)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	f := &fsys{tree: t, chunks: diskimg.NewChunkCache(loads, repo, cacheChunks(o.CacheChunks)), log: o.Logger, point: p.ID}
	srv, err := gofs.Mount(abs, &inode{fsys: f}, fuseOptions(p, o))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mount point %s at %s: %w", p.ID, abs, err)
	}
	s := &Server{dir: abs, point: p.ID, srv: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		srv.Wait()
		cancel()
		close(s.done)
	}()
	return s, nil
}

func fuseOptions(p *store.Point, o Options) *gofs.Options {
	timeout := cacheTimeout
	opts := &gofs.Options{
		MountOptions: fuse.MountOptions{
			AllowOther: false,
			FsName:     "bes:" + p.ID,
			Name:       "bes",
			Options:    []string{"ro", "nodev", "nosuid"},
			Debug:      o.Debug,
		},
		EntryTimeout:    &timeout,
		AttrTimeout:     &timeout,
		NegativeTimeout: &timeout,
		NullPermissions: true, // show a manifest's 0000 modes as they are
		RootStableAttr:  &gofs.StableAttr{Ino: 1},
	}
	if o.Debug {
		opts.MountOptions.Logger = slog.NewLogLogger(o.Logger.Handler(), slog.LevelInfo)
	} else {
		opts.MountOptions.Logger = log.New(io.Discard, "", 0)
	}
	opts.Logger = slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	return opts
}

// CheckDir checks that dir exists, is a directory and is empty, and returns
// its absolute path.
func CheckDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("mount point %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("mount point: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%w: %s", ErrNotDir, abs)
	}
	d, err := os.Open(abs)
	if err != nil {
		return "", fmt.Errorf("mount point: %w", err)
	}
	defer d.Close()
	if names, err := d.Readdirnames(1); len(names) > 0 {
		return "", fmt.Errorf("%w: %s holds %s", ErrNotEmpty, abs, names[0])
	} else if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("mount point: %w", err)
	}
	return abs, nil
}

// Dir is the absolute path of the mount point.
func (s *Server) Dir() string { return s.dir }

// Done is closed when the mount has ended: unmounted by Unmount or Detach,
// or from outside (fusermount3 -u, umount).
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait blocks until the mount has ended.
func (s *Server) Wait() { <-s.done }

// Unmount unmounts cleanly and waits until the mount has ended. While a
// process has a file open or its working directory inside the mount, it
// fails with an error wrapping ErrBusy and the mount keeps serving.
func (s *Server) Unmount() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.srv.Unmount(); err != nil {
		select {
		case <-s.done: // unmounted from outside meanwhile
			return nil
		default:
		}
		if errors.Is(err, syscall.EBUSY) || strings.Contains(strings.ToLower(err.Error()), "busy") {
			return fmt.Errorf("%w: %s: %v", ErrBusy, s.dir, strings.TrimSpace(err.Error()))
		}
		return fmt.Errorf("unmount %s: %v", s.dir, strings.TrimSpace(err.Error()))
	}
	<-s.done
	return nil
}

// Detach unmounts lazily (umount -l): the mount disappears from the file
// tree at once, while processes that use it keep it until they let go or
// the server stops. It does not wait for the mount to end.
func (s *Server) Detach() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	default:
	}
	err := unix.Unmount(s.dir, unix.MNT_DETACH)
	if err == nil || errors.Is(err, unix.EINVAL) { // EINVAL: no longer mounted
		return nil
	}
	var out []byte
	for _, bin := range []string{"fusermount3", "fusermount"} {
		var xerr error
		if out, xerr = exec.Command(bin, "-u", "-z", s.dir).CombinedOutput(); xerr == nil {
			return nil
		} else if errors.Is(xerr, exec.ErrNotFound) || errors.Is(xerr, fs.ErrNotExist) {
			continue
		}
		break
	}
	return fmt.Errorf("detach %s: %v %s", s.dir, err, strings.TrimSpace(string(out)))
}
