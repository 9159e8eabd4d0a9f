package board

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// ErrEmptyPath is returned by NewSampler when a path in the list is empty.
var ErrEmptyPath = errors.New("board: empty file system path")

// Snapshot is one reading of the board. Fields whose source could not be
// read are left zero; Sample then also returns an error naming them.
type Snapshot struct {
	Time time.Time `json:"time"`

	// CPUBusyPercent is the share of CPU time (all CPUs together) spent
	// neither idle nor waiting for I/O since the previous Sample (since
	// boot for the first one), 0..100.
	CPUBusyPercent float64 `json:"cpu_busy_percent"`
	Load1          float64 `json:"load1"`
	Load5          float64 `json:"load5"`
	Load15         float64 `json:"load15"`

	MemoryTotalBytes     uint64  `json:"memory_total_bytes"`
	MemoryAvailableBytes uint64  `json:"memory_available_bytes"`
	MemoryUsedPercent    float64 `json:"memory_used_percent"`

	UptimeSeconds float64 `json:"uptime_seconds"`

	FileSystems []FileSystem `json:"filesystems"`
}

// FileSystem is the usage of one file system, named by the first
// configured path that lives on it.
type FileSystem struct {
	Path   string `json:"path"`
	Device uint64 `json:"device"`
	// TotalBytes is the file system's size; UsedBytes what is allocated;
	// FreeBytes what an unprivileged writer (the daemon) may still use, so
	// UsedBytes+FreeBytes can be below TotalBytes (reserved blocks), as
	// with df.
	TotalBytes uint64 `json:"total_bytes"`
	UsedBytes  uint64 `json:"used_bytes"`
	FreeBytes  uint64 `json:"free_bytes"`
	// UsedPercent is UsedBytes/(UsedBytes+FreeBytes), df's "Use%".
	UsedPercent float64 `json:"used_percent"`
	// InodesUsedPercent is 0 on file systems without an inode limit.
	InodesUsedPercent float64 `json:"inodes_used_percent"`
}

// Sampler reads the board's figures. It is safe for concurrent use.
type Sampler struct {
	fs    procfs.FS
	paths []string
	now   func() time.Time
	cpu   cpuTracker // baseline of Sample; each Collector has its own
}

// NewSampler returns a Sampler reading procRoot ("" means "/proc") and
// reporting the file systems holding paths (relative paths are made
// absolute; repeated paths are dropped). Paths need not exist yet: one that
// is missing at Sample time is reported as an error for that path only.
func NewSampler(procRoot string, paths []string) (*Sampler, error) {
	if procRoot == "" {
		procRoot = procfs.DefaultMountPoint
	}
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("board: proc root %s: %w", procRoot, err)
	}
	s := &Sampler{fs: fs, now: time.Now}
	seen := make(map[string]bool)
	for _, p := range paths {
		if p == "" {
			return nil, ErrEmptyPath
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("board: path %s: %w", p, err)
		}
		if !seen[abs] {
			seen[abs] = true
			s.paths = append(s.paths, abs)
		}
	}
	return s, nil
}

// Sample reads every figure. CPU busy is measured since the previous call
// to Sample (scrapes through Collector do not move this baseline). On
// error the Snapshot still holds everything that could be read and the
// error (possibly several joined) names what could not.
func (s *Sampler) Sample() (Snapshot, error) {
	r := s.read(&s.cpu)
	return r.snap, r.err()
}

// reading is a Snapshot plus the error of each part, so that the
// collector can report each failure against its own metric.
type reading struct {
	snap                           Snapshot
	cpuErr, loadErr, memErr, upErr error
	fsErrs                         []error
}

func (r *reading) err() error {
	return errors.Join(append([]error{r.cpuErr, r.loadErr, r.memErr, r.upErr}, r.fsErrs...)...)
}

func (s *Sampler) read(cpu *cpuTracker) reading {
	var r reading
	r.snap.Time = s.now()
	r.snap.CPUBusyPercent, r.cpuErr = s.cpuBusy(cpu)
	r.loadErr = s.readLoad(&r.snap)
	r.memErr = s.readMemory(&r.snap)
	r.upErr = readUptime(&r.snap)
	r.snap.FileSystems, r.fsErrs = statFileSystems(s.paths)
	return r
}

func (s *Sampler) readLoad(snap *Snapshot) error {
	l, err := s.fs.LoadAvg()
	if err != nil {
		return fmt.Errorf("board: load average: %w", err)
	}
	snap.Load1, snap.Load5, snap.Load15 = l.Load1, l.Load5, l.Load15
	return nil
}

// ErrNoMemTotal means meminfo has no MemTotal line.
var ErrNoMemTotal = errors.New("board: meminfo has no MemTotal")

func (s *Sampler) readMemory(snap *Snapshot) error {
	m, err := s.fs.Meminfo()
	if err != nil {
		return fmt.Errorf("board: meminfo: %w", err)
	}
	if m.MemTotalBytes == nil || *m.MemTotalBytes == 0 {
		return ErrNoMemTotal
	}
	total := *m.MemTotalBytes
	avail := availableMemory(m)
	if avail > total {
		avail = total
	}
	snap.MemoryTotalBytes = total
	snap.MemoryAvailableBytes = avail
	snap.MemoryUsedPercent = 100 * float64(total-avail) / float64(total)
	return nil
}

// availableMemory is MemAvailable, or on kernels older than 3.14 the usual
// estimate free + buffers + page cache.
func availableMemory(m procfs.Meminfo) uint64 {
	if m.MemAvailableBytes != nil {
		return *m.MemAvailableBytes
	}
	var sum uint64
	for _, v := range []*uint64{m.MemFreeBytes, m.BuffersBytes, m.CachedBytes} {
		if v != nil {
			sum += *v
		}
	}
	return sum
}

// readUptime uses sysinfo(2): the kernel's, not procRoot's, uptime.
func readUptime(snap *Snapshot) error {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return fmt.Errorf("board: sysinfo: %w", err)
	}
	snap.UptimeSeconds = float64(si.Uptime)
	return nil
}

// cpuTracker holds the CPU counters of the previous reading.
type cpuTracker struct {
	mu       sync.Mutex
	prev     cpuTimes
	havePrev bool
	last     float64 // last busy percent, repeated when no time passed
}
