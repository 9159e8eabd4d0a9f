package board

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var wantNames = []string{
	"bes_board_cpu_busy_ratio",
	"bes_board_filesystem_free_bytes",
	"bes_board_filesystem_size_bytes",
	"bes_board_filesystem_used_ratio",
	"bes_board_load1",
	"bes_board_load15",
	"bes_board_load5",
	"bes_board_memory_available_bytes",
	"bes_board_memory_total_bytes",
	"bes_board_uptime_seconds",
}

func TestCollectorGather(t *testing.T) {
	s, err := NewSampler("", []string{t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if n := len(mf.GetMetric()); n != 1 {
			t.Errorf("%s: %d series, want 1", mf.GetName(), n)
		}
	}
	sort.Strings(names)
	if strings.Join(names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("metric names:\n got %v\nwant %v", names, wantNames)
	}
	if n := testutil.CollectAndCount(s.Collector()); n != len(wantNames) {
		t.Errorf("CollectAndCount = %d, want %d", n, len(wantNames))
	}
}

func TestCollectorValuesFromFixture(t *testing.T) {
	proc := fakeProc(t)
	s, err := NewSampler(proc, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Collector()
	want := `
# HELP bes_board_load1 1-minute load average.
# TYPE bes_board_load1 gauge
bes_board_load1 0.5
# HELP bes_board_memory_total_bytes Physical memory.
# TYPE bes_board_memory_total_bytes gauge
bes_board_memory_total_bytes 4.096e+09
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want),
		"bes_board_load1", "bes_board_memory_total_bytes"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(onlyCPU{c}); !near(got, 0.15) { // counters unchanged: repeated
		t.Errorf("cpu busy ratio = %v", got)
	}
	// The collector's baseline is its own: Sample still starts from boot.
	if err := os.Rename(filepath.Join(proc, "stat.next"), filepath.Join(proc, "stat")); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(onlyCPU{c}); !near(got, 0.4) {
		t.Errorf("collector cpu busy ratio after delta = %v, want 0.4", got)
	}
	snap, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if !near(snap.CPUBusyPercent, 27.5) { // since boot: 55000 of 200000
		t.Errorf("Sample busy = %v, want 27.5 (scrapes must not move its baseline)", snap.CPUBusyPercent)
	}
}

// onlyCPU keeps the cpu busy metric of a collector, for testutil.ToFloat64.
type onlyCPU struct{ c prometheus.Collector }

func (o onlyCPU) Describe(ch chan<- *prometheus.Desc) { o.c.Describe(ch) }

func (o onlyCPU) Collect(ch chan<- prometheus.Metric) {
	all := make(chan prometheus.Metric)
	go func() { o.c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"bes_board_cpu_busy_ratio"`) {
			ch <- m
		}
	}
}

func TestCollectorReportsErrorsWithoutPanic(t *testing.T) {
	proc := fakeProc(t)
	s, err := NewSampler(proc, []string{filepath.Join(t.TempDir(), "gone")})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(proc, "meminfo")); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s.Collector())
	_, err = reg.Gather()
	if err == nil {
		t.Fatal("Gather succeeded with meminfo missing and a missing path")
	}
	for _, want := range []string{"meminfo", "gone"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Gather error %q does not name %q", err, want)
		}
	}
}
