package s3store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrNoObjectLock is wrapped when an Object Lock operation meets a bucket
// created without Object Lock.
var ErrNoObjectLock = errors.New("bucket has no S3 Object Lock")

// ObjectLockEnabled reports whether the bucket was created with Object Lock.
func (s *Store) ObjectLockEnabled(ctx context.Context) (bool, error) {
	status, _, _, _, err := s.core.GetObjectLockConfig(ctx, s.loc.Bucket)
	if err != nil {
		switch errorCode(err) {
		case "ObjectLockConfigurationNotFoundError", "NoSuchObjectLockConfiguration":
			return false, nil
		}
		return false, fmt.Errorf("s3 object lock status of bucket %q: %w", s.loc.Bucket, err)
	}
	return status == "Enabled", nil
}

// SetRetention makes pack name undeletable until at least until (rounded
// up to a whole second), in GOVERNANCE mode, or COMPLIANCE if the pack
// already has that. It never shortens a retention: a pack already retained
// until then or later is left alone. An absent pack gives an error
// wrapping fs.ErrNotExist; a bucket without Object Lock one wrapping
// ErrNoObjectLock.
func (s *Store) SetRetention(ctx context.Context, name string, until time.Time) error {
	if err := CheckPackName(name); err != nil {
		return fmt.Errorf("s3 set retention: %w", err)
	}
	until = ceilSecond(until.UTC())
	key := s.packKey(name)
	mode, cur, err := s.retention(ctx, key)
	if err != nil {
		return fmt.Errorf("s3 set retention on pack %s: %w", name, err)
	}
	if !cur.IsZero() && !cur.Before(until) {
		return nil
	}
	m := minio.Governance
	if mode == minio.Compliance {
		m = minio.Compliance
	}
	err = s.core.PutObjectRetention(ctx, s.loc.Bucket, key, minio.PutObjectRetentionOptions{Mode: &m, RetainUntilDate: &until})
	if err != nil {
		return s.retentionError(ctx, name, err)
	}
	s.log.Debug("retention set", "pack", name, "until", until, "mode", m)
	return nil
}

// retention returns the current lock mode and retain-until date of key
// ("" and zero when none). It reads the x-amz-object-lock-* headers of a
// HEAD rather than GET ?retention: AWS sends both, and versitygw v1.8.0
// answers GET ?retention with an XML root element (<ObjectLockRetention>)
// that minio-go cannot decode.
func (s *Store) retention(ctx context.Context, key string) (minio.RetentionMode, time.Time, error) {
	info, err := s.core.StatObject(ctx, s.loc.Bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return "", time.Time{}, translate(err)
	}
	mode := minio.RetentionMode(strings.ToUpper(info.Metadata.Get("X-Amz-Object-Lock-Mode")))
	raw := info.Metadata.Get("X-Amz-Object-Lock-Retain-Until-Date")
	if raw == "" {
		return mode, time.Time{}, nil
	}
	until, err := time.Parse(time.RFC3339, raw)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("bad retain-until date %q from server", clip(raw))
	}
	return mode, until, nil
}

// retentionError names the cause of a failed retention call: an absent
// pack, a bucket without Object Lock, or the server's own error.
func (s *Store) retentionError(ctx context.Context, name string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("s3 set retention on pack %s: %w", name, translate(err))
	}
	if on, lerr := s.ObjectLockEnabled(ctx); lerr == nil && !on {
		return fmt.Errorf("s3 set retention on pack %s: bucket %q: %w (server said: %v)", name, s.loc.Bucket, ErrNoObjectLock, err)
	}
	return fmt.Errorf("s3 set retention on pack %s: %w", name, err)
}

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
