package jobs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bes/appliance/model"
	"bes/store"
	"bes/store/catalog"
	"bes/store/crypt"
)

type fixture struct {
	m      *model.DB
	repo   *store.Repo
	r      *Runner
	policy *model.Policy
	src    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	repo, err := store.Init(ctx, store.InitOptions{Dir: filepath.Join(dir, "repo"), K: 1, M: 1, KEK: crypt.Passphrase([]byte("pw"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	m, err := model.Open(ctx, filepath.Join(dir, "appliance.db"), filepath.Join(dir, "model.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tg := &model.StorageTarget{Name: "local", Type: "local", Config: map[string]string{"path": dir}}
	if err := m.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	p := &model.Policy{Name: "nightly", TargetID: tg.ID, BackupType: "file", FullSchedule: "0 2 * * *", VerifySampleCount: 5,
		Retention: model.Retention{Daily: 2, Weekly: 0, Monthly: 0}}
	if err := m.PutPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "d"), 0o755)
	os.WriteFile(filepath.Join(src, "d", "a.txt"), []byte("hello"), 0o644)
	return &fixture{m: m, repo: repo, r: &Runner{Model: m, Repo: repo, AutoRetry: true, Grace: time.Second}, policy: p, src: src}
}

func TestBackupJobVerifyRetention(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: LocalHost, Paths: []string{f.src}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		js, err := EnqueuePolicy(ctx, f.m, f.policy, model.JobBackup, "incremental", "manual")
		if err != nil || len(js) != 1 {
			t.Fatalf("enqueue: %v %v", js, err)
		}
		j, err := f.r.RunOne(ctx)
		if err != nil || j.Status != model.StatusSuccess || j.PointID == "" || j.BytesProtected != 5 {
			t.Fatalf("run %d: %+v %v", i, j, err)
		}
	}
	all, err := f.repo.Points(ctx, catalog.PointFilter{})
	if err != nil {
		t.Fatal(err)
	}
	// keep-daily 2 over three points of the same day keeps one.
	if len(all) != 1 || all[0].Policy != "nightly" || all[0].VerifyStatus != "passed" {
		t.Fatalf("after retention: %d points %+v", len(all), all)
	}
}

func TestFailureRetryRules(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	if err := f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: LocalHost, Paths: []string{"/nonexistent/bes-test"}}); err != nil {
		t.Fatal(err)
	}
	EnqueuePolicy(ctx, f.m, f.policy, model.JobBackup, "incremental", "manual")
	j, err := f.r.RunOne(ctx)
	if err != nil || j.Status != model.StatusFailed {
		t.Fatalf("first run: %+v %v", j, err)
	}
	if pend, _, _ := f.m.Jobs(ctx, model.JobFilter{Status: model.StatusPending}); len(pend) != 1 || pend[0].RetryOf != j.ID || pend[0].Trigger != "auto_retry" {
		t.Fatalf("no automatic retry queued: %+v", pend)
	}
	// The automatic retry was queued; while it is pending no other retry.
	if _, err := f.m.Retry(ctx, j.ID, "manual"); !errors.Is(err, model.ErrBusy) {
		t.Fatalf("retry while a retry is pending: %v", err)
	}
	r, err := f.r.RunOne(ctx)
	if err != nil || r.RetryOf != j.ID || r.Status != model.StatusFailed || r.Retryable {
		t.Fatalf("retry run: %+v %v", r, err)
	}
	if _, err := f.m.Retry(ctx, r.ID, "manual"); !errors.Is(err, model.ErrBusy) {
		t.Fatalf("a retry was retried: %v", err)
	}
	if again, _ := f.r.RunOne(ctx); again != nil {
		t.Fatalf("a third run happened: %+v", again)
	}
	// Another host: permanent failure, not retryable.
	f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: "web1", Paths: []string{"/srv"}})
	js, _ := EnqueuePolicy(ctx, f.m, f.policy, model.JobBackup, "full", "manual")
	if len(js) != 2 {
		t.Fatalf("enqueue for local and web1: %+v", js)
	}
	f.r.AutoRetry = false
	f.r.RunOne(ctx)
	f.r.RunOne(ctx)
	w, err := f.m.Job(ctx, js[1].ID)
	if err != nil || w.Host != "web1" || w.Status != model.StatusFailed || w.Retryable {
		t.Fatalf("agent host without agent: %+v %v", w, err)
	}
}

func TestSchedulerFiresCatchesUpAndSkipsDisabled(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: LocalHost, Paths: []string{f.src}})
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.Local)
	now := day.Add(time.Hour + 59*time.Minute)
	s := &Scheduler{Model: f.m, Now: func() time.Time { return now }}
	if js, _ := s.Tick(ctx); len(js) != 0 {
		t.Fatalf("01:59: %+v", js)
	}
	now = day.Add(2*time.Hour + 30*time.Second)
	js, _ := s.Tick(ctx)
	if len(js) != 1 || js[0].Trigger != "schedule" || js[0].Mode != "full" {
		t.Fatalf("02:00: %+v", js)
	}
	now = now.Add(time.Minute)
	if js, _ := s.Tick(ctx); len(js) != 0 {
		t.Fatalf("02:01: %+v", js)
	}
	f.r.RunOne(ctx)
	// Down for two days (after the last job, made on the real clock): a
	// fresh scheduler catches up once.
	now = time.Now().Add(48 * time.Hour)
	s2 := &Scheduler{Model: f.m, Now: func() time.Time { return now }}
	js, _ = s2.Tick(ctx)
	if len(js) != 1 || js[0].Trigger != "catch_up" {
		t.Fatalf("catch-up: %+v", js)
	}
	f.r.RunOne(ctx)
	// Disabled: never dispatched.
	off := false
	f.policy.Enabled = &off
	if err := f.m.PutPolicy(ctx, f.policy); err != nil {
		t.Fatal(err)
	}
	now = now.Add(24 * time.Hour)
	if js, _ := s2.Tick(ctx); len(js) != 0 {
		t.Fatalf("disabled policy dispatched: %+v", js)
	}
}

func TestGCJobOnItsSchedule(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.r.OpenGC = func(ctx context.Context) (*store.Repo, error) {
		return store.Open(ctx, store.OpenOptions{Dir: f.repo.Dir(), KEK: crypt.Passphrase([]byte("pw")), GC: true})
	}
	now := time.Date(2026, 11, 20, 4, 29, 0, 0, time.Local)
	s := &Scheduler{Model: f.m, Now: func() time.Time { return now }, GCSchedule: "30 4 * * *"}
	if js, _ := s.Tick(ctx); len(js) != 0 {
		t.Fatalf("04:29: %+v", js)
	}
	now = now.Add(90 * time.Second)
	js, _ := s.Tick(ctx)
	if len(js) != 1 || js[0].Kind != model.JobGC {
		t.Fatalf("04:30: %+v", js)
	}
	j, err := f.r.RunOne(ctx)
	if err != nil || j.Status != model.StatusSuccess {
		t.Fatalf("gc job: %+v %v", j, err)
	}
}

func TestProtectedObjectsRPO(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: LocalHost, Paths: []string{f.src}})
	objs, err := f.m.ProtectedObjects(ctx, time.Now())
	if err != nil || len(objs) != 1 || objs[0].LastStatus != "never" || objs[0].Breach || objs[0].RPOHours != 24 {
		t.Fatalf("new: %+v %v", objs, err)
	}
	if objs, _ := f.m.ProtectedObjects(ctx, time.Now().Add(25*time.Hour)); !objs[0].Breach || !objs[0].AtRisk {
		t.Fatalf("never backed up for a day: %+v", objs)
	}
	EnqueuePolicy(ctx, f.m, f.policy, model.JobBackup, "full", "manual")
	f.r.RunOne(ctx)
	objs, _ = f.m.ProtectedObjects(ctx, time.Now().Add(23*time.Hour))
	if objs[0].Breach || objs[0].LastStatus != model.StatusSuccess || objs[0].LastSuccess.IsZero() {
		t.Fatalf("after a success: %+v", objs)
	}
	if objs, _ := f.m.ProtectedObjects(ctx, time.Now().Add(25*time.Hour)); !objs[0].Breach {
		t.Fatalf("success older than the RPO: %+v", objs)
	}
}

// A job the appliance stopped under is failed at the next start and
// retried first.
func TestInterruptedJobRetriedAfterRestart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: LocalHost, Paths: []string{f.src}})
	EnqueuePolicy(ctx, f.m, f.policy, model.JobBackup, "full", "schedule")
	j, err := f.m.NextJob(ctx) // claimed: running, then the process "dies"
	if err != nil || j == nil {
		t.Fatal(err)
	}
	path := filepath.Join(filepath.Dir(f.repo.Dir()), "appliance.db")
	m2, err := model.Open(ctx, path, filepath.Join(filepath.Dir(f.repo.Dir()), "model.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if ids := m2.Interrupted(); len(ids) != 1 || ids[0] != j.ID {
		t.Fatalf("interrupted: %v", ids)
	}
	r2 := &Runner{Model: m2, Repo: f.repo, AutoRetry: true, Grace: time.Second}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r2.Run(rctx); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		js, _, _ := m2.Jobs(ctx, model.JobFilter{Status: model.StatusSuccess})
		if len(js) == 1 && js[0].RetryOf == j.ID {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	js, _, _ := m2.Jobs(ctx, model.JobFilter{})
	if len(js) != 2 || js[0].RetryOf != j.ID || js[0].Status != model.StatusSuccess || js[1].Error != model.ErrInterrupted {
		t.Fatalf("after restart: %+v", js)
	}
}

func TestRestoreJob(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.m.Assign(ctx, &model.Assignment{PolicyID: f.policy.ID, Host: LocalHost, Paths: []string{f.src}})
	EnqueuePolicy(ctx, f.m, f.policy, model.JobBackup, "full", "manual")
	b, _ := f.r.RunOne(ctx)
	target := filepath.Join(t.TempDir(), "out")
	j := model.Job{Kind: model.JobRestore, Host: LocalHost, PointID: b.PointID, Target: target, Priority: model.PriorityHigh, Trigger: "manual", Attempt: 1}
	if err := f.m.Enqueue(ctx, &j); err != nil {
		t.Fatal(err)
	}
	done, err := f.r.RunOne(ctx)
	if err != nil || done.Status != model.StatusSuccess {
		t.Fatalf("restore job: %+v %v", done, err)
	}
	got, err := os.ReadFile(filepath.Join(target, f.src, "d", "a.txt"))
	if err != nil || string(got) != "hello" {
		t.Fatalf("restored file: %q %v", got, err)
	}
}
