package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bes/diskimg/mount"
)

// mountOptions configures bes mount.
type mountOptions struct {
	cacheChunks int           // decoded chunks kept in memory
	busyWait    time.Duration // how long a busy unmount is retried before detaching lazily
	debug       bool          // log every FUSE request
}

func mountCmd(g *globals) *cobra.Command {
	o := mountOptions{busyWait: 10 * time.Second}
	c := &cobra.Command{
		Use:   "mount POINT DIR",
		Short: "mount a restore point read-only at an empty directory until Ctrl-C (FUSE)",
		Long: `Mount a restore point read-only at DIR, an empty directory, and serve it
until Ctrl-C, SIGTERM or an unmount from outside (fusermount3 -u DIR).

A file point shows its tree. An image point shows disk.img (the whole disk)
and part1.img, part2.img, ... (its partitions); attach one with
"losetup -r -f --show DIR/part1.img" or "mount -o loop,ro DIR/part1.img X".

If the mount is busy when asked to stop (a file open, a shell's working
directory inside), the unmount is retried for --busy-wait, then the mount
is detached lazily.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runMount(cmd.Context(), args[0], args[1], o)
		},
	}
	f := c.Flags()
	f.IntVar(&o.cacheChunks, "cache-chunks", mount.DefaultCacheChunks, "decoded chunks kept in memory, shared by all files")
	f.DurationVar(&o.busyWait, "busy-wait", o.busyWait, "on Ctrl-C, retry a busy unmount this long, then detach lazily")
	f.BoolVar(&o.debug, "debug-fuse", false, "log every FUSE request (with --verbose)")
	return c
}

// runMount mounts point at dir and serves it until ctx ends (the process's
// SIGINT/SIGTERM) or the mount is unmounted from outside.
func (g *globals) runMount(ctx context.Context, point, dir string, o mountOptions) error {
	if _, err := mount.CheckDir(dir); err != nil { // before asking for a password
		return err
	}
	r, err := g.open(ctx, false, "")
	if err != nil {
		return err
	}
	defer r.Close()
	p, err := r.FindPoint(ctx, point)
	if err != nil {
		return err
	}
	s, err := mount.Mount(ctx, r, p, dir, mount.Options{CacheChunks: o.cacheChunks, Logger: g.log, Debug: o.debug})
	if err != nil {
		return err
	}
	if g.json {
		g.printJSON(map[string]string{"point_id": p.ID, "kind": p.Kind, "dir": s.Dir()})
	} else {
		g.printf("mounted point %s at %s (Ctrl-C to unmount)\n", p.ID, s.Dir())
	}
	select {
	case <-s.Done():
		if !g.json {
			g.printf("%s was unmounted from outside\n", s.Dir())
		}
		return nil
	case <-ctx.Done():
	}
	return g.unmount(s, o.busyWait)
}

// unmount stops a mount: cleanly if it can, retrying while it is busy for
// up to busyWait, then lazily.
func (g *globals) unmount(s *mount.Server, busyWait time.Duration) error {
	deadline := time.Now().Add(busyWait)
	warned := false
	for {
		err := s.Unmount()
		if err == nil {
			if !g.json {
				g.printf("unmounted %s\n", s.Dir())
			}
			return nil
		}
		if !errors.Is(err, mount.ErrBusy) {
			fmt.Fprintf(g.env.Stderr, "bes: %v; detaching lazily\n", err)
			break
		}
		if !time.Now().Before(deadline) {
			break
		}
		if !warned {
			fmt.Fprintf(g.env.Stderr, "bes: %s is busy (a program has a file open or its working directory there); "+
				"retrying for %s, then detaching lazily\n", s.Dir(), busyWait)
			warned = true
		}
		select {
		case <-s.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := s.Detach(); err != nil {
		return fmt.Errorf("unmount: %w (try: fusermount3 -u -z %s)", err, s.Dir())
	}
	fmt.Fprintf(g.env.Stderr, "bes: detached %s lazily: it is gone from the file tree; programs still using it get errors from now on\n", s.Dir())
	return nil
}
