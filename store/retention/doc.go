// Package retention decides which restore points a Grandfather-Father-Son
// retention policy keeps, and says why. It is pure: no I/O, no clock (the
// caller passes now and the appliance's time zone), no globals. Callers
// (forget, the policy scheduler) load the points, call Apply, and remove
// the points it does not keep.
//
// # Rules
//
// Rules holds six counts; zero turns a rule off. Validate checks the ranges
// (last 0..10000, hourly 0..8760, daily 0..365, weekly 0..52, monthly
// 0..120, yearly 0..100) and refuses rules that are all zero, which would
// remove every point. Defaults is the policy default: daily 7, weekly 4,
// monthly 12.
//
// Points are judged within their (Host, Kind, Policy) group, newest first
// (equal times: ID descending). Each rule counts on its own, as restic's
// forget does:
//
//   - last N keeps the N newest points;
//   - hourly, daily, weekly, monthly and yearly N each walk the group from
//     newest to oldest and keep the newest point of each distinct hour,
//     day, ISO week (ISO year and week, so 2025-12-29 is in 2026-W01), month
//     or year, until the rule has kept N buckets.
//
// A point kept by several rules collects every reason. A rule's buckets are
// consumed only by points it keeps, so daily 7 with weekly 4 over daily
// points keeps the last 7 days plus the newest point of each of the 4
// newest weeks (the current week's newest is already among the 7 days).
// There is no PBS-style skipping of buckets another rule has covered.
//
// # Protected points
//
// A point whose RetainUntil is after now (an immutability lock) or that is
// still Running is always kept, with the reason "locked until ..." or
// "running", and takes no part in the rules: it fills no keep-last place
// and no bucket. So a lock never makes the policy drop a point it would
// otherwise keep, and a running backup never takes the day of the finished
// point before it.
//
// # Time
//
// Hours, days, weeks, months and years are calendar buckets in the
// appliance's time zone (Apply's loc): 2026-11-20T23:30Z is day 2026-11-21
// in Europe/Berlin. When the clock goes back (end of daylight saving) the
// repeated hour is one bucket. A bucket that comes back after an older one
// is still counted once.
//
// # Reasons
//
// Decision.Reasons lists why a point is kept, in this order: "last 1",
// "hourly 2026-11-20 14h", "daily 2026-11-20", "weekly 2026-W47",
// "monthly 2026-11", "yearly 2026", "locked until 2099-01-01" (date and
// time when the lock does not end at midnight), "running". A removed point
// has none. If the rules fail Validate, Apply keeps every point with the
// reason "invalid rules: ...": a caller that forgot to validate removes
// nothing.
//
// # Cost
//
// Apply sorts the points once and walks each group once; it makes a
// constant number of allocations beyond the map of groups (all reason texts
// share one string). It judges 100k points in tens of milliseconds.
//
// Package retention imports only the standard library (errors, fmt, cmp,
// math/bits, slices, strconv, strings, time) and must not import any other
// package of this project, nor anything that does I/O.
package retention
