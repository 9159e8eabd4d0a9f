package store

import (
	"context"
	"crypto/rand"
	"testing"

	"bes/store/crypt"
)

func TestIDFilter(t *testing.T) {
	f := newIDFilter(1000)
	var in []crypt.ID
	for range 5000 {
		var id crypt.ID
		rand.Read(id[:])
		f.add(&id)
		in = append(in, id)
	}
	for _, id := range in {
		if !f.mayHave(&id) {
			t.Fatal("false negative")
		}
	}
	fp := 0
	for range 100000 {
		var id crypt.ID
		rand.Read(id[:])
		if f.mayHave(&id) {
			fp++
		}
	}
	if fp > 10 {
		t.Errorf("%d false positives in 100000", fp)
	}
}

// A saver that builds its filter part-way through still deduplicates
// everything the repository already holds and everything it saved itself.
func TestSaverFilterDedup(t *testing.T) {
	r := testRepo(t, 2, 1)
	ctx := context.Background()
	chunk := func(i int) []byte { b := make([]byte, 1000); b[0], b[1] = byte(i), byte(i>>8); b[2] = 1; return b }
	s1, _ := r.NewSaver(SaverOptions{})
	for i := range 100 {
		if _, isNew, err := s1.Save(ctx, 1, chunk(i)); err != nil || !isNew {
			t.Fatalf("first save %d: new=%v %v", i, isNew, err)
		}
	}
	if err := s1.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s2, _ := r.NewSaver(SaverOptions{})
	for i := range 300 { // 0..99 stored before, 100..299 new, then all again
		if _, isNew, err := s2.Save(ctx, 1, chunk(i)); err != nil || isNew != (i >= 100) {
			t.Fatalf("second save %d: new=%v %v", i, isNew, err)
		}
	}
	if s2.filter == nil {
		t.Fatal("no filter after 200 new chunks")
	}
	for i := range 300 {
		if _, isNew, err := s2.Save(ctx, 1, chunk(i)); err != nil || isNew {
			t.Fatalf("third save %d: new=%v %v", i, isNew, err)
		}
	}
	if err := s2.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}
