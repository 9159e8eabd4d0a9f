package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"bes/store/s3store/s3test"
)

// The tests below run against a real versitygw process (see s3test). Its
// first build takes minutes: run with go test -timeout 20m.

func openStore(t *testing.T, srv *s3test.Server, bucket, prefix string, o Options) *Store {
	t.Helper()
	loc, err := ParseURL(srv.URL(bucket, prefix))
	if err != nil {
		t.Fatal(err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	s, err := Open(context.Background(), loc, serverCreds(srv), o)
	if err != nil {
		t.Fatalf("Open(%s): %v", loc, err)
	}
	return s
}

func serverCreds(srv *s3test.Server) Credentials {
	return Credentials{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Region: srv.Region}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func packName(i int) string { return fmt.Sprintf("%032x", uint64(i)*0x9e3779b97f4a7c15) }

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x5555))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeUneven writes data through w in irregular pieces.
func writeUneven(t *testing.T, w *Writer, data []byte) {
	t.Helper()
	sizes := []int{1, 7, 4093, 65537, 1<<20 + 3, 3<<20 - 1, 5 << 20, 17}
	for i := 0; len(data) > 0; i++ {
		k := min(sizes[i%len(sizes)], len(data))
		n, err := w.Write(data[:k])
		if err != nil || n != k {
			t.Fatalf("Write(%d bytes) = %d, %v", k, n, err)
		}
		data = data[k:]
	}
}

func putPack(t *testing.T, s *Store, name string, data []byte) {
	t.Helper()
	w, err := s.NewWriter(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	writeUneven(t, w, data)
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit %s: %v", name, err)
	}
}

func listAll(t *testing.T, s *Store) []string {
	t.Helper()
	var names []string
	if err := s.List(context.Background(), func(n string) error { names = append(names, n); return nil }); err != nil {
		t.Fatalf("List: %v", err)
	}
	return names
}

func incompleteUploads(t *testing.T, s *Store) []string {
	t.Helper()
	var keys []string
	for u := range s.core.ListIncompleteUploads(context.Background(), s.loc.Bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("ListIncompleteUploads: %v", u.Err)
		}
		keys = append(keys, u.Key+" "+u.UploadID)
	}
	return keys
}

func TestPackRoundTrip(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s := openStore(t, srv, "bes-test", "site1/repo", Options{Create: true})
	const size = 40 << 20 // three 16 MiB parts: 16 + 16 + 8
	data := randomBytes(1, size)
	big := packName(1)

	w, err := s.NewWriter(ctx, big)
	if err != nil {
		t.Fatal(err)
	}
	writeUneven(t, w, data)
	if w.Len() != size {
		t.Fatalf("Len = %d, want %d", w.Len(), size)
	}
	if got := listAll(t, s); len(got) != 0 {
		t.Errorf("uncommitted pack listed: %v", got)
	}
	if _, err := s.Size(ctx, big); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size before Commit: %v, want fs.ErrNotExist", err)
	}
	if len(incompleteUploads(t, s)) != 1 {
		t.Errorf("want one multipart upload in progress, have %v", incompleteUploads(t, s))
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrWriterClosed) {
		t.Errorf("Write after Commit: %v", err)
	}
	if got := incompleteUploads(t, s); len(got) != 0 {
		t.Errorf("incomplete uploads after Commit: %v", got)
	}
	if n, err := s.Size(ctx, big); err != nil || n != size {
		t.Fatalf("Size = %d, %v; want %d", n, err, size)
	}
	// The object lives where the layout says.
	if _, err := s.core.StatObject(ctx, "bes-test", "site1/repo/packs/"+big[:2]+"/"+big, minio.StatObjectOptions{}); err != nil {
		t.Errorf("pack not at the documented key: %v", err)
	}
	checkReads(t, s, big, data)

	// A pack of exactly one part goes as a single PUT; an empty pack works.
	exact := randomBytes(2, DefaultPartSize)
	putPack(t, s, packName(2), exact)
	checkReads(t, s, packName(2), exact)
	putPack(t, s, packName(3), nil)
	if n, err := s.ReadAt(ctx, packName(3), make([]byte, 1), 0); n != 0 || err != io.EOF {
		t.Errorf("ReadAt of empty pack = %d, %v; want 0, EOF", n, err)
	}

	checkListAndRemove(t, srv, s)
}

// checkReads compares many ranges of pack name with want.
func checkReads(t *testing.T, s *Store, name string, want []byte) {
	t.Helper()
	ctx := context.Background()
	size := int64(len(want))
	ps := int64(DefaultPartSize)
	cases := [][2]int64{ // offset, length
		{0, 1}, {0, 4096}, {1, 100}, {ps - 1, 1}, {ps - 3, 10}, {ps, 1},
		{2*ps - 5, 100}, {size - 10, 10}, {size - 10, 20}, {size - 1, 1},
		{size, 1}, {size + 100, 10}, {0, size}, {0, size + 7}, {ps / 2, ps + 1},
	}
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for range 40 {
		off := r.Int64N(size + 2)
		cases = append(cases, [2]int64{off, 1 + r.Int64N(3<<20)})
	}
	for _, c := range cases {
		off, n := c[0], c[1]
		if off < 0 {
			continue
		}
		p := make([]byte, n)
		got, err := s.ReadAt(ctx, name, p, off)
		wantN := max(0, min(n, size-off))
		if int64(got) != wantN {
			t.Errorf("ReadAt(off %d, len %d) = %d bytes, %v; want %d", off, n, got, err, wantN)
			continue
		}
		if wantN < n && err != io.EOF {
			t.Errorf("ReadAt(off %d, len %d) short read with err %v, want io.EOF", off, n, err)
		}
		if wantN == n && err != nil && err != io.EOF {
			t.Errorf("ReadAt(off %d, len %d): %v", off, n, err)
		}
		if wantN > 0 && !bytes.Equal(p[:got], want[off:off+wantN]) {
			t.Errorf("ReadAt(off %d, len %d): wrong data", off, n)
		}
	}
	if _, err := s.ReadAt(ctx, name, make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	if n, err := s.ReadAt(ctx, name, nil, 5); n != 0 || err != nil {
		t.Errorf("empty ReadAt = %d, %v", n, err)
	}
}

func checkListAndRemove(t *testing.T, srv *s3test.Server, s *Store) {
	t.Helper()
	ctx := context.Background()
	// More small packs, written in an order unrelated to their names.
	var want []string
	for i := 1; i <= 12; i++ {
		want = append(want, packName(i))
		if i > 3 {
			putPack(t, s, packName(i), []byte(packName(i)))
		}
	}
	slices.Sort(want)
	if got := listAll(t, s); !slices.Equal(got, want) {
		t.Fatalf("List = %v\nwant %v", got, want)
	}
	// A store with another prefix in the same bucket sees none of them.
	other := openStore(t, srv, "bes-test", "site2", Options{})
	if got := listAll(t, other); len(got) != 0 {
		t.Errorf("other prefix lists %v", got)
	}
	// List stops at the callback's error and returns it.
	stop := errors.New("stop")
	calls := 0
	if err := s.List(ctx, func(string) error { calls++; return stop }); err != stop || calls != 1 {
		t.Errorf("List with failing callback: %v after %d calls", err, calls)
	}

	big := packName(1)
	if err := s.Remove(ctx, big); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := s.Remove(ctx, big); err != nil {
		t.Errorf("Remove of absent pack: %v", err)
	}
	if _, err := s.Size(ctx, big); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Size after Remove: %v", err)
	}
	_, err := s.ReadAt(ctx, big, make([]byte, 10), 0)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), big) {
		t.Errorf("ReadAt after Remove: %v, want fs.ErrNotExist naming the pack", err)
	}
	want = slices.DeleteFunc(want, func(n string) bool { return n == big })
	if got := listAll(t, s); !slices.Equal(got, want) {
		t.Errorf("List after Remove = %v, want %v", got, want)
	}
}
