package board

import (
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeProc copies testdata/proc into a temporary proc root the test may
// rewrite.
func fakeProc(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"stat", "stat.next", "meminfo", "loadavg"} {
		b, err := os.ReadFile(filepath.Join("testdata", "proc", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func rewrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestCPUDeltaFromFixture(t *testing.T) {
	proc := fakeProc(t)
	s, err := NewSampler(proc, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	// Since boot: busy 10000 user + 5000 system of 100000 ticks.
	if !near(first.CPUBusyPercent, 15) {
		t.Errorf("first sample busy = %v%%, want 15%% (since boot)", first.CPUBusyPercent)
	}
	if err := os.Rename(filepath.Join(proc, "stat.next"), filepath.Join(proc, "stat")); err != nil {
		t.Fatal(err)
	}
	second, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	// Delta: +40000 busy (user, system, irq; guest not counted twice) of
	// +100000 ticks.
	if !near(second.CPUBusyPercent, 40) {
		t.Errorf("second sample busy = %v%%, want 40%%", second.CPUBusyPercent)
	}
	// No time passed: the last figure is repeated, not 0 or NaN.
	third, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if !near(third.CPUBusyPercent, 40) {
		t.Errorf("unchanged counters busy = %v%%, want 40%% repeated", third.CPUBusyPercent)
	}
}

func TestCPUCountersGoingBackwards(t *testing.T) {
	prev := cpuTimes{busy: 500, total: 1000}
	cur := cpuTimes{busy: 30, total: 100} // after a reset
	if got := busyPercent(prev, cur, 77); !near(got, 30) {
		t.Errorf("busy after reset = %v, want since-boot 30", got)
	}
}

func TestMemoryAndLoadFromFixture(t *testing.T) {
	proc := fakeProc(t)
	s, err := NewSampler(proc, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if snap.MemoryTotalBytes != 4000000*1024 || snap.MemoryAvailableBytes != 3000000*1024 {
		t.Errorf("memory = %d/%d", snap.MemoryAvailableBytes, snap.MemoryTotalBytes)
	}
	if !near(snap.MemoryUsedPercent, 25) {
		t.Errorf("memory used = %v%%, want 25%%", snap.MemoryUsedPercent)
	}
	if snap.Load1 != 0.5 || snap.Load5 != 0.25 || snap.Load15 != 0.125 {
		t.Errorf("load = %v %v %v", snap.Load1, snap.Load5, snap.Load15)
	}

	// An old kernel without MemAvailable: free + buffers + cached.
	rewrite(t, filepath.Join(proc, "meminfo"),
		"MemTotal: 4000000 kB\nMemFree: 500000 kB\nBuffers: 100000 kB\nCached: 2000000 kB\n")
	snap, err = s.Sample()
	if err != nil {
		t.Fatal(err)
	}
	if !near(snap.MemoryUsedPercent, 35) {
		t.Errorf("memory used without MemAvailable = %v%%, want 35%%", snap.MemoryUsedPercent)
	}
}

func TestDamagedProcFiles(t *testing.T) {
	proc := fakeProc(t)
	s, err := NewSampler(proc, nil)
	if err != nil {
		t.Fatal(err)
	}
	rewrite(t, filepath.Join(proc, "stat"), "intr 1 0\nbtime 1700000000\n")
	rewrite(t, filepath.Join(proc, "meminfo"), "MemFree: 5 kB\n")
	if err := os.Remove(filepath.Join(proc, "loadavg")); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Sample()
	if !errors.Is(err, ErrNoCPULine) {
		t.Errorf("err = %v, want ErrNoCPULine", err)
	}
	if !errors.Is(err, ErrNoMemTotal) {
		t.Errorf("err = %v, want ErrNoMemTotal", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want the missing loadavg", err)
	}
	if snap.UptimeSeconds <= 0 {
		t.Errorf("uptime = %v: the readable parts must still be reported", snap.UptimeSeconds)
	}
}

func TestNewSamplerErrors(t *testing.T) {
	if _, err := NewSampler(filepath.Join(t.TempDir(), "nope"), nil); err == nil {
		t.Error("missing proc root accepted")
	}
	if _, err := NewSampler("", []string{""}); !errors.Is(err, ErrEmptyPath) {
		t.Errorf("empty path: err = %v, want ErrEmptyPath", err)
	}
}

func TestRealProc(t *testing.T) {
	dir := t.TempDir()
	s, err := NewSampler("", []string{dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		snap, err := s.Sample()
		if err != nil {
			t.Fatalf("sample %d: %v", i, err)
		}
		if snap.CPUBusyPercent < 0 || snap.CPUBusyPercent > 100 {
			t.Errorf("busy = %v", snap.CPUBusyPercent)
		}
		if snap.MemoryTotalBytes == 0 || snap.MemoryAvailableBytes > snap.MemoryTotalBytes {
			t.Errorf("memory = %d/%d", snap.MemoryAvailableBytes, snap.MemoryTotalBytes)
		}
		if snap.UptimeSeconds <= 0 || snap.Load1 < 0 {
			t.Errorf("uptime %v load %v", snap.UptimeSeconds, snap.Load1)
		}
		if len(snap.FileSystems) != 1 || snap.FileSystems[0].Path != dir {
			t.Fatalf("file systems = %+v", snap.FileSystems)
		}
	}
}

func TestFileSystemsDeduplicated(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "disk1")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "unmounted")
	// /dev/shm is a tmpfs on Linux: a second file system, unless the
	// temp dir happens to live there too.
	other := "/dev/shm"
	paths := []string{dir, sub, dir, missing, other}
	s, err := NewSampler("", paths)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := s.Sample()
	var pe *PathError
	if !errors.As(err, &pe) || pe.Path != missing {
		t.Errorf("err = %v, want a PathError for %s", err, missing)
	}
	want := []string{dir}
	if devOf(t, other) != devOf(t, dir) {
		want = append(want, other)
	}
	if len(snap.FileSystems) != len(want) {
		t.Fatalf("file systems = %+v, want paths %v", snap.FileSystems, want)
	}
	for i, fs := range snap.FileSystems {
		if fs.Path != want[i] {
			t.Errorf("fs %d path = %s, want %s", i, fs.Path, want[i])
		}
		if fs.TotalBytes == 0 || fs.UsedBytes > fs.TotalBytes || fs.FreeBytes > fs.TotalBytes {
			t.Errorf("fs %s: %+v", fs.Path, fs)
		}
		if fs.UsedPercent < 0 || fs.UsedPercent > 100 || fs.InodesUsedPercent < 0 || fs.InodesUsedPercent > 100 {
			t.Errorf("fs %s percentages: %+v", fs.Path, fs)
		}
	}
}

func devOf(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Dev
}
