package tlsutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

var testHosts = []string{"bes.example", "192.0.2.10", "2001:db8::5"}

func mustCreate(t *testing.T, dir string, hosts []string, now time.Time) (*tls.Certificate, Info) {
	t.Helper()
	cert, info, err := LoadOrCreate(dir, hosts, now)
	if err != nil {
		t.Fatal(err)
	}
	return cert, info
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestCreateThenReload(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	_, created := mustCreate(t, dir, testHosts, t0)
	if !created.Created {
		t.Fatal("first call did not create")
	}
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("dir mode %04o, want 0700", m)
	}
	if m := mode(t, filepath.Join(dir, CertFile)); m != 0o644 {
		t.Errorf("cert mode %04o, want 0644", m)
	}
	if m := mode(t, filepath.Join(dir, KeyFile)); m != 0o600 {
		t.Errorf("key mode %04o, want 0600", m)
	}
	checkKeyFile(t, filepath.Join(dir, KeyFile))

	cert, loaded := mustCreate(t, dir, testHosts, t0.Add(24*time.Hour))
	if loaded.Created {
		t.Error("second call regenerated a valid certificate")
	}
	if loaded.Fingerprint != created.Fingerprint || !loaded.NotAfter.Equal(created.NotAfter) {
		t.Errorf("reload: %+v, created: %+v", loaded, created)
	}
	if len(loaded.Fingerprint) != 32*3-1 || strings.ToUpper(loaded.Fingerprint) != loaded.Fingerprint {
		t.Errorf("fingerprint %q is not uppercase colon-separated SHA-256", loaded.Fingerprint)
	}
	if cert.Leaf == nil || len(cert.Certificate) != 1 {
		t.Fatalf("tls.Certificate without leaf or with %d certs", len(cert.Certificate))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("dir holds %d entries, want cert.pem and key.pem only", len(entries))
	}
}

func checkKeyFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key.pem is not a PKCS#8 PEM block")
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", key)
	}
}

func TestCertificateFields(t *testing.T) {
	cert, info := mustCreate(t, t.TempDir(), testHosts, t0)
	leaf := cert.Leaf
	if leaf.Subject.CommonName != "bes.example" {
		t.Errorf("CN = %q", leaf.Subject.CommonName)
	}
	if !slices.Equal(leaf.DNSNames, []string{"bes.example", "localhost"}) {
		t.Errorf("DNS SANs = %v", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"192.0.2.10", "2001:db8::5", "127.0.0.1", "::1"}) {
		t.Errorf("IP SANs = %v", ips)
	}
	if !slices.Equal(info.Hosts, append(leaf.DNSNames, ips...)) {
		t.Errorf("Info.Hosts = %v", info.Hosts)
	}
	if !leaf.NotBefore.Equal(t0.Add(-time.Hour)) || !leaf.NotAfter.Equal(t0.Add(-time.Hour).Add(825*24*time.Hour)) {
		t.Errorf("validity %v .. %v", leaf.NotBefore, leaf.NotAfter)
	}
	if leaf.KeyUsage != x509.KeyUsageDigitalSignature || !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("key usage %v, ext %v", leaf.KeyUsage, leaf.ExtKeyUsage)
	}
	if leaf.IsCA || leaf.SerialNumber.BitLen() != 128 {
		t.Errorf("IsCA %v, serial %d bits", leaf.IsCA, leaf.SerialNumber.BitLen())
	}
	_, other := mustCreate(t, t.TempDir(), testHosts, t0)
	if other.Fingerprint == info.Fingerprint {
		t.Error("two certificates with the same fingerprint")
	}
}

func TestTLSHandshake(t *testing.T) {
	cert, _ := mustCreate(t, t.TempDir(), []string{"bes.example"}, time.Now())
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	dial := func(name string) error {
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second},
			Config: &tls.Config{RootCAs: roots, ServerName: name}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			return err
		}
		return c.Close()
	}
	for _, name := range []string{"127.0.0.1", "localhost", "bes.example"} {
		if err := dial(name); err != nil {
			t.Errorf("handshake as %s: %v", name, err)
		}
	}
	var hostErr x509.HostnameError
	if err := dial("other.example"); !errors.As(err, &hostErr) {
		t.Errorf("handshake as other.example: err = %v, want a hostname error", err)
	}
}

func TestRegenerateWhenExpiring(t *testing.T) {
	dir := t.TempDir()
	_, first := mustCreate(t, dir, testHosts, t0)
	oldCert, _ := os.ReadFile(filepath.Join(dir, CertFile))
	oldKey, _ := os.ReadFile(filepath.Join(dir, KeyFile))

	_, kept := mustCreate(t, dir, testHosts, first.NotAfter.Add(-31*24*time.Hour))
	if kept.Created {
		t.Fatal("regenerated with 31 days left")
	}
	_, renewed := mustCreate(t, dir, testHosts, first.NotAfter.Add(-29*24*time.Hour))
	if !renewed.Created || renewed.Fingerprint == first.Fingerprint {
		t.Fatalf("not regenerated with 29 days left: %+v", renewed)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, CertFile+OldSuffix)); !bytes.Equal(got, oldCert) {
		t.Error("cert.pem.old is not the previous certificate")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, KeyFile+OldSuffix)); !bytes.Equal(got, oldKey) {
		t.Error("key.pem.old is not the previous key")
	}
	if m := mode(t, filepath.Join(dir, KeyFile+OldSuffix)); m != 0o600 {
		t.Errorf("key.pem.old mode %04o", m)
	}
	_, expired := mustCreate(t, dir, testHosts, renewed.NotAfter.Add(time.Hour))
	if !expired.Created {
		t.Error("expired certificate kept")
	}
	_, early := mustCreate(t, dir, testHosts, expired.NotAfter.Add(-900*24*time.Hour))
	if !early.Created {
		t.Error("certificate not yet valid kept (clock went back)")
	}
}

func TestRegenerateForNewHost(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, dir, []string{"a.example"}, t0)
	_, info := mustCreate(t, dir, []string{"a.example", "192.0.2.7"}, t0)
	if !info.Created || !slices.Contains(info.Hosts, "192.0.2.7") {
		t.Fatalf("new host: %+v", info)
	}
	_, info = mustCreate(t, dir, []string{"192.0.2.7", "localhost", "A.Example."}, t0)
	if info.Created {
		t.Error("regenerated for hosts already covered")
	}
	// Host names with '_' exist in the wild (os.Hostname may return one).
	dir = t.TempDir()
	mustCreate(t, dir, []string{"bes_01.lan"}, t0)
	if _, info = mustCreate(t, dir, []string{"bes_01.lan"}, t0); info.Created {
		t.Error("certificate for bes_01.lan does not cover it")
	}
}

func TestBadKeyPermissionsRefused(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, dir, testHosts, t0)
	key := filepath.Join(dir, KeyFile)
	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(key)
	// Even an expired certificate must not lead to the key being touched.
	_, _, err := LoadOrCreate(dir, testHosts, t0.Add(1000*24*time.Hour))
	if !errors.Is(err, ErrKeyPermissions) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "0640") {
		t.Fatalf("err = %v, want ErrKeyPermissions naming %s and its mode", err, key)
	}
	if after, _ := os.ReadFile(key); !bytes.Equal(before, after) || mode(t, key) != 0o640 {
		t.Error("refused key was changed")
	}
}

func TestMismatchRefused(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	mustCreate(t, a, testHosts, t0)
	mustCreate(t, b, testHosts, t0)
	otherKey, _ := os.ReadFile(filepath.Join(b, KeyFile))
	if err := os.WriteFile(filepath.Join(a, KeyFile), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreate(a, testHosts, t0)
	if !errors.Is(err, ErrKeyMismatch) || !strings.Contains(err.Error(), filepath.Join(a, CertFile)) {
		t.Fatalf("err = %v, want ErrKeyMismatch naming the files", err)
	}
}

func TestDamagedFilesRefused(t *testing.T) {
	for _, name := range []string{CertFile, KeyFile} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mustCreate(t, dir, testHosts, t0)
			path := filepath.Join(dir, name)
			b, _ := os.ReadFile(path)
			b[len(b)/2] ^= 'x' // corrupt the base64 body
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := LoadOrCreate(dir, testHosts, t0)
			if !errors.Is(err, ErrBadPEM) || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want ErrBadPEM naming %s", err, path)
			}
		})
	}
}

func TestInterruptedSwapRepaired(t *testing.T) {
	dir := t.TempDir()
	mustCreate(t, dir, testHosts, t0)
	key, _ := os.ReadFile(filepath.Join(dir, KeyFile))
	// A crash after cert.pem was moved aside, with a temp file left over.
	if err := os.Rename(filepath.Join(dir, CertFile), filepath.Join(dir, CertFile+OldSuffix)); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dir, tempPrefix(KeyFile)+"123")
	if err := os.WriteFile(stray, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, info := mustCreate(t, dir, testHosts, t0)
	if !info.Created {
		t.Fatal("missing cert.pem not regenerated")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, KeyFile+OldSuffix)); !bytes.Equal(got, key) {
		t.Error("key.pem.old does not pair with cert.pem.old")
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Error("temp file not swept")
	}
}

func TestBadHostRejected(t *testing.T) {
	for _, h := range []string{"bad host", "-x.example", "a..b", "*.example", strings.Repeat("a", 64)} {
		if _, _, err := LoadOrCreate(t.TempDir(), []string{h}, t0); !errors.Is(err, ErrBadHost) {
			t.Errorf("%q: err = %v, want ErrBadHost", h, err)
		}
	}
}

func TestDefaultHosts(t *testing.T) {
	hosts := DefaultHosts()
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil && (ip.IsLoopback() || ip.IsLinkLocalUnicast()) {
			t.Errorf("DefaultHosts has %s", h)
		}
	}
	cert, info := mustCreate(t, t.TempDir(), hosts, time.Now())
	for _, h := range hosts {
		if err := cert.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate for DefaultHosts %v does not cover %s: %v", info.Hosts, h, err)
		}
	}
}
