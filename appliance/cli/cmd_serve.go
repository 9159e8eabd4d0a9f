package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"bes/appliance/auth"
	"bes/appliance/jobs"
	"bes/appliance/model"
	"bes/appliance/server"
	"bes/appliance/tlsutil"
	"bes/board"
	"bes/store"
	"bes/store/crypt"
)

func serveCmd(g *globals) *cobra.Command {
	var data, listen string
	c := &cobra.Command{
		Use:   "serve [--data DIR] [--listen ADDR]",
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

			accounts, err := auth.Open(ctx, filepath.Join(data, "appliance.db"))
			if err != nil {
				return err
			}
			defer accounts.Close()
			if pw, err := accounts.Bootstrap(ctx, "admin"); err != nil {
				return err
			} else if pw != "" {
				// Printed once, never logged: the only copy.
				fmt.Fprintf(g.env.Stderr, "bes serve: created user admin with the one-time password %s (change it at first login)\n", pw)
			}
			md, err := model.Open(ctx, filepath.Join(data, "appliance.db"), filepath.Join(data, "keys", "model.key"))
			if err != nil {
				return err
			}
			defer md.Close()
			hosts := tlsutil.DefaultHosts()
			if h, _, err := net.SplitHostPort(listen); err == nil && h != "" {
				hosts = append(hosts, h)
			}
			cert, info, err := tlsutil.LoadOrCreate(filepath.Join(data, "tls"), hosts, time.Now())
			if err != nil {
				return err
			}
			log.Info("TLS certificate", "fingerprint_sha256", info.Fingerprint, "not_after", info.NotAfter, "created", info.Created)
			fmt.Fprintf(g.env.Stderr, "bes serve: TLS certificate SHA-256 fingerprint %s\n", info.Fingerprint)

			reg := prometheus.NewRegistry()
			if sm, err := board.NewSampler("/proc", append([]string{data}, cfg.Disks...)); err == nil {
				reg.MustRegister(sm.Collector())
			} else {
				log.Warn("board metrics unavailable", "err", err)
			}
			runner := &jobs.Runner{Model: md, Repo: r, Log: log, AutoRetry: true, Grace: 10 * time.Second}
			sched := &jobs.Scheduler{Model: md, Log: log, Wake: runner.Wake}
			srv := server.New(server.Options{Repo: r, Accounts: accounts, Model: md, Logger: log, Version: Version, Registry: reg,
				Enqueue: func(ctx context.Context, p *model.Policy, mode string) ([]model.Job, error) {
					return jobs.EnqueuePolicy(ctx, md, p, model.JobBackup, mode, "manual")
				},
				Wake: runner.Wake})
			monitor := &jobs.Monitor{Model: md, Log: log}
			var wg sync.WaitGroup
			wg.Add(3)
			go func() { defer wg.Done(); runner.Run(ctx) }()
			go func() { defer wg.Done(); sched.Run(ctx) }()
			go func() { defer wg.Done(); monitor.Run(ctx, 5*time.Minute) }()
			defer wg.Wait() // SIGTERM: no new jobs; a running one finishes within the grace time
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("serve: %w", err)
			}
			fmt.Fprintf(g.env.Stderr, "bes serve: API and console at https://%s/ ; Ctrl-C or SIGTERM stops\n", ln.Addr())
			// Under systemd: READY once the socket is bound, WATCHDOG pings
			// at half the configured interval, STOPPING on the way out.
			daemon.SdNotify(false, daemon.SdNotifyReady)
			if iv, err := daemon.SdWatchdogEnabled(false); err == nil && iv > 0 {
				go func() {
					t := time.NewTicker(iv / 2)
					defer t.Stop()
					for {
						select {
						case <-ctx.Done():
							return
						case <-t.C:
							daemon.SdNotify(false, daemon.SdNotifyWatchdog)
						}
					}
				}()
			}
			context.AfterFunc(ctx, func() { daemon.SdNotify(false, daemon.SdNotifyStopping) })
			err = srv.Serve(ctx, ln, cert, 15*time.Second)
			fmt.Fprintln(g.env.Stderr, "bes serve: stopped")
			return err
		},
	}
	c.Flags().StringVar(&data, "data", "bes-data", "data directory")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "address for the HTTPS API and console")
	return c
}

// Version is the appliance's version string (set at build time).
var Version = "dev"
