package cli

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"bes/diskimg"
	"bes/store"
	"bes/store/catalog"
	"bes/store/manifest"
)

type pointJSON struct {
	ID           string    `json:"id"`
	Time         time.Time `json:"time"`
	Started      time.Time `json:"started"`
	Host         string    `json:"host"`
	Kind         string    `json:"kind"`
	Type         string    `json:"type"`
	Status       string    `json:"status"`
	Chain        string    `json:"chain"`
	Parent       string    `json:"parent,omitempty"`
	Paths        []string  `json:"paths,omitempty"`
	Files        int64     `json:"files"`
	Bytes        int64     `json:"bytes"`
	NewBytes     int64     `json:"new_bytes"`
	StoredBytes  int64     `json:"stored_bytes"`
	VerifyStatus string    `json:"verify_status"`
}

func pointsCmd(g *globals) *cobra.Command {
	var f catalog.PointFilter
	c := &cobra.Command{
		Use:   "points [--host NAME] [--json]",
		Short: "list restore points",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			ps, err := r.Points(cmd.Context(), f)
			if err != nil {
				return err
			}
			out := make([]pointJSON, 0, len(ps))
			for _, p := range ps {
				out = append(out, pointJSON{ID: p.ID, Time: p.Finished, Started: p.Started, Host: p.Host, Kind: p.Kind, Type: p.Type,
					Status: p.Status, Chain: p.Chain, Parent: p.Parent, Paths: p.Paths, Files: p.Stats.Files, Bytes: p.Stats.Bytes,
					NewBytes: p.Stats.NewBytes, StoredBytes: p.Stats.Stored, VerifyStatus: p.VerifyStatus})
			}
			if g.json {
				return g.printJSON(out)
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTIME\tHOST\tKIND\tTYPE\tSTATUS\tVERIFY\tSIZE\tPATHS")
			for _, p := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID[:8], p.Time.Local().Format("2006-01-02 15:04:05"),
					p.Host, p.Kind, p.Type, p.Status, p.VerifyStatus, fmtBytes(p.Bytes), strings.Join(p.Paths, ","))
			}
			tw.Flush()
			fmt.Fprintf(g.env.Stdout, "%d points\n", len(out))
			return nil
		},
	}
	c.Flags().StringVar(&f.Host, "host", "", "only points of this host")
	c.Flags().StringVar(&f.Kind, "kind", "", "only points of this kind (file, image)")
	return c
}

type entryJSON struct {
	Path   string    `json:"path"`
	Type   string    `json:"type"`
	Mode   string    `json:"mode"`
	Size   int64     `json:"size"`
	MTime  time.Time `json:"mtime"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	Target string    `json:"target,omitempty"`
}

func (g *globals) printEntry(e *manifest.Entry) {
	if g.json {
		b := entryJSON{Path: "/" + e.Path, Type: e.Kind.String(), Mode: fmt.Sprintf("%04o", e.Mode), Size: e.Size,
			MTime: time.Unix(0, e.MTime), UID: e.UID, GID: e.GID, Target: e.Target}
		enc := jsonLine(g.env.Stdout)
		enc.Encode(b)
		return
	}
	mode := fs.FileMode(e.Mode & 0o777)
	kind := map[manifest.Kind]byte{manifest.KindDir: 'd', manifest.KindSymlink: 'l', manifest.KindFIFO: 'p',
		manifest.KindDevice: 'b', manifest.KindCharDevice: 'c', manifest.KindSocket: 's'}[e.Kind]
	if kind == 0 {
		kind = '-'
	}
	name := "/" + e.Path
	if e.Kind == manifest.KindSymlink {
		name += " -> " + e.Target
	}
	g.printf("%c%s %5d %5d %12d %s %s\n", kind, mode.String()[1:], e.UID, e.GID, e.Size,
		time.Unix(0, e.MTime).Local().Format("2006-01-02 15:04:05"), name)
}

func lsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ls POINT [PATH]",
		Short: "list the files of a restore point (POINT may be an ID prefix or latest)",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			p, err := r.FindPoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			prefix := ""
			if len(args) == 2 {
				prefix = strings.Trim(path.Clean("/"+args[1]), "/")
			}
			return g.walkPoint(cmd.Context(), r, p, prefix, func(e *manifest.Entry) error {
				if prefix == "" || e.Path == prefix || strings.HasPrefix(e.Path, prefix+"/") {
					g.printEntry(e)
				}
				return nil
			})
		},
	}
}

func findCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "find POINT GLOB",
		Short: "find files in a restore point by glob (matched against the base name, or the whole path when it has a '/')",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			glob := args[1]
			if _, err := filepath.Match(glob, ""); err != nil {
				return fmt.Errorf("glob %q: %w", glob, err)
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
			full := strings.Contains(glob, "/")
			n := 0
			err = g.walkPoint(cmd.Context(), r, p, "", func(e *manifest.Entry) error {
				subject := path.Base(e.Path)
				if full {
					subject = "/" + e.Path
				}
				if ok, _ := path.Match(glob, subject); ok {
					n++
					g.printEntry(e)
				}
				return nil
			})
			if err == nil && !g.json {
				fmt.Fprintf(g.env.Stderr, "%d matches\n", n)
			}
			return err
		},
	}
}

// walkPoint walks a point's tree: the manifest of a file point, the file
// systems inside an image point (paths start with part1, part2, ...).
func (g *globals) walkPoint(ctx context.Context, r *store.Repo, p *store.Point, prefix string, fn func(*manifest.Entry) error) error {
	if p.Kind != store.KindImage {
		return r.WalkManifest(ctx, p, fn)
	}
	b, err := diskimg.Browse(ctx, r, p)
	if err != nil {
		return err
	}
	return b.Walk(ctx, prefix, func(err error) { g.log.Warn("image browse", "err", err) }, fn)
}
