package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"bes/store"
	"bes/store/crypt"
)

func serveCmd(g *globals) *cobra.Command {
	var data string
	c := &cobra.Command{
		Use:   "serve [--data DIR]",
		Short: "run the appliance on a data directory (creates the embedded default repository on first start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := g.log
			dir := filepath.Join(data, "repo")
			keyPath, err := filepath.Abs(filepath.Join(data, "keys", "repo.key"))
			if err != nil {
				return err
			}
			kek := crypt.KeyFile(keyPath)
			r, err := store.Open(ctx, store.OpenOptions{Dir: dir, KEK: kek, Write: true, Command: "serve", Logger: log})
			if errors.Is(err, store.ErrNoRepo) {
				if err := os.MkdirAll(filepath.Dir(keyPath), 0o700); err != nil {
					return err
				}
				if _, serr := os.Stat(keyPath); serr != nil {
					if err := crypt.GenerateKeyFile(keyPath); err != nil {
						return err
					}
				}
				var disks []string
				for i := 1; i <= 6; i++ {
					disks = append(disks, filepath.Join(data, "disks", fmt.Sprintf("disk%d", i)))
				}
				r, err = store.Init(ctx, store.InitOptions{Dir: dir, Disks: disks, K: 4, M: 2, KEK: kek, Logger: log})
			}
			if err != nil {
				return err
			}
			defer r.Close()
			cfg := r.Config()
			fmt.Fprintf(g.env.Stderr, "bes serve: repository %s at %s (erasure coding %d+%d over %d disks, key file %s)\n",
				cfg.ID[:8], r.Dir(), cfg.K, cfg.M, len(cfg.Disks), keyPath)
			fmt.Fprintf(g.env.Stderr, "bes serve: use it with BES_REPO=%s BES_KEY_FILE=%s bes points; Ctrl-C stops\n", r.Dir(), keyPath)
			<-ctx.Done()
			fmt.Fprintln(g.env.Stderr, "bes serve: stopping")
			return nil
		},
	}
	c.Flags().StringVar(&data, "data", "bes-data", "data directory")
	return c
}
