package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sys/unix"

	"bes/appliance/model"
)

// Monitor samples the capacity of the storage targets it can measure
// (local targets: the file system of their path), records it with its
// growth estimate, and lets the model pause and resume policies at the
// thresholds.
type Monitor struct {
	Model  *model.DB
	Log    *slog.Logger
	Now    func() time.Time
	Statfs func(path string) (total, used int64, err error) // default: statfs(2), as df counts
}

// StatfsUsage returns a file system's size and used bytes as df shows them
// (used = size - free, with the root reserve counted as used).
func StatfsUsage(path string) (total, used int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := int64(st.Bsize)
	total = int64(st.Blocks) * bs
	avail := int64(st.Bavail) * bs
	used = total - avail
	return total, used, nil
}

// Check samples every measurable target once.
func (m *Monitor) Check(ctx context.Context) error {
	log := m.Log
	if log == nil {
		log = slog.Default()
	}
	now := time.Now
	if m.Now != nil {
		now = m.Now
	}
	stat := m.Statfs
	if stat == nil {
		stat = StatfsUsage
	}
	ts, err := m.Model.Targets(ctx)
	if err != nil {
		return err
	}
	for i := range ts {
		t := &ts[i]
		if t.Type != "local" {
			continue // remote targets report through their backends later
		}
		total, used, err := stat(t.Config["path"])
		if err != nil {
			log.Warn("capacity: cannot measure storage target", "target", t.Name, "err", err)
			continue
		}
		c, paused, resumed, err := m.Model.RecordUsage(ctx, t, model.Usage{At: now().UTC(), Total: total, Used: used})
		if err != nil {
			return err
		}
		if len(paused) > 0 {
			log.Warn("storage critical: policies paused", "target", t.Name, "used_percent", c.UsedPercent, "policies", paused)
		}
		if len(resumed) > 0 {
			log.Info("storage healthy again: policies resumed", "target", t.Name, "used_percent", c.UsedPercent, "policies", resumed)
		}
	}
	return nil
}

// Run checks every interval until ctx ends.
func (m *Monitor) Run(ctx context.Context, every time.Duration) {
	for {
		if err := m.Check(ctx); err != nil && m.Log != nil {
			m.Log.Error("capacity", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
