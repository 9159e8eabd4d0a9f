package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"bes/store"
)

func verifyCmd(g *globals) *cobra.Command {
	var o store.VerifyOptions
	c := &cobra.Command{
		Use:   "verify [POINT] [--sample N] [--read-data]",
		Short: "check restore points: manifests, index, sampled files, or every chunk with --read-data",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			o.Points = args
			if g.showProgress() && o.ReadData {
				bar := newProgressBar(g.env.Stderr)
				o.Progress = func(done, total int64) { bar.update("read "+fmtBytes(done), done, total, 0, done == total) }
			}
			rep, err := r.Verify(cmd.Context(), o)
			if err != nil {
				return err
			}
			if g.json {
				g.printJSON(rep)
			} else {
				if o.ReadData {
					g.printf("read %d packs, %d chunks, %s\n", rep.PacksRead, rep.ChunksChecked, fmtBytes(rep.BytesChecked))
				}
				for _, d := range rep.DamagedChunks {
					g.printf("DAMAGED chunk %s\n", d)
				}
				for _, p := range rep.Points {
					g.printf("point %s (host %s): %s, %d files\n", p.ID, p.Host, p.Status, p.Files)
					for _, f := range p.Damaged {
						g.printf("  DAMAGED /%s\n", f)
					}
					for _, e := range p.Errors {
						g.printf("  ERROR %s\n", e)
					}
				}
			}
			if rep.Damaged() {
				return fmt.Errorf("verify: damage found (see above)")
			}
			if !g.json {
				g.printf("no errors were found\n")
			}
			return nil
		},
	}
	c.Flags().IntVar(&o.Sample, "sample", 0, "read back N randomly chosen files of each point")
	c.Flags().BoolVar(&o.ReadData, "read-data", false, "decrypt and hash every chunk of every pack")
	return c
}

func scrubCmd(g *globals) *cobra.Command {
	var repair bool
	c := &cobra.Command{
		Use:   "scrub [--repair]",
		Short: "check every shard and its parity; --repair rebuilds lost or corrupt shards (no key needed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			var rep *store.ScrubReport
			var err error
			if _, kerr := g.kek(false); kerr == nil {
				r, err := g.open(ctx, repair, "scrub")
				if err != nil {
					return err
				}
				defer r.Close()
				rep, err = r.Scrub(ctx, repair, nil)
				if err != nil {
					return err
				}
			} else {
				dir, derr := g.repoDir()
				if derr != nil {
					return derr
				}
				set, release, oerr := store.OpenSet(dir, repair)
				if oerr != nil {
					return oerr
				}
				defer release()
				fmt.Fprintln(g.env.Stderr, "no key given: scrubbing shards and parity only (files hit by damage are not named)")
				if rep, err = store.ScrubSet(ctx, set, repair, nil); err != nil {
					return err
				}
				if repair {
					if err := store.RepairDiskIdentity(dir); err != nil {
						rep.Errors = append(rep.Errors, err.Error())
					}
				}
			}
			if g.json {
				g.printJSON(rep)
			} else {
				g.printf("scrubbed %d packs, %s\n", rep.Packs, fmtBytes(rep.Bytes))
				for _, d := range rep.Damaged {
					state := "damaged"
					if d.Unrecoverable {
						state = "UNRECOVERABLE"
					} else if len(d.Repaired) > 0 {
						state = "repaired"
					}
					g.printf("pack %s: %s, bad shards %v\n", d.Name, state, d.BadShards)
					for _, s := range d.Detail {
						g.printf("  %s\n", s)
					}
				}
				for _, h := range rep.Hits {
					g.printf("  hit: %s\n", h)
				}
				for _, e := range rep.Errors {
					g.printf("error: %s\n", e)
				}
			}
			switch {
			case len(rep.Unrecoverable) > 0:
				return fmt.Errorf("scrub: %d packs are unrecoverable", len(rep.Unrecoverable))
			case len(rep.Errors) > 0:
				return fmt.Errorf("scrub: %d errors", len(rep.Errors))
			case !repair && len(rep.Damaged) > 0:
				return fmt.Errorf("scrub: %d packs have damaged shards: run bes scrub --repair", len(rep.Damaged))
			}
			if !g.json {
				if repair && rep.Repaired > 0 {
					g.printf("repaired %d packs\n", rep.Repaired)
				} else {
					g.printf("all shards healthy\n")
				}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&repair, "repair", false, "rebuild missing or corrupt shards from parity")
	return c
}

func catalogCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "catalog", Short: "catalog maintenance"}
	c.AddCommand(&cobra.Command{
		Use:   "rebuild",
		Short: "rebuild the SQLite catalog from the packs on the disks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open(cmd.Context(), true, "catalog rebuild")
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := r.RebuildCatalog(cmd.Context(), nil)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			g.printf("catalog rebuilt: %d packs, %d chunks, %d points\n", rep.Packs, rep.Chunks, rep.Points)
			for _, s := range rep.Skipped {
				g.printf("skipped: %s\n", s)
			}
			return nil
		},
	})
	return c
}
