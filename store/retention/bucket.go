package retention

import (
	"slices"
	"time"
)

// The bucket rules, in reason order: hourly, daily, weekly, monthly, yearly.
// Bucket b's reason flag is keptHourly << b.
const nBuckets = 5

// calendar is a point's time broken down in the appliance's time zone.
type calendar struct {
	year, month, day, hour int
	isoYear, isoWeek       int
}

func calendarOf(t time.Time) calendar {
	y, m, d := t.Date()
	iy, w := t.ISOWeek()
	return calendar{year: y, month: int(m), day: d, hour: t.Hour(), isoYear: iy, isoWeek: w}
}

// keys returns the bucket of each rule as a number that orders like the
// calendar: a later hour, day, week, month or year has a larger key.
func (c calendar) keys() [nBuckets]int64 {
	month := int64(c.year)*100 + int64(c.month)
	day := month*100 + int64(c.day)
	return [nBuckets]int64{
		day*100 + int64(c.hour),
		day,
		int64(c.isoYear)*100 + int64(c.isoWeek),
		month,
		int64(c.year),
	}
}

// bucketRule counts the buckets one rule has kept within a group. Points
// are offered newest first; the first point of each distinct bucket is
// kept while the rule has room.
//
// Local time can run backwards (a daylight-saving change, a zone's offset
// change), so a bucket seen before may come back after an older one. Keys
// below every kept key are new; the common repeat is the smallest kept key;
// anything else is looked up in the kept list, which only happens around
// such a change.
type bucketRule struct {
	left int     // buckets still to keep
	min  int64   // smallest kept key; valid when kept is not empty
	kept []int64 // kept keys, in the order kept
}

// take reports whether key is a new bucket that the rule keeps.
func (b *bucketRule) take(key int64) bool {
	if b.left == 0 {
		return false
	}
	if len(b.kept) > 0 && key >= b.min {
		if key == b.min || slices.Contains(b.kept, key) {
			return false
		}
	}
	if len(b.kept) == 0 || key < b.min {
		b.min = key
	}
	b.kept = append(b.kept, key)
	b.left--
	return true
}
