package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bes/store"
	"bes/store/catalog"
)

// repoCollector exposes the repository's figures on each scrape.
type repoCollector struct {
	repo                                  *store.Repo
	points, pointsByVerify, bytes, stored *prometheus.Desc
	dedup, last24                         *prometheus.Desc
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
	}
}

func (c *repoCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.points, c.pointsByVerify, c.bytes, c.stored, c.dedup, c.last24} {
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
	if st, err := c.repo.Stats(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.stored, prometheus.GaugeValue, float64(st.PackBytes))
		ratio := 0.0
		if st.PackBytes > 0 {
			ratio = all / float64(st.PackBytes)
		}
		ch <- prometheus.MustNewConstMetric(c.dedup, prometheus.GaugeValue, ratio)
	}
}
