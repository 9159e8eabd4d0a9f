package jobs

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bes/appliance/model"
)

// A small loop-mounted file system as a local target fills up: its
// policies pause at critical and the same ones resume once space is back;
// a manually disabled policy stays off.
func TestCapacityPausesAndResumes(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("needs root (losetup, mount)")
	}
	ctx := context.Background()
	f := newFixture(t)
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	os.MkdirAll(mnt, 0o755)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("truncate", "-s", "64M", img)
	run("mkfs.ext4", "-q", "-F", "-m", "0", img)
	run("mount", "-o", "loop", img, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })

	tg := &model.StorageTarget{Name: "small", Type: "local", Config: map[string]string{"path": mnt}, AlertThreshold: 70, CriticalThreshold: 90}
	if err := f.m.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	a := &model.Policy{Name: "a", TargetID: tg.ID, BackupType: "file", FullSchedule: "0 2 * * *"}
	off := false
	b := &model.Policy{Name: "b", TargetID: tg.ID, BackupType: "file", FullSchedule: "0 3 * * *", Enabled: &off}
	for _, p := range []*model.Policy{a, b} {
		if err := f.m.PutPolicy(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	clock := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	m := &Monitor{Model: f.m, Now: func() time.Time { return clock }}
	state := func() (*model.Policy, *model.Policy, *model.Capacity) {
		pa, _ := f.m.Policy(ctx, a.ID)
		pb, _ := f.m.Policy(ctx, b.ID)
		c, _ := f.m.CapacityOf(ctx, tg.ID)
		return pa, pb, c
	}
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	pa, _, c := state()
	if c.Level != "ok" || pa.PausedReason != "" {
		t.Fatalf("empty: %+v %+v", c, pa)
	}
	// Fill to ~95%.
	_, used0, _ := StatfsUsage(mnt)
	total, _, _ := StatfsUsage(mnt)
	fill := total*95/100 - used0
	fh, _ := os.Create(filepath.Join(mnt, "fill"))
	fh.Write(make([]byte, fill))
	fh.Sync()
	fh.Close()
	clock = clock.Add(24 * time.Hour)
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	pa, pb, c := state()
	if c.Level != "critical" || pa.PausedReason != "storage_critical" || pb.PausedReason != "" || *pb.Enabled {
		t.Fatalf("full: level %s, a paused %q, b paused %q enabled %v", c.Level, pa.PausedReason, pb.PausedReason, *pb.Enabled)
	}
	if c.GrowthPerDay <= 0 || c.FullDate.IsZero() {
		t.Fatalf("growth estimate: %+v", c)
	}
	// A paused policy is never dispatched.
	s := &Scheduler{Model: f.m, Now: func() time.Time { return clock.Add(2*time.Hour + 30*time.Second) }}
	s.last = map[schedKey]time.Time{{a.ID, "full"}: clock}
	f.m.Assign(ctx, &model.Assignment{PolicyID: a.ID, Host: LocalHost, Paths: []string{f.src}})
	if js, _ := s.Tick(ctx); len(js) != 0 {
		t.Fatalf("a paused policy was dispatched: %+v", js)
	}
	// Space comes back: exactly the paused one resumes.
	os.Remove(filepath.Join(mnt, "fill"))
	exec.Command("sync").Run()
	clock = clock.Add(24 * time.Hour)
	if err := m.Check(ctx); err != nil {
		t.Fatal(err)
	}
	pa, pb, c = state()
	if c.Level != "ok" || pa.PausedReason != "" || !*pa.Enabled || *pb.Enabled {
		t.Fatalf("freed: level %s, a %q/%v, b enabled %v", c.Level, pa.PausedReason, *pa.Enabled, *pb.Enabled)
	}
	evs, _ := f.m.Events(ctx, time.Time{}, 10)
	if len(evs) < 2 || evs[0].Kind != "storage_ok" {
		t.Fatalf("events: %+v", evs)
	}
	hist, _ := f.m.UsageHistory(ctx, tg.ID, time.Time{})
	if len(hist) != 3 {
		t.Fatalf("history: %+v", hist)
	}
}
