package integrity

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "integrity.key")
	key, created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !created {
		t.Error("created = false for a new key")
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("key file mode %04o, want 0600", m)
	}
	if m := mode(t, PublicKeyFile(path)); m != 0o644 {
		t.Errorf("public key file mode %04o, want 0644", m)
	}
	data, _ := os.ReadFile(path)
	if !bytes.HasPrefix(data, []byte("-----BEGIN PRIVATE KEY-----\n")) {
		t.Errorf("key file is not PKCS#8 PEM:\n%s", data)
	}

	again, created, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if created || !bytes.Equal(again, key) {
		t.Errorf("reload: created=%v, same key=%v", created, bytes.Equal(again, key))
	}
	pub, err := LoadPublicKey(PublicKeyFile(path))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pub, pubOf(key)) {
		t.Error("public key file does not hold the key's public half")
	}

	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want the key and its .pub only", names)
	}

	rep, sig, err := Sign(fixedReport(), key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(rep, sig, pub); err != nil {
		t.Errorf("report signed with the loaded key does not verify against the public file: %v", err)
	}
}

func TestKeyModeRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "integrity.key")
	orig, _, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []fs.FileMode{0o644, 0o640, 0o604, 0o660, 0o601} {
		if err := os.Chmod(path, m); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKey(path)
		if !errors.Is(err, ErrKeyPermissions) {
			t.Fatalf("mode %04o: err = %v, want ErrKeyPermissions", m, err)
		}
		if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, fmt.Sprintf("mode %04o", m)) {
			t.Errorf("mode %04o: error does not name path and mode: %v", m, err)
		}
	}
	// Refused, not replaced: the key is still the original.
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	key, created, err := LoadOrCreateKey(path)
	if err != nil || created || !bytes.Equal(key, orig) {
		t.Fatalf("0400 key: created=%v err=%v same=%v", created, err, bytes.Equal(key, orig))
	}
}

func TestKeyErrorMessage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "integrity.key")
	if _, _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644)
	_, _, err := LoadOrCreateKey(path)
	want := path + " has mode 0644"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to contain %q", err, want)
	}
}

func TestPublicKeyRecreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "integrity.key")
	key, _, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(PublicKeyFile(path)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(PublicKeyFile(path))
	if err != nil || !bytes.Equal(pub, pubOf(key)) {
		t.Errorf("public key not recreated: %v", err)
	}
}

func TestPublicKeyMismatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "integrity.key")
	if _, _, err := LoadOrCreateKey(path); err != nil {
		t.Fatal(err)
	}
	if err := WritePublicKey(PublicKeyFile(path), pubOf(otherKey())); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreateKey(path)
	if err == nil || !strings.Contains(err.Error(), "does not belong") {
		t.Errorf("err = %v, want a mismatch error", err)
	}
}

func TestBadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	for name, data := range map[string]string{
		"empty":     "",
		"garbage":   "not a key",
		"wrong pem": "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n",
		"bad der":   "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
		"ecdsa":     ecPEM,
		"trailing":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: mustPKCS8(t, testKey())})) + "junk",
		"headers":   string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: mustPKCS8(t, testKey())})),
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := LoadOrCreateKey(path)
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error does not name the file: %v", name, err)
		}
		if got, _ := os.ReadFile(path); string(got) != data {
			t.Errorf("%s: key file was replaced", name)
		}
	}
	if _, _, err := LoadOrCreateKey(dir); err == nil {
		t.Error("a directory accepted as key file")
	}
	if _, _, err := LoadOrCreateKey(filepath.Join(dir, "missing-dir", "k")); err == nil {
		t.Error("key created in a missing directory")
	}
}

func TestLoadPublicKeyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadPublicKey(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o644)
	if _, err := LoadPublicKey(bad); err == nil {
		t.Error("bad DER accepted")
	}
	if err := WritePublicKey(filepath.Join(dir, "short.pub"), make([]byte, 31)); err == nil {
		t.Error("31-byte public key written")
	}
}

func mustPKCS8(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// Concurrent first starts end up with one key.
func TestCreateKeyRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "integrity.key")
	const n = 8
	keys := make([]ed25519.PrivateKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], _, errs[i] = LoadOrCreateKey(path) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("caller %d got another key", i)
		}
	}
	onDisk, _, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(onDisk, keys[0]) {
		t.Fatalf("key on disk differs from the one handed out (%v)", err)
	}
}

// A key made by OpenSSL loads, and its public file matches OpenSSL's.
func TestOpenSSLKey(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl not installed (make test installs it: it is in TEST_DEBS)")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "integrity.key")
	if out, err := exec.Command("openssl", "genpkey", "-algorithm", "ed25519", "-out", path).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	os.Chmod(path, 0o600)
	want, err := exec.Command("openssl", "pkey", "-in", path, "-pubout").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, created, err := LoadOrCreateKey(path); err != nil || created {
		t.Fatalf("created=%v err=%v", created, err)
	}
	got, _ := os.ReadFile(PublicKeyFile(path))
	if !bytes.Equal(got, want) {
		t.Errorf("public file\n%s\nOpenSSL says\n%s", got, want)
	}
}
