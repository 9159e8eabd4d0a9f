package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemon is a running `bes serve`.
type daemon struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *logBuf
	done   chan error
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(besBin, append([]string{"serve"}, args...)...)
	stderr := &logBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, cmd: cmd, stderr: stderr, done: make(chan error, 1)}
	go func() { d.done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return d
}

// logBuf collects a process's output; safe for the copying goroutine and
// the test at once.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (d *daemon) client(dataDir string) *http.Client {
	pem, err := os.ReadFile(filepath.Join(dataDir, "tls", "cert.pem"))
	if err != nil {
		d.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (d *daemon) waitHealthy(c *http.Client, url string, within time.Duration) {
	d.t.Helper()
	end := time.Now().Add(within)
	for time.Now().Before(end) {
		if res, err := c.Get(url + "/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	d.t.Fatalf("no /healthz within %v: %s", within, d.stderr.String())
}

func api(t *testing.T, c *http.Client, method, url, token string, in, out any) int {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil {
		json.Unmarshal(b, out)
	}
	return res.StatusCode
}

type jobJSON struct {
	ID      int64  `json:"id"`
	Status  string `json:"status"`
	RetryOf int64  `json:"retry_of"`
	Error   string `json:"error"`
	Trigger string `json:"trigger"`
	Point   string `json:"restore_point_id"`
}

func jobsOf(t *testing.T, c *http.Client, url, token string) []jobJSON {
	var res struct{ Items []jobJSON }
	api(t, c, "GET", url+"/api/v1/jobs", token, nil, &res)
	return res.Items
}

// `bes serve` on an empty data dir serves the API within seconds; a SIGTERM
// that cuts a backup off leaves no damaged point, exits 0, and the job is
// retried (and completes) after the restart.
func TestServeSIGTERMDuringBackupThenRetry(t *testing.T) {
	base := t.TempDir()
	data := filepath.Join(base, "data")
	src := filepath.Join(base, "src")
	os.MkdirAll(src, 0o755)
	f, _ := os.Create(filepath.Join(src, "big.bin"))
	rng := rand.New(rand.NewPCG(7, 7))
	buf := make([]byte, 1<<20)
	for i := 0; i < 768; i++ {
		fillRandom(rng, buf)
		f.Write(buf)
	}
	f.Close()
	conf := filepath.Join(base, "bes.toml")
	os.WriteFile(conf, []byte("[jobs]\nstop_grace = \"0s\"\n"), 0o644)
	addr := freeAddr(t)
	url := "https://" + addr

	t0 := time.Now()
	d := startDaemon(t, "--config", conf, "--data", data, "--listen", addr)
	for time.Now().Before(t0.Add(20*time.Second)) && !fileExists(filepath.Join(data, "tls", "cert.pem")) {
		time.Sleep(50 * time.Millisecond)
	}
	c := d.client(data)
	d.waitHealthy(c, url, 20*time.Second)
	t.Logf("serving %v after start on an empty data dir", time.Since(t0).Round(time.Millisecond))
	pw := regexp.MustCompile(`one-time password (\S+)`).FindStringSubmatch(d.stderr.String())
	if pw == nil {
		t.Fatalf("no one-time password printed: %s", d.stderr.String())
	}
	// Log in (session cookie + CSRF) and make a token.
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	req, _ := http.NewRequest("POST", url+"/api/v1/auth/login", strings.NewReader(fmt.Sprintf(`{"user":"admin","password":%q}`, pw[1])))
	res, err := c.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("login: %v %v", res, err)
	}
	json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	req, _ = http.NewRequest("POST", url+"/api/v1/tokens", strings.NewReader(`{"name":"test"}`))
	req.Header.Set("X-CSRF-Token", login.CSRF)
	for _, ck := range res.Cookies() {
		req.AddCookie(ck)
	}
	res, err = c.Do(req)
	if err != nil || res.StatusCode != 201 {
		t.Fatalf("token: %v %v", res, err)
	}
	var tok struct{ Token string }
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	var tg, pol struct{ ID int64 }
	if code := api(t, c, "POST", url+"/api/v1/storage-targets", tok.Token, map[string]any{"name": "local", "type": "local", "config": map[string]string{"path": data}}, &tg); code != 201 {
		t.Fatalf("target: %d", code)
	}
	no := false
	if code := api(t, c, "POST", url+"/api/v1/policies", tok.Token, map[string]any{"name": "big", "storage_target_id": tg.ID, "backup_type": "file",
		"full_schedule": "0 2 * * *", "verify_after_backup": no}, &pol); code != 201 {
		t.Fatalf("policy: %d", code)
	}
	if code := api(t, c, "POST", fmt.Sprintf("%s/api/v1/policies/%d/hosts", url, pol.ID), tok.Token, map[string]any{"host": "local", "paths": []string{src}}, nil); code != 201 {
		t.Fatalf("assign: %d", code)
	}
	if code := api(t, c, "POST", fmt.Sprintf("%s/api/v1/policies/%d/run?mode=full", url, pol.ID), tok.Token, nil, nil); code != 202 {
		t.Fatalf("run now: %d", code)
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if js := jobsOf(t, c, url, tok.Token); len(js) == 1 && js[0].Status == "running" {
			break
		}
	}
	time.Sleep(150 * time.Millisecond) // well into the backup
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, d.stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("still running 20 s after SIGTERM")
	}
	// Nothing damaged: the repository verifies with every chunk read.
	cmd := exec.Command(besBin, "verify", "--read-data")
	cmd.Env = append(os.Environ(), "BES_REPO="+filepath.Join(data, "repo"), "BES_KEY_FILE="+filepath.Join(data, "keys", "repo.key"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("verify after SIGTERM: %v\n%s", err, out)
	}

	d2 := startDaemon(t, "--config", conf, "--data", data, "--listen", addr)
	d2.waitHealthy(c, url, 20*time.Second)
	var js []jobJSON
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		js = jobsOf(t, c, url, tok.Token)
		if len(js) == 2 && js[0].Status == "success" {
			break
		}
	}
	if len(js) != 2 || js[1].Status != "failed" || !strings.Contains(js[1].Error, "interrupted") {
		t.Fatalf("jobs after restart (the SIGTERM should have cut the backup off): %+v", js)
	}
	if js[0].RetryOf != js[1].ID || js[0].Status != "success" || js[0].Point == "" {
		t.Fatalf("the interrupted job was not retried to success: %+v\n%s", js, d2.stderr.String())
	}
	d2.cmd.Process.Signal(syscall.SIGTERM)
	if err := <-d2.done; err != nil {
		t.Fatalf("second daemon exit: %v", err)
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
