package s3store

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// DefaultPartSize is the multipart part size when Options.PartSize is 0.
	DefaultPartSize = 16 << 20
	// MinPartSize is the S3 minimum for every part but the last.
	MinPartSize = 5 << 20
	// MaxPartSize is the S3 maximum part size.
	MaxPartSize = 5 << 30
	// MaxFileSize bounds PutFile and GetFile: files are small metadata.
	MaxFileSize = 256 << 20
	// maxParts is the S3 limit on parts in one multipart upload.
	maxParts = 10000
)

// Options configures Open. The zero value opens an existing bucket with
// 16 MiB parts and no logging.
type Options struct {
	// Create creates the bucket if it does not exist.
	Create bool
	// ObjectLock enables S3 Object Lock when Open creates the bucket. If the
	// bucket already exists without Object Lock, Open fails with
	// ErrNoObjectLock (Object Lock can only be enabled at creation).
	ObjectLock bool
	// PartSize is the multipart part size; 0 means DefaultPartSize. It must
	// lie within [MinPartSize, MaxPartSize].
	PartSize int64
	// Logger receives debug and warning messages; nil discards them.
	Logger *slog.Logger
}

// Store is a repository in one S3 bucket under one prefix. It is safe for
// concurrent use; each Writer belongs to one goroutine.
type Store struct {
	core     *minio.Core
	loc      Location
	partSize int64
	log      *slog.Logger
}

// Open connects to the bucket at loc. It checks that the bucket exists
// (creating it when o.Create is set) and fails with an error wrapping
// fs.ErrNotExist when it does not.
func Open(ctx context.Context, loc Location, cred Credentials, o Options) (*Store, error) {
	if err := checkBucketName(loc.Bucket); err != nil {
		return nil, fmt.Errorf("s3 open: %w: %s", ErrBadLocation, err)
	}
	if loc.Endpoint == "" {
		return nil, fmt.Errorf("s3 open: %w: endpoint is empty", ErrBadLocation)
	}
	partSize := o.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	if partSize < MinPartSize || partSize > MaxPartSize {
		return nil, fmt.Errorf("s3 open: part size %d outside [%d, %d]", partSize, MinPartSize, MaxPartSize)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	core, err := minio.NewCore(loc.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cred.AccessKey, cred.SecretKey, cred.SessionToken),
		Secure: loc.Secure,
		Region: cred.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 open %s: %w", loc, err)
	}
	s := &Store{core: core, loc: loc, partSize: partSize, log: log.With("s3", loc.String())}
	if err := s.ensureBucket(ctx, cred.Region, o); err != nil {
		return nil, fmt.Errorf("s3 open %s: %w", loc, err)
	}
	return s, nil
}

// Location returns the address the store was opened with.
func (s *Store) Location() Location { return s.loc }

func (s *Store) ensureBucket(ctx context.Context, region string, o Options) error {
	ok, err := s.core.BucketExists(ctx, s.loc.Bucket)
	if err != nil {
		return fmt.Errorf("check bucket: %w", err)
	}
	if !ok {
		if !o.Create {
			return fmt.Errorf("bucket %q: %w", s.loc.Bucket, fs.ErrNotExist)
		}
		err := s.core.MakeBucket(ctx, s.loc.Bucket, minio.MakeBucketOptions{Region: region, ObjectLocking: o.ObjectLock})
		if err != nil && errorCode(err) != "BucketAlreadyOwnedByYou" {
			return fmt.Errorf("create bucket %q: %w", s.loc.Bucket, err)
		}
		s.log.Info("created bucket", "bucket", s.loc.Bucket, "object_lock", o.ObjectLock)
	}
	if o.ObjectLock {
		on, err := s.ObjectLockEnabled(ctx)
		if err != nil {
			return err
		}
		if !on {
			return fmt.Errorf("bucket %q: %w (it can only be enabled when the bucket is created)", s.loc.Bucket, ErrNoObjectLock)
		}
	}
	return nil
}

// Size returns the size of pack name, or an error wrapping fs.ErrNotExist.
func (s *Store) Size(ctx context.Context, name string) (int64, error) {
	if err := CheckPackName(name); err != nil {
		return 0, fmt.Errorf("s3 size of pack: %w", err)
	}
	info, err := s.core.StatObject(ctx, s.loc.Bucket, s.packKey(name), minio.StatObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("s3 size of pack %s: %w", name, translate(err))
	}
	return info.Size, nil
}

// Remove deletes pack name. Removing an absent pack is not an error.
func (s *Store) Remove(ctx context.Context, name string) error {
	if err := CheckPackName(name); err != nil {
		return fmt.Errorf("s3 remove pack: %w", err)
	}
	err := s.core.RemoveObject(ctx, s.loc.Bucket, s.packKey(name), minio.RemoveObjectOptions{})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("s3 remove pack %s: %w", name, translate(err))
	}
	return nil
}

// PutFile stores data under key (PREFIX/key) in a single PUT, so readers
// see either the old or the new content, never a mix. Content-MD5 lets the
// server reject a corrupted body.
func (s *Store) PutFile(ctx context.Context, key string, data []byte) error {
	if err := CheckFileKey(key); err != nil {
		return fmt.Errorf("s3 put file: %w", err)
	}
	if len(data) > MaxFileSize {
		return fmt.Errorf("s3 put file %s: %d bytes exceeds the %d-byte limit", key, len(data), MaxFileSize)
	}
	md5b64, shaHex := digests(data)
	_, err := s.core.PutObject(ctx, s.loc.Bucket, s.objectKey(key), bytes.NewReader(data), int64(len(data)),
		md5b64, shaHex, minio.PutObjectOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return fmt.Errorf("s3 put file %s: %w", key, translate(err))
	}
	return nil
}

// GetFile returns the content stored under key, or an error wrapping
// fs.ErrNotExist.
func (s *Store) GetFile(ctx context.Context, key string) ([]byte, error) {
	if err := CheckFileKey(key); err != nil {
		return nil, fmt.Errorf("s3 get file: %w", err)
	}
	data, err := s.getFile(ctx, s.objectKey(key))
	if err != nil {
		return nil, fmt.Errorf("s3 get file %s: %w", key, err)
	}
	return data, nil
}

func (s *Store) getFile(ctx context.Context, objKey string) ([]byte, error) {
	body, info, _, err := s.core.GetObject(ctx, s.loc.Bucket, objKey, minio.GetObjectOptions{})
	if err != nil {
		return nil, translate(err)
	}
	defer body.Close()
	if info.Size > MaxFileSize {
		return nil, fmt.Errorf("%d bytes exceeds the %d-byte limit", info.Size, MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(body, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if info.Size >= 0 && int64(len(data)) != info.Size {
		return nil, fmt.Errorf("short body: got %d of %d bytes: %w", len(data), info.Size, io.ErrUnexpectedEOF)
	}
	return data, nil
}

func digests(data []byte) (md5Base64, sha256Hex string) {
	m := md5.Sum(data)
	h := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(m[:]), hex.EncodeToString(h[:])
}

// errorCode returns the S3 error code in err, or "".
func errorCode(err error) string {
	var er minio.ErrorResponse
	if errors.As(err, &er) {
		return er.Code
	}
	return ""
}

func isNotFound(err error) bool {
	switch errorCode(err) {
	case "NoSuchKey", "NotFound", "NoSuchVersion":
		return true
	}
	return false
}

// notExistError keeps the server's message and matches fs.ErrNotExist.
type notExistError struct{ err error }

func (e notExistError) Error() string   { return e.err.Error() }
func (e notExistError) Unwrap() []error { return []error{fs.ErrNotExist, e.err} }

// translate maps "no such key" to an error matching fs.ErrNotExist.
func translate(err error) error {
	if isNotFound(err) {
		return notExistError{err}
	}
	return err
}
