package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bes/appliance/model"
	"bes/store"
	"bes/store/catalog"
)

// repoCollector exposes the repository's figures on each scrape.
type repoCollector struct {
	repo                                  *store.Repo
	points, pointsByVerify, bytes, stored *prometheus.Desc
	dedup, last24                         *prometheus.Desc
	drillAge, drillSecs                   *prometheus.Desc
}

func newRepoCollector(r *store.Repo) *repoCollector {
	return &repoCollector{
		repo:           r,
		points:         prometheus.NewDesc("bes_restore_points", "Restore points in the repository.", []string{"kind"}, nil),
		pointsByVerify: prometheus.NewDesc("bes_restore_points_by_verification", "Restore points by the result of their last verification.", []string{"status"}, nil),
		bytes:          prometheus.NewDesc("bes_protected_bytes", "Bytes protected by the newest point of each host and kind.", nil, nil),
		stored:         prometheus.NewDesc("bes_stored_bytes", "Bytes stored in packs (before erasure coding).", nil, nil),
		dedup:          prometheus.NewDesc("bes_dedup_ratio", "Bytes protected by all points over bytes stored.", nil, nil),
		last24:         prometheus.NewDesc("bes_backups_last_24h", "Backups committed in the last 24 hours.", []string{"result"}, nil),
		drillAge:       prometheus.NewDesc("bes_restore_drill_age_seconds", "Age of the last restore drill.", nil, nil),
		drillSecs:      prometheus.NewDesc("bes_restore_drill_duration_seconds", "Time to restore of the last restore drill.", []string{"result"}, nil),
	}
}

func (c *repoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.points, c.pointsByVerify, c.bytes, c.stored, c.dedup, c.last24, c.drillAge, c.drillSecs} {
		ch <- d
	}
}

func (c *repoCollector) Collect(ch chan<- prometheus.Metric) {
	if c.repo == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := c.repo.Points(ctx, catalog.PointFilter{})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.points, err)
		return
	}
	kinds := map[string]float64{store.KindFile: 0, store.KindImage: 0}
	verify := map[string]float64{"pending": 0, "passed": 0, "failed": 0}
	latest := map[string]int64{}
	var all, last24 float64
	day := time.Now().Add(-24 * time.Hour)
	for _, p := range ps {
		kinds[p.Kind]++
		verify[p.VerifyStatus]++
		latest[p.Host+"\x00"+p.Kind] = p.Stats.Bytes
		all += float64(p.Stats.Bytes)
		if p.Finished.After(day) {
			last24++
		}
	}
	for k, n := range kinds {
		ch <- prometheus.MustNewConstMetric(c.points, prometheus.GaugeValue, n, k)
	}
	for k, n := range verify {
		ch <- prometheus.MustNewConstMetric(c.pointsByVerify, prometheus.GaugeValue, n, k)
	}
	var protected float64
	for _, b := range latest {
		protected += float64(b)
	}
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.GaugeValue, protected)
	ch <- prometheus.MustNewConstMetric(c.last24, prometheus.GaugeValue, last24, "success")
	if d, err := c.repo.LastDrill(ctx); err == nil && d != nil {
		ch <- prometheus.MustNewConstMetric(c.drillAge, prometheus.GaugeValue, time.Since(d.At).Seconds())
		res := "passed"
		if !d.OK {
			res = "failed"
		}
		ch <- prometheus.MustNewConstMetric(c.drillSecs, prometheus.GaugeValue, d.Seconds, res)
	}
	if st, err := c.repo.Stats(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.stored, prometheus.GaugeValue, float64(st.PackBytes))
		ratio := 0.0
		if st.PackBytes > 0 {
			ratio = all / float64(st.PackBytes)
		}
		ch <- prometheus.MustNewConstMetric(c.dedup, prometheus.GaugeValue, ratio)
	}
}

// modelCollector exposes jobs and storage targets on each scrape.
type modelCollector struct {
	m                                    *model.DB
	runs24, duration, usage, level, last *prometheus.Desc
}

func newModelCollector(m *model.DB) *modelCollector {
	return &modelCollector{
		m:        m,
		runs24:   prometheus.NewDesc("bes_job_runs_last_24h", "Job runs finished in the last 24 hours by kind and result.", []string{"kind", "result"}, nil),
		duration: prometheus.NewDesc("bes_job_duration_seconds", "Durations of the job runs finished in the last 24 hours.", []string{"kind"}, nil),
		usage:    prometheus.NewDesc("bes_storage_target_used_ratio", "Used share of each measured storage target.", []string{"target"}, nil),
		level:    prometheus.NewDesc("bes_storage_target_level", "Capacity level of each storage target (0 ok, 1 alert, 2 critical, -1 unknown).", []string{"target"}, nil),
		last:     prometheus.NewDesc("bes_jobs_pending", "Jobs waiting in the queue.", nil, nil),
	}
}

func (c *modelCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.runs24, c.duration, c.usage, c.level, c.last} {
		ch <- d
	}
}

func (c *modelCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, _, err := c.m.Jobs(ctx, model.JobFilter{Limit: 10000})
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.runs24, err)
		return
	}
	day := time.Now().Add(-24 * time.Hour)
	counts := map[[2]string]float64{}
	for _, k := range []string{model.JobBackup} {
		for _, r := range []string{model.StatusSuccess, model.StatusWarning, model.StatusFailed} {
			counts[[2]string{k, r}] = 0
		}
	}
	hists := map[string][]float64{}
	pending := 0.0
	for _, j := range js {
		if j.Status == model.StatusPending {
			pending++
		}
		if j.Finished.IsZero() || j.Finished.Before(day) {
			continue
		}
		counts[[2]string{j.Kind, j.Status}]++
		hists[j.Kind] = append(hists[j.Kind], j.Finished.Sub(j.Started).Seconds())
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.runs24, prometheus.GaugeValue, n, k[0], k[1])
	}
	bounds := []float64{1, 5, 30, 60, 300, 900, 3600, 4 * 3600, 12 * 3600}
	for kind, ds := range hists {
		buckets := map[float64]uint64{}
		var sum float64
		for _, d := range ds {
			sum += d
			for _, b := range bounds {
				if d <= b {
					buckets[b]++
				}
			}
		}
		ch <- prometheus.MustNewConstHistogram(c.duration, uint64(len(ds)), sum, buckets, kind)
	}
	ch <- prometheus.MustNewConstMetric(c.last, prometheus.GaugeValue, pending)
	ts, err := c.m.Targets(ctx)
	if err != nil {
		return
	}
	for _, t := range ts {
		cp, err := c.m.CapacityOf(ctx, t.ID)
		if err != nil {
			continue
		}
		lv := map[string]float64{"ok": 0, "alert": 1, "critical": 2}[cp.Level]
		if cp.Level == "unknown" {
			lv = -1
		} else {
			ch <- prometheus.MustNewConstMetric(c.usage, prometheus.GaugeValue, cp.UsedPercent/100, t.Name)
		}
		ch <- prometheus.MustNewConstMetric(c.level, prometheus.GaugeValue, lv, t.Name)
	}
}
