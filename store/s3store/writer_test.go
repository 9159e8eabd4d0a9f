package s3store

import (
	"context"
	"errors"
	"io/fs"
	"testing"

	"bes/store/s3store/s3test"
)

func TestWriterAbort(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s := openStore(t, srv, "bes-abort", "", Options{Create: true, PartSize: MinPartSize})
	name := packName(7)

	w, err := s.NewWriter(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	writeUneven(t, w, randomBytes(7, 23<<20)) // four 5 MiB parts uploaded or in flight
	if got := incompleteUploads(t, s); len(got) != 1 {
		t.Fatalf("want one multipart upload before Abort, have %v", got)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("second Abort: %v", err)
	}
	if got := incompleteUploads(t, s); len(got) != 0 {
		t.Errorf("incomplete uploads after Abort: %v", got)
	}
	if _, err := s.Size(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size after Abort: %v, want fs.ErrNotExist", err)
	}
	if got := listAll(t, s); len(got) != 0 {
		t.Errorf("List after Abort: %v", got)
	}
	if err := w.Commit(); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Commit after Abort: %v, want ErrWriterClosed", err)
	}
	if _, err := w.Write([]byte{1}); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Write after Abort: %v, want ErrWriterClosed", err)
	}

	// A small pack never starts a multipart upload; aborting it leaves nothing.
	w, err = s.NewWriter(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("small")); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Size(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size after small Abort: %v", err)
	}
}

// A cancelled context makes Commit fail, and the clean-up still removes the
// multipart upload.
func TestWriterCancelledCommit(t *testing.T) {
	srv := s3test.Start(t)
	s := openStore(t, srv, "bes-cancel", "p", Options{Create: true, PartSize: MinPartSize})
	ctx, cancel := context.WithCancel(context.Background())
	name := packName(8)
	w, err := s.NewWriter(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	writeUneven(t, w, randomBytes(8, 12<<20))
	cancel()
	if err := w.Commit(); err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with cancelled context: %v, want context.Canceled", err)
	}
	if got := incompleteUploads(t, s); len(got) != 0 {
		t.Errorf("incomplete uploads after failed Commit: %v", got)
	}
	if _, err := s.Size(context.Background(), name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size after failed Commit: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after failed Commit: %v", err)
	}
}
