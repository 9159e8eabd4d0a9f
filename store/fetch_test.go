package store

import (
	"fmt"
	"strings"
	"testing"

	"bes/store/catalog"
)

func TestReadUnits(t *testing.T) {
	byPack := map[string][]catalog.Location{}
	for _, off := range []int64{30 << 20, 0, 1 << 20, 9 << 20, 10 << 20} {
		l := catalog.Location{Pack: "b"}
		l.Offset, l.Length = off, 1<<20
		byPack["b"] = append(byPack["b"], l)
	}
	a := catalog.Location{Pack: "a"}
	a.Length = 100
	byPack["a"] = []catalog.Location{a}
	units := readUnits(byPack, 8<<20)
	var got []string
	n := 0
	for _, u := range units {
		s := u[0].Pack + ":"
		for _, l := range u {
			s += fmt.Sprint(l.Offset>>20, ",")
			n++
		}
		got = append(got, s)
	}
	if want := "a:0,|b:0,1,|b:9,10,|b:30,"; strings.Join(got, "|") != want {
		t.Fatalf("units %q, want %q", strings.Join(got, "|"), want)
	}
	if n != 6 {
		t.Fatalf("%d blobs in units, want 6", n)
	}
}
