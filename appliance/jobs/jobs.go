// Package jobs runs the appliance's work: a scheduler that turns policies'
// cron schedules into queued jobs (catching up missed runs after downtime
// when the policy says so, never dispatching disabled or paused policies),
// and a runner that takes jobs by priority and runs them against the
// repository: backups of the appliance's own host ("local", no agent),
// then verification with the policy's sample count, then the policy's
// retention. A failed retryable run is retried once automatically; the
// retry is not retryable itself.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"bes/agent"
	"bes/appliance/model"
	"bes/diskimg"
	"bes/store"
	"bes/store/catalog"
	"bes/store/retention"
)

// LocalHost is the appliance's own host, backed up without an agent.
const LocalHost = "local"

// Runner takes queued jobs and runs them one at a time (the repository has
// one writer; the queue orders by priority).
type Runner struct {
	Model     *model.DB
	Repo      *store.Repo
	Log       *slog.Logger
	AutoRetry bool
	// Grace is how long a running job may take to finish once the runner
	// is told to stop.
	Grace time.Duration
	// OpenGC opens the repository for garbage collection (gc jobs).
	OpenGC func(ctx context.Context) (*store.Repo, error)

	wake chan struct{}
}

// Wake tells the runner a job is waiting.
func (r *Runner) Wake() {
	if r.wake == nil {
		return
	}
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run takes jobs until ctx ends; a job running then gets Grace to finish.
func (r *Runner) Run(ctx context.Context) {
	if r.wake == nil {
		r.wake = make(chan struct{}, 1)
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.AutoRetry {
		// Runs the last stop interrupted are retried first.
		for _, id := range r.Model.Interrupted() {
			if n, err := r.Model.Retry(ctx, id, "auto_retry"); err == nil {
				r.Log.Info("retrying a job interrupted by the last stop", "job", id, "retry", n.ID)
			}
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for ctx.Err() == nil {
		j, err := r.Model.NextJob(ctx)
		if err != nil {
			r.Log.Error("job queue", "err", err)
		}
		if j == nil {
			select {
			case <-ctx.Done():
			case <-r.wake:
			case <-tick.C:
			}
			continue
		}
		jctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		stop := context.AfterFunc(ctx, func() { time.AfterFunc(r.Grace, cancel) })
		r.executeStopping(jctx, j, ctx)
		stop()
		cancel()
	}
}

// RunOne takes and runs one waiting job, if any (tests, run-now).
func (r *Runner) RunOne(ctx context.Context) (*model.Job, error) {
	j, err := r.Model.NextJob(ctx)
	if err != nil || j == nil {
		return j, err
	}
	r.execute(ctx, j)
	return r.Model.Job(ctx, j.ID)
}

// executeStopping runs a job; one cut off because the runner stopped
// (stopping ended and the grace time ran out) is recorded as interrupted,
// retryable, so that the next start retries it.
func (r *Runner) executeStopping(ctx context.Context, j *model.Job, stopping context.Context) {
	r.execute(ctx, j)
	if stopping.Err() != nil && j.Status == model.StatusFailed && ctx.Err() != nil {
		j.Error, j.Retryable = model.ErrInterrupted, j.RetryOf == 0
		r.Model.SaveJob(context.WithoutCancel(ctx), j)
	}
}

func (r *Runner) execute(ctx context.Context, j *model.Job) {
	if r.Log == nil {
		r.Log = slog.Default()
	}
	log := r.Log.With("job", j.ID, "kind", j.Kind, "policy", j.PolicyID, "host", j.Host)
	log.Info("job started")
	err := r.run(ctx, j)
	j.Finished = time.Now().UTC()
	var pe *permanentError
	switch {
	case err == nil:
		if j.Status == model.StatusRunning {
			j.Status = model.StatusSuccess
		}
	case errors.As(err, &pe):
		j.Status, j.Error, j.Retryable = model.StatusFailed, err.Error(), false
	default:
		j.Status, j.Error = model.StatusFailed, err.Error()
		j.Retryable = j.RetryOf == 0 // a retry is not retryable itself
	}
	if serr := r.Model.SaveJob(context.WithoutCancel(ctx), j); serr != nil {
		log.Error("save job", "err", serr)
	}
	log.Info("job finished", "status", j.Status, "err", j.Error)
	if j.Status == model.StatusFailed && j.Retryable && r.AutoRetry && ctx.Err() == nil {
		if active, _ := r.Model.Active(ctx, j.PolicyID, j.Host); !active {
			if n, err := r.Model.Retry(ctx, j.ID, "auto_retry"); err == nil {
				log.Info("job retried automatically", "retry", n.ID)
			}
		}
	}
}

// permanentError marks a failure that a retry cannot mend.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func permanent(format string, a ...any) error { return &permanentError{fmt.Errorf(format, a...)} }

func (r *Runner) run(ctx context.Context, j *model.Job) error {
	switch j.Kind {
	case model.JobBackup, model.JobSynth:
	case model.JobRestore:
		return r.restore(ctx, j)
	case model.JobGC:
		if r.OpenGC == nil {
			return permanent("no garbage collector configured")
		}
		g, err := r.OpenGC(ctx)
		if err != nil {
			return err
		}
		defer g.Close()
		rep, err := g.GC(ctx, store.GCOptions{})
		if err == nil {
			j.BytesTransferred = rep.BytesFreed
		}
		return err
	default:
		return permanent("job kind %q is not run by this appliance yet", j.Kind)
	}
	p, err := r.Model.Policy(ctx, j.PolicyID)
	if err != nil {
		return permanent("policy %d: %v", j.PolicyID, err)
	}
	if j.Host != LocalHost {
		return permanent("host %s: backups of other hosts go through their agent, which is not connected", j.Host)
	}
	if j.Kind == model.JobSynth {
		rep, err := r.Repo.Synth(ctx, store.SynthOptions{Host: j.Host, Kind: p.BackupType, Policy: p.Name})
		if err != nil {
			return err
		}
		j.PointID = rep.Point
		return nil
	}
	var pt *store.Point
	switch p.BackupType {
	case "file":
		pt, err = agent.Backup(ctx, r.Repo, agent.BackupOptions{Paths: j.Paths, Host: j.Host, Policy: p.Name,
			Excludes: append(append([]string{}, p.ExcludePaths...), p.ExcludePatterns...), Compression: p.Compression})
		if err != nil {
			return err
		}
		if pt.Stats.Errors > 0 {
			j.Status = model.StatusWarning
			j.Error = fmt.Sprintf("%d files or directories could not be read", pt.Stats.Errors)
		}
	case "image":
		if len(j.Paths) != 1 {
			return permanent("an image policy protects one disk per host, got %d paths", len(j.Paths))
		}
		res, err := diskimg.Backup(ctx, r.Repo, j.Paths[0], diskimg.BackupOptions{Host: j.Host, Compression: p.Compression})
		if err != nil {
			return err
		}
		pt = res.Point
	}
	j.PointID = pt.ID
	j.BytesTransferred, j.BytesProtected = pt.Stats.Stored, pt.Stats.Bytes
	if p.VerifyAfterBackup != nil && *p.VerifyAfterBackup {
		rep, err := r.Repo.Verify(ctx, store.VerifyOptions{Points: []string{pt.ID}, Sample: p.VerifySampleCount})
		if err != nil {
			return fmt.Errorf("verify after backup: %w", err)
		}
		if rep.Damaged() {
			j.Status = model.StatusWarning
			j.Error = "verification after backup found damage"
		}
	}
	return r.applyRetention(ctx, p, j.Host)
}

// applyRetention forgets the points of a policy and host its GFS rules do
// not keep (locked points stay).
func (r *Runner) applyRetention(ctx context.Context, p *model.Policy, host string) error {
	ps, err := r.Repo.Points(ctx, catalog.PointFilter{Host: host, Kind: p.BackupType})
	if err != nil {
		return err
	}
	var in []retention.Point
	for _, pt := range ps {
		if pt.Policy == p.Name {
			in = append(in, retention.Point{ID: pt.ID, Time: pt.Started, Host: pt.Host, Kind: pt.Kind, Policy: pt.Policy, RetainUntil: pt.RetainUntil})
		}
	}
	rules := retention.Rules{Daily: p.Retention.Daily, Weekly: p.Retention.Weekly, Monthly: p.Retention.Monthly}
	var drop []string
	for _, d := range retention.Apply(in, rules, r.Repo.GuardedNow(), time.Local) {
		if !d.Keep {
			drop = append(drop, d.Point.ID)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	_, err = r.Repo.Forget(ctx, drop)
	return err
}

// EnqueuePolicy queues a backup of every active host of a policy (not
// when a run of that host is already pending or running) and returns the
// jobs queued.
func EnqueuePolicy(ctx context.Context, m *model.DB, p *model.Policy, kind, mode, trigger string) ([]model.Job, error) {
	as, err := m.Assignments(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	var out []model.Job
	for _, a := range as {
		if a.State != "active" {
			continue
		}
		if busy, err := m.Active(ctx, p.ID, a.Host); err != nil || busy {
			continue
		}
		j := model.Job{Kind: kind, Mode: mode, PolicyID: p.ID, Host: a.Host, Paths: a.Paths, Priority: model.PriorityNormal, Trigger: trigger, Attempt: 1}
		if err := m.Enqueue(ctx, &j); err != nil {
			return out, err
		}
		out = append(out, j)
	}
	return out, nil
}

// restore restores files of a point (j.PointID) to j.Target on host local.
func (r *Runner) restore(ctx context.Context, j *model.Job) error {
	if j.Host != LocalHost {
		return permanent("host %s: restores to other hosts go through their agent, which is not connected", j.Host)
	}
	p, err := r.Repo.FindPoint(ctx, j.PointID)
	if err != nil {
		return permanent("restore point %s: %v", j.PointID, err)
	}
	if p.Kind != store.KindFile {
		return permanent("point %s is an image point: use an image restore", p.ID)
	}
	sum, err := agent.Restore(ctx, r.Repo, p, agent.RestoreOptions{Target: j.Target, Includes: j.Paths, Overwrite: j.Overwrite, Logger: r.Log})
	if err != nil {
		return err
	}
	j.BytesTransferred = sum.Bytes
	if len(sum.Errors) > 0 || len(sum.Skipped) > 0 {
		j.Status = model.StatusWarning
		j.Error = fmt.Sprintf("%d errors, %d existing files left alone", len(sum.Errors), len(sum.Skipped))
	}
	return nil
}
