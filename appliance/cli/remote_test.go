package cli

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bes/appliance/auth"
	"bes/appliance/model"
	"bes/appliance/server"
	"bes/store"
	"bes/store/crypt"
)

func TestRemoteCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	repo, err := store.Init(ctx, store.InitOptions{Dir: filepath.Join(dir, "repo"), K: 1, M: 1, KEK: crypt.Passphrase([]byte("pw"))})
	if err != nil {
		t.Fatal(err)
	}
	defer repo.Close()
	acc, _ := auth.Open(ctx, filepath.Join(dir, "appliance.db"))
	defer acc.Close()
	md, _ := model.Open(ctx, filepath.Join(dir, "appliance.db"), filepath.Join(dir, "model.key"))
	defer md.Close()
	u, err := acc.AddUser(ctx, "op", "builder", "builder-password-1", false)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, _ := acc.NewToken(ctx, u.ID, "cli", 0)
	srv := httptest.NewTLSServer(server.New(server.Options{Repo: repo, Accounts: acc, Model: md,
		Enqueue: func(ctx context.Context, p *model.Policy, mode string) ([]model.Job, error) {
			j := model.Job{Kind: model.JobBackup, Mode: mode, PolicyID: p.ID, Host: "local", Trigger: "manual"}
			return []model.Job{j}, md.Enqueue(ctx, &j)
		}}).Handler())
	defer srv.Close()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)
	tg := &model.StorageTarget{Name: "l", Type: "local", Config: map[string]string{"path": dir}}
	md.PutTarget(ctx, tg)
	md.PutPolicy(ctx, &model.Policy{Name: "nightly", TargetID: tg.ID, BackupType: "file", FullSchedule: "0 2 * * *"})

	e := newEnv(t).with("BES_SERVER", srv.URL).with("BES_TOKEN", tok).with("BES_CACERT", ca)
	if out := e.ok("policies"); !strings.Contains(out, "nightly") {
		t.Fatalf("policies: %s", out)
	}
	if out := e.ok("run-policy", "1", "--mode", "full"); !strings.Contains(out, "queued job") {
		t.Fatalf("run-policy: %s", out)
	}
	if out := e.ok("jobs", "--status", "pending"); !strings.Contains(out, "pending") {
		t.Fatalf("jobs: %s", out)
	}
	e.fails([]string{"retry-job", "1"}, "retry refused")
	e.with("BES_TOKEN", "bes_wrong").fails([]string{"policies"}, "401")
	e.with("BES_CACERT", "").fails([]string{"policies"}, "certificate")
	newEnv(t).fails([]string{"jobs"}, "--server")
}
