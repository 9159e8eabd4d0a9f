package jobs

import (
	"context"
	"log/slog"
	"time"

	"bes/appliance/model"
)

// Scheduler turns policies' cron schedules into queued jobs.
type Scheduler struct {
	Model *model.DB
	Log   *slog.Logger
	Now   func() time.Time // default time.Now
	Wake  func()           // called after jobs were queued
	// GCSchedule is the cron schedule of garbage collection ("": none).
	GCSchedule string

	last map[schedKey]time.Time // when each schedule was last considered
}

type schedKey struct {
	policy int64
	kind   string // full | incremental | synthetic_full
}

// Tick queues the runs whose schedule fired since the previous tick. On
// the first tick after a start, a policy with catch-up on considers the
// time since its newest job (runs missed while the appliance was down run
// once now); others start from now.
func (s *Scheduler) Tick(ctx context.Context) ([]model.Job, error) {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	if s.last == nil {
		s.last = map[schedKey]time.Time{}
	}
	ps, err := s.Model.Policies(ctx)
	if err != nil {
		return nil, err
	}
	var queued []model.Job
	for i := range ps {
		p := &ps[i]
		if p.Enabled == nil || !*p.Enabled || p.PausedReason != "" {
			continue // disabled or auto-paused: never dispatched
		}
		for _, sc := range []struct{ kind, spec string }{
			{"full", p.FullSchedule}, {"incremental", p.IncrementalSchedule}, {model.JobSynth, p.SyntheticSchedule},
		} {
			if sc.spec == "" {
				continue
			}
			sched, err := model.ParseSchedule(sc.spec)
			if err != nil {
				continue // validated on write; an old row is skipped
			}
			key := schedKey{p.ID, sc.kind}
			from, seen := s.last[key]
			if !seen {
				from = now
				if p.CatchUpOnReconnect != nil && *p.CatchUpOnReconnect {
					if js, _, err := s.Model.Jobs(ctx, model.JobFilter{PolicyID: p.ID, Limit: 1}); err == nil && len(js) > 0 {
						from = js[0].Created
					}
				}
			}
			s.last[key] = now
			if next := sched.Next(from); next.After(now) {
				continue
			}
			kind, mode, trigger := model.JobBackup, sc.kind, "schedule"
			if sc.kind == model.JobSynth {
				kind, mode = model.JobSynth, ""
			}
			if !seen && from.Before(now) {
				trigger = "catch_up"
			}
			js, err := EnqueuePolicy(ctx, s.Model, p, kind, mode, trigger)
			if err != nil {
				return queued, err
			}
			queued = append(queued, js...)
		}
	}
	if s.GCSchedule != "" {
		if sched, err := model.ParseSchedule(s.GCSchedule); err == nil {
			key := schedKey{0, model.JobGC}
			from, seen := s.last[key]
			if !seen {
				from = now
			}
			s.last[key] = now
			if !sched.Next(from).After(now) {
				if busy, err := s.Model.Active(ctx, 0, ""); err == nil && !busy {
					j := model.Job{Kind: model.JobGC, Priority: model.PriorityNormal - 1, Trigger: "schedule", Attempt: 1}
					if err := s.Model.Enqueue(ctx, &j); err != nil {
						return queued, err
					}
					queued = append(queued, j)
				}
			}
		}
	}
	if len(queued) > 0 && s.Wake != nil {
		s.Wake()
	}
	return queued, nil
}

// Run ticks at the start of every minute until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	log := s.Log
	if log == nil {
		log = slog.Default()
	}
	for {
		if js, err := s.Tick(ctx); err != nil {
			log.Error("scheduler", "err", err)
		} else if len(js) > 0 {
			log.Info("scheduled jobs queued", "jobs", len(js))
		}
		wait := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
