package s3store

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"bes/store/s3store/s3test"
)

func TestFilesAndNames(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	s := openStore(t, srv, "bes-files", "repo", Options{Create: true})

	t.Run("PutGet", func(t *testing.T) {
		for key, data := range map[string][]byte{
			"config.json":   []byte(`{"version":1}`),
			"keys/abc.json": bytes.Repeat([]byte("k"), 100_000),
			"empty":         {},
		} {
			if err := s.PutFile(ctx, key, data); err != nil {
				t.Fatalf("PutFile %s: %v", key, err)
			}
			got, err := s.GetFile(ctx, key)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("GetFile %s = %d bytes, %v; want %d bytes", key, len(got), err, len(data))
			}
		}
		if err := s.PutFile(ctx, "config.json", []byte("v2")); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.GetFile(ctx, "config.json"); string(got) != "v2" {
			t.Errorf("after overwrite GetFile = %q", got)
		}
		if _, err := s.core.StatObject(ctx, "bes-files", "repo/keys/abc.json", minio.StatObjectOptions{}); err != nil {
			t.Errorf("file not at PREFIX/key: %v", err)
		}
		if got := listAll(t, s); len(got) != 0 {
			t.Errorf("files listed as packs: %v", got)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		_, err := s.GetFile(ctx, "keys/missing.json")
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "keys/missing.json") {
			t.Errorf("GetFile of missing key: %v, want fs.ErrNotExist naming the key", err)
		}
		if _, err := s.Size(ctx, packName(99)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Size of missing pack: %v", err)
		}
		if _, err := s.ReadAt(ctx, packName(99), make([]byte, 5), 0); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadAt of missing pack: %v", err)
		}
	})

	t.Run("BadNames", func(t *testing.T) {
		for _, n := range badPackNames {
			_, werr := s.NewWriter(ctx, n)
			_, rerr := s.ReadAt(ctx, n, make([]byte, 1), 0)
			_, serr := s.Size(ctx, n)
			for what, err := range map[string]error{
				"NewWriter": werr, "ReadAt": rerr, "Size": serr,
				"Remove":       s.Remove(ctx, n),
				"SetRetention": s.SetRetention(ctx, n, time.Now().Add(time.Hour)),
			} {
				if !errors.Is(err, ErrBadName) {
					t.Errorf("%s(%q) = %v, want ErrBadName", what, n, err)
				}
			}
		}
		for _, k := range badFileKeys {
			_, gerr := s.GetFile(ctx, k)
			if err := s.PutFile(ctx, k, []byte("x")); !errors.Is(err, ErrBadName) {
				t.Errorf("PutFile(%q) = %v, want ErrBadName", k, err)
			}
			if !errors.Is(gerr, ErrBadName) {
				t.Errorf("GetFile(%q) = %v, want ErrBadName", k, gerr)
			}
		}
	})
}

func TestOpen(t *testing.T) {
	srv := s3test.Start(t)
	ctx := context.Background()
	loc, err := ParseURL(srv.URL("bes-open", "x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, loc, serverCreds(srv), Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of missing bucket without Create: %v, want fs.ErrNotExist", err)
	}
	for range 2 { // creating is idempotent
		if _, err := Open(ctx, loc, serverCreds(srv), Options{Create: true}); err != nil {
			t.Fatalf("Open with Create: %v", err)
		}
	}
	wrong := serverCreds(srv)
	wrong.SecretKey = "not-the-secret-0123456789"
	_, err = Open(ctx, loc, wrong, Options{})
	if err == nil {
		t.Fatal("Open with a wrong secret succeeded")
	}
	if strings.Contains(err.Error(), wrong.SecretKey) || strings.Contains(err.Error(), srv.SecretKey) {
		t.Errorf("error leaks a secret: %v", err)
	}
	if _, err := Open(ctx, loc, serverCreds(srv), Options{PartSize: 1 << 20}); err == nil {
		t.Error("part size below 5 MiB accepted")
	}
}
