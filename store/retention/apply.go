package retention

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Point is what retention needs to know about a restore point.
type Point struct {
	ID                 string
	Time               time.Time // the point's time (when its backup started)
	Host, Kind, Policy string    // points are judged within their (Host, Kind, Policy) group
	RetainUntil        time.Time // immutability lock: kept while RetainUntil is after now
	Running            bool      // still being written: always kept
}

// Decision is the verdict on one point.
type Decision struct {
	Point   Point
	Keep    bool
	Reasons []string // why kept, in rule order; empty when removed
}

// Reason flags, in the order their texts are listed in Decision.Reasons.
const (
	keptLast uint8 = 1 << iota
	keptHourly
	keptDaily
	keptWeekly
	keptMonthly
	keptYearly
	keptLocked
	keptRunning
)

// entry is the working state of one point: its sort key and its verdict.
// idx is an index into the input; inputs of more than 2^31-1 points are
// not supported.
type entry struct {
	sec   int64
	nsec  int32
	group int32
	idx   int32
	rank  int32 // 1-based keep-last rank; 0 when not kept by keep-last
	flags uint8
}

// Apply judges every point by r and returns one Decision per point, in the
// input order. Days, hours, ISO weeks, months and years are taken in loc
// (nil means UTC); now decides which locks are still in force. Rules that
// fail Validate keep every point (reason "invalid rules: ..."), so a caller
// that forgot to validate never removes anything.
func Apply(points []Point, r Rules, now time.Time, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.UTC
	}
	out := make([]Decision, len(points))
	for i := range points {
		out[i].Point = points[i]
	}
	if len(points) == 0 {
		return out
	}
	if err := r.Validate(); err != nil {
		keepAll(out, "invalid rules: "+strings.ReplaceAll(err.Error(), "\n", "; "))
		return out
	}
	es := sortedEntries(points)
	j := newJudge(points, r, now, loc)
	for lo := 0; lo < len(es); {
		hi := lo + 1
		for hi < len(es) && es[hi].group == es[lo].group {
			hi++
		}
		j.judgeGroup(es[lo:hi])
		lo = hi
	}
	explain(out, es, loc)
	return out
}

// keepAll marks every decision kept with the one reason.
func keepAll(out []Decision, reason string) {
	rs := make([]string, len(out))
	for i := range out {
		rs[i] = reason
		out[i].Keep = true
		out[i].Reasons = rs[i : i+1 : i+1]
	}
}

// sortedEntries numbers the groups and orders the points by group, then
// newest first, then ID descending.
func sortedEntries(points []Point) []entry {
	type groupKey struct{ host, kind, policy string }
	ids := make(map[groupKey]int32)
	var prev groupKey
	prevID := int32(-1)
	es := make([]entry, len(points))
	for i := range points {
		p := &points[i]
		if prevID < 0 || p.Host != prev.host || p.Kind != prev.kind || p.Policy != prev.policy {
			prev = groupKey{p.Host, p.Kind, p.Policy}
			id, ok := ids[prev]
			if !ok {
				id = int32(len(ids))
				ids[prev] = id
			}
			prevID = id
		}
		es[i] = entry{sec: p.Time.Unix(), nsec: int32(p.Time.Nanosecond()), group: prevID, idx: int32(i)}
	}
	slices.SortFunc(es, func(a, b entry) int {
		if c := cmp.Compare(a.group, b.group); c != 0 {
			return c
		}
		if c := cmp.Compare(b.sec, a.sec); c != 0 {
			return c
		}
		if c := cmp.Compare(b.nsec, a.nsec); c != 0 {
			return c
		}
		return strings.Compare(points[b.idx].ID, points[a.idx].ID)
	})
	return es
}

// judge applies the rules to one group at a time, reusing its bucket
// memory across groups.
type judge struct {
	points  []Point
	last    int
	counts  [nBuckets]int
	scratch [nBuckets][]int64
	now     time.Time
	loc     *time.Location
}

func newJudge(points []Point, r Rules, now time.Time, loc *time.Location) *judge {
	j := &judge{
		points: points,
		last:   r.Last,
		counts: [nBuckets]int{r.Hourly, r.Daily, r.Weekly, r.Monthly, r.Yearly},
		now:    now,
		loc:    loc,
	}
	for i, n := range j.counts {
		if n > 0 {
			j.scratch[i] = make([]int64, 0, min(n, len(points)))
		}
	}
	return j
}

// judgeGroup sets the flags of one group's entries, sorted newest first.
// Locked and running points are kept for that alone and take no part in
// the rules.
func (j *judge) judgeGroup(es []entry) {
	var bs [nBuckets]bucketRule
	active := 0
	for i := range bs {
		bs[i] = bucketRule{left: j.counts[i], kept: j.scratch[i][:0]}
		if bs[i].left > 0 {
			active++
		}
	}
	rank := 0
	for i := range es {
		e := &es[i]
		p := &j.points[e.idx]
		if p.RetainUntil.After(j.now) {
			e.flags |= keptLocked
		}
		if p.Running {
			e.flags |= keptRunning
		}
		if e.flags != 0 {
			continue
		}
		if rank < j.last {
			rank++
			e.rank = int32(rank)
			e.flags |= keptLast
		}
		if active == 0 {
			continue
		}
		keys := calendarOf(p.Time.In(j.loc)).keys()
		for b := range bs {
			if bs[b].left == 0 {
				continue
			}
			if bs[b].take(keys[b]) {
				e.flags |= keptHourly << b
			}
			if bs[b].left == 0 {
				active--
			}
		}
	}
	for i := range bs {
		j.scratch[i] = bs[i].kept
	}
}
