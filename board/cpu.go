package board

import (
	"errors"
	"fmt"

	"github.com/prometheus/procfs"
)

// ErrNoCPULine means the stat file has no aggregate "cpu" line.
var ErrNoCPULine = errors.New("board: stat has no cpu line")

// cpuTimes is the aggregate CPU time (seconds, all CPUs) split into the
// part that counts as busy and the whole.
type cpuTimes struct {
	busy, total float64
}

// timesOf sums the counters. Guest and guest_nice are already included in
// user and nice by the kernel, so they are not added again; iowait counts
// as idle.
func timesOf(c procfs.CPUStat) cpuTimes {
	idle := c.Idle + c.Iowait
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return cpuTimes{busy: busy, total: busy + idle}
}

// busyPercent returns the busy share between prev and cur. When no time
// passed it returns last; when the counters went backwards (CPU hot-unplug
// resets them) it falls back to the figure since boot.
func busyPercent(prev, cur cpuTimes, last float64) float64 {
	dTotal := cur.total - prev.total
	dBusy := cur.busy - prev.busy
	switch {
	case dTotal == 0:
		return last
	case dTotal < 0 || dBusy < 0:
		return sinceBoot(cur)
	}
	return clampPercent(100 * dBusy / dTotal)
}

func sinceBoot(cur cpuTimes) float64 {
	if cur.total <= 0 {
		return 0
	}
	return clampPercent(100 * cur.busy / cur.total)
}

func clampPercent(p float64) float64 {
	return min(max(p, 0), 100)
}

// cpuBusy reads stat and advances t's baseline.
func (s *Sampler) cpuBusy(t *cpuTracker) (float64, error) {
	st, err := s.fs.Stat()
	if err != nil {
		return 0, fmt.Errorf("board: cpu stat: %w", err)
	}
	cur := timesOf(st.CPUTotal)
	if cur.total <= 0 {
		return 0, ErrNoCPULine
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := sinceBoot(cur)
	if t.havePrev {
		p = busyPercent(t.prev, cur, t.last)
	}
	t.prev, t.havePrev, t.last = cur, true, p
	return p, nil
}
