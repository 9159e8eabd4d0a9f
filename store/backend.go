package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"bes/store/ec"
	"bes/store/s3store"
)

// packStore is where a repository's packs live: the local erasure-coded
// disk set, or an S3 bucket.
type packStore interface {
	NewWriter(ctx context.Context, name string) (packWriter, error)
	ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error)
	Size(ctx context.Context, name string) (int64, error)
	List(ctx context.Context, fn func(name string) error) error
	Remove(ctx context.Context, name string) error
	// Prefetch and Drop are page-cache hints (no-ops where meaningless).
	Prefetch(name string, off, n int64)
	Drop(name string, off, n int64)
	// Retain makes a pack undeletable until the given time where the
	// medium can (chattr +i on local shard files; S3 Object Lock);
	// Release lifts what Retain set once every lock has expired; Retained
	// reports whether a pack carries it.
	Retain(ctx context.Context, name string, until time.Time) error
	Release(ctx context.Context, name string) error
	Retained(ctx context.Context, name string) bool
}

// packWriter writes one pack; nothing is visible before Commit.
type packWriter interface {
	Write(p []byte) (int, error)
	Len() int64
	Commit() error
	Abort() error
}

// diskStore is the local erasure-coded set.
type diskStore struct{ *ec.Set }

func (d diskStore) NewWriter(_ context.Context, name string) (packWriter, error) {
	return d.Set.NewWriter(name)
}

func (d diskStore) Retain(_ context.Context, name string, _ time.Time) error {
	for _, path := range d.ShardPaths(name) {
		if err := setFileImmutable(path, true); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (d diskStore) Release(_ context.Context, name string) error {
	for _, path := range d.ShardPaths(name) {
		if err := setFileImmutable(path, false); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (d diskStore) Retained(_ context.Context, name string) bool {
	return isImmutable(d.ShardPaths(name))
}

// bucketStore is an S3 bucket.
type bucketStore struct{ *s3store.Store }

func (b bucketStore) NewWriter(ctx context.Context, name string) (packWriter, error) {
	return b.Store.NewWriter(ctx, name)
}

func (bucketStore) Prefetch(string, int64, int64) {}
func (bucketStore) Drop(string, int64, int64)     {}

func (b bucketStore) Retain(ctx context.Context, name string, until time.Time) error {
	return b.SetRetention(ctx, name, until)
}

// Release: an Object Lock retention ends by itself.
func (bucketStore) Release(context.Context, string) error { return nil }

func (b bucketStore) Retained(context.Context, string) bool { return false }

// IsS3 reports whether a repository address names an S3 bucket
// ("s3:http(s)://HOST:PORT/BUCKET/PREFIX", restic's convention).
func IsS3(addr string) bool { return strings.HasPrefix(addr, "s3:") }

// s3Repo is what an S3 address resolves to: the bucket and the local
// directory that holds the repository's local state (catalog, locks,
// clock). Config and key slots live in the bucket.
type s3Repo struct {
	store *s3store.Store
	state string
}

// s3Files are the names of the repository's files in the bucket.
const (
	s3Config = "config.json"
	s3Keys   = "keys.json"
)

func openS3(ctx context.Context, addr, stateDir string, getenv func(string) string, create, objectLock bool) (*s3Repo, error) {
	loc, err := s3store.ParseURL(addr)
	if err != nil {
		return nil, err
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	cred, err := s3store.CredentialsFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	st, err := s3store.Open(ctx, loc, cred, s3store.Options{Create: create, ObjectLock: objectLock})
	if err != nil {
		return nil, err
	}
	if stateDir == "" {
		base := getenv("BES_CACHE_DIR")
		if base == "" {
			if base, err = os.UserCacheDir(); err != nil {
				return nil, fmt.Errorf("s3 repository: no directory for its local state (set BES_CACHE_DIR): %w", err)
			}
			base = filepath.Join(base, "bes")
		}
		h := sha256.Sum256([]byte(loc.Endpoint + "/" + loc.Bucket + "/" + loc.Prefix))
		stateDir = filepath.Join(base, "s3-"+hex.EncodeToString(h[:8]))
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("s3 repository: local state: %w", err)
	}
	return &s3Repo{store: st, state: stateDir}, nil
}
