package cli

import (
	"context"
	"crypto/tls"
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
	"bes/appliance/config"
	"bes/appliance/jobs"
	"bes/appliance/model"
	"bes/appliance/server"
	"bes/appliance/tlsutil"
	"bes/board"
	"bes/store"
	"bes/store/crypt"
)

func serveCmd(g *globals) *cobra.Command {
	var data, listen, confPath string
	c := &cobra.Command{
		Use:   "serve [--config FILE] [--data DIR] [--listen ADDR]",
		Short: "run the appliance on a data directory (creates the embedded default repository on first start)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := g.log
			if confPath == "" {
				confPath = g.env.Getenv("BES_CONFIG")
			}
			conf, err := config.Load(confPath, g.env.Getenv)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("data") {
				conf.DataDir = data
			}
			if cmd.Flags().Changed("listen") {
				conf.Listen = listen
			}
			if err := conf.Validate(); err != nil {
				return err
			}
			data, listen = conf.DataDir, conf.Listen
			time.Local = conf.Location() // days, weeks and months of retention
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
				if r, err = store.Init(ctx, store.InitOptions{Dir: dir, Disks: disks, K: 4, M: 2, KEK: kek, Logger: log}); err == nil {
					r.Close() // reopened as the daemon, so the lock names it
					r, err = store.Open(ctx, store.OpenOptions{Dir: dir, KEK: kek, Write: true, Command: "serve", Logger: log})
				}
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
			var cert *tls.Certificate
			if conf.TLS.Cert != "" {
				c, err := tls.LoadX509KeyPair(conf.TLS.Cert, conf.TLS.Key)
				if err != nil {
					return fmt.Errorf("serve: tls: %w", err)
				}
				cert = &c
				fmt.Fprintf(g.env.Stderr, "bes serve: TLS certificate %s, SHA-256 fingerprint %s\n", conf.TLS.Cert, tlsutil.Fingerprint(c.Certificate[0]))
			} else {
				c, info, err := tlsutil.LoadOrCreate(filepath.Join(data, "tls"), hosts, time.Now())
				if err != nil {
					return err
				}
				cert = c
				log.Info("TLS certificate", "fingerprint_sha256", info.Fingerprint, "not_after", info.NotAfter, "created", info.Created)
				fmt.Fprintf(g.env.Stderr, "bes serve: TLS certificate SHA-256 fingerprint %s\n", info.Fingerprint)
			}

			reg := prometheus.NewRegistry()
			if sm, err := board.NewSampler("/proc", append([]string{data}, cfg.Disks...)); err == nil {
				reg.MustRegister(sm.Collector())
			} else {
				log.Warn("board metrics unavailable", "err", err)
			}
			runner := &jobs.Runner{Model: md, Repo: r, Log: log, AutoRetry: *conf.Jobs.AutoRetry, Grace: conf.Jobs.StopGrace.Duration,
				OpenGC: func(ctx context.Context) (*store.Repo, error) {
					return store.Open(ctx, store.OpenOptions{Dir: dir, KEK: kek, GC: true, Command: "gc", Logger: log})
				}}
			sched := &jobs.Scheduler{Model: md, Log: log, Wake: runner.Wake, GCSchedule: conf.Jobs.GCSchedule}
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
			go func() { defer wg.Done(); monitor.Run(ctx, conf.Capacity.Interval.Duration) }()
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
			err = srv.Serve(ctx, ln, cert, conf.Jobs.StopGrace.Duration+5*time.Second)
			fmt.Fprintln(g.env.Stderr, "bes serve: stopped")
			return err
		},
	}
	c.Flags().StringVar(&confPath, "config", "", "TOML configuration file (default $BES_CONFIG; flags and BES_DATA, BES_LISTEN, BES_TZ override it)")
	c.Flags().StringVar(&data, "data", "bes-data", "data directory")
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:8443", "address for the HTTPS API and console")
	return c
}

// Version is the appliance's version string (set at build time).
var Version = "dev"
