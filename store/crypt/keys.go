package crypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
)

// MasterKeySize is the size of the repository master key in bytes.
const MasterKeySize = 64

// Overhead is the number of bytes Seal adds: 12-byte nonce + 16-byte tag.
const Overhead = 28

// ErrAuth is returned by Open when the data fails authentication.
var ErrAuth = errors.New("crypt: authentication failed: data corrupted or wrong key")

// ErrWrongKey is returned by UnwrapMaster when the KEK does not open the slot.
var ErrWrongKey = errors.New("wrong password or key: cannot decrypt the repository key")

// Context strings for BLAKE3 derive-key mode. They must never change.
const (
	ctxDataKey     = "bes backup appliance 2025-01-01 data encryption key v1"
	ctxChunkIDKey  = "bes backup appliance 2025-01-01 chunk id key v1"
	ctxChunkerSeed = "bes backup appliance 2025-01-01 chunker seed v1"
	ctxKeyFileKEK  = "bes backup appliance 2025-01-01 key file kek v1"
)

// ID identifies a chunk: keyed BLAKE3-256 of its plaintext.
type ID [32]byte

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID parses a 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("crypt: bad ID %q: want %d hex characters", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return ID{}, fmt.Errorf("crypt: bad ID %q: %v", s, err)
	}
	return id, nil
}

// Keys holds the keys derived from a master key. It is safe for concurrent
// use.
type Keys struct {
	aead   cipher.AEAD // AES-256-GCM with random nonces
	ids    idHasher
	chSeed uint64
}

// NewMasterKey returns a new random master key.
func NewMasterKey() ([]byte, error) {
	k := make([]byte, MasterKeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// DeriveKeys derives the data encryption key, chunk-ID key and chunker seed
// from master (MasterKeySize bytes) with BLAKE3 derive-key mode.
func DeriveKeys(master []byte) (*Keys, error) {
	if len(master) != MasterKeySize {
		return nil, fmt.Errorf("crypt: master key has %d bytes, want %d", len(master), MasterKeySize)
	}
	var dataKey, idKey [32]byte
	var seed [8]byte
	deriveKey(ctxDataKey, master, dataKey[:])
	deriveKey(ctxChunkIDKey, master, idKey[:])
	deriveKey(ctxChunkerSeed, master, seed[:])
	block, err := aes.NewCipher(dataKey[:])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, err
	}
	k := &Keys{aead: aead, chSeed: binary.LittleEndian.Uint64(seed[:])}
	k.ids.init(idKey)
	clear(dataKey[:])
	clear(idKey[:])
	return k, nil
}

// ChunkerSeed returns the secret seed for the chunker's gear table.
func (k *Keys) ChunkerSeed() uint64 { return k.chSeed }

// ChunkID returns the keyed BLAKE3-256 hash of data. It does not allocate in
// steady state.
func (k *Keys) ChunkID(data []byte) ID { return k.ids.sum(data) }

// Seal encrypts and authenticates plaintext, binding ad, and appends
// nonce || ciphertext || tag to dst[:0].
func (k *Keys) Seal(dst, plaintext, ad []byte) []byte {
	return k.aead.Seal(dst[:0], nil, plaintext, ad)
}

// Open authenticates and decrypts sealed (as produced by Seal with the same
// ad) and appends the plaintext to dst[:0]. Any failure is ErrAuth.
func (k *Keys) Open(dst, sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return dst[:0], ErrAuth
	}
	out, err := k.aead.Open(dst[:0], nil, sealed, ad)
	if err != nil {
		return dst[:0], ErrAuth
	}
	return out, nil
}
