package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"bes/diskimg"
)

func imageCmd(g *globals) *cobra.Command {
	c := &cobra.Command{
		Use:   "image",
		Short: "block-level disk image backup and restore",
	}
	c.AddCommand(imageBackupCmd(g), imageRestoreCmd(g))
	return c
}

type imageBackupSummary struct {
	PointID     string               `json:"point_id"`
	Host        string               `json:"host"`
	Type        string               `json:"type"`
	Parent      string               `json:"parent,omitempty"`
	Identity    string               `json:"disk"`
	DiskSize    int64                `json:"disk_size"`
	TableKind   string               `json:"table"`
	Partitions  []diskimg.PartReport `json:"partitions"`
	Outside     diskimg.PartReport   `json:"outside"`
	BytesRead   int64                `json:"bytes_read"`
	NewBytes    int64                `json:"new_bytes"`
	BytesStored int64                `json:"bytes_stored"`
	Seconds     float64              `json:"seconds"`
	MBps        float64              `json:"mb_per_s"`
}

func imageBackupCmd(g *globals) *cobra.Command {
	var o diskimg.BackupOptions
	var lockFor retainFlag
	var chunkKiB int64
	c := &cobra.Command{
		Use:   "backup SOURCE [--host NAME] [--allow-live] [--snapshot lvm]",
		Short: "image a disk, partition or raw image file into a new image point",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.open(cmd.Context(), true, "image backup")
			if err != nil {
				return err
			}
			defer r.Close()
			o.Logger, o.ChunkSize = g.log, chunkKiB<<10
			if g.showProgress() {
				bar := newProgressBar(g.env.Stderr)
				o.Progress = func(p diskimg.Progress) {
					bar.update(fmt.Sprintf("%s of %s read, %s new", fmtBytes(p.Done), fmtBytes(p.Total), fmtBytes(p.New)), p.Done, p.Total, p.Elapsed, p.Finished)
				}
			}
			res, err := diskimg.Backup(cmd.Context(), r, args[0], o)
			if err != nil {
				return err
			}
			if err := g.lockNew(cmd.Context(), r, res.Point.ID, time.Duration(lockFor)); err != nil {
				return err
			}
			p, s := res.Point, res.Point.Stats
			sum := imageBackupSummary{PointID: p.ID, Host: p.Host, Type: p.Type, Parent: p.Parent, Identity: res.Info.Identity,
				DiskSize: res.Info.Table.DiskSize, TableKind: res.Info.Table.Kind, Partitions: res.Info.Parts, Outside: res.Info.Outside,
				BytesRead: s.BytesRead, NewBytes: s.NewBytes, BytesStored: s.Stored, Seconds: s.Seconds}
			if s.Seconds > 0 {
				sum.MBps = float64(s.Bytes) / 1e6 / s.Seconds
			}
			if g.json {
				return g.printJSON(sum)
			}
			g.printf("image point %s (%s) of %s: %s disk, %s table\n", p.ID, p.Type, args[0], fmtBytes(sum.DiskSize), sum.TableKind)
			for _, pr := range sum.Partitions {
				g.printf("  %s\n", pr)
			}
			g.printf("read %s, new %s, stored %s in %s (%.0f MB/s of disk)\n", fmtBytes(s.BytesRead), fmtBytes(s.NewBytes),
				fmtBytes(s.Stored), time.Duration(s.Seconds*float64(time.Second)).Round(time.Millisecond), sum.MBps)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Host, "host", "", "host name recorded in the point (default: this machine's)")
	f.BoolVar(&o.AllowLive, "allow-live", false, "image a source that is mounted read-write (the image may be inconsistent)")
	f.StringVar(&o.Snapshot, "snapshot", "", "take a snapshot around the read: lvm")
	f.Var(&lockFor, "lock-for", "make the new point immutable for this long (e.g. 30d, 12w, 1y)")
	f.StringVar(&o.Compression, "compression", "", "zstd (default), lz4 or none")
	f.Int64Var(&chunkKiB, "chunk-size", diskimg.DefaultChunkSize>>10, "chunk size in KiB (power of two, 64-4096)")
	return c
}

func imageRestoreCmd(g *globals) *cobra.Command {
	var o diskimg.RestoreOptions
	c := &cobra.Command{
		Use:   "restore POINT --target FILE|DEVICE [--overwrite] [--verify] [--zero-unused]",
		Short: "write an image point to a file or block device",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Target == "" {
				return fmt.Errorf("image restore: --target is required")
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
			o.Logger = g.log
			if g.showProgress() {
				bar := newProgressBar(g.env.Stderr)
				o.Progress = func(p diskimg.Progress) {
					bar.update(fmt.Sprintf("%s of %s written", fmtBytes(p.Done), fmtBytes(p.Total)), p.Done, p.Total, p.Elapsed, p.Finished)
				}
			}
			sum, err := diskimg.Restore(cmd.Context(), r, p, o)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(map[string]any{"point_id": p.ID, "summary": sum})
			}
			extra := ""
			if sum.Relocated {
				extra += ", GPT moved to the new end"
			}
			if sum.Verified {
				extra += ", verified"
			}
			g.printf("restored image point %s to %s: %s written of a %s disk onto %s%s in %s\n", p.ID, o.Target,
				fmtBytes(sum.Written), fmtBytes(sum.DiskSize), fmtBytes(sum.TargetSize), extra,
				time.Duration(sum.Seconds*float64(time.Second)).Round(time.Millisecond))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Target, "target", "", "file or block device to write")
	f.BoolVar(&o.Overwrite, "overwrite", false, "replace an existing file's or device's contents")
	f.BoolVar(&o.Verify, "verify", false, "re-read and re-hash everything written")
	f.BoolVar(&o.ZeroUnused, "zero-unused", false, "devices: also write zeros over unused space")
	f.BoolVar(&o.Sync, "sync", false, "flush a file target to disk before finishing (devices always are)")
	return c
}
