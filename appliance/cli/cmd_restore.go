package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bes/agent"
	"bes/diskimg"
	"bes/store"
)

func restoreCmd(g *globals) *cobra.Command {
	var o agent.RestoreOptions
	c := &cobra.Command{
		Use:   "restore POINT --target DIR [--include PATH]... [--overwrite]",
		Short: "restore a point (or parts of it) into a directory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Target == "" {
				return fmt.Errorf("--target DIR is required")
			}
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.FindPoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if p.Kind == store.KindImage {
				return g.restoreImageFiles(cmd.Context(), r, p, o)
			}
			o.Logger = g.log
			if g.showProgress() {
				bar := newProgressBar(g.env.Stderr)
				o.Progress = func(p agent.RestoreProgress) {
					bar.update(fmt.Sprintf("%s of %s", fmtBytes(p.Bytes), fmtBytes(p.Total)), p.Bytes, p.Total, p.Elapsed, p.Done)
				}
			}
			sum, err := agent.Restore(cmd.Context(), r, p, o)
			if sum != nil {
				if g.json {
					g.printJSON(map[string]any{"point_id": p.ID, "summary": sum})
				} else {
					g.printf("restored point %s into %s: %d files, %d dirs, %d symlinks, %s in %s\n", p.ID, o.Target,
						sum.Files, sum.Dirs, sum.Symlinks, fmtBytes(sum.Bytes), time.Duration(sum.Seconds*float64(time.Second)).Round(time.Millisecond))
					if n := len(sum.Skipped); n > 0 {
						g.printf("%d existing files left untouched (use --overwrite to replace them)\n", n)
					}
					for _, e := range sum.Errors {
						fmt.Fprintf(g.env.Stderr, "error: %s\n", e)
					}
				}
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVarP(&o.Target, "target", "t", "", "directory to restore into")
	f.StringArrayVarP(&o.Includes, "include", "i", nil, "restore only this path (and below); repeatable")
	f.BoolVar(&o.Overwrite, "overwrite", false, "replace existing files at the target")
	return c
}

// restoreImageFiles restores files out of the file systems of an image
// point (bes image restore writes whole disks).
func (g *globals) restoreImageFiles(ctx context.Context, r *store.Repo, p *store.Point, o agent.RestoreOptions) error {
	b, err := diskimg.Browse(ctx, r, p)
	if err != nil {
		return err
	}
	sum, err := b.RestoreFiles(ctx, diskimg.FileRestoreOptions{Target: o.Target, Includes: o.Includes, Overwrite: o.Overwrite})
	if g.json {
		g.printJSON(map[string]any{"point_id": p.ID, "summary": sum})
	} else {
		g.printf("restored files of image point %s into %s: %d files, %d dirs, %d symlinks, %s in %s\n", p.ID, o.Target,
			sum.Files, sum.Dirs, sum.Symlinks, fmtBytes(sum.Bytes), time.Duration(sum.Seconds*float64(time.Second)).Round(time.Millisecond))
		if n := len(sum.Skipped); n > 0 {
			g.printf("%d existing files left untouched (use --overwrite to replace them)\n", n)
		}
		for _, e := range sum.Errors {
			fmt.Fprintf(g.env.Stderr, "error: %s\n", e)
		}
	}
	return err
}
