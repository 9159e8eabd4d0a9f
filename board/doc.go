// Package board reports the appliance's own hardware: CPU, load, memory,
// uptime and the file systems under its data and disk directories. The
// figures feed the dashboard (Sampler.Sample) and /metrics
// (Sampler.Collector).
//
// Key types: Sampler reads /proc (through github.com/prometheus/procfs, so a
// fake proc root in testdata drives the tests), unix.Sysinfo for uptime and
// unix.Statfs for disk usage; Snapshot is one reading.
//
// Invariants:
//   - CPU busy is a ratio of counter deltas between two readings, never a
//     guess: the first reading covers the time since boot.
//   - File systems are reported once each, deduplicated by device id, under
//     the first configured path that lives on them.
//   - Nothing here panics on bad or missing /proc content; failures come
//     back as errors (and as invalid metrics on a scrape).
//
// board imports nothing from the project (see ARCHITECTURE.md); cloudlink
// and the appliance import board.
package board
