package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bes/agent"
)

type backupSummary struct {
	PointID     string  `json:"point_id"`
	Host        string  `json:"host"`
	Type        string  `json:"type"`
	Parent      string  `json:"parent,omitempty"`
	Files       int64   `json:"files"`
	Dirs        int64   `json:"dirs"`
	Unchanged   int64   `json:"unchanged_files"`
	Bytes       int64   `json:"bytes"`
	BytesRead   int64   `json:"bytes_read"`
	NewBytes    int64   `json:"new_bytes"`
	BytesStored int64   `json:"bytes_stored"`
	Seconds     float64 `json:"seconds"`
	MBps        float64 `json:"mb_per_s"`
	Errors      int64   `json:"errors"`
}

func backupCmd(g *globals) *cobra.Command {
	var o agent.BackupOptions
	var lockFor retainFlag
	c := &cobra.Command{
		Use:   "backup PATH... [--host NAME] [--exclude GLOB]... [--compression zstd|lz4|none]",
		Short: "back up files and directories into a new restore point",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.open(cmd.Context(), true, "backup")
			if err != nil {
				return err
			}
			defer r.Close()
			o.Paths, o.Logger = args, g.log
			var bar *progressBar
			if g.showProgress() {
				bar = newProgressBar(g.env.Stderr)
				o.Progress = func(p agent.Progress) {
					bar.update(fmt.Sprintf("%d files, %d dirs, %s read, %s new", p.Files, p.Dirs, fmtBytes(p.BytesRead), fmtBytes(p.NewBytes)), p.BytesRead, 0, p.Elapsed, p.Done)
				}
			}
			p, err := agent.Backup(cmd.Context(), r, o)
			if err != nil {
				return err
			}
			if err := g.lockNew(cmd.Context(), r, p.ID, time.Duration(lockFor)); err != nil {
				return err
			}
			s := p.Stats
			sum := backupSummary{PointID: p.ID, Host: p.Host, Type: p.Type, Parent: p.Parent, Files: s.Files, Dirs: s.Dirs,
				Bytes: s.Bytes, BytesRead: s.BytesRead, NewBytes: s.NewBytes, BytesStored: s.Stored,
				Seconds: s.Seconds, Errors: s.Errors, Unchanged: s.Unchanged}
			if s.Seconds > 0 {
				sum.MBps = float64(s.Bytes) / 1e6 / s.Seconds
			}
			if g.json {
				err = g.printJSON(sum)
			} else {
				g.printf("point %s (%s, host %s) committed\n", p.ID, p.Type, p.Host)
				g.printf("files: %d, dirs: %d, size: %s, read: %s, new after dedup: %s, stored: %s\n",
					s.Files, s.Dirs, fmtBytes(s.Bytes), fmtBytes(s.BytesRead), fmtBytes(s.NewBytes), fmtBytes(s.Stored))
				g.printf("took %s (%.1f MB/s)\n", time.Duration(s.Seconds*float64(time.Second)).Round(time.Millisecond), sum.MBps)
			}
			if err == nil && s.Errors > 0 {
				return &exitError{ExitPartial, fmt.Errorf("backup committed, but %d files or directories could not be read (see warnings)", s.Errors)}
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&o.Host, "host", "", "host name recorded in the point (default: this machine's)")
	f.StringArrayVarP(&o.Excludes, "exclude", "e", nil, "exclude a glob (base name, or whole path when it has a '/'); repeatable")
	f.StringVar(&o.Compression, "compression", "", "zstd, lz4 or none (default: the repository's)")
	f.StringVar(&o.Policy, "policy", "", "backup policy name recorded in the point")
	f.Var(&lockFor, "lock-for", "make the new point immutable for this long (e.g. 30d, 12w, 1y, 36h): the policy's immutable retention window")
	f.Var(timeFlag{&o.Time}, "time", "record the point at this time (RFC 3339, or YYYY-MM-DD[THH:MM[:SS]] in local time) instead of now")
	return c
}
