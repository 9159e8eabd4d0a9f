package s3store

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/minio/minio-go/v7"
)

// ReadAt reads len(p) bytes of pack name at offset off with io.ReaderAt
// semantics: n < len(p) only with an error, io.EOF when the pack ends
// first. An absent pack gives an error wrapping fs.ErrNotExist.
func (s *Store) ReadAt(ctx context.Context, name string, p []byte, off int64) (int, error) {
	if err := CheckPackName(name); err != nil {
		return 0, fmt.Errorf("s3 read pack: %w", err)
	}
	if off < 0 {
		return 0, fmt.Errorf("s3 read pack %s: negative offset %d", name, off)
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := s.readRange(ctx, s.packKey(name), p, off)
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("s3 read pack %s at %d: %w", name, off, err)
	}
	return n, err
}

// readRange performs one ranged GET of len(p) bytes at off.
func (s *Store) readRange(ctx context.Context, key string, p []byte, off int64) (int, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(off, off+int64(len(p))-1); err != nil {
		return 0, err
	}
	body, info, hdr, err := s.core.GetObject(ctx, s.loc.Bucket, key, opts)
	if err != nil {
		if errorCode(err) == "InvalidRange" {
			return 0, io.EOF // off is at or past the end
		}
		return 0, translate(err)
	}
	defer body.Close()
	start, total, err := parseContentRange(hdr.Get("Content-Range"))
	if err != nil {
		return 0, err
	}
	if start != off && !(start == -1 && off == 0) {
		return 0, fmt.Errorf("server answered range from %d, asked for %d", start, off)
	}
	n, err := io.ReadFull(body, p)
	switch {
	case err == nil:
		return n, nil
	case err != io.EOF && err != io.ErrUnexpectedEOF:
		return n, err
	case info.Size >= 0 && int64(n) < info.Size:
		return n, fmt.Errorf("body cut short after %d of %d bytes: %w", n, info.Size, io.ErrUnexpectedEOF)
	case total >= 0 && off+int64(n) < total:
		return n, fmt.Errorf("server sent %d bytes at %d of a %d-byte object, asked for %d: %w",
			n, off, total, len(p), io.ErrUnexpectedEOF)
	}
	return n, io.EOF // the whole answer arrived; the object ends here
}

// parseContentRange parses "bytes START-END/TOTAL". An empty header (a 200
// answer with the whole object) gives start -1; an unknown total ("*")
// gives total -1.
func parseContentRange(h string) (start, total int64, err error) {
	if h == "" {
		return -1, -1, nil
	}
	bad := fmt.Errorf("bad Content-Range %q", clip(h))
	spec, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, bad
	}
	rng, tot, ok := strings.Cut(spec, "/")
	if !ok {
		return 0, 0, bad
	}
	first, _, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, bad
	}
	if start, err = strconv.ParseInt(first, 10, 64); err != nil || start < 0 {
		return 0, 0, bad
	}
	if tot == "*" {
		return start, -1, nil
	}
	if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total < 0 {
		return 0, 0, bad
	}
	return start, total, nil
}
