package retention

import (
	"fmt"
	"testing"
	"time"
)

// benchPoints returns n points: 10 hosts, one point an hour each, ending
// at now, in host-interleaved order.
func benchPoints(n int) []Point {
	points := make([]Point, n)
	for i := range points {
		points[i] = Point{
			ID:     fmt.Sprintf("pt-%06d", i),
			Time:   now.Add(-time.Duration(i/10) * time.Hour),
			Host:   fmt.Sprintf("host-%d", i%10),
			Kind:   "file",
			Policy: "daily",
		}
	}
	return points
}

// BenchmarkApply judges 100k points (10 groups of 10k hourly points,
// about 14 months each).
func BenchmarkApply(b *testing.B) {
	points := benchPoints(100_000)
	rules := Rules{Last: 10, Hourly: 24, Daily: 7, Weekly: 4, Monthly: 12, Yearly: 2}
	b.ReportAllocs()
	for b.Loop() {
		Apply(points, rules, now, cet)
	}
}

// BenchmarkApplyManyKept keeps every point (keep-last 10000 in each group),
// the worst case for explaining.
func BenchmarkApplyManyKept(b *testing.B) {
	points := benchPoints(100_000)
	rules := Rules{Last: 10000}
	b.ReportAllocs()
	for b.Loop() {
		Apply(points, rules, now, cet)
	}
}
