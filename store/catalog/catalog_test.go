package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func openTest(t *testing.T) (*Catalog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	c, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, path
}

func cid(b ...byte) ChunkID {
	var id ChunkID
	copy(id[:], b)
	return id
}

func TestOpenSchema(t *testing.T) {
	ctx := context.Background()
	c, path := openTest(t)
	if c.Path() != path {
		t.Fatalf("Path = %q, want %q", c.Path(), path)
	}
	v, err := c.SchemaVersion(ctx)
	if err != nil || v != len(migrations) {
		t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, len(migrations))
	}
	for _, table := range []string{"packs", "chunks", "points"} {
		var n int
		if err := c.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?`, table).Scan(&n); err != nil || n != 1 {
			t.Fatalf("table %s: count %d, %v", table, n, err)
		}
	}
	if err := c.IntegrityCheck(ctx); err != nil {
		t.Fatalf("IntegrityCheck on a fresh catalog: %v", err)
	}
	// Put something in, then reopen twice: migrations must not run again.
	if err := c.AddPack(ctx, Pack{Name: "p1", Size: 10, Blobs: 1, Created: time.Unix(100, 0)}, []Blob{{ID: cid(1), Length: 10, RawLen: 20}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		c2, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i, err)
		}
		v, err := c2.SchemaVersion(ctx)
		if err != nil || v != len(migrations) {
			t.Fatalf("reopen %d: SchemaVersion = %d, %v", i, v, err)
		}
		if ok, err := c2.Has(ctx, cid(1)); err != nil || !ok {
			t.Fatalf("reopen %d: Has = %v, %v; data lost", i, ok, err)
		}
		if err := c2.IntegrityCheck(ctx); err != nil {
			t.Fatal(err)
		}
		c2.Close()
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		create bool // create the current schema first
	}{
		{"empty database", false},
		{"existing catalog", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if tt.create {
				c, err := Open(ctx, path)
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			db, err := sql.Open("sqlite3", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`PRAGMA user_version = 99`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			c, err := Open(ctx, path)
			if err == nil {
				c.Close()
				t.Fatal("Open accepted a catalog with schema version 99")
			}
			msg := err.Error()
			for _, want := range []string{"99", "newer", fmt.Sprint(len(migrations))} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			// The refused catalog must be left alone.
			db, _ = sql.Open("sqlite3", "file:"+path)
			defer db.Close()
			var v int
			if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != 99 {
				t.Fatalf("user_version after refused open = %d, %v", v, err)
			}
		})
	}
}

func TestPacksRoundTrip(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	t0 := time.Unix(1700000000, 123456789)
	p1 := Pack{Name: "pack-b", Size: 1000, Blobs: 3, Created: t0}
	b1 := []Blob{
		{ID: cid(3), Offset: 200, Length: 50, RawLen: 80, Type: 1, Flags: 2},
		{ID: cid(1), Offset: 0, Length: 100, RawLen: 100, Type: 0, Flags: 0x81},
		{ID: cid(2), Offset: 100, Length: 100, RawLen: 300, Type: 0, Flags: 1},
	}
	p2 := Pack{Name: "pack-a", Size: 500, Blobs: 2, Created: t0.Add(time.Second)}
	b2 := []Blob{
		{ID: cid(2), Offset: 0, Length: 7, RawLen: 7, Type: 2, Flags: 0}, // already in pack-b
		{ID: cid(4), Offset: 7, Length: 40, RawLen: 60, Type: 0, Flags: 1},
	}
	if err := c.AddPack(ctx, p1, b1); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPack(ctx, p2, b2); err != nil {
		t.Fatal(err)
	}
	// Re-adding pack-b (even with different blob data) changes nothing.
	if err := c.AddPack(ctx, Pack{Name: "pack-b", Size: 1, Blobs: 1, Created: t0}, []Blob{{ID: cid(1), Offset: 999}}); err != nil {
		t.Fatalf("re-add: %v", err)
	}
	if err := c.AddPack(ctx, p1, b1); err != nil {
		t.Fatalf("re-add identical: %v", err)
	}

	lookups := []struct {
		id   ChunkID
		want Location
	}{
		{cid(1), Location{Pack: "pack-b", Blob: b1[1]}},
		{cid(2), Location{Pack: "pack-b", Blob: b1[2]}}, // first location kept
		{cid(3), Location{Pack: "pack-b", Blob: b1[0]}},
		{cid(4), Location{Pack: "pack-a", Blob: b2[1]}},
	}
	for _, tt := range lookups {
		got, err := c.Lookup(ctx, tt.id)
		if err != nil {
			t.Fatalf("Lookup %x: %v", tt.id[:1], err)
		}
		if got != tt.want {
			t.Errorf("Lookup %x = %+v, want %+v", tt.id[:1], got, tt.want)
		}
		if ok, err := c.Has(ctx, tt.id); !ok || err != nil {
			t.Errorf("Has %x = %v, %v", tt.id[:1], ok, err)
		}
	}
	missing := cid(9, 9, 9)
	if _, err := c.Lookup(ctx, missing); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup missing: %v, want ErrNotFound", err)
	}
	if ok, err := c.Has(ctx, missing); ok || err != nil {
		t.Errorf("Has missing = %v, %v", ok, err)
	}

	packs, err := c.Packs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(packs) != 2 || packs[0].Name != "pack-a" || packs[1].Name != "pack-b" {
		t.Fatalf("Packs = %+v, want pack-a, pack-b", packs)
	}
	for i, want := range []Pack{p2, p1} {
		got := packs[i]
		if got.Size != want.Size || got.Blobs != want.Blobs || !got.Created.Equal(want.Created) {
			t.Errorf("Packs[%d] = %+v, want %+v", i, got, want)
		}
	}

	pbTests := []struct {
		pack string
		want []Blob
	}{
		{"pack-b", []Blob{b1[1], b1[2], b1[0]}}, // offset order
		{"pack-a", []Blob{b2[1]}},               // its duplicate of chunk 2 is not indexed here
		{"no-such-pack", nil},
	}
	for _, tt := range pbTests {
		got, err := c.PackBlobs(ctx, tt.pack)
		if err != nil {
			t.Fatalf("PackBlobs %s: %v", tt.pack, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("PackBlobs %s =\n %+v\nwant\n %+v", tt.pack, got, tt.want)
		}
	}

	st, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Packs: 2, Chunks: 4, PackBytes: 1500, RawBytes: 100 + 300 + 80 + 60, Stored: 100 + 100 + 50 + 40}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
	if err := c.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestStatsEmpty(t *testing.T) {
	c, _ := openTest(t)
	st, err := c.Stats(context.Background())
	if err != nil || st != (Stats{}) {
		t.Fatalf("Stats of an empty catalog = %+v, %v", st, err)
	}
	packs, err := c.Packs(context.Background())
	if err != nil || len(packs) != 0 {
		t.Fatalf("Packs of an empty catalog = %+v, %v", packs, err)
	}
}

func mkPoint(id, host, kind, status string, finished int64) Point {
	return Point{
		ID: id, Kind: kind, Host: host, Chain: id, Type: "full", Status: status,
		Started: time.Unix(finished-10, 0), Finished: time.Unix(finished, 0),
		Files: 3, Bytes: 300, NewBytes: 200, StoredBytes: 100, Doc: []byte(`{"id":"` + id + `"}`),
	}
}

func ids(ps []Point) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

func TestPoints(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	pts := []Point{
		mkPoint("aaaa1111", "h1", "file", "complete", 300),
		mkPoint("aaaa2222", "h1", "file", "complete", 100),
		mkPoint("bbbb0000", "h2", "file", "complete", 200),
		mkPoint("cccc0000", "h1", "image", "complete", 400),
		mkPoint("dddd0000", "h1", "file", "failed", 500),
		mkPoint("ab_d0000", "h2", "image", "complete", 50),
		mkPoint("ab%d0000", "h2", "image", "complete", 60),
		mkPoint("eeee0000", "h3", "file", "complete", 70),
		mkPoint("eeee0001", "h3", "file", "complete", 70), // same finished: ordered by id
	}
	pts[1].Parent, pts[1].Type, pts[1].Chain = "x", "incremental", "chainx"
	for _, p := range pts {
		if err := c.AddPoint(ctx, p); err != nil {
			t.Fatalf("AddPoint %s: %v", p.ID, err)
		}
	}
	// Re-adding an existing ID is a no-op.
	dup := mkPoint("aaaa1111", "other", "file", "complete", 1)
	if err := c.AddPoint(ctx, dup); err != nil {
		t.Fatalf("re-AddPoint: %v", err)
	}

	listTests := []struct {
		f    PointFilter
		want []string
	}{
		{PointFilter{}, []string{"ab_d0000", "ab%d0000", "eeee0000", "eeee0001", "aaaa2222", "bbbb0000", "aaaa1111", "cccc0000", "dddd0000"}},
		{PointFilter{Host: "h1"}, []string{"aaaa2222", "aaaa1111", "cccc0000", "dddd0000"}},
		{PointFilter{Kind: "image"}, []string{"ab_d0000", "ab%d0000", "cccc0000"}},
		{PointFilter{Host: "h1", Kind: "file"}, []string{"aaaa2222", "aaaa1111", "dddd0000"}},
		{PointFilter{Host: "nobody"}, nil},
	}
	for _, tt := range listTests {
		got, err := c.Points(ctx, tt.f)
		if err != nil {
			t.Fatalf("Points %+v: %v", tt.f, err)
		}
		if fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) {
			t.Errorf("Points %+v = %v, want %v", tt.f, ids(got), tt.want)
		}
	}

	// Full round trip of one row.
	got, err := c.Point(ctx, "aaaa2222")
	if err != nil {
		t.Fatal(err)
	}
	w := pts[1]
	if got.ID != w.ID || got.Kind != w.Kind || got.Host != w.Host || got.Chain != w.Chain || got.Parent != w.Parent ||
		got.Type != w.Type || got.Status != w.Status || !got.Started.Equal(w.Started) || !got.Finished.Equal(w.Finished) ||
		got.Files != w.Files || got.Bytes != w.Bytes || got.NewBytes != w.NewBytes || got.StoredBytes != w.StoredBytes ||
		string(got.Doc) != string(w.Doc) {
		t.Errorf("Point round trip:\n got %+v\nwant %+v", got, w)
	}
	if got.VerifyStatus != "pending" || !got.VerifiedAt.IsZero() {
		t.Errorf("new point: verify status %q at %v, want pending at zero", got.VerifyStatus, got.VerifiedAt)
	}
	if got, _ := c.Point(ctx, "aaaa1111"); got.Host != "h1" {
		t.Errorf("re-AddPoint overwrote the row: host %q", got.Host)
	}

	findTests := []struct {
		in      string
		want    string
		wantErr error
	}{
		{"aaaa1111", "aaaa1111", nil}, // full ID
		{"aaaa1", "aaaa1111", nil},    // unique prefix
		{"bbbb", "bbbb0000", nil},     // 4 characters is enough
		{"bbb", "", ErrNotFound},      // too short even though unique
		{"aaaa", "", ErrAmbiguous},
		{"eeee000", "", ErrAmbiguous},
		{"eeee0001", "eeee0001", nil},
		{"zzzz", "", ErrNotFound},
		{"", "", ErrNotFound},
		{"aaaa11111", "", ErrNotFound}, // longer than any ID
		{"ab_d", "ab_d0000", nil},      // a plain prefix, '_' is no wildcard
		{"ab%d", "ab%d0000", nil},      // a plain prefix, '%' is no wildcard
		{"aa%", "", ErrNotFound},
		{"aaa_", "", ErrNotFound}, // would match aaaa1111 and aaaa2222 as a LIKE pattern
		{"ab_d0000", "ab_d0000", nil},
		{"ab%d0000", "ab%d0000", nil},
	}
	for _, tt := range findTests {
		got, err := c.Point(ctx, tt.in)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("Point(%q) = %q, %v; want %v", tt.in, got.ID, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tt.want {
			t.Errorf("Point(%q) = %q, %v; want %q", tt.in, got.ID, err, tt.want)
		}
	}

	latestTests := []struct {
		host, kind string
		want       string
		wantErr    error
	}{
		{"h1", "file", "aaaa1111", nil}, // dddd0000 is newer but failed
		{"h1", "image", "cccc0000", nil},
		{"h2", "image", "ab%d0000", nil},
		{"h3", "file", "eeee0001", nil}, // tie on finished: highest id
		{"h2", "nothing", "", ErrNotFound},
		{"nobody", "file", "", ErrNotFound},
	}
	for _, tt := range latestTests {
		got, err := c.LatestPoint(ctx, tt.host, tt.kind)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("LatestPoint(%s, %s) = %q, %v; want %v", tt.host, tt.kind, got.ID, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tt.want {
			t.Errorf("LatestPoint(%s, %s) = %q, %v; want %q", tt.host, tt.kind, got.ID, err, tt.want)
		}
	}

	at := time.Unix(1800000000, 42)
	if err := c.SetVerifyStatus(ctx, "bbbb0000", "passed", at); err != nil {
		t.Fatal(err)
	}
	got, err = c.Point(ctx, "bbbb0000")
	if err != nil || got.VerifyStatus != "passed" || !got.VerifiedAt.Equal(at) {
		t.Fatalf("after SetVerifyStatus: %q at %v, %v", got.VerifyStatus, got.VerifiedAt, err)
	}
	if err := c.SetVerifyStatus(ctx, "bbbb0000", "failed", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ps, _ := c.Points(ctx, PointFilter{Host: "h2", Kind: "file"})
	if len(ps) != 1 || ps[0].VerifyStatus != "failed" || !ps[0].VerifiedAt.Equal(at.Add(time.Hour)) {
		t.Fatalf("Points after second SetVerifyStatus: %+v", ps)
	}
	if other, _ := c.Point(ctx, "aaaa1111"); other.VerifyStatus != "pending" {
		t.Errorf("SetVerifyStatus touched another point: %q", other.VerifyStatus)
	}
	if err := c.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAddPointKeepsGivenVerifyStatus(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	p := mkPoint("ffff0000", "h", "file", "complete", 10)
	p.VerifyStatus, p.VerifiedAt = "passed", time.Unix(20, 0)
	if err := c.AddPoint(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := c.Point(ctx, "ffff")
	if err != nil || got.VerifyStatus != "passed" || !got.VerifiedAt.Equal(p.VerifiedAt) {
		t.Fatalf("got %q at %v, %v", got.VerifyStatus, got.VerifiedAt, err)
	}
}

// TestConcurrentLookup runs readers against a writer; run with -race.
func TestConcurrentLookup(t *testing.T) {
	ctx := context.Background()
	c, _ := openTest(t)
	const packs, perPack = 40, 25
	blobsOf := func(p int) []Blob {
		bs := make([]Blob, perPack)
		for i := range bs {
			bs[i] = Blob{ID: cid(byte(p), byte(i), 0xee), Offset: int64(i * 10), Length: 10, RawLen: int64(p*1000 + i)}
		}
		return bs
	}
	var written atomic.Int64 // packs fully committed
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for p := 0; p < packs; p++ {
			if err := c.AddPack(ctx, Pack{Name: fmt.Sprintf("pack-%03d", p), Size: perPack * 10, Blobs: perPack, Created: time.Unix(int64(p), 0)}, blobsOf(p)); err != nil {
				errc <- err
				return
			}
			written.Store(int64(p + 1))
		}
	}()
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			for iter := 0; iter < 400; iter++ {
				done := int(written.Load())
				p := (iter*7 + r) % packs
				i := (iter + r) % perPack
				l, err := c.Lookup(ctx, cid(byte(p), byte(i), 0xee))
				switch {
				case p < done && err != nil:
					errc <- fmt.Errorf("reader %d: committed chunk %d/%d: %v", r, p, i, err)
					return
				case err != nil && !errors.Is(err, ErrNotFound):
					errc <- fmt.Errorf("reader %d: %v", r, err)
					return
				case err == nil && (l.Pack != fmt.Sprintf("pack-%03d", p) || l.RawLen != int64(p*1000+i)):
					errc <- fmt.Errorf("reader %d: chunk %d/%d at %+v", r, p, i, l)
					return
				}
			}
		}(r)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.Packs != packs || st.Chunks != packs*perPack {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if err := c.IntegrityCheck(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClosedCatalogErrors(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	c, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := c.Lookup(ctx, cid(1)); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Lookup on a closed catalog: %v, want a non-NotFound error", err)
	}
	if ok, err := c.Has(ctx, cid(1)); ok || err == nil {
		t.Errorf("Has on a closed catalog = %v, %v; want an error", ok, err)
	}
}
