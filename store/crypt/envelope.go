package crypt

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/argon2"
)

// KEKProvider supplies key-encryption keys for key slots.
type KEKProvider interface {
	// Name identifies the provider: "passphrase", "keyfile", or an
	// external provider name. It is stored in the slot.
	Name() string
	// NewKEK returns the KEK for a new key slot plus the provider
	// parameters to persist (e.g. KDF salt and cost).
	NewKEK(ctx context.Context) (kek []byte, params json.RawMessage, err error)
	// KEK re-derives the KEK of an existing slot from its persisted params.
	// A wrong secret yields a KEK that fails to unwrap (ErrWrongKey).
	KEK(ctx context.Context, params json.RawMessage) ([]byte, error)
}

// SlotVersion is the current Slot format version.
const SlotVersion = 1

// masterAD is the associated data binding a wrapped key to its purpose.
const masterAD = "bes-master-key-v1"

// Slot is a wrapped master key as stored on disk (JSON, mode 0600).
type Slot struct {
	Version  int             `json:"version"`
	Provider string          `json:"provider"`
	Params   json.RawMessage `json:"params"`
	Nonce    []byte          `json:"nonce"`
	Wrapped  []byte          `json:"wrapped"`
	Created  time.Time       `json:"created"`
}

func kekAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, fmt.Errorf("crypt: KEK has %d bytes, want 32", len(kek))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// WrapMaster seals master under a new KEK from p (AES-256-GCM, associated
// data "bes-master-key-v1").
func WrapMaster(ctx context.Context, p KEKProvider, master []byte, now time.Time) (*Slot, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("crypt: master key has %d bytes, want %d", len(master), MasterKeySize)
	}
	kek, params, err := p.NewKEK(ctx)
	if err != nil {
		return nil, fmt.Errorf("crypt: %s: %w", p.Name(), err)
	}
	defer clear(kek)
	aead, err := kekAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &Slot{
		Version:  SlotVersion,
		Provider: p.Name(),
		Params:   params,
		Nonce:    nonce,
		Wrapped:  aead.Seal(nil, nonce, master, []byte(masterAD)),
		Created:  now.UTC(),
	}, nil
}

// UnwrapMaster recovers the master key from s using p. A slot made by a
// different provider is a clear error; a KEK that does not open the slot
// (wrong secret, tampered slot) is ErrWrongKey.
func UnwrapMaster(ctx context.Context, p KEKProvider, s *Slot) ([]byte, error) {
	if s == nil {
		return nil, errors.New("crypt: nil key slot")
	}
	if s.Version != SlotVersion {
		return nil, fmt.Errorf("crypt: key slot version %d not supported (want %d)", s.Version, SlotVersion)
	}
	if s.Provider != p.Name() {
		return nil, fmt.Errorf("crypt: key slot was made by provider %q, not %q", s.Provider, p.Name())
	}
	kek, err := p.KEK(ctx, s.Params)
	if err != nil {
		return nil, fmt.Errorf("crypt: %s: %w", p.Name(), err)
	}
	defer clear(kek)
	aead, err := kekAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(s.Nonce) != aead.NonceSize() {
		return nil, ErrWrongKey
	}
	master, err := aead.Open(nil, s.Nonce, s.Wrapped, []byte(masterAD))
	if err != nil || len(master) != MasterKeySize {
		return nil, ErrWrongKey
	}
	return master, nil
}

// Argon2Params is the argon2id cost, persisted in passphrase slots.
type Argon2Params struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory"`
	Threads   uint8  `json:"threads"`
}

// DefaultArgon2 is the cost for new passphrase slots: above OWASP's argon2id
// minimum (m=19 MiB, t=2, p=1) and ~35 ms on the 2-core reference machine
// (BenchmarkPassphraseKEK). The CLI derives the KEK on every command, and its
// memory counts against the peak RSS of every backup and restore.
var DefaultArgon2 = Argon2Params{Time: 2, MemoryKiB: 32 << 10, Threads: 2}

// Bounds on costs read from disk, so a tampered slot cannot demand
// unbounded memory or time.
const (
	maxArgon2Time   = 64
	maxArgon2Memory = 4 << 20 // KiB = 4 GiB
)

type passphraseParams struct {
	KDF  string `json:"kdf"`
	Salt []byte `json:"salt"`
	Argon2Params
}

type passphrase struct {
	pw   []byte
	cost Argon2Params
}

// Passphrase returns a KEKProvider deriving the KEK from pw with argon2id
// at DefaultArgon2 cost.
func Passphrase(pw []byte) KEKProvider { return PassphraseWithCost(pw, DefaultArgon2) }

// PassphraseWithCost is Passphrase with an explicit cost for new slots
// (existing slots always use the cost stored in their params).
func PassphraseWithCost(pw []byte, cost Argon2Params) KEKProvider {
	return &passphrase{pw: bytes.Clone(pw), cost: cost}
}

func (p *passphrase) Name() string { return "passphrase" }

func (p *passphrase) NewKEK(ctx context.Context) ([]byte, json.RawMessage, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, nil, err
	}
	pp := passphraseParams{KDF: "argon2id", Salt: salt, Argon2Params: p.cost}
	params, err := json.Marshal(pp)
	if err != nil {
		return nil, nil, err
	}
	kek, err := p.derive(ctx, pp)
	return kek, params, err
}

func (p *passphrase) KEK(ctx context.Context, params json.RawMessage) ([]byte, error) {
	var pp passphraseParams
	if err := json.Unmarshal(params, &pp); err != nil {
		return nil, fmt.Errorf("bad slot params: %v", err)
	}
	return p.derive(ctx, pp)
}

func (p *passphrase) derive(ctx context.Context, pp passphraseParams) ([]byte, error) {
	switch {
	case pp.KDF != "argon2id":
		return nil, fmt.Errorf("unsupported KDF %q", pp.KDF)
	case len(pp.Salt) < 16:
		return nil, fmt.Errorf("salt too short (%d bytes)", len(pp.Salt))
	case pp.Time < 1 || pp.Time > maxArgon2Time:
		return nil, fmt.Errorf("argon2 time %d out of range [1, %d]", pp.Time, maxArgon2Time)
	case pp.MemoryKiB < 8*uint32(max(pp.Threads, 1)) || pp.MemoryKiB > maxArgon2Memory:
		return nil, fmt.Errorf("argon2 memory %d KiB out of range", pp.MemoryKiB)
	case pp.Threads < 1:
		return nil, errors.New("argon2 threads must be >= 1")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return argon2.IDKey(p.pw, pp.Salt, pp.Time, pp.MemoryKiB, pp.Threads, 32), nil
}

type keyFileParams struct {
	Salt []byte `json:"salt"`
}

type keyFile struct{ path string }

// KeyFile returns a KEKProvider reading a key file: >= 32 random bytes, raw
// or hex (as written by GenerateKeyFile). The file must not be accessible
// by group or others. KEK = BLAKE3-derive-key(salt || file key), with a
// random 32-byte salt stored in the slot params.
func KeyFile(path string) KEKProvider { return &keyFile{path: path} }

func (k *keyFile) Name() string { return "keyfile" }

func (k *keyFile) NewKEK(ctx context.Context) ([]byte, json.RawMessage, error) {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return nil, nil, err
	}
	params, err := json.Marshal(keyFileParams{Salt: salt})
	if err != nil {
		return nil, nil, err
	}
	kek, err := k.derive(salt)
	return kek, params, err
}

func (k *keyFile) KEK(ctx context.Context, params json.RawMessage) ([]byte, error) {
	var kp keyFileParams
	if err := json.Unmarshal(params, &kp); err != nil {
		return nil, fmt.Errorf("bad slot params: %v", err)
	}
	if len(kp.Salt) != 32 {
		return nil, fmt.Errorf("bad slot params: salt has %d bytes, want 32", len(kp.Salt))
	}
	return k.derive(kp.Salt)
}

func (k *keyFile) derive(salt []byte) ([]byte, error) {
	key, err := readKeyFile(k.path)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	material := append(bytes.Clone(salt), key...) // salt has a fixed length
	defer clear(material)
	kek := make([]byte, 32)
	deriveKey(ctxKeyFileKEK, material, kek)
	return kek, nil
}

// readKeyFile reads and decodes a key file, refusing group/other access.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible by group or others (mode %#o): run chmod 600 %s", path, perm, path)
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("key file %s is too large (%d bytes)", path, fi.Size())
	}
	raw := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, raw); err != nil {
		return nil, err
	}
	key := raw
	// A file that is entirely hex (random raw bytes essentially never are)
	// is decoded; anything else is used as raw key bytes.
	if t := bytes.TrimSpace(raw); len(t) > 0 && len(t)%2 == 0 {
		if dec, err := hex.DecodeString(string(t)); err == nil {
			key = dec
			clear(raw)
		}
	}
	if len(key) < 32 {
		clear(key)
		return nil, fmt.Errorf("key file %s holds %d key bytes, want >= 32", path, len(key))
	}
	return key, nil
}

// GenerateKeyFile writes a new key file at path: 32 random bytes in hex,
// mode 0600, written atomically (temporary file, fsync, link into place).
// It refuses to overwrite an existing file.
func GenerateKeyFile(path string) error {
	var key [32]byte
	if _, err := rand.Read(key[:]); err != nil {
		return err
	}
	content := []byte(hex.EncodeToString(key[:]) + "\n")
	clear(key[:])
	defer clear(content)
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// Link fails if path exists, so an existing key is never clobbered.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("key file %s already exists", path)
		}
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
