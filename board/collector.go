package board

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// collector reads the board on every scrape. Its CPU baseline is its own,
// so scrapes and dashboard calls to Sample do not shorten each other's
// interval.
type collector struct {
	s   *Sampler
	cpu cpuTracker

	cpuBusy, load1, load5, load15 *prometheus.Desc
	memTotal, memAvail, uptime    *prometheus.Desc
	fsSize, fsFree, fsUsed        *prometheus.Desc
}

// Collector returns a prometheus.Collector that samples the board on each
// scrape: bes_board_cpu_busy_ratio (since the previous scrape of this
// collector), bes_board_load1/5/15, bes_board_memory_total_bytes,
// bes_board_memory_available_bytes, bes_board_uptime_seconds and, per file
// system, bes_board_filesystem_size_bytes, _free_bytes and _used_ratio
// labelled by path. A part that cannot be read becomes an invalid metric
// carrying the error. Register it once: each call returns a new collector
// with its own CPU baseline. Safe for concurrent scrapes.
func (s *Sampler) Collector() prometheus.Collector {
	fsLabels := []string{"path"}
	return &collector{
		s:        s,
		cpuBusy:  prometheus.NewDesc("bes_board_cpu_busy_ratio", "Share of CPU time not idle or waiting for I/O since the previous scrape (since boot on the first), 0..1.", nil, nil),
		load1:    prometheus.NewDesc("bes_board_load1", "1-minute load average.", nil, nil),
		load5:    prometheus.NewDesc("bes_board_load5", "5-minute load average.", nil, nil),
		load15:   prometheus.NewDesc("bes_board_load15", "15-minute load average.", nil, nil),
		memTotal: prometheus.NewDesc("bes_board_memory_total_bytes", "Physical memory.", nil, nil),
		memAvail: prometheus.NewDesc("bes_board_memory_available_bytes", "Memory available for new work without swapping (MemAvailable).", nil, nil),
		uptime:   prometheus.NewDesc("bes_board_uptime_seconds", "Seconds since the board booted.", nil, nil),
		fsSize:   prometheus.NewDesc("bes_board_filesystem_size_bytes", "Size of the file system holding path.", fsLabels, nil),
		fsFree:   prometheus.NewDesc("bes_board_filesystem_free_bytes", "Bytes of the file system holding path available to the appliance.", fsLabels, nil),
		fsUsed:   prometheus.NewDesc("bes_board_filesystem_used_ratio", "Used share of the file system holding path (df's Use%), 0..1.", fsLabels, nil),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpuBusy, c.load1, c.load5, c.load15,
		c.memTotal, c.memAvail, c.uptime, c.fsSize, c.fsFree, c.fsUsed} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	r := c.s.read(&c.cpu)
	snap := r.snap
	gauge := func(d *prometheus.Desc, v float64, err error, labels ...string) {
		if err != nil {
			ch <- prometheus.NewInvalidMetric(d, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.cpuBusy, snap.CPUBusyPercent/100, r.cpuErr)
	gauge(c.load1, snap.Load1, r.loadErr)
	gauge(c.load5, snap.Load5, r.loadErr)
	gauge(c.load15, snap.Load15, r.loadErr)
	gauge(c.memTotal, float64(snap.MemoryTotalBytes), r.memErr)
	gauge(c.memAvail, float64(snap.MemoryAvailableBytes), r.memErr)
	gauge(c.uptime, snap.UptimeSeconds, r.upErr)
	for _, fs := range snap.FileSystems {
		gauge(c.fsSize, float64(fs.TotalBytes), nil, fs.Path)
		gauge(c.fsFree, float64(fs.FreeBytes), nil, fs.Path)
		gauge(c.fsUsed, fs.UsedPercent/100, nil, fs.Path)
	}
	if err := errors.Join(r.fsErrs...); err != nil {
		ch <- prometheus.NewInvalidMetric(c.fsSize, err)
	}
}
