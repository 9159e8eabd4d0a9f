package retention

import (
	"math/bits"
	"strconv"
	"time"
)

// explain fills Keep and Reasons from the entries' flags. All reason texts
// share one string and all Reasons slices one backing array, so explaining
// k kept points costs a constant number of allocations.
func explain(out []Decision, es []entry, loc *time.Location) {
	total := 0
	for i := range es {
		total += bits.OnesCount8(es[i].flags)
	}
	if total == 0 {
		return
	}
	buf := make([]byte, 0, total*24)
	ends := make([]int, 0, total)
	for i := range es {
		e := &es[i]
		if e.flags == 0 {
			continue
		}
		p := &out[e.idx].Point
		var c calendar
		if e.flags&(keptHourly|keptDaily|keptWeekly|keptMonthly|keptYearly) != 0 {
			c = calendarOf(p.Time.In(loc))
		}
		for f := uint8(1); f != 0; f <<= 1 {
			if e.flags&f != 0 {
				buf = appendReason(buf, f, e.rank, c, p.RetainUntil.In(loc))
				ends = append(ends, len(buf))
			}
		}
	}
	text := string(buf)
	reasons := make([]string, total)
	k, start := 0, 0
	for i := range es {
		e := &es[i]
		if e.flags == 0 {
			continue
		}
		n := bits.OnesCount8(e.flags)
		rs := reasons[k : k+n : k+n]
		for x := range rs {
			rs[x] = text[start:ends[k+x]]
			start = ends[k+x]
		}
		k += n
		out[e.idx].Keep = true
		out[e.idx].Reasons = rs
	}
}

// appendReason appends the text of one reason flag, e.g. "last 1",
// "hourly 2026-11-20 14h", "daily 2026-11-20", "weekly 2026-W47",
// "monthly 2026-11", "yearly 2026", "locked until 2099-01-01", "running".
func appendReason(b []byte, flag uint8, rank int32, c calendar, until time.Time) []byte {
	switch flag {
	case keptLast:
		return strconv.AppendInt(append(b, "last "...), int64(rank), 10)
	case keptHourly:
		b = appendDate(append(b, "hourly "...), c)
		return append(appendPad(append(b, ' '), c.hour, 2), 'h')
	case keptDaily:
		return appendDate(append(b, "daily "...), c)
	case keptWeekly:
		b = appendPad(append(b, "weekly "...), c.isoYear, 4)
		return appendPad(append(b, "-W"...), c.isoWeek, 2)
	case keptMonthly:
		b = appendPad(append(b, "monthly "...), c.year, 4)
		return appendPad(append(b, '-'), c.month, 2)
	case keptYearly:
		return appendPad(append(b, "yearly "...), c.year, 4)
	case keptLocked:
		b = append(b, "locked until "...)
		if h, m, s := until.Clock(); h == 0 && m == 0 && s == 0 && until.Nanosecond() == 0 {
			return until.AppendFormat(b, time.DateOnly)
		}
		return until.AppendFormat(b, time.DateTime)
	default:
		return append(b, "running"...)
	}
}

func appendDate(b []byte, c calendar) []byte {
	b = appendPad(b, c.year, 4)
	b = appendPad(append(b, '-'), c.month, 2)
	return appendPad(append(b, '-'), c.day, 2)
}

// appendPad appends v in decimal, zero-padded to width digits.
func appendPad(b []byte, v, width int) []byte {
	if v >= 0 {
		n := 1
		for x := v; x >= 10; x /= 10 {
			n++
		}
		for ; n < width; n++ {
			b = append(b, '0')
		}
	}
	return strconv.AppendInt(b, int64(v), 10)
}
