package retention

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	_ "time/tzdata" // Europe/Berlin without depending on the host's zoneinfo
)

var (
	now = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cet = time.FixedZone("CET", 3600)
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// dailyPoints returns one point per day at 02:00 UTC from first to last
// inclusive (YYYY-MM-DD), oldest first, each named by its date.
func dailyPoints(first, last string) []Point {
	t, end := at(first+"T02:00:00Z"), at(last+"T02:00:00Z")
	var ps []Point
	for ; !t.After(end); t = t.AddDate(0, 0, 1) {
		ps = append(ps, Point{ID: t.Format(time.DateOnly), Time: t, Host: "h1", Kind: "file", Policy: "p"})
	}
	return ps
}

// pts builds points named by their RFC 3339 time in group h1/file/p.
func pts(times ...string) []Point {
	ps := make([]Point, len(times))
	for i, s := range times {
		ps[i] = Point{ID: s, Time: at(s), Host: "h1", Kind: "file", Policy: "p"}
	}
	return ps
}

// shuffled returns a copy of ps in a fixed pseudo-random order.
func shuffled(ps []Point) []Point {
	out := slices.Clone(ps)
	r := rand.New(rand.NewPCG(1, 2))
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// with returns a copy of ps with f applied to the point named id.
func with(ps []Point, id string, f func(*Point)) []Point {
	out := slices.Clone(ps)
	for i := range out {
		if out[i].ID == id {
			f(&out[i])
			return out
		}
	}
	panic("no point " + id)
}

func lockUntil(s string) func(*Point) { return func(p *Point) { p.RetainUntil = at(s) } }
func running(p *Point)                { p.Running = true }

type want map[string][]string // kept ID -> reasons; every other point removed

func TestApply(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	year := dailyPoints("2025-11-21", "2026-11-20")
	days70 := dailyPoints("2026-09-12", "2026-11-20")
	five := dailyPoints("2026-11-16", "2026-11-20")
	tests := []struct {
		name   string
		points []Point
		rules  Rules
		loc    *time.Location
		want   want
	}{
		{
			name:   "year of daily points, defaults 7/4/12",
			points: shuffled(year),
			rules:  Defaults(),
			want: want{
				"2026-11-20": {"daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11"},
				"2026-11-19": {"daily 2026-11-19"},
				"2026-11-18": {"daily 2026-11-18"},
				"2026-11-17": {"daily 2026-11-17"},
				"2026-11-16": {"daily 2026-11-16"},
				"2026-11-15": {"daily 2026-11-15", "weekly 2026-W46"},
				"2026-11-14": {"daily 2026-11-14"},
				"2026-11-08": {"weekly 2026-W45"},
				"2026-11-01": {"weekly 2026-W44"},
				"2026-10-31": {"monthly 2026-10"},
				"2026-09-30": {"monthly 2026-09"},
				"2026-08-31": {"monthly 2026-08"},
				"2026-07-31": {"monthly 2026-07"},
				"2026-06-30": {"monthly 2026-06"},
				"2026-05-31": {"monthly 2026-05"},
				"2026-04-30": {"monthly 2026-04"},
				"2026-03-31": {"monthly 2026-03"},
				"2026-02-28": {"monthly 2026-02"},
				"2026-01-31": {"monthly 2026-01"},
				"2025-12-31": {"monthly 2025-12"},
			},
		},
		{
			name:   "70 daily points, 7/4/3",
			points: days70,
			rules:  Rules{Daily: 7, Weekly: 4, Monthly: 3},
			want: want{
				"2026-11-20": {"daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11"},
				"2026-11-19": {"daily 2026-11-19"},
				"2026-11-18": {"daily 2026-11-18"},
				"2026-11-17": {"daily 2026-11-17"},
				"2026-11-16": {"daily 2026-11-16"},
				"2026-11-15": {"daily 2026-11-15", "weekly 2026-W46"},
				"2026-11-14": {"daily 2026-11-14"},
				"2026-11-08": {"weekly 2026-W45"},
				"2026-11-01": {"weekly 2026-W44"},
				"2026-10-31": {"monthly 2026-10"},
				"2026-09-30": {"monthly 2026-09"},
			},
		},
		{
			name: "keep-last alone, equal times by ID descending",
			points: []Point{
				{ID: "a", Time: at("2026-11-20T10:00:00Z")},
				{ID: "b", Time: at("2026-11-20T10:00:00Z")},
				{ID: "c", Time: at("2026-11-19T10:00:00Z")},
				{ID: "d", Time: at("2026-11-21T10:00:00Z")},
				{ID: "e", Time: at("2026-11-18T10:00:00Z")},
			},
			rules: Rules{Last: 3},
			want:  want{"d": {"last 1"}, "b": {"last 2"}, "a": {"last 3"}},
		},
		{
			name: "keep-last more than there are",
			points: []Point{
				{ID: "a", Time: at("2026-11-20T10:00:00Z")},
				{ID: "b", Time: at("2026-11-19T10:00:00Z")},
			},
			rules: Rules{Last: 10},
			want:  want{"a": {"last 1"}, "b": {"last 2"}},
		},
		{
			name: "hourly keeps the newest point of each hour",
			points: pts("2026-11-20T10:00:00Z", "2026-11-20T11:20:00Z", "2026-11-20T11:40:00Z",
				"2026-11-20T12:00:00Z", "2026-11-20T12:20:00Z", "2026-11-20T12:40:00Z",
				"2026-11-20T14:00:00Z", "2026-11-20T14:40:00Z"),
			rules: Rules{Hourly: 3},
			want: want{
				"2026-11-20T14:40:00Z": {"hourly 2026-11-20 14h"},
				"2026-11-20T12:40:00Z": {"hourly 2026-11-20 12h"},
				"2026-11-20T11:40:00Z": {"hourly 2026-11-20 11h"},
			},
		},
		{
			name: "yearly",
			points: pts("2023-06-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-12-31T23:00:00Z",
				"2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-11-20T00:00:00Z"),
			rules: Rules{Yearly: 3},
			want: want{
				"2026-11-20T00:00:00Z": {"yearly 2026"},
				"2025-07-01T00:00:00Z": {"yearly 2025"},
				"2024-12-31T23:00:00Z": {"yearly 2024"},
			},
		},
		{
			name: "yearly in CET moves new year's eve 23:00Z into the next year",
			points: pts("2023-06-01T00:00:00Z", "2024-03-01T00:00:00Z", "2024-12-31T23:00:00Z",
				"2025-07-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-11-20T00:00:00Z"),
			rules: Rules{Yearly: 3},
			loc:   cet,
			want: want{
				"2026-11-20T00:00:00Z": {"yearly 2026"},
				"2025-07-01T00:00:00Z": {"yearly 2025"},
				"2024-03-01T00:00:00Z": {"yearly 2024"},
			},
		},
		{
			name: "ISO week edges",
			// 2025-12-28 is Sunday of 2025-W52; 2025-12-29 (Monday) and
			// 2026-01-01 are in 2026-W01; 2027-01-01 is in 2026-W53.
			points: pts("2025-12-28T12:00:00Z", "2025-12-29T12:00:00Z", "2026-01-01T12:00:00Z", "2027-01-01T12:00:00Z"),
			rules:  Rules{Weekly: 3, Yearly: 5},
			want: want{
				"2027-01-01T12:00:00Z": {"weekly 2026-W53", "yearly 2027"},
				"2026-01-01T12:00:00Z": {"weekly 2026-W01", "yearly 2026"},
				"2025-12-29T12:00:00Z": {"yearly 2025"},
				"2025-12-28T12:00:00Z": {"weekly 2025-W52"},
			},
		},
		{
			name:   "UTC: 23:30Z is the same day as noon",
			points: pts("2026-11-20T12:00:00Z", "2026-11-20T23:30:00Z"),
			rules:  Rules{Daily: 2},
			loc:    time.UTC,
			want:   want{"2026-11-20T23:30:00Z": {"daily 2026-11-20"}},
		},
		{
			name:   "CET: 23:30Z is the next day",
			points: pts("2026-11-20T12:00:00Z", "2026-11-20T23:30:00Z"),
			rules:  Rules{Daily: 2},
			loc:    cet,
			want: want{
				"2026-11-20T23:30:00Z": {"daily 2026-11-21"},
				"2026-11-20T12:00:00Z": {"daily 2026-11-20"},
			},
		},
		{
			name:   "Europe/Berlin: 23:30Z is the next day",
			points: pts("2026-11-20T12:00:00Z", "2026-11-20T23:30:00Z"),
			rules:  Rules{Daily: 2},
			loc:    berlin,
			want: want{
				"2026-11-20T23:30:00Z": {"daily 2026-11-21"},
				"2026-11-20T12:00:00Z": {"daily 2026-11-20"},
			},
		},
		{
			name: "Europe/Berlin: the repeated hour at the end of summer time is one bucket",
			// 00:30Z is 02:30 CEST, 01:30Z is 02:30 CET, 02:30Z is 03:30 CET.
			points: pts("2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-25T02:30:00Z"),
			rules:  Rules{Hourly: 3},
			loc:    berlin,
			want: want{
				"2026-10-25T02:30:00Z": {"hourly 2026-10-25 03h"},
				"2026-10-25T01:30:00Z": {"hourly 2026-10-25 02h"},
			},
		},
		{
			name:   "nil location is UTC",
			points: pts("2026-11-20T12:00:00Z", "2026-11-20T23:30:00Z"),
			rules:  Rules{Daily: 2},
			want:   want{"2026-11-20T23:30:00Z": {"daily 2026-11-20"}},
		},
		{
			name: "groups are judged separately",
			points: []Point{
				{ID: "h1-file-p-old", Time: at("2026-11-19T02:00:00Z"), Host: "h1", Kind: "file", Policy: "p"},
				{ID: "h1-file-p-new", Time: at("2026-11-20T02:00:00Z"), Host: "h1", Kind: "file", Policy: "p"},
				{ID: "h2-file-p-old", Time: at("2026-11-18T02:00:00Z"), Host: "h2", Kind: "file", Policy: "p"},
				{ID: "h2-file-p-new", Time: at("2026-11-19T03:00:00Z"), Host: "h2", Kind: "file", Policy: "p"},
				{ID: "h1-vm-p-new", Time: at("2026-11-17T02:00:00Z"), Host: "h1", Kind: "vm", Policy: "p"},
				{ID: "h1-vm-p-old", Time: at("2026-11-17T01:00:00Z"), Host: "h1", Kind: "vm", Policy: "p"},
				{ID: "h1-file-q-old", Time: at("2026-11-20T01:00:00Z"), Host: "h1", Kind: "file", Policy: "q"},
				{ID: "h1-file-q-new", Time: at("2026-11-20T03:00:00Z"), Host: "h1", Kind: "file", Policy: "q"},
			},
			rules: Rules{Last: 1},
			want: want{
				"h1-file-p-new": {"last 1"},
				"h2-file-p-new": {"last 1"},
				"h1-vm-p-new":   {"last 1"},
				"h1-file-q-new": {"last 1"},
			},
		},
		{
			name: "locks: in force kept, no slot taken; expired or ending now ignored",
			points: with(with(with(five, "2026-11-20", lockUntil("2099-01-01T00:00:00Z")),
				"2026-11-19", lockUntil("2026-11-01T00:00:00Z")),
				"2026-11-18", lockUntil(now.Format(time.RFC3339))),
			rules: Rules{Last: 2},
			want: want{
				"2026-11-20": {"locked until 2099-01-01"},
				"2026-11-19": {"last 1"},
				"2026-11-18": {"last 2"},
			},
		},
		{
			name:   "a locked point takes no daily bucket",
			points: with(five, "2026-11-19", lockUntil("2027-01-01T12:30:00Z")),
			rules:  Rules{Daily: 2},
			want: want{
				"2026-11-20": {"daily 2026-11-20"},
				"2026-11-19": {"locked until 2027-01-01 12:30:00"},
				"2026-11-18": {"daily 2026-11-18"},
			},
		},
		{
			name:   "an old locked point survives keep-last 1",
			points: with(five, "2026-11-16", lockUntil("2099-01-01T00:00:00Z")),
			rules:  Rules{Last: 1},
			want: want{
				"2026-11-20": {"last 1"},
				"2026-11-16": {"locked until 2099-01-01"},
			},
		},
		{
			name:   "lock date is shown in the appliance's zone",
			points: with(five, "2026-11-16", lockUntil("2098-12-31T23:00:00Z")),
			rules:  Rules{Last: 1},
			loc:    cet,
			want: want{
				"2026-11-20": {"last 1"},
				"2026-11-16": {"locked until 2099-01-01"},
			},
		},
		{
			name:   "running: kept, takes no slot",
			points: with(five, "2026-11-20", running),
			rules:  Rules{Last: 1, Daily: 1},
			want: want{
				"2026-11-20": {"running"},
				"2026-11-19": {"last 1", "daily 2026-11-19"},
			},
		},
		{
			name:   "locked and running",
			points: with(with(five, "2026-11-17", running), "2026-11-17", lockUntil("2099-01-01T00:00:00Z")),
			rules:  Rules{Yearly: 1},
			want: want{
				"2026-11-20": {"yearly 2026"},
				"2026-11-17": {"locked until 2099-01-01", "running"},
			},
		},
		{
			name: "every rule at once, reasons in rule order",
			points: pts("2026-11-20T14:40:00Z", "2026-11-20T14:10:00Z", "2026-11-20T13:00:00Z",
				"2026-11-19T09:00:00Z", "2026-10-02T09:00:00Z", "2025-06-01T00:00:00Z"),
			rules: Rules{Last: 2, Hourly: 2, Daily: 2, Weekly: 2, Monthly: 2, Yearly: 2},
			want: want{
				"2026-11-20T14:40:00Z": {"last 1", "hourly 2026-11-20 14h", "daily 2026-11-20", "weekly 2026-W47", "monthly 2026-11", "yearly 2026"},
				"2026-11-20T14:10:00Z": {"last 2"},
				"2026-11-20T13:00:00Z": {"hourly 2026-11-20 13h"},
				"2026-11-19T09:00:00Z": {"daily 2026-11-19"},
				"2026-10-02T09:00:00Z": {"weekly 2026-W40", "monthly 2026-10"},
				"2025-06-01T00:00:00Z": {"yearly 2025"},
			},
		},
		{
			name:   "invalid rules keep everything",
			points: pts("2026-11-20T14:40:00Z", "2026-11-19T14:40:00Z"),
			rules:  Rules{},
			want: want{
				"2026-11-20T14:40:00Z": {"invalid rules: no keep rule given: refusing to remove every point"},
				"2026-11-19T14:40:00Z": {"invalid rules: no keep rule given: refusing to remove every point"},
			},
		},
		{
			name:   "several invalid rules give a one-line reason",
			points: pts("2026-11-20T14:40:00Z"),
			rules:  Rules{Daily: -1, Weekly: 99},
			want: want{
				"2026-11-20T14:40:00Z": {"invalid rules: keep rule out of range: keep-daily -1, allowed 0..365; keep rule out of range: keep-weekly 99, allowed 0..52"},
			},
		},
		{
			name:   "empty input",
			points: nil,
			rules:  Defaults(),
			want:   want{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Apply(tt.points, tt.rules, now, tt.loc)
			check(t, tt.points, got, tt.want)
			// The reference must agree on every case (invalid rules aside,
			// which it does not model).
			if tt.rules.Validate() == nil {
				same(t, got, reference(tt.points, tt.rules, now, tt.loc))
			}
		})
	}
}

// check asserts one decision per point in input order, and exactly the
// wanted points kept with the wanted reasons.
func check(t *testing.T, points []Point, got []Decision, w want) {
	t.Helper()
	if len(got) != len(points) {
		t.Fatalf("got %d decisions for %d points", len(got), len(points))
	}
	kept := 0
	for i, d := range got {
		p := points[i]
		if d.Point != p {
			t.Fatalf("decision %d is for %+v, want %+v", i, d.Point, p)
		}
		reasons, ok := w[p.ID]
		if d.Keep != ok {
			t.Errorf("%s: Keep = %v, want %v (reasons %q)", p.ID, d.Keep, ok, d.Reasons)
			continue
		}
		if ok {
			kept++
		}
		if !slices.Equal(d.Reasons, reasons) {
			t.Errorf("%s: Reasons = %q, want %q", p.ID, d.Reasons, reasons)
		}
	}
	if kept != len(w) {
		t.Errorf("kept %d points, want %d", kept, len(w))
	}
}

func same(t *testing.T, got, ref []Decision) {
	t.Helper()
	if len(got) != len(ref) {
		t.Fatalf("got %d decisions, reference %d", len(got), len(ref))
	}
	for i := range got {
		if got[i].Point != ref[i].Point || got[i].Keep != ref[i].Keep || !slices.Equal(got[i].Reasons, ref[i].Reasons) {
			t.Errorf("decision %d: got %v %q, reference %v %q", i, got[i].Keep, got[i].Reasons, ref[i].Keep, ref[i].Reasons)
		}
	}
}

// TestApplyKeptCounts cross-checks the kept counts of the two GFS cases
// with an independent count: the number of distinct days among the newest
// 7 days, union the newest point of each of the newest 4 ISO weeks and N
// months (the method of the acceptance test).
func TestApplyKeptCounts(t *testing.T) {
	tests := []struct {
		first, last string
		rules       Rules
		want        int
	}{
		{"2025-11-21", "2026-11-20", Defaults(), 20},
		{"2026-09-12", "2026-11-20", Rules{Daily: 7, Weekly: 4, Monthly: 3}, 11},
	}
	for _, tt := range tests {
		points := dailyPoints(tt.first, tt.last)
		if n := countGFS(points, tt.rules); n != tt.want {
			t.Fatalf("independent count %d, table says %d", n, tt.want)
		}
		n := 0
		for _, d := range Apply(points, tt.rules, now, time.UTC) {
			if d.Keep {
				n++
			}
		}
		if n != tt.want {
			t.Errorf("%s..%s %+v: kept %d, want %d", tt.first, tt.last, tt.rules, n, tt.want)
		}
	}
}

// countGFS counts survivors of daily/weekly/monthly over one point per day,
// given oldest first, by a per-rule set of seen buckets.
func countGFS(points []Point, r Rules) int {
	kept := map[string]bool{}
	rules := []struct {
		n   int
		key func(time.Time) string
	}{
		{r.Daily, func(t time.Time) string { return t.Format(time.DateOnly) }},
		{r.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprint(y, w) }},
		{r.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
	}
	for _, rule := range rules {
		seen := map[string]bool{}
		for i := len(points) - 1; i >= 0 && len(seen) < rule.n; i-- {
			if k := rule.key(points[i].Time); !seen[k] {
				seen[k] = true
				kept[points[i].ID] = true
			}
		}
	}
	return len(kept)
}

func TestISOWeekAssumptions(t *testing.T) {
	for _, tt := range []struct {
		day     string
		y, week int
	}{
		{"2025-12-28", 2025, 52},
		{"2025-12-29", 2026, 1},
		{"2026-01-01", 2026, 1},
		{"2026-11-20", 2026, 47},
		{"2027-01-01", 2026, 53},
	} {
		y, w := at(tt.day + "T12:00:00Z").ISOWeek()
		if y != tt.y || w != tt.week {
			t.Errorf("%s is %d-W%02d, the tests assume %d-W%02d", tt.day, y, w, tt.y, tt.week)
		}
	}
}

func TestApplyDoesNotModifyInput(t *testing.T) {
	points := shuffled(dailyPoints("2026-01-01", "2026-11-20"))
	before := slices.Clone(points)
	Apply(points, Defaults(), now, cet)
	if !slices.Equal(points, before) {
		t.Fatal("Apply modified its input")
	}
}

func TestApplyReasonsAreIndependent(t *testing.T) {
	got := Apply(dailyPoints("2026-11-01", "2026-11-20"), Rules{Last: 2}, now, nil)
	var kept [][]string
	for _, d := range got {
		if d.Keep {
			kept = append(kept, d.Reasons)
		}
	}
	if len(kept) != 2 {
		t.Fatalf("kept %d, want 2", len(kept))
	}
	kept[0] = append(kept[0], "extra")
	if !slices.Equal(kept[1], []string{"last 1"}) {
		t.Fatalf("appending to one Reasons changed another: %q", kept[1])
	}
}

// TestApplyMatchesReference compares Apply with the slow reference on
// random points, rules, locks and time zones.
func TestApplyMatchesReference(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	locs := []*time.Location{time.UTC, cet, time.FixedZone("IST", 5*3600+1800), time.FixedZone("", -10*3600), berlin}
	spans := []time.Duration{6 * time.Hour, 3 * 24 * time.Hour, 60 * 24 * time.Hour, 3 * 365 * 24 * time.Hour}
	rng := rand.New(rand.NewPCG(7, 11))
	for c := range 500 {
		n := rng.IntN(300)
		span := spans[rng.IntN(len(spans))]
		end := at("2026-10-26T00:00:00Z") // just after the end of summer time in Berlin
		points := make([]Point, n)
		for i := range points {
			p := Point{
				ID:     fmt.Sprintf("p%03d", rng.IntN(1000)),
				Time:   end.Add(-time.Duration(rng.Int64N(int64(span))).Truncate(time.Minute)),
				Host:   []string{"h1", "h2"}[rng.IntN(2)],
				Kind:   []string{"file", "vm"}[rng.IntN(2)],
				Policy: "p",
			}
			if rng.IntN(20) == 0 {
				p.RetainUntil = now.Add(time.Duration(rng.IntN(48)-24) * time.Hour)
			}
			p.Running = rng.IntN(50) == 0
			if i > 0 && rng.IntN(10) == 0 {
				p.Time = points[rng.IntN(i)].Time // equal times
			}
			points[i] = p
		}
		r := Rules{}
		for r.Validate() != nil {
			r = Rules{
				Last: rng.IntN(4), Hourly: rng.IntN(3) * rng.IntN(30), Daily: rng.IntN(3) * rng.IntN(10),
				Weekly: rng.IntN(2) * rng.IntN(6), Monthly: rng.IntN(2) * rng.IntN(14), Yearly: rng.IntN(2) * rng.IntN(4),
			}
		}
		loc := locs[rng.IntN(len(locs))]
		got := Apply(points, r, now, loc)
		ref := reference(points, r, now, loc)
		if t.Failed() {
			break
		}
		t.Run(fmt.Sprint(c), func(t *testing.T) { same(t, got, ref) })
	}
}

func TestApplyAllocations(t *testing.T) {
	points := benchPoints(10000)
	allocs := testing.AllocsPerRun(5, func() {
		Apply(points, Rules{Last: 100, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 3}, now, cet)
	})
	if allocs > 20 {
		t.Errorf("Apply made %v allocations for 10k points, want a small constant", allocs)
	}
}

// reference is a slow, obviously correct Apply for valid rules: bucket
// names from time.Format, sets of seen buckets, a sort per group.
func reference(points []Point, r Rules, now time.Time, loc *time.Location) []Decision {
	if loc == nil {
		loc = time.UTC
	}
	groups := map[string][]int{}
	for i, p := range points {
		k := strings.Join([]string{p.Host, p.Kind, p.Policy}, "\x00")
		groups[k] = append(groups[k], i)
	}
	reasons := make([][]string, len(points))
	protected := func(p Point) bool { return p.Running || p.RetainUntil.After(now) }
	for _, idx := range groups {
		slices.SortStableFunc(idx, func(a, b int) int {
			pa, pb := points[a], points[b]
			if !pa.Time.Equal(pb.Time) {
				return pb.Time.Compare(pa.Time)
			}
			return strings.Compare(pb.ID, pa.ID)
		})
		var eligible []int
		for _, i := range idx {
			if !protected(points[i]) {
				eligible = append(eligible, i)
			}
		}
		for n, i := range eligible {
			if n < r.Last {
				reasons[i] = append(reasons[i], fmt.Sprintf("last %d", n+1))
			}
		}
		rules := []struct {
			name string
			n    int
			key  func(time.Time) string
		}{
			{"hourly", r.Hourly, func(t time.Time) string { return t.Format("2006-01-02 15h") }},
			{"daily", r.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
			{"weekly", r.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%04d-W%02d", y, w) }},
			{"monthly", r.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
			{"yearly", r.Yearly, func(t time.Time) string { return t.Format("2006") }},
		}
		for _, rule := range rules {
			seen := map[string]bool{}
			for _, i := range eligible {
				if len(seen) == rule.n {
					break
				}
				k := rule.key(points[i].Time.In(loc))
				if !seen[k] {
					seen[k] = true
					reasons[i] = append(reasons[i], rule.name+" "+k)
				}
			}
		}
		for _, i := range idx {
			p := points[i]
			if p.RetainUntil.After(now) {
				u := p.RetainUntil.In(loc)
				f := "2006-01-02 15:04:05"
				if u.Equal(time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, loc)) {
					f = "2006-01-02"
				}
				reasons[i] = append(reasons[i], "locked until "+u.Format(f))
			}
			if p.Running {
				reasons[i] = append(reasons[i], "running")
			}
		}
	}
	out := make([]Decision, len(points))
	for i, p := range points {
		out[i] = Decision{Point: p, Keep: len(reasons[i]) > 0, Reasons: reasons[i]}
	}
	return out
}
