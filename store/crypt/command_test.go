package crypt

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCommandProvider(t *testing.T) {
	ctx := context.Background()
	p, err := Command("pam_vault", "printf 'vault-secret-0123456789\\n'")
	if err != nil {
		t.Fatal(err)
	}
	master, _ := NewMasterKey()
	slot, err := WrapMaster(ctx, p, master, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if slot.Provider != "pam_vault" {
		t.Fatalf("slot provider %q", slot.Provider)
	}
	got, err := UnwrapMaster(ctx, p, slot)
	if err != nil || !bytes.Equal(got, master) {
		t.Fatalf("unwrap: %v", err)
	}
	other, _ := Command("pam_vault", "echo another-secret-0123456789")
	if _, err := UnwrapMaster(ctx, other, slot); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong secret: %v", err)
	}
	for _, tc := range []struct{ name, cmd, want string }{
		{"account", "echo short", "at least 16"},
		{"account", "exit 3", "exit status 3"},
		{"account", "echo the-secret-is-long-enough; exit 1", "exit status 1"},
	} {
		p, err := Command(tc.name, tc.cmd)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := p.NewKEK(ctx); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.cmd, err, tc.want)
		}
	}
	if _, err := Command("vault", "true"); err == nil {
		t.Error("unknown provider name accepted")
	}
	if _, err := Command("account", ""); err == nil {
		t.Error("empty command accepted")
	}
}
