package usedmap

import (
	mrand "math/rand/v2"
	"slices"
	"testing"
)

func TestSetRuns(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for iter := range 2000 {
		nbits := rng.IntN(300)
		bm := make([]byte, (nbits+7)/8+rng.IntN(3))
		density := rng.Float64()
		for i := range len(bm) * 8 {
			if rng.Float64() < density {
				bm[i/8] |= 1 << (i % 8)
			}
		}
		var want, got []Extent
		for i := range nbits {
			if bm[i/8]&(1<<(i%8)) != 0 {
				want = appendRun(want, int64(i), 1)
			}
		}
		setRuns(bm, nbits, func(s, n int) {
			if len(got) > 0 && int64(s) <= got[len(got)-1].End() {
				t.Fatalf("iter %d: run %d+%d touches the previous %+v", iter, s, n, got[len(got)-1])
			}
			got = append(got, Extent{int64(s), int64(n)})
		})
		if !slices.Equal(want, got) {
			t.Fatalf("iter %d (nbits %d): runs %v, want %v", iter, nbits, got, want)
		}
	}
}

func TestExtentOps(t *testing.T) {
	a := normalize([]Extent{{10, 5}, {0, 2}, {2, 3}, {12, 1}, {30, 0}, {20, 5}})
	if want := []Extent{{0, 5}, {10, 5}, {20, 5}}; !slices.Equal(a, want) {
		t.Fatalf("normalize: %v, want %v", a, want)
	}
	u := union(a, []Extent{{5, 5}, {17, 2}, {24, 10}})
	if want := []Extent{{0, 15}, {17, 2}, {20, 14}}; !slices.Equal(u, want) {
		t.Fatalf("union: %v, want %v", u, want)
	}
	s := scale([]Extent{{0, 1}, {2, 3}, {9, 4}}, 512, 5000)
	if want := []Extent{{0, 512}, {1024, 1536}, {4608, 392}}; !slices.Equal(s, want) {
		t.Fatalf("scale: %v, want %v", s, want)
	}
	c := toUnits([]Extent{{1, 2}, {3, 1}, {17, 1}, {31, 2}}, 16)
	if want := []Extent{{0, 3}}; !slices.Equal(c, want) {
		t.Fatalf("toUnits: %v, want %v", c, want)
	}
}
