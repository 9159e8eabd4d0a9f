package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"bes/agent"
	"bes/diskimg"
	"bes/store"
)

func drillCmd(g *globals) *cobra.Command {
	var sandbox string
	var keep bool
	c := &cobra.Command{
		Use:   "drill POINT [--sandbox DIR] [--keep]",
		Short: "restore drill: restore a point into a sandbox, check every chunk, record the time to restore",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			r, err := g.open(ctx, false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.FindPoint(ctx, args[0])
			if err != nil {
				return err
			}
			base, err := os.MkdirTemp(sandbox, "bes-drill-")
			if err != nil {
				return fmt.Errorf("drill: sandbox: %w", err)
			}
			if !keep {
				defer os.RemoveAll(base)
			}
			d := store.Drill{Point: p.ID, At: time.Now().UTC()}
			start := time.Now()
			var rerr error
			if p.Kind == store.KindImage {
				var sum *diskimg.RestoreSummary
				sum, rerr = diskimg.Restore(ctx, r, p, diskimg.RestoreOptions{Target: filepath.Join(base, "disk.img"), Verify: true, Logger: g.log})
				if sum != nil {
					d.Bytes, d.Files = sum.Written, 1
				}
			} else {
				var sum *agent.RestoreSummary
				sum, rerr = agent.Restore(ctx, r, p, agent.RestoreOptions{Target: base, Logger: g.log})
				if sum != nil {
					d.Bytes, d.Files = sum.Bytes, sum.Files
					if rerr == nil && len(sum.Errors) > 0 {
						rerr = fmt.Errorf("%d files could not be restored (first: %s)", len(sum.Errors), sum.Errors[0])
					}
				}
			}
			d.Seconds = time.Since(start).Seconds()
			d.OK = rerr == nil
			if rerr != nil {
				d.Error = rerr.Error()
			}
			if err := r.RecordDrill(ctx, d); err != nil {
				return err
			}
			if g.json {
				if err := g.printJSON(d); err != nil {
					return err
				}
			} else if d.OK {
				g.printf("drill of point %s passed: %d files, %s restored and checked in %.1fs\n", p.ID, d.Files, fmtBytes(d.Bytes), d.Seconds)
				if keep {
					g.printf("sandbox kept at %s\n", base)
				}
			}
			if rerr != nil {
				return fmt.Errorf("drill of point %s FAILED: %w", p.ID, rerr)
			}
			return nil
		},
	}
	c.Flags().StringVar(&sandbox, "sandbox", "", "directory under which the sandbox is made (default: the system temp dir)")
	c.Flags().BoolVar(&keep, "keep", false, "keep the sandbox for inspection")
	return c
}
