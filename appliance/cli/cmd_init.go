package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"bes/store"
)

type initOptions struct {
	disks       string
	ec          string
	compression string
	encryption  string
	replicaOf   string
	srcPwFile   string
	objectLock  bool
}

func parseEC(s string) (k, m int, err error) {
	a, b, ok := strings.Cut(s, "+")
	if ok {
		k, err = strconv.Atoi(a)
		if err == nil {
			m, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || k < 1 || m < 0 || k+m > 32 {
		return 0, 0, fmt.Errorf("--ec %q: want K+M with K >= 1, M >= 0, K+M <= 32 (e.g. 4+2)", s)
	}
	return k, m, nil
}

func initCmd(g *globals) *cobra.Command {
	var o initOptions
	c := &cobra.Command{
		Use:   "init [--repo DIR] [--disks D1,D2,...] [--ec K+M]",
		Short: "create a repository on an erasure-coded set of disk directories",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, m, err := parseEC(o.ec)
			if err != nil {
				return err
			}
			dir, err := g.repoDir()
			if err != nil {
				return err
			}
			var disks []string
			if o.disks != "" {
				for _, d := range strings.Split(o.disks, ",") {
					if d = strings.TrimSpace(d); d != "" {
						disks = append(disks, d)
					}
				}
				if len(disks) != k+m {
					return fmt.Errorf("--ec %d+%d needs %d disk directories, --disks names %d", k, m, k+m, len(disks))
				}
			}
			kek, err := g.kek(true)
			if err != nil {
				return err
			}
			if m == 0 {
				fmt.Fprintf(g.env.Stderr, "WARNING: erasure coding %d+0 keeps NO redundancy: one damaged or lost disk loses backups\n", k)
			}
			io := store.InitOptions{Dir: dir, Disks: disks, K: k, M: m, KEK: kek,
				Compression: o.compression, Encryption: o.encryption, Logger: g.log, ObjectLock: o.objectLock, Getenv: g.env.Getenv}
			if o.replicaOf != "" {
				skek := kek
				if o.srcPwFile != "" {
					if skek, err = passwordFileKEK(o.srcPwFile); err != nil {
						return err
					}
				}
				src, err := g.openWith(cmd.Context(), store.OpenOptions{Dir: o.replicaOf, KEK: skek})
				if err != nil {
					return fmt.Errorf("--replica-of: %w", err)
				}
				defer src.Close()
				io.ReplicaOf = src
				if !cmd.Flags().Changed("compression") {
					io.Compression = ""
				}
			}
			r, err := store.Init(cmd.Context(), io)
			if err != nil {
				return err
			}
			defer r.Close()
			cfg := r.Config()
			if g.json {
				return g.printJSON(map[string]any{"id": cfg.ID, "repo": r.Dir(), "disks": cfg.Disks, "ec": fmt.Sprintf("%d+%d", cfg.K, cfg.M)})
			}
			if cfg.Backend == "s3" {
				g.printf("created repository %s in %s (local state in %s)\n", cfg.ID[:8], dir, r.Dir())
			} else {
				g.printf("created repository %s at %s\nerasure coding %d+%d over %d disks:\n", cfg.ID[:8], r.Dir(), cfg.K, cfg.M, len(cfg.Disks))
				for _, d := range cfg.Disks {
					g.printf("  %s\n", d)
				}
			}
			if cfg.ReplicaOf != "" {
				g.printf("a replica of repository %s (same data keys; its own password)\n", cfg.ReplicaOf[:8])
			}
			g.printf("keep the password safe: without it the data cannot be read\n")
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.disks, "disks", "", "comma-separated disk directories, one per shard (default: K+M directories under the repository)")
	f.StringVar(&o.ec, "ec", "4+2", "erasure coding: K data + M parity shards")
	f.StringVar(&o.compression, "compression", "zstd", "default compression: zstd, lz4 or none")
	f.StringVar(&o.encryption, "encryption", "aes-256-gcm", "aes-256-gcm or none")
	f.StringVar(&o.replicaOf, "replica-of", "", "make a replica of this repository (same data keys, wrapped with this repository's own password or key)")
	f.BoolVar(&o.objectLock, "object-lock", false, "S3: create the bucket with Object Lock, so locked points' packs get a retention the bucket enforces (such buckets are versioned: expire noncurrent versions with a lifecycle rule)")
	f.StringVar(&o.srcPwFile, "source-password-file", "", "the --replica-of repository's password, when it differs from this one's")
	return c
}
