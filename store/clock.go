package store

import (
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ClockFile keeps the repository's clock high-water mark.
const ClockFile = "clock"

// clockGuard keeps the latest time the repository has seen, so that a
// system clock set back does not shorten a lock: Now never goes below it.
// The mark lives in ClockFile (and every point document carries its
// times, which a catalog rebuild feeds back in).
type clockGuard struct {
	path string
	mu   sync.Mutex
	hwm  time.Time // latest time seen
	disk time.Time // latest time written to path
}

func openClock(path string) *clockGuard {
	g := &clockGuard{path: path}
	if b, err := os.ReadFile(path); err == nil {
		if ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && ns > 0 {
			g.hwm = time.Unix(0, ns)
			g.disk = g.hwm
		}
	}
	return g
}

// observe raises the mark to t.
func (g *clockGuard) observe(t time.Time) {
	if g == nil {
		return
	}
	g.mu.Lock()
	if t.After(g.hwm) {
		g.hwm = t
	}
	g.mu.Unlock()
}

// now returns max(sys, mark) and raises the mark.
func (g *clockGuard) now(sys time.Time) time.Time {
	if g == nil {
		return sys
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if sys.After(g.hwm) {
		g.hwm = sys
	}
	return g.hwm
}

// save writes the mark if it moved (atomically; errors are ignored: the
// file is a guard, not data, and point times restore it).
func (g *clockGuard) save() {
	if g == nil {
		return
	}
	g.mu.Lock()
	hwm := g.hwm
	g.mu.Unlock()
	if !hwm.After(g.disk) {
		return
	}
	if writeFileAtomic(g.path, []byte(strconv.FormatInt(hwm.UnixNano(), 10)+"\n"), 0o600) == nil {
		g.disk = hwm
	}
}

// GuardedNow is the repository's clock for locks and retention: the system
// clock, but never earlier than any time the repository has already seen.
func (r *Repo) GuardedNow() time.Time {
	t := r.clock.now(r.now())
	return t
}
