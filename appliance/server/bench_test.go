package server

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bes/appliance/auth"
	"bes/appliance/model"
	"bes/store"
	"bes/store/crypt"
)

// The scale: 10,000 protected objects, 1,000 policies and
// 1,000,000 job runs (BES_BENCH_JOBS overrides the last).
type benchEnv struct {
	srv   *httptest.Server
	token string
}

var (
	benchOnce sync.Once
	bench     *benchEnv
	benchErr  error
)

func setupBench(b *testing.B) *benchEnv {
	benchOnce.Do(func() {
		ctx := context.Background()
		dir, err := os.MkdirTemp("", "bes-api-bench-")
		if err != nil {
			benchErr = err
			return
		}
		repo, err := store.Init(ctx, store.InitOptions{Dir: filepath.Join(dir, "repo"), K: 1, M: 1, KEK: crypt.Passphrase([]byte("pw"))})
		if err != nil {
			benchErr = err
			return
		}
		acc, _ := auth.Open(ctx, filepath.Join(dir, "appliance.db"))
		md, err := model.Open(ctx, filepath.Join(dir, "appliance.db"), filepath.Join(dir, "model.key"))
		if err != nil {
			benchErr = err
			return
		}
		u, _ := acc.AddUser(ctx, "bench", "admin", "bench-password-1", false)
		tok, _, _ := acc.NewToken(ctx, u.ID, "bench", 0)
		tg := &model.StorageTarget{Name: "t", Type: "local", Config: map[string]string{"path": dir}}
		md.PutTarget(ctx, tg)
		nJobs := 1000000
		if v, err := strconv.Atoi(os.Getenv("BES_BENCH_JOBS")); err == nil && v > 0 {
			nJobs = v
		}
		start := time.Now()
		for p := 1; p <= 1000; p++ {
			pol := &model.Policy{Name: fmt.Sprintf("policy-%04d", p), TargetID: tg.ID, BackupType: "file", FullSchedule: "0 2 * * 0", IncrementalSchedule: "0 2 * * 1-6"}
			if err := md.PutPolicy(ctx, pol); err != nil {
				benchErr = err
				return
			}
			for h := 0; h < 10; h++ {
				md.Assign(ctx, &model.Assignment{PolicyID: pol.ID, Host: fmt.Sprintf("host-%05d", (p-1)*10+h), Paths: []string{"/srv"}})
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		t0 := time.Now().Add(-365 * 24 * time.Hour)
		const batch = 50000
		for done := 0; done < nJobs; done += batch {
			js := make([]model.Job, 0, batch)
			for i := done; i < min(nJobs, done+batch); i++ {
				pid := int64(1 + rng.IntN(1000))
				st := model.StatusSuccess
				if rng.IntN(20) == 0 {
					st = model.StatusFailed
				}
				at := t0.Add(time.Duration(i) * 31 * time.Second)
				js = append(js, model.Job{Kind: model.JobBackup, Mode: "incremental", PolicyID: pid, Host: fmt.Sprintf("host-%05d", (pid-1)*10+int64(rng.IntN(10))),
					Priority: model.PriorityNormal, Status: st, Trigger: "schedule", Attempt: 1, Created: at, Started: at, Finished: at.Add(90 * time.Second),
					BytesTransferred: 1 << 20, BytesProtected: 1 << 30})
			}
			if err := md.InsertJobs(ctx, js); err != nil {
				benchErr = err
				return
			}
		}
		fmt.Fprintf(os.Stderr, "bench data: 1000 policies, 10000 objects, %d job runs in %.1fs\n", nJobs, time.Since(start).Seconds())
		s := New(Options{Repo: repo, Accounts: acc, Model: md, Version: "bench"})
		srv := httptest.NewTLSServer(s.Handler())
		bench = &benchEnv{srv: srv, token: tok}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func (e *benchEnv) get(c *http.Client, path string) (time.Duration, error) {
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	t := time.Now()
	res, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		return 0, fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return time.Since(t), nil
}

func p99(ds []time.Duration) float64 {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return float64(ds[len(ds)*99/100].Microseconds()) / 1000
}

func benchPath(b *testing.B, path func(i int) string) {
	e := setupBench(b)
	c := e.srv.Client()
	var ds []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := e.get(c, path(i))
		if err != nil {
			b.Fatal(err)
		}
		ds = append(ds, d)
	}
	b.ReportMetric(p99(ds), "p99-ms")
}

// BenchmarkDashboard: target p99 under 50 ms.
func BenchmarkDashboard(b *testing.B) {
	benchPath(b, func(int) string { return "/api/v1/dashboard" })
}

// BenchmarkJobsPage: target p99 under 20 ms.
func BenchmarkJobsPage(b *testing.B) {
	benchPath(b, func(i int) string { return fmt.Sprintf("/api/v1/jobs?limit=100&offset=%d", (i%10)*100) })
}

// BenchmarkConcurrentClients: 200 clients for BES_BENCH_LOAD_SECONDS
// (default 60): no errors, p99 under 100 ms.
func BenchmarkConcurrentClients(b *testing.B) {
	e := setupBench(b)
	secs := 60
	if v, err := strconv.Atoi(os.Getenv("BES_BENCH_LOAD_SECONDS")); err == nil && v > 0 {
		secs = v
	}
	paths := []string{"/api/v1/jobs?limit=50", "/api/v1/policies?limit=50", "/api/v1/protected-objects?limit=50", "/api/v1/restore-points", "/healthz", "/api/v1/dashboard"}
	var mu sync.Mutex
	var all []time.Duration
	var errs atomic.Int64
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 200; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// One keep-alive connection per client, as wrk or hey keep.
			tr := e.srv.Client().Transport.(*http.Transport).Clone()
			tr.MaxIdleConnsPerHost = 1
			c := &http.Client{Transport: tr}
			var ds []time.Duration
			for i := w; time.Now().Before(deadline); i++ {
				d, err := e.get(c, paths[i%len(paths)])
				if err != nil {
					errs.Add(1)
					continue
				}
				ds = append(ds, d)
			}
			mu.Lock()
			all = append(all, ds...)
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	b.ReportMetric(p99(all), "p99-ms")
	b.ReportMetric(float64(len(all))/float64(secs), "req/s")
	b.ReportMetric(float64(errs.Load()), "errors")
}
