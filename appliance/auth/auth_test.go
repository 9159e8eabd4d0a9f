package auth

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestAccounts(t *testing.T) {
	ctx := context.Background()
	d, err := Open(ctx, filepath.Join(t.TempDir(), "appliance.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pw, err := d.Bootstrap(ctx, "admin")
	if err != nil || len(pw) < 16 {
		t.Fatalf("bootstrap: %q %v", pw, err)
	}
	if again, _ := d.Bootstrap(ctx, "admin"); again != "" {
		t.Fatal("bootstrap twice made a second password")
	}
	u, err := d.Login(ctx, "admin", pw)
	if err != nil || u.Role != "admin" || !u.MustChange {
		t.Fatalf("login: %+v %v", u, err)
	}
	if _, err := d.Login(ctx, "admin", pw+"x"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := d.Login(ctx, "nobody", pw); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	if err := d.SetPassword(ctx, u.ID, "a-new-password-123"); err != nil {
		t.Fatal(err)
	}
	if u, err := d.Login(ctx, "admin", "a-new-password-123"); err != nil || u.MustChange {
		t.Fatalf("after change: %+v %v", u, err)
	}
	if _, err := d.AddUser(ctx, "op", "wizard", "long-enough-pw", false); !errors.Is(err, ErrBadRole) {
		t.Fatalf("bad role: %v", err)
	}
	if _, err := d.AddUser(ctx, "op", "restore-operator", "short", false); err == nil {
		t.Fatal("short password accepted")
	}
	op, err := d.AddUser(ctx, "op", "restore-operator", "long-enough-pw", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.AddUser(ctx, "op", "viewer", "long-enough-pw", false); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	secret, tok, err := d.NewToken(ctx, op.ID, "script", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := d.ByToken(ctx, secret); err != nil || got.ID != op.ID {
		t.Fatalf("by token: %+v %v", got, err)
	}
	if _, err := d.ByToken(ctx, secret+"x"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("bad token: %v", err)
	}
	if err := d.RevokeToken(ctx, tok.ID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ByToken(ctx, secret); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("revoked token: %v", err)
	}
	sid, csrf, err := d.NewSession(ctx, op.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got, c, err := d.BySession(ctx, sid); err != nil || got.ID != op.ID || c != csrf {
		t.Fatalf("session: %v", err)
	}
	d.EndSession(ctx, sid)
	if _, _, err := d.BySession(ctx, sid); err == nil {
		t.Fatal("ended session still valid")
	}
	if err := d.Audit(ctx, AuditEntry{Actor: "admin", Action: "user.create", Target: "op", Remote: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.db.ExecContext(ctx, `DELETE FROM audit`); err == nil {
		t.Fatal("the audit log allowed a delete")
	}
	if _, err := d.db.ExecContext(ctx, `UPDATE audit SET actor = 'x'`); err == nil {
		t.Fatal("the audit log allowed an update")
	}
	log, err := d.AuditLog(ctx, 0, 10)
	if err != nil || len(log) != 1 || log[0].Action != "user.create" {
		t.Fatalf("audit log: %+v %v", log, err)
	}
}

func TestRoles(t *testing.T) {
	for _, tc := range []struct {
		role, perm string
		ok         bool
	}{
		{"viewer", PermView, true}, {"viewer", PermManage, false}, {"viewer", PermRestore, false},
		{"builder", PermManage, true}, {"builder", PermRestore, false},
		{"restore-operator", PermRestore, true}, {"restore-operator", PermManage, false}, {"restore-operator", PermAdmin, false},
		{"admin", PermAdmin, true}, {"nobody", PermView, false},
	} {
		if got := Allowed(tc.role, tc.perm); got != tc.ok {
			t.Errorf("Allowed(%s, %s) = %v", tc.role, tc.perm, got)
		}
	}
}
