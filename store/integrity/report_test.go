package integrity

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden and testdata/report.golden.sig")

// testKey is a fixed key, so signatures are reproducible.
func testKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

func otherKey() ed25519.PrivateKey {
	seed := bytes.Repeat([]byte{0xa5}, ed25519.SeedSize)
	return ed25519.NewKeyFromSeed(seed)
}

// fixedReport is a report using every field, with points out of order and
// times in a non-UTC zone.
func fixedReport() *Report {
	cet := time.FixedZone("CET", 3600)
	return &Report{
		Repository: "repo-7f3a9c",
		Appliance:  "bes-01.example.net",
		Generated:  time.Date(2025, 3, 14, 12, 0, 0, 500, cet),
		Since:      time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC),
		Points: []PointResult{
			{ID: "p-0003", Host: "db1", Kind: "image", Type: "incremental",
				Time: time.Date(2025, 3, 13, 2, 0, 0, 0, time.UTC), Result: ResultPending},
			{ID: "p-0002", Host: "web1", Kind: "file", Type: "full",
				Time:       time.Date(2025, 3, 12, 2, 0, 0, 0, time.UTC),
				VerifiedAt: time.Date(2025, 3, 14, 3, 30, 0, 0, cet), Mode: ModeReadData,
				Result: ResultFailed, ChunksChecked: 9120,
				Damage: []string{"etc/passwd: chunk 3f2a9c01d4e5b6a7: authentication failed", "var/log/<x>&\"q\"\n: missing"}},
			{ID: "p-0001", Host: "web1", Kind: "file", Type: "full",
				Time:       time.Date(2025, 3, 12, 2, 0, 0, 0, time.UTC),
				VerifiedAt: time.Date(2025, 3, 14, 3, 0, 0, 0, time.UTC), Mode: ModeSample,
				Result: ResultPassed, ChunksChecked: 1200},
			{ID: "p-0004", Host: "db1", Kind: "image", Type: "full",
				Time:       time.Date(2025, 3, 2, 2, 0, 0, 0, time.UTC),
				VerifiedAt: time.Date(2025, 3, 3, 3, 0, 0, 0, time.UTC), Mode: ModeIndex,
				Result: ResultPartial, ChunksChecked: 7},
		},
	}
}

func TestGolden(t *testing.T) {
	rep, sig, err := Sign(fixedReport(), testKey())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []struct {
		file string
		got  []byte
	}{{"report.golden", rep}, {"report.golden.sig", sig}} {
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to create it)", err)
		}
		if !bytes.Equal(g.got, want) {
			t.Errorf("%s differs (run go test -update if the change is intended):\n got:\n%s\nwant:\n%s", path, g.got, want)
		}
	}
}

// The stored fixture verifies, so it can serve third parties as a test vector.
func TestGoldenVerifies(t *testing.T) {
	rep, err := os.ReadFile(filepath.Join("testdata", "report.golden"))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(filepath.Join("testdata", SignatureFile("report.golden")))
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(rep, sig, testKey().Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	want := fixedReport()
	want.Format, want.KeyID = ReportFormat, KeyID(testKey().Public().(ed25519.PublicKey))
	want.Finalize()
	if !reflect.DeepEqual(v.Report, want) {
		t.Errorf("decoded golden report\n got %+v\nwant %+v", v.Report, want)
	}
}

func TestFinalize(t *testing.T) {
	r := fixedReport()
	r.Finalize()
	var ids []string
	for _, p := range r.Points {
		ids = append(ids, p.ID)
		if p.Time.Location() != time.UTC || p.VerifiedAt.Location() != time.UTC {
			t.Errorf("point %s: times not in UTC", p.ID)
		}
	}
	if got := strings.Join(ids, ","); got != "p-0004,p-0001,p-0002,p-0003" {
		t.Errorf("order %s", got)
	}
	want := Summary{Points: 4, Passed: 1, Failed: 1, Partial: 1, Pending: 1, ChunksChecked: 9120 + 1200 + 7}
	if r.Summary != want {
		t.Errorf("summary %+v, want %+v", r.Summary, want)
	}
	if r.Generated.Location() != time.UTC {
		t.Error("generated not in UTC")
	}

	var empty Report
	empty.Finalize()
	if empty.Points == nil || empty.Summary != (Summary{}) {
		t.Errorf("empty report: %+v", empty)
	}
}

// Zero times are omitted from the JSON and come back zero.
func TestZeroTimesOmitted(t *testing.T) {
	r := fixedReport()
	r.Since = time.Time{}
	rep, sig, err := Sign(r, testKey())
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rep, []byte(`"since"`)) || bytes.Contains(rep, []byte("0001-01-01")) {
		t.Errorf("zero time encoded:\n%s", rep)
	}
	if n := bytes.Count(rep, []byte(`"verified_at"`)); n != 3 {
		t.Errorf("%d verified_at members, want 3 (one point never verified)", n)
	}
	v, err := Verify(rep, sig, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Report.Since.IsZero() || !v.Report.Points[3].VerifiedAt.IsZero() {
		t.Errorf("zero times did not round-trip: %+v", v.Report)
	}
}

func TestSignRejectsInvalidReport(t *testing.T) {
	for name, mutate := range map[string]func(*Report){
		"wrong format":     func(r *Report) { r.Format = "bes-integrity-report/2" },
		"no repository":    func(r *Report) { r.Repository = "" },
		"no appliance":     func(r *Report) { r.Appliance = "" },
		"no generated":     func(r *Report) { r.Generated = time.Time{} },
		"empty id":         func(r *Report) { r.Points[0].ID = "" },
		"duplicate id":     func(r *Report) { r.Points[1].ID = r.Points[0].ID },
		"unknown result":   func(r *Report) { r.Points[0].Result = "ok" },
		"empty result":     func(r *Report) { r.Points[0].Result = "" },
		"unknown mode":     func(r *Report) { r.Points[0].Mode = "full" },
		"negative chunks":  func(r *Report) { r.Points[0].ChunksChecked = -1 },
		"unencodable time": func(r *Report) { r.Generated = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		r := fixedReport()
		mutate(r)
		if _, _, err := Sign(r, testKey()); err == nil {
			t.Errorf("%s: Sign accepted the report", name)
		}
	}
}

func TestSignRejectsBadKey(t *testing.T) {
	bad := bytes.Clone(testKey())
	bad[40] ^= 1 // public half no longer matches the seed
	for name, k := range map[string]ed25519.PrivateKey{"nil": nil, "short": testKey()[:63], "inconsistent": bad} {
		if _, _, err := Sign(fixedReport(), k); err == nil {
			t.Errorf("%s key accepted", name)
		}
	}
}

func TestSignIsDeterministic(t *testing.T) {
	a, as, err := Sign(fixedReport(), testKey())
	if err != nil {
		t.Fatal(err)
	}
	b, bs, err := Sign(fixedReport(), testKey())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || !bytes.Equal(as, bs) {
		t.Error("two signings of one report differ")
	}
}
