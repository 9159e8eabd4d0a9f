package tlsutil

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenSSLParses checks the files with an independent parser.
func TestOpenSSLParses(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl not installed (make test installs it: it is in TEST_DEBS)")
	}
	dir := t.TempDir()
	_, info := mustCreate(t, dir, testHosts, time.Now())
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	text := run("x509", "-in", filepath.Join(dir, CertFile), "-noout", "-text")
	for _, want := range []string{
		"prime256v1", "CN = bes.example", "DNS:bes.example", "DNS:localhost",
		"IP Address:192.0.2.10", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1",
		"Digital Signature", "TLS Web Server Authentication", "CA:FALSE",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text lacks %q:\n%s", want, text)
		}
	}
	fp := run("x509", "-in", filepath.Join(dir, CertFile), "-noout", "-fingerprint", "-sha256")
	if _, got, _ := strings.Cut(strings.TrimSpace(fp), "="); got != info.Fingerprint {
		t.Errorf("openssl fingerprint %s, Info %s", got, info.Fingerprint)
	}
	key := run("pkey", "-in", filepath.Join(dir, KeyFile), "-noout", "-text")
	if !strings.Contains(key, "prime256v1") {
		t.Errorf("openssl pkey: %s", key)
	}
}
