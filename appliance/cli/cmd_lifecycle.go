package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"bes/store"
	"bes/store/catalog"
	"bes/store/crypt"
	"bes/store/integrity"
	"bes/store/retention"
)

type forgetDecision struct {
	ID      string    `json:"id"`
	Time    time.Time `json:"time"`
	Host    string    `json:"host"`
	Kind    string    `json:"kind"`
	Policy  string    `json:"policy,omitempty"`
	Reasons []string  `json:"reasons,omitempty"`
}

type forgetSummary struct {
	DryRun  bool             `json:"dry_run"`
	Keep    []forgetDecision `json:"keep"`
	Remove  []forgetDecision `json:"remove"`
	Removed []string         `json:"removed"`
}

func forgetCmd(g *globals) *cobra.Command {
	var rules retention.Rules
	var host, policy, kind string
	var dry bool
	c := &cobra.Command{
		Use:   "forget [POINT...] [--keep-last N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--host H] [--policy P] [--dry-run]",
		Short: "remove restore points: named ones, or all that a GFS retention policy does not keep",
		Long: `Remove restore points. With POINT arguments, those points; otherwise every point the
keep rules do not keep (Grandfather-Father-Son: the newest point of each of the last N days,
ISO weeks, months... in the appliance's time zone, each rule counting its own buckets).
Locked points are never removed. Space comes back with bes gc.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			anyRule := rules != (retention.Rules{})
			if len(args) > 0 && anyRule {
				return errors.New("forget: give either POINT arguments or keep rules, not both")
			}
			if len(args) == 0 {
				if err := rules.Validate(); err != nil {
					return fmt.Errorf("forget: %w", err)
				}
			}
			r, err := g.open(ctx, !dry, "forget")
			if err != nil {
				return err
			}
			defer r.Close()
			sum := forgetSummary{DryRun: dry, Keep: []forgetDecision{}, Remove: []forgetDecision{}, Removed: []string{}}
			if len(args) > 0 {
				for _, id := range args {
					p, err := r.FindPoint(ctx, id)
					if err != nil {
						return err
					}
					sum.Remove = append(sum.Remove, forgetDecision{ID: p.ID, Time: p.Started, Host: p.Host, Kind: p.Kind, Policy: p.Policy})
				}
			} else {
				ps, err := r.Points(ctx, catalog.PointFilter{Host: host, Kind: kind})
				if err != nil {
					return err
				}
				var in []retention.Point
				for _, p := range ps {
					if policy != "" && p.Policy != policy {
						continue
					}
					in = append(in, retention.Point{ID: p.ID, Time: p.Started, Host: p.Host, Kind: p.Kind, Policy: p.Policy, RetainUntil: p.RetainUntil})
				}
				for _, d := range retention.Apply(in, rules, r.GuardedNow(), time.Local) {
					fd := forgetDecision{ID: d.Point.ID, Time: d.Point.Time, Host: d.Point.Host, Kind: d.Point.Kind, Policy: d.Point.Policy, Reasons: d.Reasons}
					if d.Keep {
						sum.Keep = append(sum.Keep, fd)
					} else {
						sum.Remove = append(sum.Remove, fd)
					}
				}
			}
			var ferr error
			if !dry && len(sum.Remove) > 0 {
				ids := make([]string, len(sum.Remove))
				for i, d := range sum.Remove {
					ids[i] = d.ID
				}
				sum.Removed, ferr = r.Forget(ctx, ids)
				if sum.Removed == nil {
					sum.Removed = []string{}
				}
			}
			if g.json {
				if err := g.printJSON(sum); err != nil {
					return err
				}
				return ferr
			}
			if ferr != nil && len(sum.Removed) == 0 {
				return ferr
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ACTION\tID\tTIME\tHOST\tKIND\tWHY")
			for _, d := range sum.Keep {
				fmt.Fprintf(tw, "keep\t%s\t%s\t%s\t%s\t%s\n", d.ID[:8], d.Time.Local().Format("2006-01-02 15:04"), d.Host, d.Kind, strings.Join(d.Reasons, ", "))
			}
			for _, d := range sum.Remove {
				fmt.Fprintf(tw, "remove\t%s\t%s\t%s\t%s\t\n", d.ID[:8], d.Time.Local().Format("2006-01-02 15:04"), d.Host, d.Kind)
			}
			tw.Flush()
			if dry {
				g.printf("dry run: would keep %d and remove %d points\n", len(sum.Keep), len(sum.Remove))
			} else {
				g.printf("kept %d, removed %d points (run bes gc to free their space)\n", len(sum.Keep), len(sum.Removed))
			}
			return ferr
		},
	}
	f := c.Flags()
	f.IntVar(&rules.Last, "keep-last", 0, "keep the N newest points")
	f.IntVar(&rules.Hourly, "keep-hourly", 0, "keep the newest point of each of the last N hours")
	f.IntVar(&rules.Daily, "keep-daily", 0, "keep the newest point of each of the last N days (policy range 1-365, default 7)")
	f.IntVar(&rules.Weekly, "keep-weekly", 0, "keep the newest point of each of the last N ISO weeks (0-52, policy default 4)")
	f.IntVar(&rules.Monthly, "keep-monthly", 0, "keep the newest point of each of the last N months (0-120, policy default 12)")
	f.IntVar(&rules.Yearly, "keep-yearly", 0, "keep the newest point of each of the last N years")
	f.StringVar(&host, "host", "", "only points of this host")
	f.StringVar(&policy, "policy", "", "only points of this policy")
	f.StringVar(&kind, "kind", "", "only points of this kind (file, image)")
	f.BoolVarP(&dry, "dry-run", "n", false, "show what would be removed; change nothing")
	return c
}

func lockCmd(g *globals) *cobra.Command {
	var until time.Time
	c := &cobra.Command{
		Use:   "lock POINT --until DATE",
		Short: "make a restore point immutable until a date (nobody can delete it or its data before)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if until.IsZero() {
				return errors.New("lock: --until DATE is required")
			}
			r, err := g.open(cmd.Context(), true, "lock")
			if err != nil {
				return err
			}
			defer r.Close()
			res, err := r.Lock(cmd.Context(), args[0], until)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(res)
			}
			g.printf("point %s locked until %s (%d packs, %d with immutable shard files)\n", res.Point, res.Until.Format(time.RFC3339), res.Packs, res.Immutable)
			if res.Note != "" {
				g.printf("note: %s\n", res.Note)
			}
			return nil
		},
	}
	c.Flags().Var(timeFlag{&until}, "until", "lock until this time (RFC 3339, or a local YYYY-MM-DD)")
	return c
}

func gcCmd(g *globals) *cobra.Command {
	var o store.GCOptions
	c := &cobra.Command{
		Use:   "gc [--dry-run] [--max-repack-percent N] [--repack-below N]",
		Short: "free the space of chunks no restore point references (safe while backups run)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.openWith(cmd.Context(), store.OpenOptions{GC: true, Command: "gc"})
			if err != nil {
				return err
			}
			defer r.Close()
			start := time.Now()
			if g.showProgress() {
				bar := newProgressBar(g.env.Stderr)
				o.Progress = func(p store.GCProgress) {
					bar.update(fmt.Sprintf("%s %d/%d", p.Phase, p.Done, p.Total), 0, 0, time.Since(start), false)
				}
				defer fmt.Fprintln(g.env.Stderr)
			}
			rep, err := r.GC(cmd.Context(), o)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(rep)
			}
			if rep.DryRun {
				g.printf("dry run: %d unreferenced chunks (%s stored) would be removed\n", rep.GarbageChunks, fmtBytes(rep.GarbageBytes))
				return nil
			}
			g.printf("removed %d unreferenced chunks (%s); %d packs deleted, %d repacked (%s copied into %d new packs)\n",
				rep.GarbageChunks, fmtBytes(rep.GarbageBytes), rep.PacksDeleted, rep.PacksRepacked, fmtBytes(rep.BytesRepacked), rep.PacksWritten)
			g.printf("freed %s before erasure coding in %.1fs\n", fmtBytes(rep.BytesFreed), rep.Seconds)
			if rep.TrashPending > 0 {
				g.printf("%d packs wait for readers to close the repository; the next gc deletes them\n", rep.TrashPending)
			}
			if rep.LockedSkipped > 0 {
				g.printf("%d locked packs left alone\n", rep.LockedSkipped)
			}
			for _, d := range rep.Damaged {
				g.printf("damaged: %s\n", d)
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVarP(&o.DryRun, "dry-run", "n", false, "count what would be removed; change nothing")
	f.IntVar(&o.MaxRepackPercent, "max-repack-percent", 10, "copy at most this percentage of the stored bytes per run when repacking")
	f.IntVar(&o.RepackBelow, "repack-below", 50, "repack packs whose live share is under this percentage (0: only delete empty packs)")
	return c
}

func reportCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "report", Short: "signed reports"}
	var since time.Time
	var out, keyPath string
	integ := &cobra.Command{
		Use:   "integrity [--since DATE] [--out FILE]",
		Short: "write a signed integrity report: every point's last verification (FILE and FILE.sig)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			if keyPath == "" {
				keyPath = filepath.Join(r.Dir(), store.KeysDir, "integrity.key")
			}
			key, created, err := integrity.LoadOrCreateKey(keyPath)
			if err != nil {
				return err
			}
			if created {
				g.log.Info("created the appliance's report signing key", "path", keyPath)
			}
			rep, err := buildIntegrityReport(cmd.Context(), r, since)
			if err != nil {
				return err
			}
			body, sig, err := integrity.Sign(rep, key)
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err := g.env.Stdout.Write(body)
				return err
			}
			if err := os.WriteFile(out, body, 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(integrity.SignatureFile(out), sig, 0o644); err != nil {
				return err
			}
			g.printf("report of %d points written to %s, signature %s (key %s)\n", len(rep.Points), out, integrity.SignatureFile(out), rep.KeyID)
			return nil
		},
	}
	integ.Flags().Var(timeFlag{&since}, "since", "only points at or after this time")
	integ.Flags().StringVarP(&out, "out", "o", "", "report file (its signature goes to FILE.sig); default: standard output, unsigned")
	integ.Flags().StringVar(&keyPath, "key", "", "signing key (default: the repository's keys/integrity.key, created on first use)")
	var pubPath string
	verify := &cobra.Command{
		Use:   "verify FILE [--pubkey PEM]",
		Short: "check a signed integrity report against its FILE.sig",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			sig, err := os.ReadFile(integrity.SignatureFile(args[0]))
			if err != nil {
				return fmt.Errorf("signature: %w", err)
			}
			if pubPath == "" && g.repo != "" {
				if p := integrity.PublicKeyFile(filepath.Join(g.repo, store.KeysDir, "integrity.key")); fileExists(p) {
					pubPath = p
				}
			}
			var trusted []byte
			if pubPath != "" {
				pub, err := integrity.LoadPublicKey(pubPath)
				if err != nil {
					return err
				}
				trusted = pub
			}
			v, err := integrity.Verify(body, sig, trusted)
			if err != nil {
				return err
			}
			if g.json {
				return g.printJSON(v)
			}
			if v.Trusted {
				g.printf("good signature by the appliance key %s: %d points, %d passed, %d failed\n", v.KeyID, v.Report.Summary.Points, v.Report.Summary.Passed, v.Report.Summary.Failed)
			} else {
				g.printf("signature valid, made by key %s, which was NOT checked against the appliance's public key (pass --pubkey FILE)\n", v.KeyID)
			}
			return nil
		},
	}
	verify.Flags().StringVar(&pubPath, "pubkey", "", "the appliance's public key (PEM); default: the repository's keys/integrity.key.pub")
	c.AddCommand(integ, verify)
	return c
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// buildIntegrityReport lists every point (at or after since) with its last
// verification.
func buildIntegrityReport(ctx context.Context, r *store.Repo, since time.Time) (*integrity.Report, error) {
	host, _ := os.Hostname()
	rep := &integrity.Report{Repository: r.Config().ID, Appliance: host, Generated: time.Now().UTC(), Since: since}
	ps, err := r.Points(ctx, catalog.PointFilter{})
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		if !since.IsZero() && p.Started.Before(since) {
			continue
		}
		v, err := r.VerifyResult(ctx, p.ID)
		if err != nil {
			return nil, err
		}
		pr := integrity.PointResult{ID: p.ID, Host: p.Host, Kind: p.Kind, Type: p.Type, Time: p.Started,
			VerifiedAt: v.At, Mode: v.Mode, ChunksChecked: v.Chunks, Damage: v.Damage}
		switch {
		case v.At.IsZero():
			pr.Result, pr.Mode = integrity.ResultPending, integrity.ModeNever
		case v.Status == "passed":
			pr.Result = integrity.ResultPassed
		case v.Status == "partial":
			pr.Result = integrity.ResultPartial
		default:
			pr.Result = integrity.ResultFailed
		}
		rep.Points = append(rep.Points, pr)
	}
	return rep, nil
}

func replicateCmd(g *globals) *cobra.Command {
	var o store.ReplicateOptions
	var to, toPwFile, toKEK string
	c := &cobra.Command{
		Use:   "replicate [--to DST] [POINT...] [--host H] [--policy P]",
		Short: "copy restore points to a replica (only the chunks it lacks travel); without --to, to every replica rule's target",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, err := g.open(ctx, false, "")
			if err != nil {
				return err
			}
			defer src.Close()
			o.Points = args
			if to != "" {
				kek, err := g.kekSpec(toKEK)
				if err != nil {
					return err
				}
				if toPwFile != "" {
					if kek, err = passwordFileKEK(toPwFile); err != nil {
						return err
					}
				}
				rep, err := g.replicateTo(ctx, src, to, kek, o)
				if rep == nil || !g.json {
					return err
				}
				if jerr := g.printJSON(rep); jerr != nil {
					return jerr
				}
				return err
			}
			rules, err := src.ReplicaRules(ctx)
			if err != nil {
				return err
			}
			if len(rules) == 0 {
				return errors.New("replicate: no --to given and no replica rules (add one with bes replica add DST)")
			}
			out := map[string]*store.ReplicateReport{}
			var errs []error
			for _, st := range rules {
				rule := st.Rule
				kek, err := g.kekSpec(rule.KeyFile)
				if err != nil {
					return fmt.Errorf("replica %s: %w", rule.Target, err)
				}
				ro := o
				ro.Rule = &rule
				if !g.json {
					g.printf("replica %s:\n", rule.Target)
				}
				rep, err := g.replicateTo(ctx, src, rule.Target, kek, ro)
				if rep != nil {
					out[rule.Target] = rep
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("replica %s: %w", rule.Target, err))
				}
			}
			if g.json {
				if err := g.printJSON(out); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	f := c.Flags()
	f.StringVar(&to, "to", "", "the replica repository (made with bes init --replica-of)")
	f.StringVar(&toPwFile, "to-password-file", "", "the replica's password, when it differs from the source's")
	f.StringVar(&toKEK, "to-kek", "", "the replica's key-encryption key, when it differs from the source's: keyfile:PATH, account:CMD, pam_vault:CMD or command:CMD")
	f.StringVar(&o.Host, "host", "", "only points of this host")
	f.StringVar(&o.Policy, "policy", "", "only points of this policy")
	return c
}

// replicateTo opens a replica and copies into it, printing a summary
// unless --json.
func (g *globals) replicateTo(ctx context.Context, src *store.Repo, to string, kek crypt.KEKProvider, o store.ReplicateOptions) (*store.ReplicateReport, error) {
	dst, err := g.openWith(ctx, store.OpenOptions{Dir: to, KEK: kek, Write: true, Command: "replicate"})
	if err != nil {
		return nil, fmt.Errorf("replica: %w", err)
	}
	defer dst.Close()
	start := time.Now()
	if g.showProgress() {
		bar := newProgressBar(g.env.Stderr)
		o.Progress = func(p store.ReplicateProgress) {
			bar.update(fmt.Sprintf("%d/%d points", p.Points, p.PointsTotal), p.Bytes, 0, time.Since(start), false)
		}
		defer fmt.Fprintln(g.env.Stderr)
	}
	rep, err := src.Replicate(ctx, dst, o)
	if rep == nil || g.json {
		return rep, err
	}
	g.printf("%d points copied, %d already there; %d chunks (%s) travelled, %d were present; %.1fs\n",
		len(rep.Copied), rep.Present, rep.Chunks, fmtBytes(rep.Bytes), rep.Reused, rep.Seconds)
	if rep.LagSeconds > 0 {
		g.printf("replication lag: the oldest point not yet in the replica is %s old\n", time.Duration(rep.LagSeconds*float64(time.Second)).Round(time.Second))
	}
	return rep, err
}

type replicaRuleJSON struct {
	Target           string     `json:"target"`
	AfterFull        bool       `json:"after_full"`
	AfterIncremental bool       `json:"after_incremental"`
	Offsite          bool       `json:"offsite"`
	KEK              string     `json:"kek,omitempty"`
	Pending          int        `json:"pending_points"`
	Oldest           *time.Time `json:"oldest_pending,omitempty"`
	LagSeconds       float64    `json:"lag_seconds"`
}

func replicaCmd(g *globals) *cobra.Command {
	c := &cobra.Command{Use: "replica", Short: "replica rules: which points go to which replica (3-2-1)"}
	var rule catalog.ReplicaRule
	add := &cobra.Command{
		Use:   "add DST [--after-full] [--after-incremental] [--offsite] [--kek SPEC]",
		Short: "add (or change) the rule for a replica made with bes init --replica-of",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("after-full") && !cmd.Flags().Changed("after-incremental") {
				rule.AfterFull, rule.AfterIncremental = true, true
			}
			if !rule.AfterFull && !rule.AfterIncremental {
				return errors.New("replica add: a rule that takes neither full nor incremental points copies nothing")
			}
			rule.Target = args[0]
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			if _, err := r.AddReplicaRule(cmd.Context(), rule); err != nil {
				return err
			}
			if !g.json {
				g.printf("replica rule for %s: after full %v, after incremental %v, offsite %v\n", rule.Target, rule.AfterFull, rule.AfterIncremental, rule.Offsite)
			}
			return nil
		},
	}
	af := add.Flags()
	af.BoolVar(&rule.AfterFull, "after-full", false, "replicate full and synthetic-full points (default with --after-incremental: both)")
	af.BoolVar(&rule.AfterIncremental, "after-incremental", false, "replicate incremental points")
	af.BoolVar(&rule.Offsite, "offsite", false, "the replica is off site")
	af.StringVar(&rule.KeyFile, "kek", "", "the replica's key-encryption key: keyfile:PATH, account:CMD, pam_vault:CMD or command:CMD (default: the source's credentials)")
	list := &cobra.Command{
		Use:   "list",
		Short: "list replica rules with their replication lag",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			sts, err := r.ReplicaRules(cmd.Context())
			if err != nil {
				return err
			}
			out := make([]replicaRuleJSON, 0, len(sts))
			for _, st := range sts {
				j := replicaRuleJSON{Target: st.Rule.Target, AfterFull: st.Rule.AfterFull, AfterIncremental: st.Rule.AfterIncremental,
					Offsite: st.Rule.Offsite, KEK: st.Rule.KeyFile, Pending: st.Pending}
				if !st.Oldest.IsZero() {
					o := st.Oldest.UTC()
					j.Oldest, j.LagSeconds = &o, time.Since(st.Oldest).Seconds()
				}
				out = append(out, j)
			}
			if g.json {
				return g.printJSON(out)
			}
			tw := tabwriter.NewWriter(g.env.Stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TARGET\tFULL\tINCR\tOFFSITE\tPENDING\tLAG")
			for _, j := range out {
				lag := "-"
				if j.LagSeconds > 0 {
					lag = time.Duration(j.LagSeconds * float64(time.Second)).Round(time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%v\t%v\t%v\t%d\t%s\n", j.Target, j.AfterFull, j.AfterIncremental, j.Offsite, j.Pending, lag)
			}
			return tw.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove DST",
		Short: "remove the rule for a replica (the replica itself is left alone)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.open(cmd.Context(), false, "")
			if err != nil {
				return err
			}
			defer r.Close()
			return r.RemoveReplicaRule(cmd.Context(), args[0])
		},
	}
	c.AddCommand(add, list, remove)
	return c
}

func synthCmd(g *globals) *cobra.Command {
	var o store.SynthOptions
	c := &cobra.Command{
		Use:   "synth --host H [--kind file|image] [--policy P] [--read-data]",
		Short: "record a synthetic full from the latest point of a chain, without touching the source",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := g.open(cmd.Context(), true, "synth")
			if err != nil {
				return err
			}
			defer r.Close()
			rep, err := r.Synth(cmd.Context(), o)
			if rep == nil {
				return err
			}
			if g.json {
				if jerr := g.printJSON(rep); jerr != nil {
					return jerr
				}
				return err
			}
			if err != nil {
				return err
			}
			how := "indexed"
			if rep.Read {
				how = "read back and verified"
			}
			g.printf("synthetic full %s recorded from %s (%d chunks %s); it starts a new chain\n", rep.Point, rep.From, rep.Chunks, how)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&o.Host, "host", "", "the host whose latest point is made a synthetic full")
	f.StringVar(&o.Kind, "kind", "file", "file or image")
	f.StringVar(&o.Policy, "policy", "", "only points of this policy")
	f.BoolVar(&o.ReadData, "read-data", false, "read, decrypt and hash every chunk first")
	return c
}

// retainFlag is a duration flag that also takes days, weeks and years
// (30d, 12w, 1y; a year is 365 days).
type retainFlag time.Duration

func (f *retainFlag) String() string {
	if *f == 0 {
		return ""
	}
	return time.Duration(*f).String()
}

func (f *retainFlag) Set(s string) error {
	d, err := parseRetain(s)
	if err != nil {
		return err
	}
	*f = retainFlag(d)
	return nil
}

func (f *retainFlag) Type() string { return "duration" }

func parseRetain(s string) (time.Duration, error) {
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if n := len(s); n > 1 {
		if u, ok := unit[s[n-1]]; ok {
			var v int64
			if _, err := fmt.Sscanf(s[:n-1], "%d", &v); err == nil && v > 0 && v <= 100*365 && fmt.Sprint(v) == s[:n-1] {
				return time.Duration(v) * u, nil
			}
			return 0, fmt.Errorf("retention %q: want a positive whole number before %q", s, s[n-1:])
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("retention %q: want e.g. 30d, 12w, 1y or 36h", s)
	}
	return d, nil
}

// lockNew locks a point just committed for d (nothing when d is 0).
func (g *globals) lockNew(ctx context.Context, r *store.Repo, id string, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	res, err := r.Lock(ctx, id, r.GuardedNow().Add(d))
	if err != nil {
		return fmt.Errorf("point %s committed, but locking it failed: %w", id, err)
	}
	if !g.json {
		g.printf("locked until %s\n", res.Until.Format(time.RFC3339))
	}
	return nil
}

// kekSpec resolves a key-encryption key source given as "" (this command's
// own credentials), keyfile:PATH, or NAME:CMD for an external provider
// (account, pam_vault, command).
func (g *globals) kekSpec(spec string) (crypt.KEKProvider, error) {
	if spec == "" {
		return g.kek(false)
	}
	name, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("key source %q: want keyfile:PATH or account:CMD, pam_vault:CMD, command:CMD", spec)
	}
	if name == "keyfile" {
		return crypt.KeyFile(arg), nil
	}
	return crypt.Command(name, arg)
}
