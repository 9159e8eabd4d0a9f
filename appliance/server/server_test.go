package server

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"bes/agent"
	"bes/appliance/auth"
	"bes/appliance/model"
	"bes/store"
	"bes/store/crypt"
)

var update = flag.Bool("update", false, "rewrite docs/openapi.json")

type env struct {
	t      *testing.T
	srv    *httptest.Server
	s      *Server
	adminT string // admin bearer token
	acc    *auth.DB
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	// Locked points' shard files get the immutable attribute (as root).
	t.Cleanup(func() { exec.Command("chattr", "-R", "-i", dir).Run() })
	repo, err := store.Init(ctx, store.InitOptions{Dir: filepath.Join(dir, "repo"), K: 1, M: 1, KEK: crypt.Passphrase([]byte("pw"))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { repo.Close() })
	acc, err := auth.Open(ctx, filepath.Join(dir, "appliance.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { acc.Close() })
	pw, err := acc.Bootstrap(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	u, err := acc.Login(ctx, "admin", pw)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := acc.NewToken(ctx, u.ID, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	md, err := model.Open(ctx, filepath.Join(dir, "appliance.db"), filepath.Join(dir, "model.key"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	s := New(Options{Repo: repo, Accounts: acc, Model: md, Version: "test",
		Enqueue: func(ctx context.Context, p *model.Policy, mode string) ([]model.Job, error) {
			j := model.Job{Kind: model.JobBackup, Mode: mode, PolicyID: p.ID, Host: "local", Trigger: "manual"}
			return []model.Job{j}, md.Enqueue(ctx, &j)
		}})
	srv := httptest.NewTLSServer(s.Handler())
	t.Cleanup(srv.Close)
	return &env{t: t, srv: srv, s: s, adminT: tok, acc: acc}
}

func (e *env) do(c *http.Client, method, path, token string, body any, hdr ...string) (int, []byte, http.Header) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = e.srv.Client()
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b, res.Header
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	code, body, _ := e.do(nil, "GET", "/api/v1/openapi.json", "", nil)
	if code != 200 {
		t.Fatalf("openapi: %d", code)
	}
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, rt := range e.s.routes {
		if _, ok := doc.Paths[rt.path][strings.ToLower(rt.method)]; !ok {
			t.Errorf("route %s %s missing from the document", rt.method, rt.path)
		}
		n++
	}
	ops := 0
	for _, item := range doc.Paths {
		ops += len(item)
	}
	if ops != n || len(doc.Paths) < 20 {
		t.Errorf("document has %d operations on %d paths, routes %d", ops, len(doc.Paths), n)
	}
	// The checked-in copy under docs/ is this document.
	golden := filepath.Join("..", "..", "docs", "openapi.json")
	want, _ := json.MarshalIndent(e.s.OpenAPI(), "", "  ")
	want = append(want, '\n')
	if *update {
		if err := os.WriteFile(golden, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(golden)
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("docs/openapi.json differs from the routes (go test ./appliance/server -update): %v", err)
	}
}

func TestAuthAndRoles(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/api/v1/restore-points", "/api/v1/dashboard", "/api/v1/policies", "/api/v1/jobs", "/api/v1/storage-targets", "/api/v1/protected-objects", "/api/v1/users"} {
		if code, body, h := e.do(nil, "GET", p, "", nil); code != 401 || !strings.Contains(h.Get("Content-Type"), "problem+json") {
			t.Errorf("anonymous GET %s: %d %s", p, code, body)
		}
		if code, _, _ := e.do(nil, "GET", p, "bes_not-a-token", nil); code != 401 {
			t.Errorf("bad token GET %s: %d", p, code)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/api/v1/openapi.json", "/metrics"} {
		if code, body, _ := e.do(nil, "GET", p, "", nil); code != 200 {
			t.Errorf("GET %s: %d %s", p, code, body)
		}
	}
	if code, body, _ := e.do(nil, "GET", "/metrics", "", nil); code != 200 || !bytes.Contains(body, []byte("# TYPE bes_restore_points")) || !bytes.Contains(body, []byte("bes_job_runs_last_24h")) {
		t.Errorf("metrics: %d %.200s", code, body)
	}
	if code, body, _ := e.do(nil, "GET", "/api/v1/restore-points", e.adminT, nil); code != 200 || !bytes.Contains(body, []byte(`"items"`)) {
		t.Errorf("admin list points: %d %s", code, body)
	}
	// A viewer may look but not manage, restore or administer.
	if code, _, _ := e.do(nil, "POST", "/api/v1/users", e.adminT, map[string]string{"name": "vic", "role": "viewer", "password": "viewer-password-1"}); code != 201 {
		t.Fatalf("create viewer: %d", code)
	}
	vu, err := e.acc.Login(context.Background(), "vic", "viewer-password-1")
	if err != nil {
		t.Fatal(err)
	}
	vt, _, _ := e.acc.NewToken(context.Background(), vu.ID, "v", 0)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/dashboard", 200},
		{"POST", "/api/v1/policies", 403},
		{"POST", "/api/v1/restore-points/x/restore", 403},
		{"GET", "/api/v1/users", 403},
		{"GET", "/api/v1/audit", 403},
		{"DELETE", "/api/v1/restore-points/x", 403},
	} {
		if code, body, _ := e.do(nil, tc.method, tc.path, vt, map[string]any{}); code != tc.want {
			t.Errorf("viewer %s %s: %d, want %d (%s)", tc.method, tc.path, code, tc.want, body)
		}
	}
	if code, body, _ := e.do(nil, "GET", "/api/v1/audit", e.adminT, nil); code != 200 || !bytes.Contains(body, []byte("user.create")) {
		t.Errorf("audit: %d %s", code, body)
	}
}

func TestSessionCSRFAndRateLimit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.acc.AddUser(ctx, "bob", "builder", "bob-password-123", false); err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	c := e.srv.Client()
	c.Jar = jar
	code, body, _ := e.do(c, "POST", "/api/v1/auth/login", "", map[string]string{"user": "bob", "password": "bob-password-123"})
	if code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	var lr struct {
		CSRF string `json:"csrf_token"`
	}
	json.Unmarshal(body, &lr)
	if code, _, _ := e.do(c, "GET", "/api/v1/me", "", nil); code != 200 {
		t.Fatalf("me with the session cookie: %d", code)
	}
	if code, _, _ := e.do(c, "POST", "/api/v1/tokens", "", map[string]any{"name": "x"}); code != 403 {
		t.Fatalf("change without CSRF token: %d", code)
	}
	if code, body, _ := e.do(c, "POST", "/api/v1/tokens", "", map[string]any{"name": "x"}, "X-CSRF-Token", lr.CSRF); code != 201 {
		t.Fatalf("change with CSRF token: %d %s", code, body)
	}
	if code, _, _ := e.do(c, "POST", "/api/v1/auth/logout", "", nil, "X-CSRF-Token", lr.CSRF); code != 204 {
		t.Fatalf("logout: %d", code)
	}
	if code, _, _ := e.do(c, "GET", "/api/v1/me", "", nil); code != 401 {
		t.Fatalf("after logout: %d", code)
	}
	limited := false
	for i := 0; i < 8; i++ {
		code, _, _ := e.do(nil, "POST", "/api/v1/auth/login", "", map[string]string{"user": "bob", "password": "wrong-password-x"})
		if code == 429 {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("no rate limit on failed logins")
	}
	if code, _, _ := e.do(nil, "POST", "/api/v1/auth/login", "", "not an object"); code != 429 && code != 400 {
		t.Fatalf("bad login body: %d", code)
	}
}

func TestTargetsAndPoliciesAPI(t *testing.T) {
	e := newEnv(t)
	code, body, _ := e.do(nil, "POST", "/api/v1/storage-targets", e.adminT, map[string]any{
		"name": "nas", "type": "smb", "config": map[string]string{"server": "nas", "share": "bk"},
		"credentials": map[string]string{"username": "u", "secret": "hunter2-secret", "type": "password"}})
	if code != 201 || bytes.Contains(body, []byte("hunter2")) {
		t.Fatalf("create target: %d %s", code, body)
	}
	var tg struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(body, &tg)
	if code, body, _ := e.do(nil, "POST", "/api/v1/storage-targets", e.adminT, map[string]any{
		"name": "bad", "type": "local", "config": map[string]string{"path": "/x"}, "alert_threshold": 90, "critical_threshold": 80}); code != 422 {
		t.Fatalf("critical below alert: %d %s", code, body)
	}
	code, body, _ = e.do(nil, "POST", "/api/v1/policies", e.adminT, map[string]any{
		"name": "nightly", "storage_target_id": tg.ID, "backup_type": "file", "full_schedule": "0 2 * * 0", "incremental_schedule": "0 2 * * 1-6"})
	if code != 201 || !bytes.Contains(body, []byte(`"daily": 7`)) {
		t.Fatalf("create policy: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "POST", "/api/v1/policies", e.adminT, map[string]any{
		"name": "bad", "storage_target_id": tg.ID, "backup_type": "file", "full_schedule": "0 2 * *"}); code != 422 {
		t.Fatalf("4-field cron: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "POST", "/api/v1/policies", e.adminT, map[string]any{"name": "x", "unknown": 1}); code != 400 {
		t.Fatalf("unknown field: %d %s", code, body)
	}
	path := "/api/v1/storage-targets/" + strconv.FormatInt(tg.ID, 10)
	if code, body, _ := e.do(nil, "DELETE", path, e.adminT, nil); code != 409 {
		t.Fatalf("delete a used target: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "GET", "/api/v1/policies", e.adminT, nil); code != 200 || !bytes.Contains(body, []byte("nightly")) {
		t.Fatalf("list policies: %d %s", code, body)
	}
	if code, _, _ := e.do(nil, "GET", "/api/v1/policies/999", e.adminT, nil); code != 404 {
		t.Fatalf("missing policy: %d", code)
	}
}

func TestRunNowAndJobs(t *testing.T) {
	e := newEnv(t)
	_, body, _ := e.do(nil, "POST", "/api/v1/storage-targets", e.adminT, map[string]any{"name": "l", "type": "local", "config": map[string]string{"path": "/srv"}})
	var tg struct{ ID int64 }
	json.Unmarshal(body, &tg)
	_, body, _ = e.do(nil, "POST", "/api/v1/policies", e.adminT, map[string]any{"name": "p", "storage_target_id": tg.ID, "backup_type": "file", "full_schedule": "0 2 * * *"})
	var p struct{ ID int64 }
	json.Unmarshal(body, &p)
	pp := "/api/v1/policies/" + strconv.FormatInt(p.ID, 10)
	if code, body, _ := e.do(nil, "POST", pp+"/hosts", e.adminT, map[string]any{"host": "local", "paths": []string{"etc"}}); code != 422 {
		t.Fatalf("relative path: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "POST", pp+"/hosts", e.adminT, map[string]any{"host": "local", "paths": []string{"/etc"}}); code != 201 {
		t.Fatalf("assign: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "GET", "/api/v1/hosts", e.adminT, nil); code != 200 || !bytes.Contains(body, []byte(`"local"`)) {
		t.Fatalf("hosts: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "POST", pp+"/run?mode=weekly", e.adminT, nil); code != 400 {
		t.Fatalf("bad mode: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "POST", pp+"/run?mode=full", e.adminT, nil); code != 202 {
		t.Fatalf("run now: %d %s", code, body)
	}
	code, body, _ := e.do(nil, "GET", "/api/v1/jobs?status=pending", e.adminT, nil)
	if code != 200 || bytes.Count(body, []byte(`"status": "pending"`)) != 1 || !bytes.Contains(body, []byte(`"has_more": false`)) {
		t.Fatalf("jobs: %d %s", code, body)
	}
	if code, body, _ := e.do(nil, "POST", "/api/v1/jobs/1/retry", e.adminT, nil); code != 409 {
		t.Fatalf("retry of a pending job: %d %s", code, body)
	}
	if code, _, _ := e.do(nil, "GET", "/api/v1/jobs/99", e.adminT, nil); code != 404 {
		t.Fatalf("missing job: %d", code)
	}
}

// TestRBACMatrix calls every route as anonymous and as each role and
// checks who gets past authentication and authorization.
func TestRBACMatrix(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tokens := map[string]string{"": ""}
	for role := range auth.Roles {
		u, err := e.acc.AddUser(ctx, "u-"+role, role, "a-long-password-1", false)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := e.acc.NewToken(ctx, u.ID, "t", 0)
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
	}
	for _, rt := range e.s.routes {
		path := strings.ReplaceAll(rt.path, "{id}", "999")
		for role, tok := range tokens {
			if rt.path == "/api/v1/auth/login" || (rt.path == "/api/v1/auth/logout" && role != "") {
				continue // a login attempt per role would trip the rate limit; logout ends nothing here
			}
			code, body, _ := e.do(nil, rt.method, path, tok, map[string]any{})
			switch {
			case rt.perm == "":
				if code == 401 || code == 403 {
					t.Errorf("%s %s as %q: %d for a public route", rt.method, rt.path, role, code)
				}
			case role == "":
				if code != 401 {
					t.Errorf("%s %s anonymous: %d, want 401", rt.method, rt.path, code)
				}
			case auth.Allowed(role, rt.perm):
				if code == 401 || code == 403 {
					t.Errorf("%s %s as %s: %d, want access (%s)", rt.method, rt.path, role, code, body)
				}
			default:
				if code != 403 {
					t.Errorf("%s %s as %s: %d, want 403", rt.method, rt.path, role, code)
				}
			}
			if code >= 500 && code != 501 && code != 503 {
				t.Errorf("%s %s as %q: %d %s", rt.method, rt.path, role, code, body)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, method, path, body string
		want                     int
	}{
		{"malformed json", "POST", "/api/v1/storage-targets", `{"name": `, 400},
		{"wrong type", "POST", "/api/v1/storage-targets", `{"name": 5}`, 400},
		{"unknown field", "POST", "/api/v1/policies", `{"name":"p","evil":true}`, 400},
		{"trailing data", "POST", "/api/v1/users", `{"name":"x","role":"viewer","password":"a-long-password-1"} {}`, 400},
		{"bad id", "GET", "/api/v1/jobs/abc", ``, 400},
		{"negative id", "GET", "/api/v1/policies/-1", ``, 400},
		{"bad limit", "GET", "/api/v1/restore-points?limit=100000", ``, 400},
		{"bad since", "GET", "/api/v1/restore-points?since=yesterday", ``, 400},
		{"bad glob", "GET", "/api/v1/restore-points/latest/search?q=[", ``, 404},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer "+e.adminT)
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d (%s)", tc.name, res.StatusCode, tc.want, b)
		}
		if res.StatusCode >= 400 && !strings.Contains(res.Header.Get("Content-Type"), "problem+json") {
			t.Errorf("%s: error without problem+json: %s", tc.name, res.Header.Get("Content-Type"))
		}
	}
	// An oversized body is refused, and nothing was created.
	big := `{"name":"` + strings.Repeat("x", 9<<20) + `","type":"local","config":{"path":"/x"}}`
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/storage-targets", strings.NewReader(big))
	req.Header.Set("Authorization", "Bearer "+e.adminT)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("oversized body: %d", res.StatusCode)
	}
	if _, body, _ := e.do(nil, "GET", "/api/v1/storage-targets", e.adminT, nil); !bytes.Contains(body, []byte(`"total": 0`)) {
		t.Errorf("something was created: %s", body)
	}
}

func TestRestoreRequestValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A point to restore from.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	p := restorePoint(t, e, src)
	u := "/api/v1/restore-points/" + p + "/restore"
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"relative target", map[string]any{"target": "tmp/x"}, 422},
		{"dotdot target", map[string]any{"target": "/tmp/../etc"}, 422},
		{"system dir", map[string]any{"target": "/etc"}, 422},
		{"traversal in path", map[string]any{"target": "/tmp/r", "paths": []string{"../../etc/passwd"}}, 422},
		{"too many paths", map[string]any{"target": "/tmp/r", "paths": make([]string, 10001)}, 422},
		{"ok", map[string]any{"target": filepath.Join(t.TempDir(), "r"), "paths": []string{"/a.txt"}}, 202},
	} {
		if code, body, _ := e.do(nil, "POST", u, e.adminT, tc.body); code != tc.want {
			t.Errorf("%s: %d, want %d (%s)", tc.name, code, tc.want, body)
		}
	}
	if code, _, _ := e.do(nil, "POST", "/api/v1/restore-points/nosuch/restore", e.adminT, map[string]any{"target": "/tmp/r"}); code != 404 {
		t.Errorf("missing point: %d", code)
	}
	js, _, _ := e.s.o.Model.Jobs(ctx, model.JobFilter{})
	if len(js) != 1 || js[0].Kind != model.JobRestore || js[0].Priority != model.PriorityHigh {
		t.Fatalf("queued: %+v", js)
	}
}

// restorePoint backs src up with the agent and returns the point ID.
func restorePoint(t *testing.T, e *env, src string) string {
	t.Helper()
	p, err := agent.Backup(context.Background(), e.s.o.Repo, agent.BackupOptions{Paths: []string{src}, Host: "local"})
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

func TestDeletePointRefusedWhileLocked(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("a"), 0o644)
	id := restorePoint(t, e, src)
	if _, err := e.s.o.Repo.Lock(context.Background(), id, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if code, body, _ := e.do(nil, "DELETE", "/api/v1/restore-points/"+id, e.adminT, nil); code != 409 {
		t.Fatalf("delete locked point: %d %s", code, body)
	}
	id2 := restorePoint(t, e, src)
	if code, body, _ := e.do(nil, "DELETE", "/api/v1/restore-points/"+id2, e.adminT, nil); code != 204 {
		t.Fatalf("delete point: %d %s", code, body)
	}
	if code, _, _ := e.do(nil, "GET", "/api/v1/restore-points/"+id2, e.adminT, nil); code != 404 {
		t.Fatalf("deleted point still there: %d", code)
	}
}
