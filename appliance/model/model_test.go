package model

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	dir := t.TempDir()
	d, err := Open(context.Background(), filepath.Join(dir, "appliance.db"), filepath.Join(dir, "model.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestTargetValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		t    StorageTarget
		want string // "" valid
	}{
		{"local ok", StorageTarget{Name: "disks", Type: "local", Config: map[string]string{"path": "/srv"}}, ""},
		{"s3 ok", StorageTarget{Name: "s3", Type: "s3", Config: map[string]string{"endpoint": "https://x", "bucket": "b", "prefix": "p"}}, ""},
		{"no name", StorageTarget{Type: "local", Config: map[string]string{"path": "/srv"}}, "name"},
		{"bad type", StorageTarget{Name: "x", Type: "tape", Config: map[string]string{}}, "type"},
		{"missing field", StorageTarget{Name: "x", Type: "nfs", Config: map[string]string{"server": "n"}}, "config.export"},
		{"unknown field", StorageTarget{Name: "x", Type: "local", Config: map[string]string{"path": "/a", "bucket": "b"}}, "config.bucket"},
		{"relative path", StorageTarget{Name: "x", Type: "local", Config: map[string]string{"path": "a"}}, "absolute"},
		{"critical below alert", StorageTarget{Name: "x", Type: "local", Config: map[string]string{"path": "/a"}, AlertThreshold: 90, CriticalThreshold: 80}, "higher"},
		{"critical equal alert", StorageTarget{Name: "x", Type: "local", Config: map[string]string{"path": "/a"}, AlertThreshold: 90, CriticalThreshold: 90}, "higher"},
		{"threshold range", StorageTarget{Name: "x", Type: "local", Config: map[string]string{"path": "/a"}, AlertThreshold: 90, CriticalThreshold: 101}, "1-100"},
	} {
		err := tc.t.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if tc.want == "" && (tc.t.AlertThreshold != 85 || tc.t.CriticalThreshold != 95) {
			t.Errorf("%s: defaults %d/%d", tc.name, tc.t.AlertThreshold, tc.t.CriticalThreshold)
		}
	}
}

func TestPolicyValidation(t *testing.T) {
	base := func() Policy {
		return Policy{Name: "p", TargetID: 1, BackupType: "file", FullSchedule: "0 2 * * 0", IncrementalSchedule: "0 2 * * 1-6"}
	}
	p := base()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if p.Retention != (Retention{7, 4, 12}) || p.Compression != "zstd" || p.Encryption != "aes-256-gcm" || p.VerifySampleCount != 50 ||
		!*p.Enabled || !*p.Dedup || !*p.VerifyAfterBackup || *p.PrePatchBackup || !*p.ArchiveOnDeactivation || p.IOPriority != "normal" {
		t.Fatalf("defaults: %+v", p)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Policy)
		want string
	}{
		{"no full schedule", func(p *Policy) { p.FullSchedule = "" }, "full_schedule"},
		{"6-field cron", func(p *Policy) { p.FullSchedule = "0 0 2 * * 0" }, "5 fields"},
		{"bad cron", func(p *Policy) { p.IncrementalSchedule = "0 25 * * *" }, "incremental_schedule"},
		{"type", func(p *Policy) { p.BackupType = "vm" }, "backup_type"},
		{"daily 0", func(p *Policy) { p.Retention = Retention{0, 4, 12} }, "daily 1-365"},
		{"daily 366", func(p *Policy) { p.Retention = Retention{366, 4, 12} }, "daily 1-365"},
		{"weekly 53", func(p *Policy) { p.Retention = Retention{7, 53, 12} }, "weekly 0-52"},
		{"monthly 121", func(p *Policy) { p.Retention = Retention{7, 4, 121} }, "monthly 0-120"},
		{"compression", func(p *Policy) { p.Compression = "gzip" }, "compression"},
		{"encryption", func(p *Policy) { p.Encryption = "des" }, "encryption"},
		{"sample 0 ok", func(p *Policy) { p.VerifySampleCount = 0 }, ""},
		{"sample 10001", func(p *Policy) { p.VerifySampleCount = 10001 }, "1-10000"},
		{"io", func(p *Policy) { p.IOPriority = "max" }, "io_priority"},
		{"mbps", func(p *Policy) { p.MaxTransferMBps = -1 }, "max_transfer"},
		{"cbc ok", func(p *Policy) { p.Encryption = "aes-256-cbc" }, ""},
	} {
		p := base()
		tc.mod(&p)
		err := p.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: not ErrInvalid: %v", tc.name, err)
		}
	}
}

func TestTargetsAndPolicies(t *testing.T) {
	ctx := context.Background()
	d := openTest(t)
	tg := &StorageTarget{Name: "nas", Type: "smb", Config: map[string]string{"server": "nas", "share": "bk"},
		Credentials: &Credentials{Username: "u", Secret: "s3cret", Type: "password"}}
	if err := d.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	got, err := d.Target(ctx, tg.ID)
	if err != nil || !got.HasCredentials || got.Credentials != nil {
		t.Fatalf("target: %+v %v", got, err)
	}
	if c, err := d.TargetCredentials(ctx, tg.ID); err != nil || c.Secret != "s3cret" {
		t.Fatalf("credentials: %+v %v", c, err)
	}
	var raw []byte
	d.db.QueryRowContext(ctx, `SELECT secret FROM storage_targets WHERE id = ?`, tg.ID).Scan(&raw)
	if strings.Contains(string(raw), "s3cret") {
		t.Fatal("credentials stored in the clear")
	}
	if err := d.PutTarget(ctx, &StorageTarget{Name: "nas", Type: "local", Config: map[string]string{"path": "/x"}}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	p := &Policy{Name: "daily", TargetID: tg.ID, BackupType: "file", FullSchedule: "0 2 * * 0"}
	if err := d.PutPolicy(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := d.PutPolicy(ctx, &Policy{Name: "x", TargetID: 999, BackupType: "file", FullSchedule: "0 2 * * 0"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("policy on a missing target: %v", err)
	}
	if err := d.DeleteTarget(ctx, tg.ID); !errors.Is(err, ErrInUse) {
		t.Fatalf("delete a used target: %v", err)
	}
	// Rotation keeps the target, replaces the secret.
	tg.Credentials = &Credentials{Username: "u", Secret: "n3w", Type: "password"}
	if err := d.PutTarget(ctx, tg); err != nil {
		t.Fatal(err)
	}
	if c, _ := d.TargetCredentials(ctx, tg.ID); c.Secret != "n3w" {
		t.Fatalf("rotation: %+v", c)
	}
	if err := d.DeletePolicy(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteTarget(ctx, tg.ID); err != nil {
		t.Fatal(err)
	}
	if ps, _ := d.Policies(ctx); len(ps) != 0 {
		t.Fatalf("policies left: %+v", ps)
	}
}
