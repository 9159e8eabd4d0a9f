package integrity

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// ErrKeyPermissions means a private key file may be read or written by
// group or others; it is refused rather than used.
var ErrKeyPermissions = errors.New("integrity: key file permissions too open")

const (
	privatePEMType = "PRIVATE KEY" // PKCS#8
	publicPEMType  = "PUBLIC KEY"  // PKIX
	maxKeyFile     = 16 << 10
	privateKeyMode = 0o600
	publicKeyMode  = 0o644
)

// KeyID returns the fingerprint of pub: the first 16 bytes of SHA-256 over
// the raw public key, as 32 lowercase hex digits.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// PublicKeyFile returns where LoadOrCreateKey keeps the public key of the
// private key file at keyPath: keyPath + ".pub".
func PublicKeyFile(keyPath string) string { return keyPath + ".pub" }

// LoadOrCreateKey returns the appliance's signing key from path, creating it
// (PKCS#8 PEM, mode 0600) if the file does not exist; created reports
// whether it did. The public key is kept in PublicKeyFile(path) (PKIX PEM,
// mode 0644) and recreated if missing. The directory must exist.
//
// Errors: ErrKeyPermissions (wrapped, naming the path and mode) when the key
// file is accessible by group or others; an error naming the file when
// either file is unreadable, or the public file holds another key.
//
// Creation never replaces a file: when two callers race, both end up with
// the key that reached the disk first (on file systems without hard links,
// the last rename wins instead).
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = loadPrivateKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, created, err = createPrivateKey(path)
	}
	if err != nil {
		return nil, false, err
	}
	if err := ensurePublicKey(path, key); err != nil {
		return nil, false, err
	}
	return key, created, nil
}

func createPrivateKey(path string) (ed25519.PrivateKey, bool, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("integrity: generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("integrity: encode key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: privatePEMType, Bytes: der})
	err = createFileExclusive(path, data, privateKeyMode)
	if errors.Is(err, fs.ErrExist) { // another caller created it first
		key, err := loadPrivateKey(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, fmt.Errorf("integrity: create signing key: %w", err)
	}
	return key, true, nil
}

// loadPrivateKey reads the PKCS#8 PEM key at path, refusing a file that is
// not regular or that group or others may access. A missing file gives an
// error matching fs.ErrNotExist.
func loadPrivateKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: signing key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("integrity: signing key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("integrity: signing key %s is not a regular file (%s)", path, st.Mode().Type())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; it must not be accessible by group or others (chmod 600 %s)",
			ErrKeyPermissions, path, perm, path)
	}
	data, err := readCapped(f)
	if err != nil {
		return nil, fmt.Errorf("integrity: signing key %s: %w", path, err)
	}
	key, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("integrity: signing key %s: %w", path, err)
	}
	return key, nil
}

func parsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	der, err := pemBody(data, privatePEMType)
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("holds a %T, not an Ed25519 key", k)
	}
	return key, nil
}

// ensurePublicKey makes sure PublicKeyFile(keyPath) holds key's public half,
// writing it when missing.
func ensurePublicKey(keyPath string, key ed25519.PrivateKey) error {
	path := PublicKeyFile(keyPath)
	want := key.Public().(ed25519.PublicKey)
	pub, err := LoadPublicKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return WritePublicKey(path, want)
	}
	if err != nil {
		return fmt.Errorf("%w (remove it to have it rewritten from %s)", err, keyPath)
	}
	if !bytes.Equal(pub, want) {
		return fmt.Errorf("integrity: public key %s (key ID %s) does not belong to signing key %s (key ID %s)",
			path, KeyID(pub), keyPath, KeyID(want))
	}
	return nil
}

// WritePublicKey durably writes pub to path as a PKIX "PUBLIC KEY" PEM file
// of mode 0644, replacing any file there.
func WritePublicKey(path string, pub ed25519.PublicKey) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("integrity: write public key %s: key has %d bytes, want %d", path, len(pub), ed25519.PublicKeySize)
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("integrity: write public key %s: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: publicPEMType, Bytes: der})
	if err := writeFileAtomic(path, data, publicKeyMode); err != nil {
		return fmt.Errorf("integrity: %w", err)
	}
	return nil
}

// LoadPublicKey reads an Ed25519 public key from a PKIX "PUBLIC KEY" PEM
// file. A missing file gives an error matching fs.ErrNotExist.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("integrity: public key: %w", err)
	}
	defer f.Close()
	data, err := readCapped(f)
	if err != nil {
		return nil, fmt.Errorf("integrity: public key %s: %w", path, err)
	}
	der, err := pemBody(data, publicPEMType)
	if err != nil {
		return nil, fmt.Errorf("integrity: public key %s: %w", path, err)
	}
	k, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		return nil, fmt.Errorf("integrity: public key %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("integrity: public key %s holds a %T, not an Ed25519 key", path, k)
	}
	return pub, nil
}

// pemBody returns the DER bytes of the single PEM block of type typ in data;
// anything but white space around it is an error.
func pemBody(data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	switch {
	case block == nil:
		return nil, errors.New("no PEM block")
	case block.Type != typ:
		return nil, fmt.Errorf("PEM block is %s, want %q", quote(block.Type), typ)
	case len(block.Headers) != 0:
		return nil, errors.New("PEM block has headers (encrypted keys are not supported)")
	case len(bytes.TrimSpace(rest)) != 0:
		return nil, errors.New("data after the PEM block")
	}
	return block.Bytes, nil
}

func readCapped(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("file is larger than %d bytes", maxKeyFile)
	}
	return data, nil
}
