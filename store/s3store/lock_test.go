package s3store

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"bes/store/s3store/s3test"
)

func TestNoObjectLock(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s := openStore(t, srv, "bes-plain", "", Options{Create: true})
	on, err := s.ObjectLockEnabled(ctx)
	if err != nil || on {
		t.Fatalf("ObjectLockEnabled = %v, %v; want false", on, err)
	}
	name := packName(5)
	putPack(t, s, name, []byte("data"))
	err = s.SetRetention(ctx, name, time.Now().Add(time.Hour))
	if !errors.Is(err, ErrNoObjectLock) {
		t.Errorf("SetRetention without Object Lock: %v, want ErrNoObjectLock", err)
	}
	// Asking for Object Lock on an existing bucket without it fails clearly.
	loc, _ := ParseURL(srv.URL("bes-plain", ""))
	if _, err := Open(ctx, loc, serverCreds(srv), Options{Create: true, ObjectLock: true}); !errors.Is(err, ErrNoObjectLock) {
		t.Errorf("Open with ObjectLock on a plain bucket: %v, want ErrNoObjectLock", err)
	}
}

func TestObjectLock(t *testing.T) {
	for _, versioning := range []bool{false, true} {
		name := "plain"
		if versioning {
			name = "versioned"
		}
		t.Run(name, func(t *testing.T) { testObjectLock(t, versioning) })
	}
}

func testObjectLock(t *testing.T, versioning bool) {
	srv := s3test.StartOptions(t, s3test.Options{Versioning: versioning})
	ctx := context.Background()
	loc, err := ParseURL(srv.URL("bes-locked", "r"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(ctx, loc, serverCreds(srv), Options{Create: true, ObjectLock: true})
	if err != nil {
		t.Skipf("versitygw %s posix (versioning dir: %v) cannot create an Object Lock bucket: %v", s3test.Version, versioning, err)
	}
	on, err := s.ObjectLockEnabled(ctx)
	if err != nil || !on {
		t.Fatalf("ObjectLockEnabled = %v, %v; want true", on, err)
	}
	name := packName(6)
	putPack(t, s, name, []byte("locked data"))
	key := s.packKey(name)
	retention := func() time.Time {
		t.Helper()
		mode, until, err := s.retention(ctx, key)
		if err != nil || until.IsZero() || mode != minio.Governance {
			t.Fatalf("retention of %s: %q, %v, %v; want GOVERNANCE and a date", name, mode, until, err)
		}
		return until
	}

	base := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := s.SetRetention(ctx, name, base.Add(300*time.Millisecond)); err != nil {
		t.Fatalf("SetRetention: %v", err)
	}
	if got := retention(); !got.Equal(base.Add(time.Second)) {
		t.Errorf("retention = %v, want %v (rounded up to the second)", got, base.Add(time.Second))
	}
	if err := s.SetRetention(ctx, name, base.Add(-30*time.Minute)); err != nil {
		t.Errorf("SetRetention to an earlier date: %v, want nil (no-op)", err)
	}
	if got := retention(); !got.Equal(base.Add(time.Second)) {
		t.Errorf("retention shortened to %v", got)
	}
	if err := s.SetRetention(ctx, name, base.Add(time.Hour)); err != nil {
		t.Fatalf("extending retention: %v", err)
	}
	if got := retention(); !got.Equal(base.Add(time.Hour)) {
		t.Errorf("retention = %v after extending, want %v", got, base.Add(time.Hour))
	}
	if err := s.SetRetention(ctx, packName(77), base); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("SetRetention on a missing pack: %v, want fs.ErrNotExist", err)
	}

	// The retained data survives a Remove: an unversioned bucket refuses the
	// delete; a versioned one only hides the object behind a delete marker.
	rerr := s.Remove(ctx, name)
	t.Logf("Remove of a retained pack: %v", rerr)
	if !versioning {
		if rerr == nil {
			t.Errorf("Remove of a retained pack in an unversioned bucket succeeded")
		}
		if n, err := s.Size(ctx, name); err != nil || n != int64(len("locked data")) {
			t.Errorf("retained pack after Remove: size %d, %v", n, err)
		}
		return
	}
	var versions []minio.ObjectInfo
	for v := range s.core.ListObjectsIter(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: key, WithVersions: true}) {
		if v.Err != nil {
			t.Fatalf("list versions: %v", v.Err)
		}
		if !v.IsDeleteMarker {
			versions = append(versions, v)
		}
	}
	if len(versions) != 1 {
		t.Fatalf("want the retained version to survive Remove, versions: %+v", versions)
	}
	err = s.core.RemoveObject(ctx, s.loc.Bucket, key, minio.RemoveObjectOptions{VersionID: versions[0].VersionID})
	if err == nil {
		t.Errorf("deleting the retained version %s succeeded", versions[0].VersionID)
	}
}
